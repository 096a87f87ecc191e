import type { ParsedEndpoint } from '../transport/types.js';

/** A peer a call may go to. */
export interface PeerCandidate {
  /** `host:port` */
  readonly authority: string;
  readonly endpoint: ParsedEndpoint;
}

export interface PeerChoiceContext {
  readonly profile: string;
  /** 1 for the first attempt of a call, 2 for its first retry, ... */
  readonly attempt: number;
  /** Peers this call already tried (a chooser should prefer others when it can). */
  readonly tried: ReadonlySet<string>;
}

/**
 * Picks the peer for each attempt (bound to `TOKENS.PeerChooser`). The factory only offers
 * peers that are not draining and whose circuit is not open, and reports each call's
 * start and end so load-aware choosers can count in-flight calls.
 */
export interface IPeerChooser {
  choose(peers: readonly PeerCandidate[], context: PeerChoiceContext): PeerCandidate | undefined;
  onCallStart?(peer: string): void;
  onCallEnd?(peer: string, ok: boolean): void;
}

/**
 * Round-robin over the offered peers, one rotation per peer set; on a retry it skips
 * peers this call already tried when another one is offered.
 */
export class RoundRobinPeerChooser implements IPeerChooser {
  readonly #next = new Map<string, number>();

  choose(peers: readonly PeerCandidate[], context: PeerChoiceContext): PeerCandidate | undefined {
    if (peers.length === 0) return undefined;
    const untried = peers.filter((p) => !context.tried.has(p.authority));
    const pool = untried.length > 0 ? untried : peers;
    const key = pool.map((p) => p.authority).join(',');
    const index = this.#next.get(key) ?? 0;
    this.#next.set(key, (index + 1) % pool.length);
    return pool[index % pool.length];
  }
}
