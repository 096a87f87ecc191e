import { BehaviorSubject, type Observable } from 'rxjs';

/**
 * The membership contract between the gossip agent (which writes it) and the agents that
 * read it (service discovery, leadership): plain data, no dependency on either side, so a
 * container can wire readers before the gossip agent that feeds them exists.
 */

/** SWIM member states (hashicorp/memberlist's alive / suspect / dead, plus a graceful `left`). */
export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

/** What a node announces about itself; gossiped with every state change. */
export interface MemberMetadata {
  /** The node id; a node's certificate must name it (see the gossip agent). */
  readonly nodeId: string;
  readonly role: string;
  readonly cluster: string;
  readonly region: string;
  /** The node's software version. */
  readonly version: string;
  /** `https://host:port` the node serves gRPC on (its GrpcHost). */
  readonly endpoint: string;
  /** Whether the node serves HTTP/3 (UDP) on that port; `false` makes dialers use HTTP/2 from the first call. */
  readonly http3: boolean;
  /** Fully qualified gRPC services the node hosts (`package.Service`), for service discovery. */
  readonly services: readonly string[];
}

/** One member as a node sees it. */
export interface Member {
  readonly metadata: MemberMetadata;
  readonly status: MemberStatus;
  /** Raised only by the member itself (to refute suspicion, or to announce new metadata). */
  readonly incarnation: number;
}

/** A read-only live view of the member list (the local node included). */
export interface MembershipView {
  /** The member list now. */
  readonly members: readonly Member[];
  /** The full member list on every change; replays the current list on subscribe; completes on dispose. */
  readonly members$: Observable<readonly Member[]>;
}

/**
 * The one place the member list lives: the gossip agent publishes every change here, readers
 * subscribe. Bound as a singleton (`CONTROL_PLANE_TOKENS.Membership`).
 */
export class MembershipSource implements MembershipView {
  readonly #members = new BehaviorSubject<readonly Member[]>([]);

  get members(): readonly Member[] {
    return this.#members.value;
  }

  get members$(): Observable<readonly Member[]> {
    return this.#members.asObservable();
  }

  /** Replaces the member list (the gossip agent's job). */
  publish(members: readonly Member[]): void {
    if (!this.#members.closed) this.#members.next(members);
  }

  dispose(): void {
    this.#members.complete();
  }
}
