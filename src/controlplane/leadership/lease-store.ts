import type { Observable } from 'rxjs';

/**
 * The store leader election runs on, shaped after etcd v3 so an etcd store can implement it
 * one call per etcd RPC (the embedded store implements the same semantics in one process):
 *
 * | this interface            | etcd v3                                                                   |
 * | ------------------------- | ------------------------------------------------------------------------- |
 * | `grant(ttlMs)`            | `LeaseGrant` (TTL in whole seconds, rounded up; etcd may raise it to its minimum) |
 * | `keepAlive(leaseId)`      | one `LeaseKeepAlive` round trip; TTL 0 in the answer → `LeaseLostError`   |
 * | `revoke(leaseId)`         | `LeaseRevoke` (deletes every key attached to the lease)                   |
 * | `timeToLive(leaseId)`     | `LeaseTimeToLive`                                                         |
 * | `createLeader(...)`       | `Txn(If create_revision(leaderKey) == 0 Then Put(leaderKey, lease) ... Else Range(leaderKey))` |
 * | `get(scope)`              | `Range(leaderKey)`                                                        |
 * | `watch(scope)`            | `Range(leaderKey)` then `Watch(leaderKey, start_revision = range rev + 1)` |
 * | `fencedPut(...)`          | `Txn(If create_revision(leaderKey) == token Then Put(key, value) Else Range(leaderKey))` |
 * | `read(key)`               | `Range(key)`                                                              |
 *
 * **Fence token**: the leader key's create revision. Revisions are int64 counters over the whole
 * store, so a later leader (a later create) always has a larger token than an earlier one, in
 * every scope; they are `bigint` here (decimal strings on the wire), never JS numbers.
 *
 * **Term**: a per-scope counter that grows by one per election. In etcd: the version of a
 * per-scope term key, put in the same transaction that creates the leader key (guarded by
 * `version(termKey) == seen`), so it is as atomic as the create.
 *
 * Every call may be given an AbortSignal; aborting abandons the call (its promise rejects with
 * the signal's reason). A store that cannot be reached rejects with `LeaseStoreUnavailableError`;
 * a lease that expired or was revoked, with `LeaseLostError`; a fenced write with a token that
 * is not current, with `StaleFenceTokenError` (scope, presented and current tokens).
 */
export interface ILeaseStore {
  /** Names the store in errors and logs (`embedded`, `etcd://host:2379`). */
  readonly name: string;

  /** Grants a lease of about `ttlMs`; the answer says the TTL the store actually applied (≥ the one asked for in etcd). */
  grant(ttlMs: number, options?: StoreCallOptions): Promise<LeaseGrant>;

  /** Renews the lease for another TTL from now (the store's now). Rejects with LeaseLostError when it is gone. */
  keepAlive(leaseId: string, options?: StoreCallOptions): Promise<LeaseGrant>;

  /** Revokes the lease and deletes every key attached to it. Revoking an unknown lease is not an error. */
  revoke(leaseId: string, options?: StoreCallOptions): Promise<void>;

  /** Remaining time to live of the lease (ms), or undefined when it is gone. */
  timeToLive(leaseId: string, options?: StoreCallOptions): Promise<number | undefined>;

  /**
   * Creates the scope's leader key, attached to `leaseId`, if and only if it does not exist.
   * `acquired: true` with the new record (its fence token = the key's create revision), or
   * `acquired: false` with the record of whoever leads now. Rejects with LeaseLostError when
   * the lease is gone.
   */
  createLeader(scope: string, leaderId: string, leaseId: string, options?: StoreCallOptions): Promise<CreateLeaderResult>;

  /** The scope's leader record now, or undefined when nobody leads. */
  get(scope: string, options?: StoreCallOptions): Promise<LeaderRecord | undefined>;

  /**
   * The scope's leader record now (undefined when nobody leads), then every change: a new
   * record when a leader is elected, undefined when the key is deleted (lease expired or
   * revoked). Cold: each subscription opens its own watch, closed on unsubscribe. Errors with
   * LeaseStoreUnavailableError when the watch breaks (subscribe again to resume).
   */
  watch(scope: string): Observable<LeaderRecord | undefined>;

  /**
   * Puts `value` at `key` if and only if `token` is the scope's current fence token (the leader
   * key's create revision), atomically. Rejects with StaleFenceTokenError otherwise.
   * Returns the revision of the write.
   */
  fencedPut(scope: string, token: bigint, key: string, value: string, options?: StoreCallOptions): Promise<bigint>;

  /** A data key's value and the revision it was last written at, or undefined. */
  read(key: string, options?: StoreCallOptions): Promise<StoredValue | undefined>;
}

export interface StoreCallOptions {
  /** Abandons the call; its promise rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

export interface LeaseGrant {
  /** The lease id (etcd: an int64, as a decimal string). */
  readonly leaseId: string;
  /** The TTL the store applied, in ms. */
  readonly ttlMs: number;
}

/** The leader key of a scope. */
export interface LeaderRecord {
  readonly scope: string;
  /** The leader's node id (the key's value). */
  readonly leaderId: string;
  /** The lease the key is attached to. */
  readonly leaseId: string;
  /** The key's create revision: the term's fence token. */
  readonly fenceToken: bigint;
  /** The scope's election counter (1 for its first leader). */
  readonly term: number;
}

export type CreateLeaderResult = { readonly acquired: true; readonly record: LeaderRecord } | { readonly acquired: false; readonly current: LeaderRecord };

export interface StoredValue {
  readonly value: string;
  /** The revision of the write that put this value. */
  readonly modRevision: bigint;
}
