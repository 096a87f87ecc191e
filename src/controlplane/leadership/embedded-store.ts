import { Observable, Subject } from 'rxjs';
import { systemClock, type Clock } from '../../clock.js';
import { LeaseLostError, LeaseStoreUnavailableError, StaleFenceTokenError } from './errors.js';
import type { CreateLeaderResult, ILeaseStore, LeaderRecord, LeaseGrant, StoreCallOptions, StoredValue } from './lease-store.js';
import { systemTimers, TimerSlot, type ControlPlaneTimers } from '../timers.js';

export interface EmbeddedLeaseStoreOptions {
  readonly clock?: Clock | undefined;
  readonly timers?: ControlPlaneTimers | undefined;
}

interface Lease {
  readonly id: string;
  readonly ttlMs: number;
  expiresAt: number;
  /** Scopes whose leader key is attached to this lease. */
  readonly scopes: Set<string>;
}

/**
 * The `ILeaseStore` of one process (the default: one node, or many nodes in one process for
 * demos and tests), with etcd's semantics: one revision counter for the whole store, bumped by
 * every write; a leader key's create revision is its fence token; keys attached to a lease go
 * when it expires or is revoked. Expiry is checked on every call and by one timer (the store's
 * own) armed for the next lease to expire, so watchers hear of it without anyone calling.
 * `dispose()` clears that timer and ends every watch; later calls reject with
 * LeaseStoreUnavailableError.
 */
export class EmbeddedLeaseStore implements ILeaseStore {
  readonly name = 'embedded';
  readonly #clock: Clock;
  readonly #expiry: TimerSlot;
  readonly #leases = new Map<string, Lease>();
  readonly #leaders = new Map<string, LeaderRecord>();
  readonly #terms = new Map<string, number>();
  readonly #data = new Map<string, StoredValue>();
  readonly #changes = new Subject<{ readonly scope: string; readonly record: LeaderRecord | undefined }>();
  #revision = 0n;
  #nextLease = 1;
  #disposed = false;

  constructor(options: EmbeddedLeaseStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#expiry = new TimerSlot(options.timers ?? systemTimers);
  }

  /** The store's revision now (every write bumps it). */
  get revision(): bigint {
    return this.#revision;
  }

  grant(ttlMs: number, options?: StoreCallOptions): Promise<LeaseGrant> {
    return this.#run('grant a lease', options, () => {
      if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive whole number of ms (got ${ttlMs})`);
      const id = (this.#nextLease++).toString();
      this.#leases.set(id, { id, ttlMs, expiresAt: this.#clock.now() + ttlMs, scopes: new Set() });
      this.#arm();
      return { leaseId: id, ttlMs };
    });
  }

  keepAlive(leaseId: string, options?: StoreCallOptions): Promise<LeaseGrant> {
    return this.#run('renew a lease', options, () => {
      const lease = this.#lease(leaseId);
      lease.expiresAt = this.#clock.now() + lease.ttlMs;
      this.#arm();
      return { leaseId, ttlMs: lease.ttlMs };
    });
  }

  revoke(leaseId: string, options?: StoreCallOptions): Promise<void> {
    return this.#run('revoke a lease', options, () => {
      const lease = this.#leases.get(leaseId);
      if (lease !== undefined) this.#drop(lease);
      this.#arm();
    });
  }

  timeToLive(leaseId: string, options?: StoreCallOptions): Promise<number | undefined> {
    return this.#run('read a lease', options, () => {
      const lease = this.#leases.get(leaseId);
      return lease === undefined ? undefined : Math.max(0, lease.expiresAt - this.#clock.now());
    });
  }

  createLeader(scope: string, leaderId: string, leaseId: string, options?: StoreCallOptions): Promise<CreateLeaderResult> {
    return this.#run('create a leader key', options, (): CreateLeaderResult => {
      const lease = this.#lease(leaseId, scope);
      const current = this.#leaders.get(scope);
      if (current !== undefined) return { acquired: false, current };
      this.#revision++;
      const term = (this.#terms.get(scope) ?? 0) + 1;
      this.#terms.set(scope, term);
      const record: LeaderRecord = Object.freeze({ scope, leaderId, leaseId, fenceToken: this.#revision, term });
      this.#leaders.set(scope, record);
      lease.scopes.add(scope);
      this.#changes.next({ scope, record });
      return { acquired: true, record };
    });
  }

  get(scope: string, options?: StoreCallOptions): Promise<LeaderRecord | undefined> {
    return this.#run('read a leader key', options, () => this.#leaders.get(scope));
  }

  watch(scope: string): Observable<LeaderRecord | undefined> {
    return new Observable<LeaderRecord | undefined>((subscriber) => {
      if (this.#disposed) {
        subscriber.error(new LeaseStoreUnavailableError(this.name, 'watch a leader key', 'the store is disposed'));
        return undefined;
      }
      this.#expire();
      const subscription = this.#changes.subscribe({
        next: (change) => {
          if (change.scope === scope) subscriber.next(change.record);
        },
        complete: () => subscriber.error(new LeaseStoreUnavailableError(this.name, 'watch a leader key', 'the store is disposed')),
      });
      subscriber.next(this.#leaders.get(scope));
      return subscription;
    });
  }

  fencedPut(scope: string, token: bigint, key: string, value: string, options?: StoreCallOptions): Promise<bigint> {
    return this.#run('write a fenced key', options, () => {
      const current = this.#leaders.get(scope);
      if (current === undefined || current.fenceToken !== token) throw new StaleFenceTokenError(scope, token, current?.fenceToken);
      this.#revision++;
      this.#data.set(key, Object.freeze({ value, modRevision: this.#revision }));
      return this.#revision;
    });
  }

  read(key: string, options?: StoreCallOptions): Promise<StoredValue | undefined> {
    return this.#run('read a key', options, () => this.#data.get(key));
  }

  /** Clears the expiry timer and ends every watch (with LeaseStoreUnavailableError). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#expiry.clear();
    this.#changes.complete();
  }

  /** Runs one operation atomically (nothing else runs in between: one event loop), after expiring what is due. */
  async #run<T>(operation: string, options: StoreCallOptions | undefined, body: () => T): Promise<T> {
    await Promise.resolve();
    if (this.#disposed) throw new LeaseStoreUnavailableError(this.name, operation, 'the store is disposed');
    options?.signal?.throwIfAborted();
    this.#expire();
    return body();
  }

  #lease(leaseId: string, scope?: string): Lease {
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) throw new LeaseLostError(leaseId, scope);
    return lease;
  }

  /** Drops every lease whose time is up (and the keys attached to it). */
  #expire(): void {
    const now = this.#clock.now();
    for (const lease of [...this.#leases.values()]) if (lease.expiresAt <= now) this.#drop(lease);
  }

  #drop(lease: Lease): void {
    this.#leases.delete(lease.id);
    for (const scope of lease.scopes) {
      if (this.#leaders.get(scope)?.leaseId !== lease.id) continue;
      this.#revision++;
      this.#leaders.delete(scope);
      this.#changes.next({ scope, record: undefined });
    }
  }

  /** Arms the one expiry timer for the lease that expires first (none when there is no lease). */
  #arm(): void {
    let next: number | undefined;
    for (const lease of this.#leases.values()) if (next === undefined || lease.expiresAt < next) next = lease.expiresAt;
    if (next === undefined || this.#disposed) {
      this.#expiry.clear();
      return;
    }
    this.#expiry.arm(next - this.#clock.now(), () => {
      this.#expire();
      this.#arm();
    });
  }
}
