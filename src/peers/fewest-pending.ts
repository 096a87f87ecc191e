import type { RandomSource } from '../resilience/retry.js';
import { InFlightCounter } from './in-flight.js';
import type { IPeerChooser, PeerCandidate, PeerChoiceContext } from './peer-chooser.js';

/**
 * Power of two choices over in-flight calls (grpc-go `least_request`, YARP): two distinct
 * peers are drawn at random and the one with fewer calls in flight wins (ties: the first
 * draw). Untried peers win over tried ones on a retry. O(1) per pick at any peer count.
 * `random` is injected so tests are deterministic; `counter` is shared when several
 * choosers see the same calls (the factory reports each call once).
 */
export class FewestPendingPeerChooser implements IPeerChooser {
  readonly #random: RandomSource;
  readonly #counter: InFlightCounter;
  readonly #ownsCounter: boolean;

  constructor(random: RandomSource, counter?: InFlightCounter) {
    this.#random = random;
    this.#ownsCounter = counter === undefined;
    this.#counter = counter ?? new InFlightCounter();
  }

  /** Calls in flight on `peer` as this chooser sees them. */
  pending(peer: string): number {
    return this.#counter.get(peer);
  }

  choose(peers: readonly PeerCandidate[], context: PeerChoiceContext): PeerCandidate | undefined {
    const count = peers.length;
    if (count <= 1) return peers[0];
    const first = Math.min(count - 1, Math.floor(this.#random() * count));
    let second = Math.min(count - 2, Math.floor(this.#random() * (count - 1)));
    if (second >= first) second++;
    const a = peers[first] as PeerCandidate;
    const b = peers[second] as PeerCandidate;
    if (context.tried.size > 0) {
      const aTried = context.tried.has(a.authority);
      const bTried = context.tried.has(b.authority);
      if (aTried && !bTried) return b;
      if (bTried && !aTried) return a;
      if (aTried && bTried) return this.#leastPendingUntried(peers, context.tried) ?? this.#lessBusy(a, b);
    }
    return this.#lessBusy(a, b);
  }

  onCallStart(peer: string): void {
    if (this.#ownsCounter) this.#counter.start(peer);
  }

  onCallEnd(peer: string): void {
    if (this.#ownsCounter) this.#counter.end(peer);
  }

  #lessBusy(a: PeerCandidate, b: PeerCandidate): PeerCandidate {
    return this.#counter.get(b.authority) < this.#counter.get(a.authority) ? b : a;
  }

  /** Retry where both draws were tried already: the least busy untried peer, if any. */
  #leastPendingUntried(peers: readonly PeerCandidate[], tried: ReadonlySet<string>): PeerCandidate | undefined {
    let best: PeerCandidate | undefined;
    let bestCount = Number.POSITIVE_INFINITY;
    for (const peer of peers) {
      if (tried.has(peer.authority)) continue;
      const pending = this.#counter.get(peer.authority);
      if (pending < bestCount) {
        best = peer;
        bestCount = pending;
      }
    }
    return best;
  }
}
