import { ConfigError, RpcError, TlsError, type ConfigIssue } from '../errors.js';
import type { EndpointHintStore } from '../hints/endpoint-hints.js';
import type { Http3FailureReason, Http3Health } from '../hints/http3-health.js';
import type { PeerCandidate } from '../peers/peer-chooser.js';
import type { RpcObservation, RpcTelemetry } from '../telemetry/index.js';
import { ATTR_PROTOCOL_REASON } from '../telemetry/names.js';
import type { ITlsProvider } from '../tls/tls-provider.js';
import type { ChannelCache, Lease } from '../transport/channel-cache.js';
import { chooseProtocol, type Http3Requirement, type ProtocolChoice } from '../transport/protocol-selection.js';
import type { DialTarget, WireProtocol } from '../transport/types.js';
import { withinCall, type CallBounds } from './call-bounds.js';
import type { ResolvedTarget, TargetResolver } from './target-resolver.js';

/** What one attempt sent, and over which protocol. */
export interface Sent<T> {
  readonly value: T;
  readonly protocol: WireProtocol;
}

/**
 * One attempt's work on a leased connection: a unary call, or opening a stream up to its
 * first response. It owns the lease: it releases it when it fails, and when it succeeds
 * either releases it (unary) or hands it on inside its value (a stream holds it to its end).
 */
export type Operation<T> = (lease: Lease) => Promise<T>;

/** Transport failures where nothing reached the server, so HTTP/2 may carry the same call. */
function http3FailureReason(error: unknown): Http3FailureReason | undefined {
  if (!(error instanceof RpcError)) return undefined;
  if (error.failure === 'connect' || error.failure === 'handshake' || error.failure === 'idle-timeout') return error.failure;
  return undefined;
}

export interface ProtocolSelectorDependencies {
  readonly cache: ChannelCache;
  readonly hints: EndpointHintStore;
  readonly health: Http3Health;
  readonly tls: ITlsProvider;
  readonly telemetry: RpcTelemetry;
  readonly resolver: TargetResolver;
  /** Aborted when the factory is disposed: no wait for a connection outlives it. */
  readonly stop: AbortSignal;
}

/**
 * Chooses HTTP/3 or HTTP/2 for one attempt on one peer and runs the attempt's operation on a
 * leased connection of that protocol — the same way for every call kind. HTTP/3 is used when
 * the profile, the endpoint's hint, the HTTP/3 health memory and the registered transports
 * allow it, raced against HTTP/2 while its connection is not up (happy eyeballs); if HTTP/3
 * fails before anything reached the server, the endpoint is marked broken, the fallback is
 * recorded and the same operation runs over HTTP/2 with the same TLS material. TLS
 * verification failures never fall back. `http3: 'require'` (profile or hint): HTTP/3 only.
 */
export class ProtocolSelector {
  readonly #deps: ProtocolSelectorDependencies;
  /** `profile\0authority` of endpoints whose last HTTP/3 handshake failed certificate verification. */
  readonly #http3Rejected = new Set<string>();
  /**
   * HTTP/3 connections whose dial lost a race to HTTP/2 and is still pending: calls to their
   * endpoint go to HTTP/2 at once (no race delay each) until the dial settles; then a success
   * moves later calls to HTTP/3 and a failure marks the endpoint broken (Http3Health). Keyed by
   * the cached connection, so a new HTTP/3 connection (new generation, new TLS) races afresh.
   */
  readonly #http3Pending = new WeakSet<object>();

  constructor(deps: ProtocolSelectorDependencies) {
    this.#deps = deps;
  }

  /**
   * Runs `operation` on `peer` over the protocol this attempt may use. `replayable` says
   * whether the operation may still run again after a failed HTTP/3 try (a client or bidi
   * stream may not once a request was taken from the caller's iterable); when it may not, the
   * HTTP/3 failure is the attempt's error and no fallback is recorded.
   */
  async send<T>(resolved: ResolvedTarget, peer: PeerCandidate, observation: RpcObservation, call: CallBounds, operation: Operation<T>, replayable: () => boolean = () => true): Promise<Sent<T>> {
    const target = this.dialTarget(resolved, peer);
    const choice = this.#choose(resolved, peer);
    if (choice.required !== undefined) {
      this.#checkRequirement(resolved, peer, choice);
      observation.span.setAttribute(ATTR_PROTOCOL_REASON, 'required');
      try {
        return { value: await this.#on(target, 'h3', peer, observation, operation), protocol: 'h3' };
      } catch (error) {
        throw this.#requiredFailure(resolved, peer, choice.required, error);
      }
    }
    if (choice.reason !== undefined && resolved.profile.http3 === 'prefer') observation.span.setAttribute(ATTR_PROTOCOL_REASON, choice.reason);
    if (choice.protocol === 'h3' && (await this.#race(resolved, peer, target, observation, call)) === 'h3') {
      try {
        return { value: await this.#on(target, 'h3', peer, observation, operation), protocol: 'h3' };
      } catch (error) {
        const reason = http3FailureReason(error);
        if (reason === undefined) throw error;
        if (reason === 'idle-timeout' || !replayable()) {
          // The request may have reached the server: no fallback for this call, but later
          // calls skip HTTP/3 for the backoff window.
          this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
          throw error;
        }
        this.#fellBack(resolved, peer, observation, reason);
      }
    }
    return { value: await this.#on(target, 'h2', peer, observation, operation), protocol: 'h2' };
  }

  /** The last dial target per peer candidate (candidates belong to one resolved target), reused while its TLS generation is current. */
  readonly #dialTargets = new WeakMap<PeerCandidate, DialTarget>();

  /** Everything a transport needs to dial `peer` with the current TLS generation of the target's profile. */
  dialTarget(resolved: ResolvedTarget, peer: PeerCandidate): DialTarget {
    const tls = this.#deps.tls.current(resolved.profileName);
    const known = this.#dialTargets.get(peer);
    if (known !== undefined && known.tls === tls && known.profile === resolved.profile && known.profileName === resolved.profileName) return known;
    const target: DialTarget = { endpoint: peer.endpoint, profileName: resolved.profileName, profile: resolved.profile, tls, peerValidator: this.#deps.tls.peerValidator };
    this.#dialTargets.set(peer, target);
    return target;
  }

  #choose(resolved: ResolvedTarget, peer: PeerCandidate): ProtocolChoice {
    return chooseProtocol({
      profile: resolved.profile,
      hint: this.#deps.hints.get(peer.authority),
      http3Registered: this.#deps.cache.hasTransport('h3'),
      http3Broken: this.#deps.health.isBroken(peer.authority),
    });
  }

  /** The operation on a leased connection of `protocol`; an HTTP/3 success clears the endpoint's HTTP/3 failure memory. */
  async #on<T>(target: DialTarget, protocol: WireProtocol, peer: PeerCandidate, observation: RpcObservation, operation: Operation<T>): Promise<T> {
    observation.setProtocol(protocol);
    const value = await operation(this.#deps.cache.acquire(target, protocol));
    if (protocol === 'h3') this.#deps.health.markHealthy(peer.authority);
    return value;
  }

  /**
   * HTTP/3 is required but ruled out (the profile disables it or is insecure, the endpoint's
   * hint denies it, or no HTTP/3 transport is registered): a ConfigError naming both sides.
   * Configured hints cannot get here (validation refuses them); live hints and a null
   * `TOKENS.Http3Transport` can. Not retried, not counted by the breaker.
   */
  #checkRequirement(resolved: ResolvedTarget, peer: PeerCandidate, choice: ProtocolChoice): void {
    if (choice.conflict === undefined) return;
    const profileKey = `profiles.${resolved.profileName}.http3`;
    const configured = this.#deps.resolver.configuredNameOf(peer.authority);
    const hintKey = configured !== undefined ? `endpoints.${configured}.hints.http3` : `EndpointHints[${peer.authority}].http3`;
    const hint = this.#deps.hints.get(peer.authority).http3;
    const requiredBy = choice.required === 'profile' ? `profile "${resolved.profileName}" requires HTTP/3 (http3 "require")` : `the hint for ${peer.authority} requires HTTP/3 (http3 "require")`;
    const issues: ConfigIssue[] = [];
    switch (choice.conflict) {
      case 'profile-disabled':
        issues.push({ key: profileKey, message: `is "disable" (HTTP/2 only), but ${requiredBy}: no protocol is left for the call` });
        issues.push({ key: hintKey, message: `"require" (HTTP/3 only) contradicts profile "${resolved.profileName}", which disables HTTP/3; remove the hint or allow HTTP/3 in the profile` });
        break;
      case 'insecure':
        issues.push({ key: hintKey, message: `"require" (HTTP/3 only) needs TLS, but profile "${resolved.profileName}" has tls.mode "insecure"` });
        break;
      case 'hint-denied':
        issues.push({ key: hintKey, message: `"${String(hint)}" (HTTP/2 only), but ${requiredBy}: no protocol is left for the call` });
        issues.push({ key: profileKey, message: `is "require" (HTTP/3 only), but the hint for ${peer.authority} denies HTTP/3; remove the hint or use a profile that allows HTTP/2` });
        break;
      case 'no-http3-transport':
        issues.push({
          key: choice.required === 'profile' ? profileKey : hintKey,
          message: `"require" (HTTP/3 only), but no HTTP/3 transport is registered (TOKENS.Http3Transport is bound to null)`,
        });
        break;
    }
    throw new ConfigError(issues, `HTTP/3 requirement for a call to ${peer.authority}`);
  }

  /**
   * A required HTTP/3 attempt failed. A transport failure (connect, refused UDP, handshake,
   * idle timeout, a deadline spent connecting) becomes the call's error, saying that HTTP/3
   * was required, by whom, and why it failed (`http3Required` set; status and failure kind
   * kept, so the retry policy and the breaker judge it as usual). The endpoint's HTTP/3 health
   * memory learns from it for calls that may fall back. gRPC statuses from the server, TLS
   * errors and refusals pass through as they are.
   */
  #requiredFailure(resolved: ResolvedTarget, peer: PeerCandidate, required: Http3Requirement, error: unknown): unknown {
    if (!(error instanceof RpcError)) return error;
    const reason = http3FailureReason(error);
    if (reason === undefined) return error;
    this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
    const by = required === 'profile' ? `profile "${resolved.profileName}" has http3 "require"` : `the endpoint hint for ${peer.authority} has http3 "require"`;
    return new RpcError(error.status, error.statusName, `HTTP/3 is required (${by}), so HTTP/2 was not tried; HTTP/3 failed (${reason}): ${error.details}`, { ...error.context, protocol: 'h3', http3Required: true });
  }

  /** Records a fall back from HTTP/3 to HTTP/2: health memory, the fallback counter, the span. */
  #fellBack(resolved: ResolvedTarget, peer: PeerCandidate, observation: RpcObservation, reason: Http3FailureReason | 'race-delay'): void {
    if (reason !== 'race-delay') this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
    this.#deps.telemetry.recordFallback({ endpoint: peer.authority, profile: resolved.profileName, from: 'h3', to: 'h2', reason });
    observation.noteFallback('h3', 'h2', reason);
  }

  /**
   * Happy eyeballs (RFC 8305 style) between HTTP/3 and HTTP/2 for a connection that is not
   * up yet: dial HTTP/3; if it is not established within the profile's `http3RaceDelayMs`,
   * dial HTTP/2 alongside and use whichever is ready first. When HTTP/2 wins, HTTP/3 keeps
   * connecting in the background: meanwhile the endpoint's calls use HTTP/2 at once (span
   * reason `http3-pending`); if it fails, the endpoint is marked broken; if it succeeds, later
   * calls use it. So a blocked UDP path costs one call the race delay, not a QUIC timeout.
   * HTTP/2's definite answers decide the call without waiting for HTTP/3: a TLS failure over
   * HTTP/2 (certificate or name rejected, client certificate refused) is thrown at once. A TLS
   * verification failure on HTTP/3 is thrown too: it never falls back. The whole race is
   * bounded by the call's deadline and abort signal, and by the factory's disposal.
   */
  async #race(resolved: ResolvedTarget, peer: PeerCandidate, target: DialTarget, observation: RpcObservation, call: CallBounds): Promise<WireProtocol> {
    const { cache, stop } = this.#deps;
    const h3 = cache.acquire(target, 'h3');
    try {
      const ready = h3.connection.ready?.();
      if (ready === undefined) return 'h3';
      // An endpoint whose HTTP/3 handshake failed certificate verification is not raced, and
      // never falls back: its next calls wait (within their deadline) for a fresh HTTP/3
      // handshake. A success clears the mark; any failure fails the call and keeps the mark,
      // so HTTP/2 never carries calls to a peer HTTP/3 rejected, even if UDP then goes quiet.
      const rejectedKey = `${resolved.profileName}\u0000${peer.authority}`;
      if (this.#http3Rejected.has(rejectedKey)) {
        const failure = await withinCall(ready, call, peer.authority, stop).then(
          () => undefined,
          (error: unknown) => (error instanceof Error ? error : new Error(`HTTP/3 connection failed: ${String(error)}`)),
        );
        if (failure !== undefined) throw failure;
        this.#http3Rejected.delete(rejectedKey);
        return 'h3';
      }
      // HTTP/2 already won against this HTTP/3 dial, which is still pending: no race, no wait.
      if (this.#http3Pending.has(h3.connection)) {
        ready.catch(() => undefined); // its outcome is handled where the race was lost
        observation.span.setAttribute(ATTR_PROTOCOL_REASON, 'http3-pending');
        return 'h2';
      }
      ready.catch((error: unknown) => {
        if (error instanceof TlsError) this.#http3Rejected.add(rejectedKey);
      });
      type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };
      const h3Outcome: Promise<Outcome> = ready.then(
        () => ({ ok: true }),
        (error: unknown) => ({ ok: false, error }),
      );
      const settle = (outcome: Outcome): WireProtocol => {
        if (outcome.ok) return 'h3';
        const reason = http3FailureReason(outcome.error);
        if (reason === undefined) throw outcome.error;
        this.#fellBack(resolved, peer, observation, reason);
        return 'h2';
      };
      let timer: NodeJS.Timeout | undefined;
      const delay = new Promise<undefined>((resolve) => {
        timer = setTimeout(resolve, resolved.profile.http3RaceDelayMs, undefined);
      });
      const first = await withinCall(Promise.race([h3Outcome, delay]), call, peer.authority, stop).finally(() => clearTimeout(timer));
      if (first !== undefined) return settle(first);

      const h2 = cache.acquire(target, 'h2');
      try {
        type H2Outcome = { readonly h2: 'ready' } | { readonly h2: 'failed'; readonly error: unknown };
        const h2Ready: Promise<H2Outcome> = (h2.connection.ready?.() ?? Promise.resolve()).then(
          () => ({ h2: 'ready' }),
          (error: unknown) => ({ h2: 'failed', error }),
        );
        const second = await withinCall<Outcome | H2Outcome>(Promise.race([h3Outcome, h2Ready]), call, peer.authority, stop, 'HTTP/3 and HTTP/2');
        if ('ok' in second) return settle(second);
        if (second.h2 === 'failed') {
          // A TLS failure over HTTP/2 is a definite answer about this peer (or our
          // certificate): HTTP/3, still silent, would only make the call wait for its timeout.
          if (second.error instanceof TlsError) throw second.error;
          return settle(await withinCall(h3Outcome, call, peer.authority, stop));
        }
        // HTTP/2 is up first: use it, and let HTTP/3 finish in the background to learn from it;
        // until then the endpoint's calls go to HTTP/2 without waiting.
        const pending = h3.connection;
        this.#http3Pending.add(pending);
        void h3Outcome.then((outcome) => {
          this.#http3Pending.delete(pending);
          const reason = outcome.ok ? undefined : http3FailureReason(outcome.error);
          if (reason !== undefined) this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
        });
        this.#fellBack(resolved, peer, observation, 'race-delay');
        return 'h2';
      } finally {
        h2.release();
      }
    } finally {
      h3.release();
    }
  }
}
