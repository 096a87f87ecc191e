import type { IPeerChooser, PeerCandidate, PeerChoiceContext } from './peer-chooser.js';
import { RoundRobinPeerChooser } from './round-robin.js';

/**
 * Sticks to one preferred peer (`host:port`) whenever the factory offers it, that is while
 * it is not draining and its circuit is not open. When it is not offered, or this call
 * already tried it, the others take the call in turn (`fallback`, round-robin by default).
 * Once its circuit lets a half-open probe through it is offered again, takes the probe,
 * and, when that succeeds and the circuit closes, all calls again.
 */
export class PreferredPeerChooser implements IPeerChooser {
  readonly #preferred: string;
  readonly #fallback: IPeerChooser;
  #lastPeers: readonly PeerCandidate[] | undefined;
  #lastIndex = -1;

  constructor(preferred: string, fallback: IPeerChooser = new RoundRobinPeerChooser()) {
    this.#preferred = preferred;
    this.#fallback = fallback;
  }

  get preferred(): string {
    return this.#preferred;
  }

  choose(peers: readonly PeerCandidate[], context: PeerChoiceContext): PeerCandidate | undefined {
    if (!context.tried.has(this.#preferred)) {
      const found = this.#find(peers);
      if (found !== undefined) return found;
    }
    return this.#fallback.choose(peers, context);
  }

  onCallStart(peer: string): void {
    this.#fallback.onCallStart?.(peer);
  }

  onCallEnd(peer: string, ok: boolean): void {
    this.#fallback.onCallEnd?.(peer, ok);
  }

  /**
   * The preferred peer among `peers`. The factory hands over the same array while the offered
   * set is unchanged, so the answer is kept per array: O(1) then, one scan when it changes.
   */
  #find(peers: readonly PeerCandidate[]): PeerCandidate | undefined {
    if (peers !== this.#lastPeers) {
      this.#lastPeers = peers;
      this.#lastIndex = peers.findIndex((p) => p.authority === this.#preferred);
    }
    return this.#lastIndex < 0 ? undefined : peers[this.#lastIndex];
  }
}
