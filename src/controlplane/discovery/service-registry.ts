import { BehaviorSubject, distinctUntilChanged, map, type Observable, type Subscription } from 'rxjs';
import { DisposedError } from '../../errors.js';
import type { Member, MemberStatus, MembershipView } from '../membership.js';

/** One endpoint serving a service: a routable member that lists the service in its metadata. */
export interface ServiceEndpoint {
  /** The member's `metadata.endpoint`, verbatim (`https://host:port`). */
  readonly endpoint: string;
  readonly nodeId: string;
  /** Whether the member serves HTTP/3 on that port. */
  readonly http3: boolean;
  /** The member's region; undefined when it announced none (''). */
  readonly region: string | undefined;
}

/** Anything that publishes a live, sorted endpoint URL list per service (ServiceRegistry, DiscoveryClient). */
export interface EndpointSource {
  endpoints$(service: string): Observable<readonly string[]>;
}

export interface ServiceRegistryOptions {
  /**
   * Whether `suspect` members stay routable. Default `true`, as in hashicorp/memberlist and
   * Consul: suspicion is often a slow probe, not a dead node, and dropping suspects makes the
   * endpoint lists flap; a member that is really gone is declared `dead` within the
   * suspicion timeout, and until then the factory's circuit breakers and retries on another
   * peer keep calls away from it. `false` routes `alive` members only.
   */
  readonly includeSuspect?: boolean | undefined;
}

/** Service name → its endpoints, sorted by endpoint URL. */
type Snapshot = ReadonlyMap<string, readonly ServiceEndpoint[]>;

const NONE: readonly ServiceEndpoint[] = Object.freeze([]);

/**
 * The service registry: which endpoints serve each gRPC service, computed from the live member
 * list (`MembershipView`, written by the gossip agent). A member counts for a service when its
 * status is routable (`alive`, and `suspect` unless `includeSuspect: false`; never `dead` or
 * `left`), its `metadata.services` names the service and its `metadata.endpoint` is not empty.
 * Two members announcing the same endpoint give one entry (the alive one, else the higher
 * incarnation).
 *
 * Depends on the member list only (not on the gossip agent nor on the client factory), so the
 * factory can take its peer lists from it (`discoveryPeerLists`) without a container cycle.
 * Owns its subscription to the member list; `dispose()` ends it and completes every stream it
 * handed out.
 */
export class ServiceRegistry implements EndpointSource {
  readonly #includeSuspect: boolean;
  readonly #state: BehaviorSubject<Snapshot>;
  readonly #subscription: Subscription;
  #disposed = false;

  constructor(membership: MembershipView, options: ServiceRegistryOptions = {}) {
    this.#includeSuspect = options.includeSuspect ?? true;
    this.#state = new BehaviorSubject<Snapshot>(this.#snapshotOf(membership.members));
    // The member list replays its current value: the first emission repeats what the
    // constructor read and changes nothing downstream (each stream emits on change only).
    // When the member list completes (its source was disposed), the last snapshot stays.
    this.#subscription = membership.members$.subscribe({
      next: (members) => {
        if (!this.#disposed) this.#state.next(this.#snapshotOf(members));
      },
      error: () => undefined,
    });
  }

  /**
   * The sorted endpoint URLs of `service`: the current list at once (possibly empty), then the
   * new list whenever it changes (never twice the same content). Completes on `dispose()`.
   */
  endpoints$(service: string): Observable<readonly string[]> {
    return this.entries$(service).pipe(
      map((entries) => Object.freeze(entries.map((e) => e.endpoint))),
      distinctUntilChanged(sameStrings),
    );
  }

  /**
   * The endpoints of `service` with their node id, HTTP/3 flag and region: the current set at
   * once, then on every change of any of them. Completes on `dispose()`.
   */
  entries$(service: string): Observable<readonly ServiceEndpoint[]> {
    this.#check();
    return this.#state.pipe(
      map((snapshot) => snapshot.get(service) ?? NONE),
      distinctUntilChanged(sameEntries),
    );
  }

  /** The sorted endpoint URLs of `service` now ([] when no routable member serves it). */
  resolve(service: string): readonly string[] {
    return this.entries(service).map((e) => e.endpoint);
  }

  /** The endpoints of `service` now, with details. */
  entries(service: string): readonly ServiceEndpoint[] {
    this.#check();
    return this.#state.value.get(service) ?? NONE;
  }

  /** The services at least one routable member serves now, sorted. */
  services(): readonly string[] {
    this.#check();
    return [...this.#state.value.keys()].sort();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#subscription.unsubscribe();
    this.#state.complete();
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError('The service registry');
  }

  #routable(status: MemberStatus): boolean {
    return status === 'alive' || (status === 'suspect' && this.#includeSuspect);
  }

  #snapshotOf(members: readonly Member[]): Snapshot {
    // service → endpoint URL → the member chosen for it
    const byService = new Map<string, Map<string, { readonly member: Member; readonly entry: ServiceEndpoint }>>();
    for (const member of members) {
      const { status, metadata } = member;
      if (!this.#routable(status) || metadata.endpoint === '') continue;
      const entry: ServiceEndpoint = { endpoint: metadata.endpoint, nodeId: metadata.nodeId, http3: metadata.http3, region: metadata.region === '' ? undefined : metadata.region };
      for (const service of new Set(metadata.services)) {
        if (service === '') continue;
        let endpoints = byService.get(service);
        if (endpoints === undefined) {
          endpoints = new Map();
          byService.set(service, endpoints);
        }
        const known = endpoints.get(metadata.endpoint);
        if (known === undefined || preferred(member, known.member)) endpoints.set(metadata.endpoint, { member, entry });
      }
    }
    const snapshot = new Map<string, readonly ServiceEndpoint[]>();
    for (const [service, endpoints] of byService) {
      snapshot.set(service, Object.freeze([...endpoints.values()].map((e) => e.entry).sort((a, b) => compare(a.endpoint, b.endpoint))));
    }
    return snapshot;
  }
}

/** Which of two members announcing one endpoint speaks for it: alive first, then the higher incarnation, then the smaller node id. */
function preferred(candidate: Member, known: Member): boolean {
  if (candidate.status !== known.status) return candidate.status === 'alive';
  if (candidate.incarnation !== known.incarnation) return candidate.incarnation > known.incarnation;
  return compare(candidate.metadata.nodeId, known.metadata.nodeId) < 0;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function sameEntries(a: readonly ServiceEndpoint[], b: readonly ServiceEndpoint[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i];
      return y !== undefined && x.endpoint === y.endpoint && x.nodeId === y.nodeId && x.http3 === y.http3 && x.region === y.region;
    })
  );
}
