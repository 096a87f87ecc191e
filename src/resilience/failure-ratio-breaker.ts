import { CircuitState, type IBreaker } from 'cockatiel';
import type { Clock } from '../clock.js';

/** Buckets the window is cut into: the window slides in steps of windowMs / 10. */
const BUCKETS = 10;

export interface FailureRatioBreakerOptions {
  /** The circuit opens when more than this fraction (0..1, exclusive) of the window's calls failed. */
  readonly failureRatio: number;
  /** Length of the sliding window (ms). */
  readonly windowMs: number;
  /** Calls the window must hold before the ratio is judged. */
  readonly minimumCalls: number;
  readonly clock: Clock;
}

/**
 * cockatiel `IBreaker` for `mode: 'failure-ratio'`: counts successes and failures in a
 * sliding window of ten buckets on the injected clock, and opens when at least
 * `minimumCalls` calls are in the window and more than `failureRatio` of them failed.
 *
 * Used instead of cockatiel's own SamplingBreaker, which (3.2.1) reads Date.now() itself
 * and, after an idle gap, clears only one bucket per call, so failures older than the
 * window keep counting until enough later calls have rotated them out. Here every bucket
 * carries the time slot it counts, and slots older than the window are ignored.
 */
export class FailureRatioBreaker implements IBreaker {
  readonly #options: FailureRatioBreakerOptions;
  readonly #bucketMs: number;
  readonly #slots = new Array<number>(BUCKETS).fill(Number.NEGATIVE_INFINITY);
  readonly #failures = new Array<number>(BUCKETS).fill(0);
  readonly #successes = new Array<number>(BUCKETS).fill(0);

  constructor(options: FailureRatioBreakerOptions) {
    this.#options = options;
    this.#bucketMs = Math.max(1, options.windowMs / BUCKETS);
  }

  /** Serialised counts (cockatiel's IBreaker contract; used by its toJSON). */
  get state(): unknown {
    return { slots: [...this.#slots], failures: [...this.#failures], successes: [...this.#successes] };
  }

  set state(value: unknown) {
    const v = value as { slots?: number[]; failures?: number[]; successes?: number[] } | undefined;
    for (let i = 0; i < BUCKETS; i++) {
      this.#slots[i] = v?.slots?.[i] ?? Number.NEGATIVE_INFINITY;
      this.#failures[i] = v?.failures?.[i] ?? 0;
      this.#successes[i] = v?.successes?.[i] ?? 0;
    }
  }

  success(state: CircuitState): void {
    // A good half-open probe starts the peer with a clean window.
    if (state === CircuitState.HalfOpen) this.#reset();
    this.#record(true);
  }

  failure(state: CircuitState): boolean {
    this.#record(false);
    if (state !== CircuitState.Closed) return true;
    const { failures, total } = this.counts();
    return total >= this.#options.minimumCalls && failures > this.#options.failureRatio * total;
  }

  /** Failures and calls in the window now. */
  counts(): { failures: number; total: number } {
    const current = this.#slot();
    let failures = 0;
    let total = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if ((this.#slots[i] as number) <= current - BUCKETS) continue;
      failures += this.#failures[i] as number;
      total += (this.#failures[i] as number) + (this.#successes[i] as number);
    }
    return { failures, total };
  }

  #slot(): number {
    return Math.floor(this.#options.clock.now() / this.#bucketMs);
  }

  #record(ok: boolean): void {
    const slot = this.#slot();
    const i = ((slot % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.#slots[i] !== slot) {
      this.#slots[i] = slot;
      this.#failures[i] = 0;
      this.#successes[i] = 0;
    }
    if (ok) this.#successes[i] = (this.#successes[i] as number) + 1;
    else this.#failures[i] = (this.#failures[i] as number) + 1;
  }

  #reset(): void {
    this.#slots.fill(Number.NEGATIVE_INFINITY);
    this.#failures.fill(0);
    this.#successes.fill(0);
  }
}
