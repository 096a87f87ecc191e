import { PeerUnavailableError } from '../errors.js';
import type { EndpointHintStore } from '../hints/endpoint-hints.js';
import type { IPeerChooser, PeerCandidate } from '../peers/peer-chooser.js';
import type { BreakerState, ICircuitBreaker } from '../resilience/circuit-breaker.js';
import type { RefusalMemory } from './refusal-memory.js';
import type { ResolvedTarget } from './target-resolver.js';

/**
 * How a peer was picked:
 * - `chooser`: offered to the chooser with its circuit closed (or half-open: the call is the probe);
 * - `probe`: every circuit is open and the profile's `whenAllOpen` is `probe-least-recently-failed`;
 * - `panic`: its circuit is open, but keeping it out would eject more of the target's peers
 *   than `breaker.maxEjectionPercent` allows, so it takes calls anyway; a breaker that rejects
 *   such a call is stepped around (the call is sent, not counted).
 */
export type PickedVia = 'chooser' | 'probe' | 'panic';

/** What the picker decided for one attempt. */
export type PickResult =
  | { readonly kind: 'pick'; readonly peer: PeerCandidate; readonly via: PickedVia; readonly breakerState: BreakerState }
  /** No peer may take the call now: fail fast with this error (PEER_DRAINING, CIRCUIT_OPEN, PEER_UNAVAILABLE). */
  | { readonly kind: 'fail'; readonly error: PeerUnavailableError };

/**
 * Circuits a target may have open and still keep the peers out: `maxEjectionPercent` of its
 * peers, rounded down, but at least one when it has two or more peers and the percentage is
 * above 0 (Envoy's outlier detection rule), so a single peer is never ejected unless the
 * percentage is 100.
 */
export function ejectionCap(peers: number, maxEjectionPercent: number): number {
  const cap = Math.floor((peers * maxEjectionPercent) / 100);
  return peers >= 2 && maxEjectionPercent > 0 ? Math.max(1, cap) : cap;
}

/**
 * Picks the peer of one attempt: the chooser, over the peers that are not draining, whose
 * circuit is not open (within the ejection cap) and that did not refuse work moments ago
 * (while any other is left). Returns a typed result; never throws.
 */
export class Picker {
  readonly #hints: EndpointHintStore;
  readonly #breaker: ICircuitBreaker;
  readonly #chooser: IPeerChooser;
  readonly #refusals: RefusalMemory;
  /** The last offered list per target, reused while the same peers are left out. */
  readonly #offeredMemo = new WeakMap<ResolvedTarget, { readonly excluded: readonly number[]; readonly offered: readonly PeerCandidate[] }>();

  constructor(deps: { readonly hints: EndpointHintStore; readonly breaker: ICircuitBreaker; readonly chooser: IPeerChooser; readonly refusals: RefusalMemory }) {
    this.#hints = deps.hints;
    this.#breaker = deps.breaker;
    this.#chooser = deps.chooser;
    this.#refusals = deps.refusals;
  }

  pick(resolved: ResolvedTarget, attempt: number, tried: ReadonlySet<string>): PickResult {
    const profile = resolved.profileName;
    const offered = this.#offered(resolved);
    if (offered.length === 0) {
      const notDraining = resolved.peers.filter((p) => this.#hints.get(p.authority).draining !== true);
      if (notDraining.length === 0) {
        const all = resolved.peers.map((p) => p.authority);
        return { kind: 'fail', error: new PeerUnavailableError('PEER_DRAINING', all, `Every peer is draining (${all.join(', ')}); no new calls are placed on a draining endpoint.`) };
      }
      return this.#allOpen(resolved, notDraining);
    }
    const peer = this.#chooser.choose(offered, { profile, attempt, tried, peerSet: resolved.peerSet });
    if (peer === undefined) {
      const names = offered.map((p) => p.authority);
      return { kind: 'fail', error: new PeerUnavailableError('PEER_UNAVAILABLE', names, `The peer chooser picked none of ${names.join(', ')}.`) };
    }
    const breakerState = this.#breaker.state(peer.authority, profile);
    return { kind: 'pick', peer, via: breakerState === 'open' ? 'panic' : 'chooser', breakerState };
  }

  /**
   * The peers that are not draining and whose circuit is not open, less those that just
   * refused work while any other is left. Open circuits beyond the ejection cap are offered
   * again, those whose last failure is oldest first. One pass over the peers; the same array
   * comes back while the same peers are left out (the target's own list when none is), so a
   * pick allocates nothing and choosers may key state on the array.
   */
  #offered(resolved: ResolvedTarget): readonly PeerCandidate[] {
    const hints = this.#hints;
    const breaker = this.#breaker;
    const profile = resolved.profileName;
    const peers = resolved.peers;
    const avoidRefusing = !this.#refusals.empty;
    let open: number[] | undefined;
    let draining: number[] | undefined;
    let refusing: number[] | undefined;
    let usable = 0;
    let notDraining = 0;
    for (let i = 0; i < peers.length; i++) {
      const authority = (peers[i] as PeerCandidate).authority;
      if (hints.get(authority).draining === true) {
        (draining ??= []).push(i);
        continue;
      }
      notDraining++;
      if (breaker.state(authority, profile) === 'open') (open ??= []).push(i);
      else if (avoidRefusing && this.#refusals.isRefusing(authority)) (refusing ??= []).push(i);
      else usable++;
    }
    if (open !== undefined) {
      const cap = ejectionCap(notDraining, resolved.profile.breaker.maxEjectionPercent);
      if (open.length > cap) {
        // Readmit the open circuits beyond the cap whose last failure is oldest.
        const at = (i: number): number => breaker.lastFailureAt?.((peers[i] as PeerCandidate).authority, profile) ?? Number.NEGATIVE_INFINITY;
        const readmit = new Set([...open].sort((a, b) => at(a) - at(b)).slice(0, open.length - cap));
        open = open.filter((i) => !readmit.has(i));
        usable += readmit.size;
      }
    }
    let excluded = merge(draining, open);
    if (refusing !== undefined && usable > 0) excluded = merge(excluded, refusing);
    if (excluded === undefined || excluded.length === 0) return peers;
    const memo = this.#offeredMemo.get(resolved);
    if (memo !== undefined && memo.excluded.length === excluded.length && memo.excluded.every((index, i) => index === excluded[i])) return memo.offered;
    const skip = new Set(excluded);
    const offered = peers.filter((_, i) => !skip.has(i));
    this.#offeredMemo.set(resolved, { excluded, offered });
    return offered;
  }

  /** Every not-draining peer's circuit is open (the cap allows it): fail fast, or probe the least recently failed peer. */
  #allOpen(resolved: ResolvedTarget, open: readonly PeerCandidate[]): PickResult {
    const breaker = this.#breaker;
    const profile = resolved.profileName;
    const names = open.map((p) => p.authority);
    if (resolved.profile.breaker.whenAllOpen === 'probe-least-recently-failed' && breaker.allowProbe !== undefined) {
      let best: PeerCandidate | undefined;
      let bestAt = Number.POSITIVE_INFINITY;
      for (const peer of open) {
        const at = breaker.lastFailureAt?.(peer.authority, profile) ?? Number.NEGATIVE_INFINITY;
        if (best === undefined || at < bestAt) {
          best = peer;
          bestAt = at;
        }
      }
      if (best !== undefined) {
        breaker.allowProbe(best.authority, profile);
        return { kind: 'pick', peer: best, via: 'probe', breakerState: breaker.state(best.authority, profile) };
      }
    }
    return { kind: 'fail', error: new PeerUnavailableError('CIRCUIT_OPEN', names, `The circuit is open for every available peer (${names.join(', ')}); calls fail fast until a half-open probe succeeds.`) };
  }
}

/** Two ascending index lists as one, or undefined when both are. */
function merge(a: readonly number[] | undefined, b: readonly number[] | undefined): number[] | undefined {
  if (a === undefined) return b === undefined ? undefined : [...b];
  if (b === undefined) return [...a];
  return [...a, ...b].sort((x, y) => x - y);
}
