import type { Member, MemberMetadata, MemberStatus } from '../membership.js';

/** A member state as gossip carries it (an update, or one row of a full-state sync). */
export interface MemberUpdate {
  readonly metadata: MemberMetadata;
  readonly status: MemberStatus;
  readonly incarnation: number;
  /** For `suspect`: the node whose probe failed (Lifeguard counts independent suspectors); absent otherwise. */
  readonly suspectedBy?: string | undefined;
}

/** What an accepted update did to a member, as logged (`updated`: new metadata or incarnation, same state). */
export type TransitionKind = 'joined' | 'suspect' | 'recovered' | 'dead' | 'left' | 'updated';

export interface Transition {
  readonly kind: TransitionKind;
  readonly member: Member;
  readonly previous: Member | undefined;
}

/** The outcome of applying one update. */
export type ApplyResult =
  /** Accepted: the list changed (re-gossip the update). */
  | { readonly outcome: 'accepted'; readonly transition: Transition }
  /** About the local node and not true: refute (the agent raises its incarnation and announces alive). */
  | { readonly outcome: 'refute'; readonly claimed: number }
  /** Stale or no news: nothing changed. */
  | { readonly outcome: 'ignored' };

/**
 * The member list and SWIM's precedence rules (memberlist's aliveNode / suspectNode / deadNode):
 *
 * - `alive` with a higher incarnation than known wins over every state (a member refuting its
 *   suspicion, announcing new metadata, or rejoining after `dead` / `left`); an unknown member
 *   joins with any incarnation;
 * - `suspect` applies to an `alive` member at the same or a higher incarnation (and raises a
 *   suspect's incarnation); `dead` applies to an `alive` or `suspect` member at the same or a higher
 *   incarnation; neither applies to a member we do not know (nothing to suspect);
 * - `left` applies at the same or a higher incarnation from any state but `left`, and is final
 *   for that incarnation: no suspicion or death follows it; only the member itself rejoining
 *   with a higher incarnation brings it back;
 * - anything with a lower incarnation than known is stale and ignored;
 * - `suspect` / `dead` about the local node is refuted, not applied (unless it is leaving).
 *
 * Pure data and rules; timers (suspicion timeouts) belong to the agent.
 */
export class MemberList {
  readonly #members = new Map<string, Member>();
  readonly #localId: string;

  constructor(local: MemberMetadata, incarnation = 0) {
    this.#localId = local.nodeId;
    this.#members.set(local.nodeId, { metadata: local, status: 'alive', incarnation });
  }

  get localId(): string {
    return this.#localId;
  }

  get local(): Member {
    return this.#members.get(this.#localId)!;
  }

  get(nodeId: string): Member | undefined {
    return this.#members.get(nodeId);
  }

  /** Every member, the local node first, then by node id. */
  all(): Member[] {
    const others = [...this.#members.values()].filter((m) => m.metadata.nodeId !== this.#localId).sort((a, b) => (a.metadata.nodeId < b.metadata.nodeId ? -1 : 1));
    return [this.local, ...others];
  }

  /** Members other than the local node in one of `statuses`. */
  others(...statuses: MemberStatus[]): Member[] {
    return this.all().filter((m) => m.metadata.nodeId !== this.#localId && statuses.includes(m.status));
  }

  /** Members counted for the scaling formulas: every member not dead or left, the local node included. */
  get liveCount(): number {
    let n = 0;
    for (const m of this.#members.values()) if (m.status === 'alive' || m.status === 'suspect') n++;
    return n;
  }

  /** Replaces the local node's own state (refutation, leave, new metadata). */
  setLocal(status: 'alive' | 'left', incarnation: number, metadata: MemberMetadata = this.local.metadata): Member {
    const member: Member = { metadata, status, incarnation };
    this.#members.set(this.#localId, member);
    return member;
  }

  /** Applies one update under SWIM's precedence rules. `leaving`: the local node is leaving and refutes nothing. */
  apply(update: MemberUpdate, leaving = false): ApplyResult {
    const id = update.metadata.nodeId;
    const current = this.#members.get(id);
    if (id === this.#localId) {
      const local = this.local;
      if (local.status === 'left' || leaving) return { outcome: 'ignored' };
      if (update.status === 'alive' && update.incarnation <= local.incarnation) return { outcome: 'ignored' };
      // Anyone saying something else about us (suspect, dead, left, or alive with an incarnation
      // we never announced) is wrong: announce alive with a higher incarnation.
      return { outcome: 'refute', claimed: update.incarnation };
    }
    if (current === undefined) {
      if (update.status === 'suspect' || update.status === 'dead') return { outcome: 'ignored' };
      return this.#set(update, current, update.status === 'left' ? 'left' : 'joined');
    }
    if (update.incarnation < current.incarnation) return { outcome: 'ignored' };
    const newer = update.incarnation > current.incarnation;
    switch (update.status) {
      case 'alive':
        if (!newer) return { outcome: 'ignored' };
        return this.#set(update, current, current.status === 'suspect' ? 'recovered' : current.status === 'alive' ? 'updated' : 'joined');
      case 'suspect':
        if (current.status === 'alive') return this.#set({ ...update, metadata: newer ? update.metadata : current.metadata }, current, 'suspect');
        if (current.status === 'suspect' && newer) return this.#set(update, current, 'updated');
        return { outcome: 'ignored' };
      case 'dead':
        if (current.status === 'alive' || current.status === 'suspect') return this.#set({ ...update, metadata: newer ? update.metadata : current.metadata }, current, 'dead');
        return { outcome: 'ignored' };
      case 'left':
        if (current.status === 'left') return { outcome: 'ignored' };
        return this.#set({ ...update, metadata: newer ? update.metadata : current.metadata }, current, 'left');
    }
  }

  /** Drops a member that is dead or left (never the local node, never a live member); true when it was dropped. */
  remove(nodeId: string): boolean {
    const member = this.#members.get(nodeId);
    if (nodeId === this.#localId || member === undefined || (member.status !== 'dead' && member.status !== 'left')) return false;
    return this.#members.delete(nodeId);
  }

  #set(update: MemberUpdate, previous: Member | undefined, kind: TransitionKind): ApplyResult {
    const member: Member = { metadata: update.metadata, status: update.status, incarnation: update.incarnation };
    this.#members.set(update.metadata.nodeId, member);
    return { outcome: 'accepted', transition: { kind, member, previous } };
  }
}
