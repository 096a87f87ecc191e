import { systemClock, type Clock } from '../../../clock.js';
import { ConfigError, DisposedError, type ConfigIssue } from '../../../errors.js';
import type { CallOptions, CallTarget, IGrpcControlPlaneClientFactory } from '../../../factory/types.js';
import * as rpc from '../../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import * as mvcc from '../../../gen/etcd/mvcc/mvccpb/kv.js';
import type { RequestOf, ResponseOf, ServiceDefinition, UnaryMethodKeys } from '../../../grpc/service-definition.js';
import { sleep as realSleep, type RandomSource } from '../../../resilience/retry.js';
import { EtcdError, leaseText, toEtcdError, type EtcdCallContext } from './errors.js';
import { EtcdLeaseKeepAlive, type EtcdKeepAliveOptions } from './keep-alive.js';
import { RequestQueue } from './request-queue.js';

/** The profile etcd calls use unless the options name another. */
export const DEFAULT_ETCD_PROFILE = 'etcd';

export interface EtcdClientOptions {
  /**
   * The etcd members: URLs (`https://10.0.0.5:2379`), `host:port`, or names of configured
   * endpoints. Each call goes to one of them, picked by the profile's peer chooser (any member
   * serves KV, Lease and Watch; followers forward writes to the leader).
   */
  readonly endpoints: readonly string[];
  /**
   * The factory profile for etcd (default `etcd`). It must exist and set `http3: 'disable'`:
   * etcd serves HTTP/2 only (see docs/etcd.md); its `tls` names the certificates etcd trusts.
   */
  readonly profile?: string | undefined;
  /** Time source for lease expiry. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** Jitter of the keep-alive's reconnect backoff, a number in [0, 1). Default: Math.random. */
  readonly random?: RandomSource | undefined;
  /** Waits `ms` or rejects when `signal` aborts. Default: a timer. */
  readonly sleep?: ((ms: number, signal: AbortSignal) => Promise<void>) | undefined;
}

/** Per-call options: the factory's (deadline, abort signal, metadata). */
export type EtcdCallOptions = CallOptions;

/** A key and its value as etcd stores them. Keys are UTF-8 text; values bytes. */
export interface EtcdKeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  /** The revision of the key's last creation. */
  readonly createRevision: bigint;
  /** The revision of its last modification. */
  readonly modRevision: bigint;
  /** Modifications since creation (1 after the creation). */
  readonly version: bigint;
  /** The lease the key is attached to; 0n for none. */
  readonly lease: bigint;
}

export interface EtcdLease {
  /** etcd's lease id (a 63-bit number: keep it a bigint). */
  readonly id: bigint;
  /** The TTL etcd granted (s). */
  readonly ttlSeconds: number;
  /** The store's revision when the lease was granted. */
  readonly revision: bigint;
  /**
   * The client's clock when the grant was sent (ms): etcd counts the TTL from no earlier than
   * that, so `requestedAt + ttlSeconds * 1000` is the latest the lease can still be alive
   * unless renewed.
   */
  readonly requestedAt: number;
}

export interface EtcdCreateResult {
  /** True when this call created the key; false when it existed (then `kv` is the holder). */
  readonly created: boolean;
  /** The store's revision after the transaction. */
  readonly revision: bigint;
  /** The key as it is now: ours when `created`, else the existing one (compare `kv.lease`). */
  readonly kv: EtcdKeyValue;
}

export interface EtcdGetResult {
  /** The key, or undefined when it does not exist. */
  readonly kv: EtcdKeyValue | undefined;
  readonly revision: bigint;
}

export interface EtcdPutResult {
  readonly revision: bigint;
}

export interface EtcdDeleteResult {
  /** How many keys were deleted. */
  readonly deleted: bigint;
  readonly revision: bigint;
}

export interface EtcdLeaseTimeToLive {
  readonly id: bigint;
  /** Seconds left; -1 when etcd says the lease has expired. */
  readonly ttlSeconds: number;
  readonly grantedTtlSeconds: number;
  /** The keys attached to the lease. */
  readonly keys: readonly string[];
}

export interface EtcdWatchEvent {
  readonly type: 'put' | 'delete';
  /** After a put: the key as written. After a delete: the key with `modRevision` the deletion's revision. */
  readonly kv: EtcdKeyValue;
  /** The key before the event, when the watch asked for `prevKv`. */
  readonly prevKv: EtcdKeyValue | undefined;
}

export interface EtcdWatchOptions {
  /** Watch every key that starts with `key`. Default false (the key alone). */
  readonly prefix?: boolean | undefined;
  /** Replay events from this revision on (inclusive). Default: only new events. */
  readonly startRevision?: bigint | undefined;
  /** Include the previous key-value in each event. */
  readonly prevKv?: boolean | undefined;
  /** Ends the watch (the iteration ends without an error). */
  readonly signal?: AbortSignal | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A small typed etcd v3 client over the control-plane client factory (so etcd calls get the
 * factory's mTLS with live rotation, deadlines, peer choice, breakers and telemetry): leases
 * (grant, keep-alive, revoke, time-to-live), keys (get, put, delete, create-if-absent in one
 * transaction) and watches, each failure an {@link EtcdError} naming the endpoint and the key
 * or lease. Unary calls take the profile's deadline unless the call sets one; streams have none.
 *
 * Owns its keep-alives and watches: `dispose()` stops every keep-alive (and waits for it) and
 * ends every watch; the factory's connections stay the factory's.
 */
export class EtcdClient {
  readonly #factory: IGrpcControlPlaneClientFactory;
  readonly #endpoints: readonly string[];
  readonly #profile: string;
  readonly #target: CallTarget;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #keepAlives = new Set<EtcdLeaseKeepAlive>();
  readonly #disposing = new AbortController();
  #disposed = false;

  constructor(factory: IGrpcControlPlaneClientFactory, options: EtcdClientOptions) {
    const issues: ConfigIssue[] = [];
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) issues.push({ key: 'endpoints', message: 'must list at least one etcd member (a URL, host:port or a configured endpoint name)' });
    else options.endpoints.forEach((endpoint, i) => {
      if (typeof endpoint !== 'string' || endpoint === '') issues.push({ key: `endpoints.${i}`, message: 'must be a non-empty string' });
    });
    if (issues.length > 0) throw new ConfigError(issues, 'etcd client options');
    this.#factory = factory;
    this.#endpoints = Object.freeze([...options.endpoints]);
    this.#profile = options.profile ?? DEFAULT_ETCD_PROFILE;
    this.#target = { peers: this.#endpoints, profile: this.#profile };
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? realSleep;
    this.#checkProfile();
  }

  /** The members calls go to. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** Grants a lease of `ttlSeconds` (a whole number of seconds, at least 1; etcd may raise it to its minimum). */
  async leaseGrant(ttlSeconds: number, options: EtcdCallOptions = {}): Promise<EtcdLease> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new ConfigError([{ key: 'ttlSeconds', message: `must be a whole number of seconds, at least 1 (got ${String(ttlSeconds)})` }], 'etcd lease grant');
    const requestedAt = this.#clock.now();
    const context = { operation: 'LeaseGrant' };
    const response = await this.#unary(rpc.LeaseDefinition, 'leaseGrant', rpc.LeaseGrantRequest.create({ TTL: BigInt(ttlSeconds) }), context, options);
    if (response.error !== '') throw new EtcdError('ETCD_REQUEST_FAILED', `etcd refused LeaseGrant: ${response.error}`, { operation: 'LeaseGrant', endpoint: this.#endpoints.join(', ') });
    return { id: response.ID, ttlSeconds: Number(response.TTL), revision: revisionOf(response.header), requestedAt };
  }

  /** Revokes a lease: etcd deletes every key attached to it. `ETCD_LEASE_NOT_FOUND` when it is already gone. */
  async leaseRevoke(leaseId: bigint, options: EtcdCallOptions = {}): Promise<EtcdPutResult> {
    const response = await this.#unary(rpc.LeaseDefinition, 'leaseRevoke', { ID: leaseId }, { operation: 'LeaseRevoke', leaseId }, options);
    return { revision: revisionOf(response.header) };
  }

  /** The lease's remaining TTL and its keys. */
  async leaseTimeToLive(leaseId: bigint, options: EtcdCallOptions = {}): Promise<EtcdLeaseTimeToLive> {
    const response = await this.#unary(rpc.LeaseDefinition, 'leaseTimeToLive', { ID: leaseId, keys: true }, { operation: 'LeaseTimeToLive', leaseId }, options);
    return { id: response.ID, ttlSeconds: Number(response.TTL), grantedTtlSeconds: Number(response.grantedTTL), keys: response.keys.map((k) => decoder.decode(k)) };
  }

  /**
   * Starts keeping `lease` alive (see {@link EtcdLeaseKeepAlive}): one `LeaseKeepAlive` stream,
   * renewed every third of the TTL by default, reopened after failures while the lease has not
   * expired. The client owns it (`dispose()` closes it); `close()` it to stop earlier.
   */
  leaseKeepAlive(lease: Pick<EtcdLease, 'id' | 'ttlSeconds' | 'requestedAt'>, options: EtcdKeepAliveOptions = {}): EtcdLeaseKeepAlive {
    this.#check();
    if (options.intervalMs !== undefined && (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0 || options.intervalMs > lease.ttlSeconds * 1000)) {
      throw new ConfigError([{ key: 'intervalMs', message: `must be a number of ms above 0 and at most the lease's TTL (${lease.ttlSeconds * 1000} ms; got ${String(options.intervalMs)})` }], 'etcd keep-alive options');
    }
    const context: EtcdCallContext = { operation: 'LeaseKeepAlive', endpoints: this.#endpoints, leaseId: lease.id };
    const keepAlive = new EtcdLeaseKeepAlive(
      {
        open: (requests, signal) => {
          this.#checkProfile();
          return this.#factory.bidiStream(rpc.LeaseDefinition, 'leaseKeepAlive', requests, { ...this.#target, deadlineMs: 'none', signal });
        },
        mapError: (error) => toEtcdError(error, context),
        endpoints: this.#endpoints,
        clock: this.#clock,
        random: this.#random,
        sleep: this.#sleep,
      },
      lease.id,
      lease.ttlSeconds,
      lease.requestedAt + lease.ttlSeconds * 1000,
      options,
    );
    this.#keepAlives.add(keepAlive);
    void keepAlive.done.then(() => this.#keepAlives.delete(keepAlive));
    return keepAlive;
  }

  /**
   * One keep-alive round trip on its own `LeaseKeepAlive` stream: sends one request, reads the
   * answer, half-closes (etcd then ends the stream with OK). The TTL etcd granted (s), or 0
   * when etcd no longer knows the lease (expired or revoked). For callers that renew on their
   * own schedule (the leadership agent); {@link leaseKeepAlive} is the owned loop. Deadline:
   * the call's `deadlineMs`, else the profile's unary `deadlineMs`.
   */
  async leaseKeepAliveOnce(leaseId: bigint, options: EtcdCallOptions = {}): Promise<number> {
    this.#check();
    const context: EtcdCallContext = { operation: 'LeaseKeepAlive', endpoints: this.#endpoints, leaseId };
    const requests = new RequestQueue<rpc.LeaseKeepAliveRequest>();
    requests.push({ ID: leaseId });
    const deadlineMs = options.deadlineMs ?? this.#factory.options.profiles[this.#profile]?.deadlineMs;
    try {
      const stream = this.#factory.bidiStream(rpc.LeaseDefinition, 'leaseKeepAlive', requests, { ...options, ...this.#target, deadlineMs });
      for await (const response of stream) {
        requests.end();
        return Number(response.TTL);
      }
      throw new EtcdError('ETCD_UNAVAILABLE', `etcd ended the keep-alive stream of lease ${leaseText(leaseId)} without an answer`, { operation: 'LeaseKeepAlive', endpoint: this.#endpoints.join(', '), leaseId });
    } catch (error) {
      throw toEtcdError(error, context);
    } finally {
      requests.end();
    }
  }

  /**
   * One `Txn` as etcd's protos spell it (compares, success and failure ops), for callers that
   * need more than {@link createIfAbsent} (the etcd lease store's guarded elections and fenced
   * writes). `about` names the key and lease in errors.
   */
  async txn(request: rpc.TxnRequest, about: { readonly key?: string | undefined; readonly leaseId?: bigint | undefined } = {}, options: EtcdCallOptions = {}): Promise<rpc.TxnResponse> {
    return this.#unary(rpc.KVDefinition, 'txn', request, { operation: 'Txn', ...about }, options);
  }

  /**
   * Creates `key` with `value` attached to `lease` only if it does not exist, in one
   * transaction (compare `create_revision == 0`; else read the key at the same revision). The
   * election primitive: of several callers, one creates the key; the others get its holder.
   * A call retried after UNAVAILABLE (the profile's retry policy) may find the key its own
   * first attempt created: `created` is then false with `kv.lease` equal to `lease`.
   */
  async createIfAbsent(key: string, value: string | Uint8Array, lease: bigint, options: EtcdCallOptions = {}): Promise<EtcdCreateResult> {
    const k = keyBytes(key);
    const v = valueBytes(value);
    const request = rpc.TxnRequest.create({
      compare: [{ result: rpc.Compare_CompareResult.EQUAL, target: rpc.Compare_CompareTarget.CREATE, key: k, createRevision: 0n }],
      success: [{ requestPut: { key: k, value: v, lease } }],
      failure: [{ requestRange: { key: k } }],
    });
    const context = { operation: 'Txn', key, leaseId: lease };
    const response = await this.#unary(rpc.KVDefinition, 'txn', request, context, options);
    const revision = revisionOf(response.header);
    if (response.succeeded) {
      return { created: true, revision, kv: { key, value: v, createRevision: revision, modRevision: revision, version: 1n, lease } };
    }
    const existing = response.responses[0]?.responseRange?.kvs[0];
    if (existing === undefined) {
      // The compare failed, so the key existed at this revision, and the range ran at the same revision.
      throw new EtcdError('ETCD_REQUEST_FAILED', `etcd's Txn on key "${key}" failed its compare but returned no key`, { operation: 'Txn', endpoint: this.#endpoints.join(', '), key, leaseId: lease });
    }
    return { created: false, revision, kv: keyValueOf(existing) };
  }

  /** The key, or `kv: undefined` when it does not exist. */
  async get(key: string, options: EtcdCallOptions = {}): Promise<EtcdGetResult> {
    const response = await this.#unary(rpc.KVDefinition, 'range', rpc.RangeRequest.create({ key: keyBytes(key) }), { operation: 'Range', key }, options);
    const kv = response.kvs[0];
    return { kv: kv === undefined ? undefined : keyValueOf(kv), revision: revisionOf(response.header) };
  }

  /** Writes the key (attached to `lease` when given; 0n or absent: no lease). */
  async put(key: string, value: string | Uint8Array, options: EtcdCallOptions & { readonly lease?: bigint | undefined } = {}): Promise<EtcdPutResult> {
    const { lease, ...callOptions } = options;
    const response = await this.#unary(rpc.KVDefinition, 'put', rpc.PutRequest.create({ key: keyBytes(key), value: valueBytes(value), lease: lease ?? 0n }), { operation: 'Put', key, leaseId: lease }, callOptions);
    return { revision: revisionOf(response.header) };
  }

  /** Deletes the key (or every key under it with `prefix: true`). */
  async delete(key: string, options: EtcdCallOptions & { readonly prefix?: boolean | undefined } = {}): Promise<EtcdDeleteResult> {
    const { prefix, ...callOptions } = options;
    const k = keyBytes(key);
    const response = await this.#unary(rpc.KVDefinition, 'deleteRange', rpc.DeleteRangeRequest.create({ key: k, rangeEnd: prefix === true ? prefixEnd(k) : new Uint8Array() }), { operation: 'DeleteRange', key }, callOptions);
    return { deleted: response.deleted, revision: revisionOf(response.header) };
  }

  /**
   * Watches a key (or a prefix) over one `Watch` bidi stream with no deadline: yields each put
   * and delete from now on (or from `startRevision`). The stream opens on the first `next()`
   * and ends when the loop is left, `signal` aborts or the client is disposed (the iteration
   * then just ends). It does not reconnect: a failure is thrown as an EtcdError
   * (`ETCD_UNAVAILABLE` when etcd went away, `ETCD_COMPACTED` when `startRevision` is gone,
   * `ETCD_WATCH_CANCELED`); watch again from the last revision seen + 1.
   */
  watch(key: string, options: EtcdWatchOptions = {}): AsyncIterable<EtcdWatchEvent> {
    return { [Symbol.asyncIterator]: () => this.#watch(key, options)[Symbol.asyncIterator]() };
  }

  /** Stops every keep-alive (resolving once they have stopped) and ends every watch. The factory stays the caller's. */
  async dispose(): Promise<void> {
    if (!this.#disposed) {
      this.#disposed = true;
      this.#disposing.abort(new DisposedError('The etcd client'));
    }
    await Promise.all([...this.#keepAlives].map((keepAlive) => keepAlive.close()));
  }

  async *#watch(key: string, options: EtcdWatchOptions): AsyncGenerator<EtcdWatchEvent> {
    this.#check();
    if (options.signal?.aborted === true) return;
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    options.signal?.addEventListener('abort', stop, { once: true });
    this.#disposing.signal.addEventListener('abort', stop, { once: true });
    const k = keyBytes(key);
    const requests = new RequestQueue<rpc.WatchRequest>();
    requests.push({
      createRequest: rpc.WatchCreateRequest.create({
        key: k,
        rangeEnd: options.prefix === true ? prefixEnd(k) : new Uint8Array(),
        startRevision: options.startRevision ?? 0n,
        prevKv: options.prevKv === true,
      }),
    });
    const context: EtcdCallContext = { operation: 'Watch', endpoints: this.#endpoints, key };
    try {
      const stream = this.#factory.bidiStream(rpc.WatchDefinition, 'watch', requests, { ...this.#target, deadlineMs: 'none', signal: controller.signal });
      for await (const response of stream) {
        if (response.canceled) throw this.#watchCanceled(key, response);
        for (const event of response.events) {
          if (event.kv === undefined) continue;
          yield {
            type: event.type === mvcc.Event_EventType.DELETE ? 'delete' : 'put',
            kv: keyValueOf(event.kv),
            prevKv: event.prevKv === undefined ? undefined : keyValueOf(event.prevKv),
          };
        }
      }
      if (controller.signal.aborted) return;
      throw new EtcdError('ETCD_UNAVAILABLE', `etcd ended the watch of key "${key}" without cancelling it`, { operation: 'Watch', endpoint: this.#endpoints.join(', '), key });
    } catch (error) {
      if (controller.signal.aborted && !(error instanceof EtcdError)) return;
      throw toEtcdError(error, context);
    } finally {
      controller.abort();
      requests.end();
      options.signal?.removeEventListener('abort', stop);
      this.#disposing.signal.removeEventListener('abort', stop);
    }
  }

  #watchCanceled(key: string, response: rpc.WatchResponse): EtcdError {
    const endpoint = this.#endpoints.join(', ');
    if (response.compactRevision > 0n) {
      return new EtcdError('ETCD_COMPACTED', `etcd cancelled the watch of key "${key}": the requested revision was compacted (the oldest left is ${response.compactRevision.toString()})`, { operation: 'Watch', endpoint, key, compactRevision: response.compactRevision });
    }
    return new EtcdError('ETCD_WATCH_CANCELED', `etcd cancelled the watch of key "${key}": ${response.cancelReason === '' ? 'no reason given' : response.cancelReason}`, { operation: 'Watch', endpoint, key });
  }

  async #unary<S extends ServiceDefinition, K extends UnaryMethodKeys<S>>(
    service: S,
    method: K,
    request: RequestOf<S, K>,
    context: Omit<EtcdCallContext, 'endpoints'>,
    options: EtcdCallOptions,
  ): Promise<ResponseOf<S, K>> {
    this.#check();
    try {
      return (await this.#factory.unary(service, method, request, { ...options, ...this.#target })).message;
    } catch (error) {
      throw toEtcdError(error, { ...context, endpoints: this.#endpoints });
    }
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError('The etcd client');
    this.#checkProfile();
  }

  /** The profile must exist and keep etcd on HTTP/2 (checked on every call: options are live). */
  #checkProfile(): void {
    const profile = this.#factory.options.profiles[this.#profile];
    if (profile === undefined) {
      throw new ConfigError([{ key: `profiles.${this.#profile}`, message: `is not defined: etcd calls need a profile with http3: 'disable' and the TLS files etcd trusts (docs/etcd.md)` }], 'options for the etcd client');
    }
    if (profile.http3 !== 'disable') {
      throw new ConfigError([{ key: `profiles.${this.#profile}.http3`, message: `must be 'disable' for etcd (got '${profile.http3}'): etcd serves HTTP/2 only (docs/etcd.md)` }], 'options for the etcd client');
    }
  }
}

function keyBytes(key: string): Uint8Array {
  if (typeof key !== 'string' || key === '') throw new ConfigError([{ key: 'key', message: `must be a non-empty string (got ${JSON.stringify(key)})` }], 'etcd call');
  return encoder.encode(key);
}

function valueBytes(value: string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

/** The end of the range of every key starting with `prefix` (etcd clientv3's GetPrefixRangeEnd). */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] ?? 0xff;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.slice(0, i + 1);
    }
  }
  // Every byte is 0xff: no upper bound ("\0" means "to the end of the keyspace").
  return new Uint8Array([0]);
}

function revisionOf(header: rpc.ResponseHeader | undefined): bigint {
  return header?.revision ?? 0n;
}

function keyValueOf(kv: mvcc.KeyValue): EtcdKeyValue {
  return { key: decoder.decode(kv.key), value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
}

