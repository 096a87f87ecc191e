import { Subject, type Observable, type Subscription } from 'rxjs';
import type { ControlPlaneOptions, EndpointHint, Http3Hint } from '../config/types.js';
import { parseEndpoint, unknownEndpoint } from '../transport/endpoint.js';

/**
 * One live hint change, as emitted on the Observable bound to `TOKENS.EndpointHints`.
 * `endpoint` is a URL (`https://host:port`), a `host:port`, or the name of a configured endpoint.
 * Fields left undefined keep their configured value; `reset: true` drops every live hint for it.
 */
export interface EndpointHintUpdate {
  readonly endpoint: string;
  /** `require`: HTTP/3 only for this endpoint from the next call on (its HTTP/2 connections drain). */
  readonly http3?: Http3Hint | undefined;
  readonly draining?: boolean | undefined;
  readonly reset?: boolean | undefined;
}

/** A change as the store reports it: the endpoint's authority and its effective hint. */
export interface EffectiveHintChange {
  readonly authority: string;
  readonly previous: EndpointHint;
  readonly current: EndpointHint;
}

/**
 * Effective hints per endpoint authority: configured hints (options `endpoints.*.hints`)
 * overlaid by live updates. Updates apply synchronously, so the next call sees them.
 */
export class EndpointHintStore {
  readonly #configured = new Map<string, EndpointHint>();
  readonly #live = new Map<string, EndpointHint>();
  readonly #names = new Map<string, string>();
  readonly #changes = new Subject<EffectiveHintChange>();
  readonly #subscriptions: Subscription[] = [];

  constructor(options: Observable<ControlPlaneOptions>, updates: Observable<EndpointHintUpdate> | undefined) {
    this.#subscriptions.push(options.subscribe((snapshot) => this.#applyOptions(snapshot)));
    if (updates !== undefined) this.#subscriptions.push(updates.subscribe((update) => this.apply(update)));
  }

  /** Changes of effective hints (after they took effect). */
  get changes$(): Observable<EffectiveHintChange> {
    return this.#changes.asObservable();
  }

  /** The effective hint of an endpoint authority (`host:port`). */
  get(authority: string): EndpointHint {
    const configured = this.#configured.get(authority);
    const live = this.#live.get(authority);
    if (live === undefined) return configured ?? {};
    return {
      http3: live.http3 ?? configured?.http3,
      draining: live.draining ?? configured?.draining,
    };
  }

  /** Applies one live update now. Throws EndpointError for an endpoint it cannot parse. */
  apply(update: EndpointHintUpdate): void {
    const named = this.#names.get(update.endpoint);
    if (named === undefined && !update.endpoint.includes(':')) throw unknownEndpoint(update.endpoint, [...this.#names.keys()]);
    const authority = named ?? parseEndpoint(update.endpoint).authority;
    this.#mutate([authority], () => {
      if (update.reset === true) {
        this.#live.delete(authority);
        return;
      }
      const current = this.#live.get(authority) ?? {};
      this.#live.set(authority, {
        http3: update.http3 ?? current.http3,
        draining: update.draining ?? current.draining,
      });
    });
  }

  #applyOptions(snapshot: ControlPlaneOptions): void {
    const touched = new Set(this.#configured.keys());
    const next = new Map<string, EndpointHint>();
    this.#names.clear();
    for (const [name, endpoint] of Object.entries(snapshot.endpoints)) {
      const authority = parseEndpoint(endpoint.url).authority;
      this.#names.set(name, authority);
      next.set(authority, endpoint.hints);
      touched.add(authority);
    }
    this.#mutate([...touched], () => {
      this.#configured.clear();
      for (const [authority, hint] of next) this.#configured.set(authority, hint);
    });
  }

  #mutate(authorities: readonly string[], change: () => void): void {
    const before = authorities.map((a) => this.get(a));
    change();
    authorities.forEach((authority, i) => {
      const previous = before[i] ?? {};
      const current = this.get(authority);
      if (previous.http3 !== current.http3 || previous.draining !== current.draining) this.#changes.next({ authority, previous, current });
    });
  }

  dispose(): void {
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#changes.complete();
  }
}

/** A hint stream the application can push updates into (bind it to `TOKENS.EndpointHints`). */
export function createEndpointHintSubject(): Subject<EndpointHintUpdate> {
  return new Subject<EndpointHintUpdate>();
}

