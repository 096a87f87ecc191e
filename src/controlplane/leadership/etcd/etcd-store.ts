import { Observable } from 'rxjs';
import { z } from 'zod';
import { systemClock, type Clock } from '../../../clock.js';
import { ConfigError, DisposedError, type ConfigIssue } from '../../../errors.js';
import type { IGrpcControlPlaneClientFactory } from '../../../factory/types.js';
import * as rpc from '../../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { backoffDelay, sleep as realSleep, type RandomSource } from '../../../resilience/retry.js';
import { LeaseLostError, LeaseStoreUnavailableError, StaleFenceTokenError } from '../errors.js';
import type { CreateLeaderResult, ILeaseStore, LeaderRecord, LeaseGrant, StoreCallOptions, StoredValue } from '../lease-store.js';
import type { KeyValue } from '../../../gen/etcd/mvcc/mvccpb/kv.js';
import { EtcdClient, type EtcdKeyValue } from './etcd-client.js';
import { EtcdError } from './errors.js';

/**
 * The defaults of the etcd lease store, each with its reason (docs/leadership.md, "The etcd
 * store").
 */
export const ETCD_LEASE_STORE_DEFAULTS = {
  /** The factory profile etcd calls use: it must set `http3: 'disable'` and the TLS files etcd trusts (docs/etcd.md). */
  profile: 'etcd',
  /**
   * Every key the store writes lives under this prefix (`<prefix>scopes/<scope>/leader`,
   * `<prefix>scopes/<scope>/term`, `<prefix>data/<key>`), so one etcd can serve several
   * applications (one prefix each) and `etcdctl get --prefix` shows all of one application.
   */
  prefix: '/omnirelay/leadership/',
  /**
   * A scope watch that breaks is re-opened from the last revision it saw + 1 (no event is
   * lost) after 100 ms, doubling per failure in a row...
   */
  watchRetryInitialMs: 100,
  /** ...up to 1 s... */
  watchRetryMaxMs: 1_000,
  /**
   * ...and after 5 failures in a row (about 2.5 s without etcd) the watch errors with
   * LeaseStoreUnavailableError, so the agent logs it and subscribes again (with its own
   * backoff) instead of trusting a view that may be stale.
   */
  watchRetries: 5,
  /**
   * How often `createLeader` retries its guarded transaction when the scope's term moved
   * between its read and its write (another node was elected and lost its lease in between):
   * each retry reads the new term in the same transaction, so more than one is rare.
   */
  electionAttempts: 5,
} as const;

/** Options of the etcd lease store as the application gives them (bound to `CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions`). */
export interface EtcdLeaseStoreOptionsInput {
  /** The etcd members: URLs (`https://10.0.0.5:2379`), `host:port`, or names of configured endpoints. Required. */
  readonly endpoints: readonly string[];
  readonly profile?: string | undefined;
  /** Must start and end with '/'. */
  readonly prefix?: string | undefined;
  readonly watchRetryInitialMs?: number | undefined;
  readonly watchRetryMaxMs?: number | undefined;
  readonly watchRetries?: number | undefined;
  readonly electionAttempts?: number | undefined;
}

/** Validated options with every default applied. */
export interface EtcdLeaseStoreOptions {
  readonly endpoints: readonly string[];
  readonly profile: string;
  readonly prefix: string;
  readonly watchRetryInitialMs: number;
  readonly watchRetryMaxMs: number;
  readonly watchRetries: number;
  readonly electionAttempts: number;
}

const ms = (min: number, max: number): z.ZodNumber =>
  z.number({ error: 'must be a number of ms' }).int({ error: 'must be a whole number of ms' }).min(min, `must be at least ${min} ms`).max(max, `must be at most ${max} ms`);
const count = (min: number, max: number): z.ZodNumber =>
  z.number({ error: 'must be a whole number' }).int({ error: 'must be a whole number' }).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const EtcdLeaseStoreOptionsSchema = z.strictObject({
  endpoints: z
    .array(z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'), { error: (issue) => (issue.input === undefined ? 'is required: the etcd members (URLs, host:port or endpoint names)' : 'must be an array of etcd members') })
    .min(1, 'must list at least one etcd member'),
  profile: z.string({ error: 'must be a string' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a profile name').default(ETCD_LEASE_STORE_DEFAULTS.profile),
  prefix: z
    .string({ error: 'must be a string' })
    .regex(/^\/[\x21-\x7e]*\/$|^\/$/, "must start and end with '/' and hold printable ASCII only (no spaces)")
    .max(256, 'must be at most 256 characters')
    .default(ETCD_LEASE_STORE_DEFAULTS.prefix),
  watchRetryInitialMs: ms(1, 60_000).default(ETCD_LEASE_STORE_DEFAULTS.watchRetryInitialMs),
  watchRetryMaxMs: ms(1, 60_000).default(ETCD_LEASE_STORE_DEFAULTS.watchRetryMaxMs),
  watchRetries: count(0, 1_000).default(ETCD_LEASE_STORE_DEFAULTS.watchRetries),
  electionAttempts: count(1, 100).default(ETCD_LEASE_STORE_DEFAULTS.electionAttempts),
});

/** Validates the etcd lease store's options; throws one ConfigError (source "etcd lease store options") naming every bad key. */
export function resolveEtcdLeaseStoreOptions(input: unknown): EtcdLeaseStoreOptions {
  const parsed = EtcdLeaseStoreOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues: ConfigIssue[] = [];
    for (const issue of parsed.error.issues) {
      const key = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const unknown of issue.keys) issues.push({ key: key === '' ? unknown : `${key}.${unknown}`, message: `unknown key "${unknown}"; known keys: ${Object.keys(EtcdLeaseStoreOptionsSchema.shape).join(', ')}` });
      } else {
        issues.push({ key: key === '' ? '(root)' : key, message: issue.message });
      }
    }
    throw new ConfigError(issues, 'etcd lease store options');
  }
  const o = parsed.data;
  if (o.watchRetryMaxMs < o.watchRetryInitialMs) throw new ConfigError([{ key: 'watchRetryMaxMs', message: `must be at least watchRetryInitialMs (${o.watchRetryInitialMs} ms)` }], 'etcd lease store options');
  return Object.freeze({ ...o, endpoints: Object.freeze([...o.endpoints]) });
}

export interface EtcdLeaseStoreDeps {
  readonly clock?: Clock | undefined;
  /** Jitter of the watch's re-open backoff, a number in [0, 1). Default: Math.random. */
  readonly random?: RandomSource | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const { EQUAL } = rpc.Compare_CompareResult;
const { CREATE, VERSION } = rpc.Compare_CompareTarget;

/**
 * `ILeaseStore` on etcd v3 (through {@link EtcdClient}, so over the control-plane client
 * factory with its mTLS). Keys, under the configured prefix:
 *
 * - `<prefix>scopes/<scope>/leader`: the leader key, attached to the leader's lease, value
 *   `{"leaderId":"n1","term":3}`. Its create revision is the term's fence token.
 * - `<prefix>scopes/<scope>/term`: no lease; put once per election in the same transaction
 *   that creates the leader key, so its version is the scope's term.
 * - `<prefix>data/<key>`: what fenced writes put.
 *
 * An election is ONE transaction: `If create_revision(leader) == 0 AND version(term) == seen
 * Then Put(term), Put(leader, lease) Else Range(leader), Range(term)`; if the compare fails
 * only on the term (it moved), the answer carries the new one and the transaction is retried.
 * A fenced write is `If create_revision(leader) == token Then Put(data) Else Range(leader)`.
 *
 * Owns its EtcdClient and its scope watches (each a loop re-opening the etcd watch from the
 * last revision + 1 after a failure, with a timer between attempts); `dispose()` ends them.
 * Every etcd failure is a LeaseStoreUnavailableError (or LeaseLostError when etcd does not
 * know the lease) with the EtcdError as its cause.
 */
export class EtcdLeaseStore implements ILeaseStore {
  readonly name: string;
  readonly options: EtcdLeaseStoreOptions;
  readonly #client: EtcdClient;
  readonly #random: RandomSource;
  readonly #clock: Clock;
  readonly #watches = new Set<AbortController>();
  /** The term key's version as last seen per scope: the guess the next election's compare uses. */
  readonly #terms = new Map<string, bigint>();
  #disposed = false;

  constructor(factory: IGrpcControlPlaneClientFactory, options: EtcdLeaseStoreOptionsInput, deps: EtcdLeaseStoreDeps = {}) {
    this.options = resolveEtcdLeaseStoreOptions(options);
    this.#random = deps.random ?? Math.random;
    this.#clock = deps.clock ?? systemClock;
    this.#client = new EtcdClient(factory, { endpoints: this.options.endpoints, profile: this.options.profile, clock: this.#clock, random: this.#random });
    this.name = `etcd://${this.options.endpoints.map((e) => e.replace(/^[a-z]+:\/\//i, '')).join(',')}`;
  }

  /** The leader key of `scope`. */
  leaderKey(scope: string): string {
    return `${this.options.prefix}scopes/${scope}/leader`;
  }

  /** The term key of `scope` (its version is the scope's term). */
  termKey(scope: string): string {
    return `${this.options.prefix}scopes/${scope}/term`;
  }

  /** Where a fenced write of `key` lands in etcd. */
  dataKey(key: string): string {
    return `${this.options.prefix}data/${key}`;
  }

  async grant(ttlMs: number, options?: StoreCallOptions): Promise<LeaseGrant> {
    options?.signal?.throwIfAborted();
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive whole number of ms (got ${ttlMs})`);
    try {
      const lease = await this.#client.leaseGrant(Math.max(1, Math.ceil(ttlMs / 1000)), { signal: options?.signal });
      return { leaseId: lease.id.toString(), ttlMs: lease.ttlSeconds * 1000 };
    } catch (error) {
      throw this.#fail('grant a lease', error, options);
    }
  }

  async keepAlive(leaseId: string, options?: StoreCallOptions): Promise<LeaseGrant> {
    options?.signal?.throwIfAborted();
    const id = leaseIdOf(leaseId);
    let ttlSeconds: number;
    try {
      ttlSeconds = await this.#client.leaseKeepAliveOnce(id, { signal: options?.signal });
    } catch (error) {
      throw this.#fail('renew a lease', error, options, leaseId);
    }
    if (ttlSeconds <= 0) throw new LeaseLostError(leaseId);
    return { leaseId, ttlMs: ttlSeconds * 1000 };
  }

  async revoke(leaseId: string, options?: StoreCallOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    try {
      await this.#client.leaseRevoke(leaseIdOf(leaseId), { signal: options?.signal });
    } catch (error) {
      if (error instanceof EtcdError && error.code === 'ETCD_LEASE_NOT_FOUND' && options?.signal?.aborted !== true) return;
      throw this.#fail('revoke a lease', error, options);
    }
  }

  async timeToLive(leaseId: string, options?: StoreCallOptions): Promise<number | undefined> {
    options?.signal?.throwIfAborted();
    try {
      const ttl = await this.#client.leaseTimeToLive(leaseIdOf(leaseId), { signal: options?.signal });
      return ttl.ttlSeconds <= 0 ? undefined : ttl.ttlSeconds * 1000;
    } catch (error) {
      if (error instanceof EtcdError && error.code === 'ETCD_LEASE_NOT_FOUND' && options?.signal?.aborted !== true) return undefined;
      throw this.#fail('read a lease', error, options);
    }
  }

  async createLeader(scope: string, leaderId: string, leaseId: string, options?: StoreCallOptions): Promise<CreateLeaderResult> {
    options?.signal?.throwIfAborted();
    const lease = leaseIdOf(leaseId, scope);
    const leaderKey = encoder.encode(this.leaderKey(scope));
    const termKey = encoder.encode(this.termKey(scope));
    for (let attempt = 1; attempt <= this.options.electionAttempts; attempt++) {
      const seen = this.#terms.get(scope) ?? 0n;
      const term = Number(seen) + 1;
      let response: rpc.TxnResponse;
      try {
        response = await this.#client.txn(
          rpc.TxnRequest.create({
            compare: [
              { result: EQUAL, target: CREATE, key: leaderKey, createRevision: 0n },
              { result: EQUAL, target: VERSION, key: termKey, version: seen },
            ],
            success: [{ requestPut: { key: termKey, value: encoder.encode(String(term)) } }, { requestPut: { key: leaderKey, value: encoder.encode(JSON.stringify({ leaderId, term })), lease } }],
            failure: [{ requestRange: { key: leaderKey } }, { requestRange: { key: termKey } }],
          }),
          { key: this.leaderKey(scope), leaseId: lease },
          { signal: options?.signal },
        );
      } catch (error) {
        throw this.#fail('create a leader key', error, options, leaseId, scope);
      }
      if (response.succeeded) {
        this.#noteTerm(scope, BigInt(term));
        const fenceToken = response.header?.revision ?? 0n;
        const record: LeaderRecord = Object.freeze({ scope, leaderId, leaseId, fenceToken, term });
        return { acquired: true, record };
      }
      const leader = response.responses[0]?.responseRange?.kvs[0];
      const termKv = response.responses[1]?.responseRange?.kvs[0];
      this.#noteTerm(scope, termKv?.version ?? 0n);
      if (leader !== undefined) return { acquired: false, current: this.#record(scope, keyValue(leader)) };
      // Nobody leads, but the term moved since we last saw it: retry with the term just read.
    }
    throw new LeaseStoreUnavailableError(this.name, 'create a leader key', `the term of scope "${scope}" kept moving across ${this.options.electionAttempts} attempts (key ${this.termKey(scope)})`);
  }

  async get(scope: string, options?: StoreCallOptions): Promise<LeaderRecord | undefined> {
    options?.signal?.throwIfAborted();
    let kv: EtcdKeyValue | undefined;
    try {
      kv = (await this.#client.get(this.leaderKey(scope), { signal: options?.signal })).kv;
    } catch (error) {
      throw this.#fail('read a leader key', error, options);
    }
    return kv === undefined ? undefined : this.#record(scope, kv);
  }

  watch(scope: string): Observable<LeaderRecord | undefined> {
    return new Observable<LeaderRecord | undefined>((subscriber) => {
      if (this.#disposed) {
        subscriber.error(new LeaseStoreUnavailableError(this.name, 'watch a leader key', 'the store is disposed'));
        return undefined;
      }
      const controller = new AbortController();
      this.#watches.add(controller);
      void this.#watchLoop(scope, controller.signal, (record) => subscriber.next(record))
        .then(
          () => {
            if (this.#disposed) subscriber.error(new LeaseStoreUnavailableError(this.name, 'watch a leader key', 'the store is disposed'));
            else subscriber.complete();
          },
          (error: unknown) => subscriber.error(error),
        )
        .finally(() => this.#watches.delete(controller));
      return () => controller.abort();
    });
  }

  async fencedPut(scope: string, token: bigint, key: string, value: string, options?: StoreCallOptions): Promise<bigint> {
    options?.signal?.throwIfAborted();
    if (typeof key !== 'string' || key === '') throw new RangeError(`a fenced write needs a non-empty key (got ${JSON.stringify(key)})`);
    const leaderKey = encoder.encode(this.leaderKey(scope));
    let response: rpc.TxnResponse;
    try {
      response = await this.#client.txn(
        rpc.TxnRequest.create({
          compare: [{ result: EQUAL, target: CREATE, key: leaderKey, createRevision: token }],
          success: [{ requestPut: { key: encoder.encode(this.dataKey(key)), value: encoder.encode(value) } }],
          failure: [{ requestRange: { key: leaderKey } }],
        }),
        { key: this.dataKey(key) },
        { signal: options?.signal },
      );
    } catch (error) {
      throw this.#fail('write a fenced key', error, options);
    }
    if (!response.succeeded) throw new StaleFenceTokenError(scope, token, response.responses[0]?.responseRange?.kvs[0]?.createRevision);
    return response.header?.revision ?? 0n;
  }

  async read(key: string, options?: StoreCallOptions): Promise<StoredValue | undefined> {
    options?.signal?.throwIfAborted();
    try {
      const { kv } = await this.#client.get(this.dataKey(key), { signal: options?.signal });
      return kv === undefined ? undefined : Object.freeze({ value: decoder.decode(kv.value), modRevision: kv.modRevision });
    } catch (error) {
      throw this.#fail('read a key', error, options);
    }
  }

  /** Ends every scope watch (their subscribers get LeaseStoreUnavailableError, like the embedded store's) and disposes the etcd client. Idempotent. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    for (const watch of this.#watches) watch.abort();
    await this.#client.dispose();
  }

  /**
   * One scope watch: Range the leader key, report it, then Watch it from the range's revision
   * + 1. A watch that fails is re-opened from the last revision reported + 1 after a backoff
   * (a compacted revision: Range again); after `watchRetries` failures in a row the loop
   * rejects with LeaseStoreUnavailableError. Resolves when `signal` aborts.
   */
  async #watchLoop(scope: string, signal: AbortSignal, emit: (record: LeaderRecord | undefined) => void): Promise<void> {
    const key = this.leaderKey(scope);
    let next: bigint | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (next === undefined) {
          const current = await this.#client.get(key, { signal });
          emit(current.kv === undefined ? undefined : this.#record(scope, current.kv));
          next = current.revision + 1n;
        }
        const openedAt = this.#clock.now();
        try {
          for await (const event of this.#client.watch(key, { startRevision: next, signal })) {
            failures = 0;
            next = event.kv.modRevision + 1n;
            emit(event.type === 'delete' ? undefined : this.#record(scope, event.kv));
          }
        } finally {
          // A watch that stayed up for a while before it broke starts a fresh series of retries.
          if (this.#clock.now() - openedAt > this.options.watchRetryMaxMs) failures = 0;
        }
        if (signal.aborted) return;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof EtcdError && error.code === 'ETCD_COMPACTED') {
          next = undefined;
          continue;
        }
        failures++;
        if (failures > this.options.watchRetries) throw this.#fail('watch a leader key', error, undefined, undefined, scope);
      }
      try {
        await realSleep(backoffDelay(Math.max(1, failures), { initialBackoffMs: this.options.watchRetryInitialMs, maxBackoffMs: this.options.watchRetryMaxMs, multiplier: 2, jitter: 0.2 }, this.#random), signal);
      } catch {
        return;
      }
    }
  }

  /** The leader record a leader key holds. */
  #record(scope: string, kv: EtcdKeyValue): LeaderRecord {
    let parsed: unknown;
    try {
      parsed = JSON.parse(decoder.decode(kv.value));
    } catch {
      parsed = undefined;
    }
    const { leaderId, term } = (parsed ?? {}) as { leaderId?: unknown; term?: unknown };
    if (typeof leaderId !== 'string' || typeof term !== 'number' || !Number.isInteger(term) || term < 1) {
      throw new LeaseStoreUnavailableError(this.name, 'read a leader key', `key ${kv.key} does not hold a leader record ({"leaderId":..., "term":...}); something else wrote it — give this store a prefix of its own`);
    }
    this.#noteTerm(scope, BigInt(term));
    return Object.freeze({ scope, leaderId, leaseId: kv.lease.toString(), fenceToken: kv.createRevision, term });
  }

  #noteTerm(scope: string, term: bigint): void {
    if (term > (this.#terms.get(scope) ?? 0n)) this.#terms.set(scope, term);
  }

  /** Maps a failed etcd call to the store's typed errors (an aborted call rejects with its signal's reason). */
  #fail(operation: string, error: unknown, options: StoreCallOptions | undefined, leaseId?: string, scope?: string): unknown {
    const signal = options?.signal;
    if (signal?.aborted === true) return signal.reason;
    if (error instanceof LeaseLostError || error instanceof LeaseStoreUnavailableError || error instanceof ConfigError) return error;
    if (error instanceof EtcdError) {
      if (error.code === 'ETCD_LEASE_NOT_FOUND' && leaseId !== undefined) return new LeaseLostError(leaseId, scope, { cause: error });
      return new LeaseStoreUnavailableError(this.name, operation, `${error.code}: ${error.message}`, { cause: error });
    }
    if (error instanceof DisposedError) return new LeaseStoreUnavailableError(this.name, operation, 'the store is disposed', { cause: error });
    return new LeaseStoreUnavailableError(this.name, operation, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

function leaseIdOf(leaseId: string, scope?: string): bigint {
  if (!/^[0-9]{1,19}$/.test(leaseId)) throw new LeaseLostError(leaseId, scope);
  return BigInt(leaseId);
}

function keyValue(kv: KeyValue): EtcdKeyValue {
  return { key: decoder.decode(kv.key), value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
}
