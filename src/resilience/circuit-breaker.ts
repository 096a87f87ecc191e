import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
  type IBackoff,
  type IBreaker,
  type IHalfOpenAfterBackoffContext,
} from 'cockatiel';
import { Subject, type Observable } from 'rxjs';
import { systemClock, type Clock } from '../clock.js';
import { PRESETS } from '../config/presets.js';
import type { CircuitBreakerOptions, GrpcStatusName } from '../config/types.js';
import { PeerUnavailableError, RpcError, TlsError } from '../errors.js';
import { BreakerTelemetry, type CircuitSnapshot } from '../telemetry/breaker-telemetry.js';
import type { TelemetryProviders } from '../telemetry/internal.js';
import { GRPC_STATUS, statusName } from '../grpc/status.js';
import { FailureRatioBreaker } from './failure-ratio-breaker.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** One circuit state change. */
export interface BreakerChange {
  readonly peer: string;
  readonly profile: string;
  readonly state: BreakerState;
  readonly previous: BreakerState;
}

/**
 * One circuit per peer and profile (bound to `TOKENS.CircuitBreaker`). The factory offers the
 * chooser only peers whose circuit is not `open`, runs every attempt through `execute`
 * (which decides from the outcome whether it counts as a failure: an `RpcError` whose
 * `refused` is true — the server took no new work, e.g. while draining — or whose
 * `callerDeadline` is true — a deadline tighter than the profile's ran out — must never count) and, in degraded mode,
 * uses `lastFailureAt` and `allowProbe` to probe the peer that failed longest ago.
 * `profile` defaults to `control-plane`.
 */
export interface ICircuitBreaker {
  /** `half-open` once the open period is over (the next call is the probe) and while the probe runs. */
  state(peer: string, profile?: string): BreakerState;
  execute<T>(peer: string, call: () => Promise<T>, profile?: string): Promise<T>;
  readonly changes$: Observable<BreakerChange>;
  /** When the peer last failed (injected clock, ms), undefined when it never did. */
  lastFailureAt?(peer: string, profile?: string): number | undefined;
  /** Ends an open circuit's wait now, so the next `execute` is its half-open probe. */
  allowProbe?(peer: string, profile?: string): void;
  /** Releases what the breaker holds (metrics callbacks, circuits); the module calls it when the container unbinds it. */
  dispose?(): void;
}

/** gRPC statuses that say "this peer is unwell" (default: UNAVAILABLE, DEADLINE_EXCEEDED). */
export const DEFAULT_BREAKER_FAILURE_CODES: readonly number[] = [GRPC_STATUS.UNAVAILABLE, GRPC_STATUS.DEADLINE_EXCEEDED];

/**
 * A failed TLS handshake with a peer counts too: that peer cannot be used as configured. A
 * request the server refused without processing it (`RpcError.refused`: a draining server's
 * GOAWAY, H3_REQUEST_REJECTED, REFUSED_STREAM) never counts, whatever its status: the peer
 * answered, it only took no new work. Nor does a deadline tighter than the profile's running
 * out (`RpcError.callerDeadline`): the caller's budget, not the peer, decided it. cockatiel
 * leaves an error it does not handle out of a closed circuit's count; a half-open probe that
 * ends so closes the circuit.
 */
function isPeerFailure(codes: readonly number[]) {
  return (error: Error): boolean => error instanceof TlsError || (error instanceof RpcError && !error.refused && !error.callerDeadline && codes.includes(error.status));
}

function sameSettings(a: CircuitBreakerOptions, b: CircuitBreakerOptions): boolean {
  return (
    a.mode === b.mode &&
    a.consecutiveFailures === b.consecutiveFailures &&
    a.failureRatio === b.failureRatio &&
    a.windowMs === b.windowMs &&
    a.minimumCalls === b.minimumCalls &&
    a.halfOpenAfterMs === b.halfOpenAfterMs &&
    a.failureStatusCodes.length === b.failureStatusCodes.length &&
    a.failureStatusCodes.every((code, i) => code === b.failureStatusCodes[i])
  );
}

/** The "should it open" decision for the settings' mode, as a cockatiel IBreaker. */
function breakerFor(settings: CircuitBreakerOptions, clock: Clock): IBreaker {
  if (settings.mode === 'consecutive') return new ConsecutiveBreaker(settings.consecutiveFailures);
  return new FailureRatioBreaker({ failureRatio: settings.failureRatio, windowMs: settings.windowMs, minimumCalls: settings.minimumCalls, clock });
}

function fromCockatiel(state: CircuitState): BreakerState {
  if (state === CircuitState.Open || state === CircuitState.Isolated) return 'open';
  return state === CircuitState.HalfOpen ? 'half-open' : 'closed';
}

const DEFAULT_PROFILE = 'control-plane';

/**
 * The open period, decided on the injected clock: cockatiel asks this backoff for a
 * `duration` and compares it with its own `Date.now() - openedAt`, so the gate answers 0
 * (the wait is over: the next call is the probe) or +Infinity (still open). cockatiel calls
 * `next` each time the circuit opens.
 */
class HalfOpenGate implements IBackoff<IHalfOpenAfterBackoffContext> {
  constructor(private readonly circuit: { opened(): void; waitIsOver(): boolean }) {}

  get duration(): number {
    return this.circuit.waitIsOver() ? 0 : Number.POSITIVE_INFINITY;
  }

  next(): HalfOpenGate {
    this.circuit.opened();
    return this;
  }
}

/** The state of one peer's circuit: cockatiel's policy plus what we keep on the injected clock. */
class Circuit {
  readonly policy: CircuitBreakerPolicy;
  openedAt = 0;
  lastFailureAt: number | undefined;
  probeAllowed = false;
  reported: BreakerState = 'closed';

  constructor(
    readonly peer: string,
    readonly profile: string,
    readonly settings: CircuitBreakerOptions,
    private readonly clock: Clock,
    onChange: (circuit: Circuit, state: BreakerState) => void,
  ) {
    const codes = settings.failureStatusCodes.map((name) => GRPC_STATUS[name]);
    const counts = isPeerFailure(codes);
    const gate = new HalfOpenGate(this);
    // cockatiel asks this filter once per thrown error, right where it would emit onFailure
    // with `handled` = the filter's answer; noting the failure time here instead of in an
    // onFailure listener keeps cockatiel from starting a stopwatch (performance.now and a
    // closure) on every call, which it does whenever a success or failure listener exists.
    const filter = (error: Error): boolean => {
      const handled = counts(error);
      if (handled) this.lastFailureAt = this.clock.now();
      return handled;
    };
    this.policy = circuitBreaker(handleWhen(filter), { halfOpenAfter: gate, breaker: breakerFor(settings, clock) });
    this.policy.onStateChange((state) => onChange(this, fromCockatiel(state)));
  }

  /** The circuit just opened (again). */
  opened(): void {
    this.openedAt = this.clock.now();
    this.probeAllowed = false;
  }

  waitIsOver(): boolean {
    return this.probeAllowed || this.clock.now() - this.openedAt >= this.settings.halfOpenAfterMs;
  }

  state(): BreakerState {
    const state = fromCockatiel(this.policy.state);
    return state === 'open' && this.policy.state === CircuitState.Open && this.waitIsOver() ? 'half-open' : state;
  }
}

export interface PeerCircuitBreakerOptions {
  /** A profile's breaker settings; undefined (or absent): the control-plane preset's. */
  readonly settingsFor?: ((profile: string) => CircuitBreakerOptions | undefined) | undefined;
  /** Decides when an open circuit lets its probe through; default: the system clock. */
  readonly clock?: Clock | undefined;
  /** Where the transition counter and state gauge go; default: the global providers. */
  readonly telemetry?: TelemetryProviders | undefined;
}

/**
 * The default `ICircuitBreaker`: one cockatiel circuit breaker policy per peer and profile,
 * with cockatiel's ConsecutiveBreaker (`mode: 'consecutive'`) or our FailureRatioBreaker
 * (`mode: 'failure-ratio'`, a sliding window on the injected clock) deciding when to open, the profile's `failureStatusCodes`
 * (and TLS failures) counting as failures, and one half-open probe after `halfOpenAfterMs`
 * on the injected clock. A settings change in the options rebuilds that profile's circuits
 * (closed). State changes go to `changes$` and to the breaker metrics.
 */
export class PeerCircuitBreaker implements ICircuitBreaker {
  /**
   * Circuits by profile, then peer: two lookups of strings the caller already holds, rather
   * than a `profile\0peer` key built (and hashed) on each of the three lookups per call.
   */
  readonly #circuits = new Map<string, Map<string, Circuit>>();
  readonly #changes = new Subject<BreakerChange>();
  readonly #settingsFor: (profile: string) => CircuitBreakerOptions | undefined;
  readonly #clock: Clock;
  readonly #telemetry: BreakerTelemetry;

  constructor(options: PeerCircuitBreakerOptions = {}) {
    this.#settingsFor = options.settingsFor ?? (() => undefined);
    this.#clock = options.clock ?? systemClock;
    this.#telemetry = new BreakerTelemetry(options.telemetry, () => this.#snapshots());
  }

  get changes$(): Observable<BreakerChange> {
    return this.#changes.asObservable();
  }

  state(peer: string, profile = DEFAULT_PROFILE): BreakerState {
    return this.#circuits.get(profile)?.get(peer)?.state() ?? 'closed';
  }

  lastFailureAt(peer: string, profile = DEFAULT_PROFILE): number | undefined {
    return this.#circuits.get(profile)?.get(peer)?.lastFailureAt;
  }

  allowProbe(peer: string, profile = DEFAULT_PROFILE): void {
    const circuit = this.#circuits.get(profile)?.get(peer);
    if (circuit !== undefined && circuit.policy.state === CircuitState.Open) circuit.probeAllowed = true;
  }

  async execute<T>(peer: string, call: () => Promise<T>, profile = DEFAULT_PROFILE): Promise<T> {
    const circuit = this.#circuit(peer, profile);
    try {
      return await circuit.policy.execute(call);
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        const wait = Math.max(0, circuit.openedAt + circuit.settings.halfOpenAfterMs - this.#clock.now());
        throw new PeerUnavailableError('CIRCUIT_OPEN', [peer], `The circuit for peer ${peer} (profile "${profile}") is open after repeated failures; it lets a probe through in ${wait} ms.`);
      }
      throw error;
    }
  }

  dispose(): void {
    this.#telemetry.dispose();
    this.#changes.complete();
    this.#circuits.clear();
  }

  #circuit(peer: string, profile: string): Circuit {
    const settings = this.#settingsFor(profile) ?? PRESETS['control-plane'].breaker;
    let byPeer = this.#circuits.get(profile);
    if (byPeer === undefined) {
      byPeer = new Map();
      this.#circuits.set(profile, byPeer);
    }
    const known = byPeer.get(peer);
    if (known !== undefined && (known.settings === settings || sameSettings(known.settings, settings))) return known;
    const circuit = new Circuit(peer, profile, settings, this.#clock, (c, state) => this.#changed(c, state));
    byPeer.set(peer, circuit);
    if (known !== undefined && known.reported !== 'closed') this.#changed(circuit, 'closed', known.reported);
    return circuit;
  }

  #changed(circuit: Circuit, state: BreakerState, previous: BreakerState = circuit.reported): void {
    circuit.reported = state;
    if (state === previous) return;
    this.#telemetry.recordTransition({ peer: circuit.peer, profile: circuit.profile, state });
    this.#changes.next({ peer: circuit.peer, profile: circuit.profile, state, previous });
  }

  *#snapshots(): Iterable<CircuitSnapshot> {
    for (const byPeer of this.#circuits.values()) for (const circuit of byPeer.values()) yield { peer: circuit.peer, profile: circuit.profile, state: circuit.state() };
  }
}

/**
 * A {@link PeerCircuitBreaker} with fixed consecutive-failure settings for every profile:
 * opens after `consecutiveFailures` failures in a row, probes after `halfOpenAfterMs`.
 */
export class ConsecutiveFailureCircuitBreaker extends PeerCircuitBreaker {
  constructor(options: { consecutiveFailures?: number; halfOpenAfterMs?: number; failureCodes?: readonly number[]; clock?: Clock; telemetry?: TelemetryProviders } = {}) {
    const settings: CircuitBreakerOptions = {
      ...PRESETS['control-plane'].breaker,
      mode: 'consecutive',
      consecutiveFailures: options.consecutiveFailures ?? 5,
      halfOpenAfterMs: options.halfOpenAfterMs ?? 5_000,
      failureStatusCodes: (options.failureCodes ?? DEFAULT_BREAKER_FAILURE_CODES).map((code) => statusName(code) as GrpcStatusName),
    };
    super({ settingsFor: () => settings, clock: options.clock, telemetry: options.telemetry });
  }
}
