import type { Clock } from '../clock.js';
import { DisposedError, OmniRelayError, PeerUnavailableError, RpcError } from '../errors.js';
import { GRPC_STATUS } from '../grpc/status.js';
import type { IPeerChooser, PeerCandidate } from '../peers/peer-chooser.js';
import type { ICircuitBreaker } from '../resilience/circuit-breaker.js';
import { nextRetryDelay, sleep, type RandomSource } from '../resilience/retry.js';
import type { RpcCaller, RpcObservation, RpcTelemetry } from '../telemetry/index.js';
import { cancelled, statusOf, wireDeadline, type CallBounds } from './call-bounds.js';
import type { Picker, PickResult } from './picker.js';
import type { Sent } from './protocol-selector.js';
import { refusalOf, type RefusalMemory } from './refusal-memory.js';
import type { ResolvedTarget } from './target-resolver.js';

/**
 * Transparent retries per call (gRFC A6): a request the server refused without processing it
 * (`RpcError.refused`: GOAWAY, H3_REQUEST_REJECTED, REFUSED_STREAM) is sent again at once,
 * preferably to a peer this call has not tried, on a new connection when the refusing one is
 * draining, without spending one of the policy's attempts and without counting as a breaker
 * failure. More refusals than this go through the retry policy like any UNAVAILABLE (still
 * never counted by the breaker), so a server that refuses everything ends the call after at
 * most this many + `retry.maxAttempts` requests, within the deadline.
 */
export const MAX_TRANSPARENT_RETRIES = 3;

/**
 * Which retries a call may have:
 * - `policy`: the profile's retry policy and transparent retries (unary calls);
 * - `transparent`: only requests the server refused without processing them (server streams:
 *   once a message was delivered nothing may be replayed, and before that the request is one
 *   message the call still holds);
 * - `none`: none (client and bidi streams: their requests come from the caller's iterable,
 *   which cannot be read twice).
 */
export type RetryMode = 'policy' | 'transparent' | 'none';

/** One call as the retrying layer places it. */
export interface CallPlan {
  readonly service: string;
  readonly method: string;
  readonly resolved: ResolvedTarget;
  /** The call's budget (ms on the injected clock), Infinity for none. */
  readonly deadlineMs: number;
  readonly signal: AbortSignal | undefined;
  readonly caller: RpcCaller;
  readonly retries: RetryMode;
}

/** One attempt on one peer; its errors decide whether the call is retried. */
export type Attempt<T> = (peer: PeerCandidate, call: CallBounds, observation: RpcObservation) => Promise<Sent<T>>;

/** How a placed call ended, for {@link Placed.finish}. */
export type CallEnd = { readonly ok: true } | { readonly ok: false; readonly error: unknown } | { readonly ok: false; readonly abandoned: true };

/**
 * A call whose attempt succeeded (a unary call answered, a stream opened up to its first
 * response). The caller owns its end: `finish` records the outcome (span, metrics, the
 * chooser's in-flight count) exactly once.
 */
export interface Placed<T> {
  readonly value: T;
  readonly sent: Sent<T>['protocol'];
  readonly attempts: number;
  /** `host:port` of the peer that took the call. */
  readonly peer: string;
  /** The error a failure after placement is reported as (the caller's abort becomes CANCELLED). */
  failure(error: unknown): unknown;
  finish(end: CallEnd): void;
}

export interface RetryingCallDependencies {
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly chooser: IPeerChooser;
  readonly breaker: ICircuitBreaker;
  readonly telemetry: RpcTelemetry;
  readonly picker: Picker;
  readonly refusals: RefusalMemory;
  /** Aborted when the factory is disposed: ends backoff sleeps at once, so no retry outlives it. */
  readonly stop: AbortSignal;
}

const NONE_TRIED: ReadonlySet<string> = new Set();

function isCircuitOpen(error: unknown): boolean {
  return error instanceof PeerUnavailableError && error.code === 'CIRCUIT_OPEN';
}

/**
 * Places one call: an attempt per pick, each through the peer's circuit breaker, retried within
 * the call's deadline as its {@link RetryMode} allows; records the call (span, metrics) from the
 * first pick to its end.
 */
export class RetryingCall {
  readonly #deps: RetryingCallDependencies;

  constructor(deps: RetryingCallDependencies) {
    this.#deps = deps;
  }

  async place<T>(plan: CallPlan, attempt: Attempt<T>): Promise<Placed<T>> {
    const { clock, random, chooser, telemetry, picker, refusals, stop } = this.#deps;
    const { resolved, signal } = plan;
    const deadline = plan.deadlineMs === Number.POSITIVE_INFINITY ? plan.deadlineMs : clock.now() + plan.deadlineMs;
    // Peers this call tried: a Set only once a second attempt needs one (most calls make one).
    let firstTried: string | undefined;
    let tried: Set<string> | undefined;
    let observation: RpcObservation | undefined;
    // A circuit may open between the pick and the call (another call's probe failed); the
    // call is then placed on another peer without counting an attempt, at most once per peer.
    let rejections = 0;
    // Requests the server refused without processing them, sent again without counting an attempt.
    let transparent = 0;
    for (let attemptNo = 1; ; attemptNo++) {
      let peer: PeerCandidate | undefined;
      let rejectedByBreaker = false;
      try {
        if (tried === undefined && firstTried !== undefined) tried = new Set([firstTried]);
        const picked = picker.pick(resolved, attemptNo, tried ?? NONE_TRIED);
        if (picked.kind === 'fail') throw picked.error;
        const chosen = picked.peer;
        peer = chosen;
        observation ??= telemetry.start({ service: plan.service, method: plan.method, endpoint: chosen.authority, profile: resolved.profileName, caller: plan.caller });
        const current = observation;
        current.noteAttempt(attemptNo, chosen.authority, picked.breakerState);
        if (tried !== undefined) tried.add(chosen.authority);
        else firstTried = chosen.authority;
        if (signal?.aborted === true) throw cancelled(chosen.authority, signal.reason);
        const bounds: CallBounds = { deadline: wireDeadline(clock, deadline), signal };
        const startedAt = refusals.seq;
        const budget = deadline - clock.now();
        chooser.onCallStart?.(chosen.authority);
        let placed = false;
        try {
          const run = (): Promise<Sent<T>> =>
            attempt(chosen, bounds, current).catch((error: unknown) => {
              throw this.#judged(chosen, budget, resolved, error);
            });
          const sent = await this.#guarded(picked, run, resolved.profileName).catch((error: unknown) => {
            rejectedByBreaker = isCircuitOpen(error);
            throw error;
          });
          placed = true;
          return this.#placed(sent, attemptNo, chosen.authority, startedAt, current, signal);
        } finally {
          if (!placed) chooser.onCallEnd?.(chosen.authority, false);
        }
      } catch (raw) {
        if (rejectedByBreaker && rejections < resolved.peers.length && signal?.aborted !== true) {
          rejections++;
          attemptNo--;
          continue;
        }
        const refusal = refusalOf(raw);
        if (refusal !== undefined && peer !== undefined) {
          refusals.note(peer.authority, resolved.profile.breaker.halfOpenAfterMs, refusal);
          if (plan.retries !== 'none' && transparent < MAX_TRANSPARENT_RETRIES && signal?.aborted !== true && clock.now() < deadline) {
            transparent++;
            observation?.noteTransparentRetry(attemptNo, peer.authority, refusal.details);
            attemptNo--;
            continue;
          }
        }
        const error = signal?.aborted === true && !(raw instanceof OmniRelayError && raw.code !== 'RPC_FAILED') ? cancelled(peer?.authority ?? '', signal.reason) : raw;
        const delay = plan.retries === 'policy' ? nextRetryDelay({ attempt: attemptNo, error, options: resolved.profile.retry, now: clock.now(), deadline, random }) : undefined;
        if (delay === undefined) {
          observation?.end(statusOf(error), error as Error);
          throw error;
        }
        const sleepSignal = signal === undefined ? stop : AbortSignal.any([signal, stop]);
        await sleep(delay, sleepSignal).catch((reason: unknown) => {
          const abort = stop.aborted ? new DisposedError('The control-plane client factory') : cancelled(peer?.authority ?? '', reason);
          observation?.end(abort instanceof RpcError ? GRPC_STATUS.CANCELLED : statusOf(abort), abort);
          throw abort;
        });
        if (stop.aborted) {
          const disposed = new DisposedError('The control-plane client factory');
          observation?.end(statusOf(disposed), disposed);
          throw disposed;
        }
      }
    }
  }

  /**
   * The attempt through the peer's breaker. A peer picked in panic (its circuit is open but the
   * ejection cap keeps it in) is still tried through the breaker, so its half-open probe can
   * close the circuit; when the breaker rejects it, the call is sent anyway, uncounted.
   */
  #guarded<T>(picked: PickResult & { readonly kind: 'pick' }, run: () => Promise<Sent<T>>, profile: string): Promise<Sent<T>> {
    const guarded = this.#deps.breaker.execute(picked.peer.authority, run, profile);
    if (picked.via !== 'panic') return guarded;
    return guarded.catch((error: unknown) => {
      if (isCircuitOpen(error)) return run();
      throw error;
    });
  }

  /**
   * An attempt's failure as the breaker and the retry loop should see it: a connection failure
   * with a peer that is draining is its refusal; a DEADLINE_EXCEEDED on a budget shorter than
   * the profile's `deadlineMs` (a tighter deadline from the caller, or the rest after retries)
   * does not show the peer at fault and is marked `callerDeadline`, so breakers do not count it.
   */
  #judged(peer: PeerCandidate, budget: number, resolved: ResolvedTarget, error: unknown): unknown {
    const drained = this.#deps.refusals.drainAware(peer.authority, error);
    if (drained instanceof RpcError && drained.status === GRPC_STATUS.DEADLINE_EXCEEDED && !drained.callerDeadline && budget < resolved.profile.deadlineMs) {
      return new RpcError(drained.status, drained.statusName, drained.details, { ...drained.context, callerDeadline: true });
    }
    return drained;
  }

  #placed<T>(sent: Sent<T>, attempts: number, peer: string, startedAt: number, observation: RpcObservation, signal: AbortSignal | undefined): Placed<T> {
    const { chooser, refusals } = this.#deps;
    let finished = false;
    return {
      value: sent.value,
      sent: sent.protocol,
      attempts,
      peer,
      failure: (error) => (signal?.aborted === true ? cancelled(peer, signal.reason) : error),
      finish: (end) => {
        if (finished) return;
        finished = true;
        if (end.ok) {
          if (!refusals.empty) refusals.servedBy(peer, startedAt);
          observation.end(GRPC_STATUS.OK);
        } else if ('error' in end) {
          observation.end(statusOf(end.error), end.error as Error);
        } else {
          observation.end(GRPC_STATUS.CANCELLED);
        }
        chooser.onCallEnd?.(peer, end.ok);
      },
    };
  }
}
