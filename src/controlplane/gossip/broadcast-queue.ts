import type { MemberUpdate } from './member-list.js';

interface Entry {
  readonly update: MemberUpdate;
  /** How many messages carried it so far. */
  transmits: number;
  /** Insertion order: newer entries win ties. */
  readonly order: number;
}

/**
 * The updates waiting to be piggybacked (memberlist's TransmitLimitedQueue):
 *
 * - one entry per member: a newer update about a member replaces the queued one (it
 *   invalidates it, as memberlist's `Invalidates` does), so the queue never holds more entries
 *   than there are members;
 * - `take` hands out the entries sent the fewest times first, newest first among equals,
 *   until the byte budget is spent, and counts one transmission for each;
 * - an entry leaves once it was sent `limit` times (`retransmitLimit(n, retransmitMult)`);
 * - `take` may be told what the recipient already knows (a reply to the node that just sent us
 *   that very update): such an entry is left out and not counted as sent.
 */
export class BroadcastQueue {
  readonly #entries = new Map<string, Entry>();
  #order = 0;

  get size(): number {
    return this.#entries.size;
  }

  /** Queues an update, replacing any queued one about the same member. */
  enqueue(update: MemberUpdate): void {
    this.#entries.set(update.metadata.nodeId, { update, transmits: 0, order: this.#order++ });
  }

  /** What is queued, in the order `take` would hand it out (for diagnostics and tests). */
  pending(): readonly { readonly update: MemberUpdate; readonly transmits: number }[] {
    return this.#sorted().map(({ update, transmits }) => ({ update, transmits }));
  }

  /**
   * Updates for one message: fewest transmissions first, newest first among equals, as long as
   * `sizeOf` of each fits in what is left of `budgetBytes`. Each one handed out counts as sent;
   * one sent `limit` times leaves the queue. An update `known` says the recipient has is left
   * out and keeps its transmissions.
   */
  take(budgetBytes: number, limit: number, sizeOf: (update: MemberUpdate) => number, known?: (update: MemberUpdate) => boolean): MemberUpdate[] {
    const out: MemberUpdate[] = [];
    let left = budgetBytes;
    for (const entry of this.#sorted()) {
      if (known?.(entry.update) === true) continue;
      const size = sizeOf(entry.update);
      if (size > left) continue;
      left -= size;
      out.push(entry.update);
      entry.transmits++;
      if (entry.transmits >= limit) this.#entries.delete(entry.update.metadata.nodeId);
    }
    return out;
  }

  clear(): void {
    this.#entries.clear();
  }

  #sorted(): Entry[] {
    return [...this.#entries.values()].sort((a, b) => a.transmits - b.transmits || b.order - a.order);
  }
}
