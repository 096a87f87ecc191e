/**
 * The timers of the control-plane agents (gossip rounds, leadership campaigns and renewals, the
 * embedded lease store's expiry): one seam, so tests drive every agent with one fake clock.
 */
export interface ControlPlaneTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: ControlPlaneTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** One named timer slot: arming it again replaces the pending callback, so a slot never holds two. */
export class TimerSlot {
  readonly #timers: ControlPlaneTimers;
  #handle: unknown;
  #armed = false;

  constructor(timers: ControlPlaneTimers) {
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
