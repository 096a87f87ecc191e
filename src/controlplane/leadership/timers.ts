import { systemTimers, type ControlPlaneTimers } from '../timers.js';

/** The timers of the leadership agent and the embedded store (the control plane's one timer seam). */
export type LeadershipTimers = ControlPlaneTimers;

export const systemLeadershipTimers: LeadershipTimers = systemTimers;

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
