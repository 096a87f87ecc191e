import { Subject, type Observable } from 'rxjs';
import type { Clock } from '../clock.js';
import type { Http3HealthOptions } from '../config/types.js';
import { MAX_MS } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { parseEndpoint, unknownEndpoint } from '../transport/endpoint.js';

/** `host:port` of an endpoint given as a configured name, a URL or `host:port`; throws EndpointError when it cannot. */
export type EndpointResolver = (endpoint: string) => string;

/** Without the options: URLs and `host:port` only; a name is an unknown endpoint. */
const withoutNames: EndpointResolver = (endpoint) => {
  if (typeof endpoint === 'string' && !endpoint.includes(':')) throw unknownEndpoint(endpoint, []);
  return parseEndpoint(endpoint).authority;
};

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
  readonly #resolve: EndpointResolver;

  /**
   * `resolve` maps the endpoint every method takes — a configured endpoint's name, a URL or
   * `host:port` — to the `host:port` the memory is keyed by (the module resolves names against
   * the live options); it throws a typed EndpointError for what it cannot resolve. Default:
   * URLs and `host:port` only.
   */
  constructor(clock: Clock, resolve: EndpointResolver = withoutNames) {
    this.#clock = clock;
    this.#resolve = resolve;
  }

  /** The `host:port` key of `endpoint` (already one on the calls' hot path: a Map lookup). */
  #key(endpoint: string): string {
    return this.#resolve(endpoint);
  }

  /** Every mark (broken: true) and recovery (broken: false). */
  get changes$(): Observable<Http3HealthState & { readonly broken: boolean }> {
    return this.#changes.asObservable();
  }

  /** True while the endpoint's backoff window is open. */
  isBroken(endpoint: string): boolean {
    if (this.#states.size === 0) return false;
    const state = this.#states.get(this.#key(endpoint));
    return state !== undefined && this.#clock.now() < state.brokenUntil;
  }

  state(endpoint: string): Http3HealthState | undefined {
    return this.#states.get(this.#key(endpoint));
  }

  /** Records an HTTP/3 failure; returns the window it opened. */
  markBroken(endpoint: string, reason: Http3FailureReason, options: Http3HealthOptions): Http3HealthState {
    const authority = this.#key(endpoint);
    const failures = (this.#states.get(authority)?.failures ?? 0) + 1;
    const backoff = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** Math.min(failures - 1, 30));
    const state: Http3HealthState = { authority, failures, brokenUntil: this.#clock.now() + backoff, reason };
    this.#states.set(authority, state);
    this.#changes.next({ ...state, broken: true });
    return state;
  }

  /**
   * Forces HTTP/2 for an endpoint (a configured name, a URL or `host:port`) for `durationMs`
   * (an operator or a probe did this): its HTTP/3 connections drain, calls use HTTP/2 until the
   * window ends or an HTTP/3 success. Throws EndpointError (`ENDPOINT_UNKNOWN` for a name
   * that is not configured, `ENDPOINT_INVALID`) or a ConfigError keyed `durationMs` (a number
   * of ms above 0, at most 24 h) instead of doing nothing.
   */
  forceHttp2(endpoint: string, durationMs: number): Http3HealthState {
    const authority = this.#key(endpoint);
    const duration: unknown = durationMs;
    if (typeof duration !== 'number' || !Number.isFinite(duration) || duration <= 0 || duration > MAX_MS) {
      throw new ConfigError([{ key: 'durationMs', message: `must be a number of milliseconds above 0 and at most ${MAX_MS} (24 h), got ${typeof duration === 'number' ? duration : `${typeof duration} ${JSON.stringify(duration)}`}` }], 'Http3Health.forceHttp2 arguments');
    }
    const failures = this.#states.get(authority)?.failures ?? 0;
    const state: Http3HealthState = { authority, failures, brokenUntil: this.#clock.now() + durationMs, reason: 'forced' };
    this.#states.set(authority, state);
    this.#changes.next({ ...state, broken: true });
    return state;
  }

  /** Records an HTTP/3 success: forgets earlier failures. */
  markHealthy(endpoint: string): void {
    if (this.#states.size === 0) return;
    const state = this.#states.get(this.#key(endpoint));
    if (state === undefined) return;
    this.#states.delete(state.authority);
    this.#changes.next({ ...state, brokenUntil: 0, broken: false });
  }

  dispose(): void {
    this.#changes.complete();
  }
}
