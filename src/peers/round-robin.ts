import type { IPeerChooser, PeerCandidate, PeerChoiceContext } from './peer-chooser.js';

/**
 * Round-robin over the offered peers, one rotation per peer set (the context's `peerSet`,
 * else its profile). On a retry it skips peers this call already tried when another one is
 * offered. A pick is one map lookup and, on a retry, a scan for an untried peer: no
 * allocation, whatever the number of peers.
 */
export class RoundRobinPeerChooser implements IPeerChooser {
  readonly #next = new Map<string, number>();

  choose(peers: readonly PeerCandidate[], context: PeerChoiceContext): PeerCandidate | undefined {
    const count = peers.length;
    if (count === 0) return undefined;
    const key = context.peerSet ?? context.profile;
    const start = (this.#next.get(key) ?? 0) % count;
    let index = start;
    if (context.tried.size > 0) {
      for (let step = 0; step < count; step++) {
        const candidate = (start + step) % count;
        if (!context.tried.has((peers[candidate] as PeerCandidate).authority)) {
          index = candidate;
          break;
        }
      }
    }
    // One entry per peer set; ad-hoc `peers` lists could otherwise grow the map without bound.
    if (this.#next.size >= 4096 && !this.#next.has(key)) this.#next.clear();
    this.#next.set(key, (index + 1) % count);
    return peers[index];
  }
}
