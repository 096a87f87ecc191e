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
  /**
   * Names the peer set the call targets (a peer list name, or the call's peers), so a
   * chooser can keep one rotation per set. Absent: choosers fall back to the profile.
   */
  readonly peerSet?: string | undefined;
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

export { RoundRobinPeerChooser } from './round-robin.js';
