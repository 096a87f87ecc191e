/** Time source. Inject a fake one in tests; nothing in the library reads Date.now() directly. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
