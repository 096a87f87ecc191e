/** In-flight calls per peer (`host:port`), kept by the factory's onCallStart / onCallEnd reports. */
export class InFlightCounter {
  readonly #counts = new Map<string, number>();

  start(peer: string): void {
    this.#counts.set(peer, (this.#counts.get(peer) ?? 0) + 1);
  }

  end(peer: string): void {
    const count = (this.#counts.get(peer) ?? 0) - 1;
    if (count > 0) this.#counts.set(peer, count);
    else this.#counts.delete(peer);
  }

  get(peer: string): number {
    return this.#counts.get(peer) ?? 0;
  }
}
