/** The timers of the leadership agent and the embedded store (one owner each); inject a fake one to drive them in tests. */
export interface LeadershipTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemLeadershipTimers: LeadershipTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** One named timer slot: arming it again replaces the pending callback, so a slot never holds two. */
export class TimerSlot {
  readonly #timers: LeadershipTimers;
  #handle: unknown;
  #armed = false;

  constructor(timers: LeadershipTimers) {
    this.#timers = timers;
  }

  get armed(): boolean {
    return this.#armed;
  }

  arm(ms: number, callback: () => void): void {
    this.clear();
    this.#armed = true;
    this.#handle = this.#timers.setTimeout(() => {
      this.#armed = false;
      this.#handle = undefined;
      callback();
    }, Math.max(0, ms));
  }

  clear(): void {
    if (this.#armed) this.#timers.clearTimeout(this.#handle);
    this.#armed = false;
    this.#handle = undefined;
  }
}
