import { Subject, type Observable } from 'rxjs';
import type { Clock } from '../clock.js';
import type { Http3HealthOptions } from '../config/types.js';

/** Why HTTP/3 was marked broken for an endpoint. */
export type Http3FailureReason = 'handshake' | 'connect' | 'idle-timeout' | 'probe' | 'forced';

export interface Http3HealthState {
  readonly authority: string;
  /** Consecutive failures without an HTTP/3 success in between. */
  readonly failures: number;
  /** Epoch ms until which the endpoint stays on HTTP/2. */
  readonly brokenUntil: number;
  readonly reason: Http3FailureReason;
}

/**
 * Remembers endpoints where HTTP/3 failed and keeps them on HTTP/2 for a backoff window:
 * `initialBackoffMs` after the first failure, doubling on each repeated failure up to
 * `maxBackoffMs`. When the window ends HTTP/3 is tried again; a success forgets the
 * failures. (Chrome's and Envoy's "broken alternative service" memory work the same way.)
 */
export class Http3Health {
  readonly #states = new Map<string, Http3HealthState>();
  readonly #changes = new Subject<Http3HealthState & { readonly broken: boolean }>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Every mark (broken: true) and recovery (broken: false). */
  get changes$(): Observable<Http3HealthState & { readonly broken: boolean }> {
    return this.#changes.asObservable();
  }

  /** True while the endpoint's backoff window is open. */
  isBroken(authority: string): boolean {
    const state = this.#states.get(authority);
    return state !== undefined && this.#clock.now() < state.brokenUntil;
  }

  state(authority: string): Http3HealthState | undefined {
    return this.#states.get(authority);
  }

  /** Records an HTTP/3 failure; returns the window it opened. */
  markBroken(authority: string, reason: Http3FailureReason, options: Http3HealthOptions): Http3HealthState {
    const failures = (this.#states.get(authority)?.failures ?? 0) + 1;
    const backoff = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** Math.min(failures - 1, 30));
    const state: Http3HealthState = { authority, failures, brokenUntil: this.#clock.now() + backoff, reason };
    this.#states.set(authority, state);
    this.#changes.next({ ...state, broken: true });
    return state;
  }

  /** Forces HTTP/2 for an endpoint for `durationMs` (a health probe or an operator did this). */
  forceHttp2(authority: string, durationMs: number): Http3HealthState {
    const failures = this.#states.get(authority)?.failures ?? 0;
    const state: Http3HealthState = { authority, failures, brokenUntil: this.#clock.now() + durationMs, reason: 'forced' };
    this.#states.set(authority, state);
    this.#changes.next({ ...state, broken: true });
    return state;
  }

  /** Records an HTTP/3 success: forgets earlier failures. */
  markHealthy(authority: string): void {
    const state = this.#states.get(authority);
    if (state === undefined) return;
    this.#states.delete(authority);
    this.#changes.next({ ...state, brokenUntil: 0, broken: false });
  }

  dispose(): void {
    this.#changes.complete();
  }
}
