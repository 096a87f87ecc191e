import { setMaxListeners } from 'node:events';
import type { Observable, Subscription } from 'rxjs';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../clock.js';
import type { OptionsMonitor } from '../config/options-monitor.js';
import type { ControlPlaneOptions, ProfileOptions } from '../config/types.js';
import { ConfigError, DisposedError, EndpointError, MethodError, OmniRelayError, PeerUnavailableError, RpcError, TlsError, UnknownProfileError, type ConfigIssue } from '../errors.js';
import type { EndpointHintStore } from '../hints/endpoint-hints.js';
import type { Http3FailureReason, Http3Health } from '../hints/http3-health.js';
import type { IPeerChooser, PeerCandidate } from '../peers/peer-chooser.js';
import type { ICircuitBreaker } from '../resilience/circuit-breaker.js';
import { nextRetryDelay, sleep, type RandomSource } from '../resilience/retry.js';
import type { RpcObservation, RpcTelemetry } from '../telemetry/index.js';
import type { ITlsProvider } from '../tls/tls-provider.js';
import { connectionSettingsOf, type ChannelCache, type CacheEntryInfo, type Lease } from '../transport/channel-cache.js';
import { parseEndpoint, resolveEndpoint } from '../transport/endpoint.js';
import { MAX_MS } from '../config/schema.js';
import { GRPC_STATUS } from '../grpc/status.js';
import { ATTR_PROTOCOL_REASON } from '../telemetry/names.js';
import { chooseProtocol, type Http3Requirement, type ProtocolChoice } from '../transport/protocol-selection.js';
import type { CallMetadata, DialTarget, ParsedEndpoint, WireCall, WireProtocol, WireUnaryResult } from '../transport/types.js';
import { callerOf } from './caller.js';
import type { HttpDispatcherPool } from './http-dispatchers.js';
import type { MethodDefinition, RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';
import type { CallOptions, CallTarget, Http3ProbeResult, Http3ProbeTarget, IGrpcControlPlaneClientFactory, TypedClient, UnaryResult } from './types.js';
import { HealthCheckRequest, HealthCheckResponse, HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health.js';

export interface FactoryDependencies {
  readonly options: OptionsMonitor;
  readonly tls: ITlsProvider;
  readonly hints: EndpointHintStore;
  readonly health: Http3Health;
  readonly cache: ChannelCache;
  readonly chooser: IPeerChooser;
  readonly breaker: ICircuitBreaker;
  readonly telemetry: RpcTelemetry;
  readonly http: HttpDispatcherPool;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Default `omnirelay.caller` of this factory's calls (`control-plane`); GrpcOutbound marks its calls `dispatcher` per call (see caller.ts). */
  readonly caller?: 'dispatcher' | 'control-plane';
  /** Named live peer lists (`CallTarget.peerList`); each emits the list's current members. */
  readonly peerLists?: PeerLists | undefined;
}

/** Named peer lists: each Observable emits the full current membership (endpoint names or URLs). */
export type PeerLists = Readonly<Record<string, Observable<readonly string[]>>>;

/** A call target resolved against the live options. */
interface ResolvedTarget {
  readonly profileName: string;
  readonly profile: ProfileOptions;
  readonly peers: readonly PeerCandidate[];
  readonly metadata: CallMetadata;
  /** Names the peer set for the chooser's per-set state. */
  readonly peerSet: string;
}

/** A server stream up to its first message. */
interface OpenedStream {
  readonly lease: Lease;
  readonly iterator: AsyncIterator<Uint8Array>;
  readonly first: IteratorResult<Uint8Array>;
}

interface AttemptOutcome<T> {
  readonly value: T;
  readonly protocol: WireProtocol;
}

/**
 * Transparent retries per call (gRFC A6): a request the server refused without processing it
 * (`RpcError.refused`: GOAWAY, H3_REQUEST_REJECTED, REFUSED_STREAM) is sent again at once,
 * preferably to a peer this call has not tried, on a new connection when the refusing one is
 * draining, without spending one of the policy's attempts and without counting as a breaker
 * failure. More refusals than this go through the retry policy like any UNAVAILABLE (still
 * never counted by the breaker), so a server that refuses everything ends the call after at
 * most this many + `retry.maxAttempts` requests, within the deadline.
 */
export const MAX_TRANSPARENT_RETRIES = 3;

/** A refused request as the factory reports it. */
function refusalOf(error: unknown): RpcError | undefined {
  return error instanceof RpcError && error.refused ? error : undefined;
}

/** Transport failures where nothing reached the server, so HTTP/2 may carry the same call. */
function http3FailureReason(error: unknown): Http3FailureReason | undefined {
  if (!(error instanceof RpcError)) return undefined;
  if (error.failure === 'connect' || error.failure === 'handshake' || error.failure === 'idle-timeout') return error.failure;
  return undefined;
}

/** `host:port`, or undefined when the URL cannot be parsed. */
function authorityOfUrl(url: string): string | undefined {
  try {
    return parseEndpoint(url).authority;
  } catch {
    return undefined;
  }
}

/**
 * `host:port` of the addresses configured endpoints used in `before` and no longer use in
 * `after` (their URL changed, or they were removed), less those any endpoint of `after` uses.
 * Connections to them drain whatever profile the calls used (a call may name a profile).
 */
function movedAuthorities(before: ControlPlaneOptions, after: ControlPlaneOptions): Set<string> {
  const moved = new Set<string>();
  if (before.endpoints === after.endpoints) return moved;
  for (const [name, was] of Object.entries(before.endpoints)) {
    const now = after.endpoints[name];
    if (now !== undefined && now.url === was.url) continue;
    const authority = authorityOfUrl(was.url);
    if (authority !== undefined) moved.add(authority);
  }
  if (moved.size === 0) return moved;
  for (const now of Object.values(after.endpoints)) {
    const authority = authorityOfUrl(now.url);
    if (authority !== undefined) moved.delete(authority);
  }
  return moved;
}

/** What a call method is for: `unary` calls, server streams. */
type MethodKind = 'unary' | 'server-stream';

function kindOf(method: MethodDefinition<unknown, unknown>): MethodKind | 'client-stream' {
  if (method.requestStream) return 'client-stream';
  return method.responseStream ? 'server-stream' : 'unary';
}

/**
 * The definition of `service.methods[name]` for a call of `kind`; a MethodError naming the
 * service and the method, listing the methods of that kind, when there is none.
 */
function methodOf<Req, Res>(service: ServiceDefinition, name: unknown, kind: MethodKind): MethodDefinition<Req, Res> {
  const methods = (service as { methods?: unknown } | undefined)?.methods;
  const serviceName = (service as { fullName?: unknown } | undefined)?.fullName;
  if (typeof methods !== 'object' || methods === null || typeof serviceName !== 'string') {
    throw new TypeError(`A call needs a generated service definition (with fullName and methods); got ${service === null ? 'null' : typeof service}.`);
  }
  const table = methods as Record<string, MethodDefinition<unknown, unknown>>;
  const usable = Object.keys(table).filter((key) => kindOf(table[key] as MethodDefinition<unknown, unknown>) === kind);
  const call = kind === 'unary' ? 'unary' : 'serverStream';
  const list = usable.length === 0 ? `it has no ${kind} methods` : `its ${kind} methods: ${usable.join(', ')}`;
  const key = String(name);
  const definition = typeof name === 'string' && Object.hasOwn(table, name) ? table[name] : undefined;
  if (definition === undefined) {
    const close = Object.keys(table).find((k) => k.toLowerCase() === key.toLowerCase() || table[k]?.name === key);
    throw new MethodError('METHOD_UNKNOWN', serviceName, key, usable, `Service ${serviceName} has no method "${key}"${close !== undefined ? ` (did you mean "${close}"?)` : ''}; ${list}.`);
  }
  const actual = kindOf(definition);
  if (actual !== kind) {
    throw new MethodError('METHOD_UNSUPPORTED', serviceName, key, usable, `${serviceName}.${key} is a ${actual} method and cannot be called with ${call}()${actual === 'server-stream' ? '; use serverStream()' : actual === 'unary' ? '; use unary()' : ' (client and bidirectional streaming are not supported)'}; ${list}.`);
  }
  return definition as MethodDefinition<Req, Res>;
}

/**
 * Per-call options, checked before anything is sent: `deadlineMs` must be a number of
 * milliseconds above 0 and at most 24 h (`MAX_MS`, the bound the options use); a ConfigError
 * keyed `deadlineMs` otherwise (a string, NaN, a negative or an overflowing value would
 * otherwise become an instant timeout or Node's TimeoutOverflowWarning).
 */
function checkCallOptions(options: CallOptions): void {
  const issues: ConfigIssue[] = [];
  const deadline: unknown = options.deadlineMs;
  if (deadline !== undefined) {
    if (typeof deadline !== 'number') issues.push({ key: 'deadlineMs', message: `must be a number of milliseconds, got ${typeof deadline} ${JSON.stringify(deadline)}` });
    else if (!Number.isFinite(deadline)) issues.push({ key: 'deadlineMs', message: `must be a finite number of milliseconds, got ${deadline}` });
    else if (deadline <= 0) issues.push({ key: 'deadlineMs', message: `must be greater than 0 ms, got ${deadline}` });
    else if (deadline > MAX_MS) issues.push({ key: 'deadlineMs', message: `must be at most ${MAX_MS} ms (24 h), got ${deadline}; a larger value is almost certainly a unit mistake` });
  }
  const signal: unknown = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) issues.push({ key: 'signal', message: `must be an AbortSignal, got ${signal === null ? 'null' : typeof signal}` });
  if (issues.length > 0) throw new ConfigError(issues, 'call options');
}

/** An AsyncIterable whose first `next()` rejects with `error`. */
function failedStream<T>(error: unknown): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error instanceof Error ? error : new Error(String(error))) }) };
}

/**
 * The deadline budget is kept on the injected clock (so tests control retries and backoff
 * windows); the transports need an absolute deadline on the system clock.
 */
function wireDeadline(clock: Clock, deadline: number): number {
  return systemClock.now() + Math.max(0, deadline - clock.now());
}

function statusOf(error: unknown): number {
  if (error instanceof RpcError) return error.status;
  if (error instanceof TlsError) return GRPC_STATUS.UNAVAILABLE;
  if (error instanceof PeerUnavailableError) return GRPC_STATUS.UNAVAILABLE;
  if (error instanceof OmniRelayError) return GRPC_STATUS.FAILED_PRECONDITION;
  if (error instanceof Error && error.name === 'AbortError') return GRPC_STATUS.CANCELLED;
  return GRPC_STATUS.UNKNOWN;
}

function cancelled(endpoint: string, reason: unknown): RpcError {
  const details = reason instanceof Error ? reason.message : 'the caller aborted the call';
  return new RpcError(GRPC_STATUS.CANCELLED, 'CANCELLED', details, { endpoint, protocol: 'none' });
}

/**
 * `promise`, bounded by the call's deadline (DEADLINE_EXCEEDED), its AbortSignal (the signal's
 * reason) and the factory's disposal (`stop`, DisposedError): waiting for a connection must
 * outlive neither the call nor the factory.
 */
function withinCall<T>(promise: Promise<T>, call: WireCall, endpoint: string, stop: AbortSignal, connecting: 'HTTP/3' | 'HTTP/3 and HTTP/2' = 'HTTP/3'): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => finish(() => reject(call.signal?.reason as Error));
    const onStop = (): void => finish(() => reject(stop.reason as Error));
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(new RpcError(GRPC_STATUS.DEADLINE_EXCEEDED, 'DEADLINE_EXCEEDED', `deadline exceeded while connecting over ${connecting}`, { endpoint, protocol: connecting === 'HTTP/3' ? 'h3' : 'none' })),
        ),
      Math.max(0, call.deadline - systemClock.now()),
    );
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      stop.removeEventListener('abort', onStop);
      settle();
    };
    if (stop.aborted) {
      onStop();
      return;
    }
    if (call.signal?.aborted === true) {
      onAbort();
      return;
    }
    call.signal?.addEventListener('abort', onAbort, { once: true });
    stop.addEventListener('abort', onStop, { once: true });
    promise.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(String(error)))),
    );
  });
}

/**
 * The factory: resolves targets, picks a peer (chooser + breaker), picks the protocol
 * (profile, hints, HTTP/3 health), borrows a connection from the cache, retries within the
 * deadline, and records every call through the shared telemetry.
 */
export class ControlPlaneClientFactory implements IGrpcControlPlaneClientFactory {
  readonly #deps: FactoryDependencies;
  readonly #subscriptions: Subscription[] = [];
  #disposed = false;
  /** Aborted by dispose(): ends retry backoff sleeps at once, so no timer or retry outlives the factory. */
  readonly #disposing = new AbortController();

  constructor(deps: FactoryDependencies) {
    // Every call waiting for a connection or a retry listens to the disposal: a fan-out signal.
    setMaxListeners(0, this.#disposing.signal);
    this.#deps = deps;
    this.#preloadTls(deps.options.current);
    const graceOf = (entry: CacheEntryInfo): number => this.#deps.options.current.profiles[entry.profile]?.drainGraceMs ?? 30_000;
    // A new TLS generation: connections built from the old one drain, new calls handshake anew.
    this.#subscriptions.push(
      deps.tls.changes$.subscribe((material) => {
        deps.cache.retire((e) => e.profile === material.profile && e.tlsGeneration !== material.generation, graceOf);
      }),
    );
    // Hints: denying HTTP/3 drains that endpoint's HTTP/3 connections; draining drains all of its connections.
    this.#subscriptions.push(
      deps.hints.changes$.subscribe((change) => {
        if (change.current.draining === true) {
          deps.cache.retire((e) => e.authority === change.authority, graceOf);
          return;
        }
        if (change.current.http3 === 'deny') deps.cache.retire((e) => e.authority === change.authority && e.protocol === 'h3', graceOf);
        // Requiring HTTP/3 drains the endpoint's HTTP/2 connections: new calls use HTTP/3 only.
        if (change.current.http3 === 'require') deps.cache.retire((e) => e.authority === change.authority && e.protocol === 'h2', graceOf);
      }),
    );
    // New options: connections of profiles that are gone, or whose connection settings
    // changed, drain now rather than linger until the next call to their endpoint.
    let previous = deps.options.current;
    this.#subscriptions.push(
      deps.options.snapshots$.subscribe((snapshot) => {
        const before = previous;
        previous = snapshot;
        const stale = (e: CacheEntryInfo): boolean => {
          const now = snapshot.profiles[e.profile];
          const then = before.profiles[e.profile];
          if (now === undefined || then === undefined || connectionSettingsOf(now) !== connectionSettingsOf(then)) return true;
          // A profile that now requires (disables) HTTP/3 has no use for its HTTP/2 (HTTP/3) connections.
          return now.http3 !== then.http3 && ((now.http3 === 'require' && e.protocol === 'h2') || (now.http3 === 'disable' && e.protocol === 'h3'));
        };
        deps.cache.retire(stale, (e) => before.profiles[e.profile]?.drainGraceMs ?? 30_000);
        // An endpoint whose URL changed (or that is gone): new calls already go to the new URL;
        // the old address's connections drain (closed when their in-flight calls, open server
        // streams included, end, or after the profile's drainGraceMs), unless another
        // configured endpoint still uses that address.
        const moved = movedAuthorities(before, snapshot);
        if (moved.size > 0) deps.cache.retire((e) => moved.has(e.authority), (e) => before.profiles[e.profile]?.drainGraceMs ?? 30_000);
      }),
    );
    // Peer lists: members arrive and leave live; a member that left takes no new calls and its
    // connections drain (running calls finish within the drain grace).
    for (const [name, list$] of Object.entries(deps.peerLists ?? {})) {
      this.#subscriptions.push(
        list$.subscribe({
          next: (members) => {
            const before = this.#peerLists.get(name);
            this.#peerLists.set(name, [...members]);
            if (before === undefined) return;
            const still = new Set(members);
            const gone = new Set(before.filter((m) => !still.has(m)).flatMap((m) => this.#authorityOf(m)));
            for (const m of members) for (const authority of this.#authorityOf(m)) gone.delete(authority);
            if (gone.size > 0) deps.cache.retire((e) => gone.has(e.authority), graceOf);
          },
          // A failed discovery stream must not take the process down: the last members stay.
          error: (error: unknown) => {
            process.emitWarning(`OmniRelay peer list "${name}" failed (${error instanceof Error ? error.message : String(error)}); its last members stay in use.`, { code: 'OMNIRELAY_PEER_LIST_FAILED' });
          },
        }),
      );
    }
    // HTTP/3 marked broken: its connection for that endpoint drains.
    this.#subscriptions.push(
      deps.health.changes$.subscribe((state) => {
        if (state.broken) deps.cache.retire((e) => e.authority === state.authority && e.protocol === 'h3', graceOf);
      }),
    );
  }

  get options(): ControlPlaneOptions {
    return this.#deps.options.current;
  }

  /** Loads TLS material of every profile an endpoint uses or that names files, so bad files fail at start-up. */
  #preloadTls(options: ControlPlaneOptions): void {
    const profiles = new Set(Object.values(options.endpoints).map((e) => e.profile));
    for (const [name, profile] of Object.entries(options.profiles)) {
      const t = profile.tls;
      if (t.certFile !== undefined || t.pfxFile !== undefined || t.caFile !== undefined || t.crlFiles.length > 0) profiles.add(name);
    }
    for (const name of profiles) this.#deps.tls.current(name);
  }

  /**
   * Peers (authority) that refused a request without processing it, e.g. because they are
   * draining (GOAWAY), until when (injected clock): they are offered to the chooser only when
   * no other peer is, and failing to connect to them meanwhile is their drain, not a failure.
   */
  readonly #refusedUntil = new Map<string, { readonly until: number; readonly seq: number }>();
  /** Counts refusals, so a success clears a peer's mark only if its attempt began after the refusal. */
  #refusalSeq = 0;
  /** Connection failures reported as refused by {@link #drainAware}: they do not renew a mark. */
  readonly #drainEnds = new WeakSet<RpcError>();

  /**
   * Remembers that `authority` refused work, for the profile's `breaker.halfOpenAfterMs` (the
   * time an unwell peer is kept out before a probe): a restarted replica is offered again
   * then, and one that is gone is counted by its breaker like any peer that cannot be reached.
   */
  #noteRefused(authority: string, profile: ProfileOptions, error: RpcError): void {
    if (this.#drainEnds.has(error)) return;
    this.#refusedUntil.set(authority, { until: this.#deps.clock.now() + profile.breaker.halfOpenAfterMs, seq: ++this.#refusalSeq });
  }

  #isRefusing(authority: string): boolean {
    const mark = this.#refusedUntil.get(authority);
    if (mark === undefined) return false;
    if (this.#deps.clock.now() < mark.until) return true;
    this.#refusedUntil.delete(authority);
    return false;
  }

  /** A call to `authority` that started at refusal count `startedAt` succeeded: a refusal before it is over. */
  #servedBy(authority: string, startedAt: number): void {
    const mark = this.#refusedUntil.get(authority);
    if (mark !== undefined && mark.seq <= startedAt) this.#refusedUntil.delete(authority);
  }

  /**
   * A connection failure (nothing reached the server) with a peer that refused work moments
   * ago is the end of its drain (a draining server stops listening), not a sign it is unwell:
   * it is reported as refused, so the breaker does not count it and it is retried transparently.
   */
  #drainAware(authority: string, error: unknown): unknown {
    if (!(error instanceof RpcError) || error.failure !== 'connect' || error.status !== GRPC_STATUS.UNAVAILABLE || !this.#isRefusing(authority)) return error;
    const refused = new RpcError(error.status, error.statusName, `${error.details} (the peer refused a request without processing it moments ago: it is draining)`, { ...error.context, failure: 'refused' });
    this.#drainEnds.add(refused);
    return refused;
  }

  /** `profile\0authority` of endpoints whose last HTTP/3 handshake failed certificate verification. */
  readonly #http3Rejected = new Set<string>();

  /** Latest members of each peer list (absent until the list first emits). */
  readonly #peerLists = new Map<string, readonly string[]>();
  /** Resolved peer-list targets: rebuilt when the members, the options or the profile change. */
  readonly #resolvedLists = new Map<string, { readonly members: readonly string[]; readonly options: ControlPlaneOptions; readonly resolved: ResolvedTarget }>();

  /** `host:port` of an endpoint name or URL; none when it cannot be parsed (it was never dialled). */
  #authorityOf(name: string): string[] {
    try {
      return [parseEndpoint(this.#deps.options.current.endpoints[name]?.url ?? name).authority];
    } catch {
      return [];
    }
  }

  /** The current members of a bound peer list; throws when the list is unknown or empty. */
  #membersOf(name: string): readonly string[] {
    const bound = this.#deps.peerLists ?? {};
    if (!Object.hasOwn(bound, name)) {
      const known = Object.keys(bound);
      throw new EndpointError('ENDPOINT_INVALID', name, `No peer list "${name}" is bound to TOKENS.PeerLists (${known.length === 0 ? 'none is bound' : `bound: ${known.join(', ')}`}).`);
    }
    const members = this.#peerLists.get(name) ?? [];
    if (members.length === 0) throw new PeerUnavailableError('PEER_UNAVAILABLE', [], `Peer list "${name}" has no members${this.#peerLists.has(name) ? '' : ' yet (its Observable has not emitted)'}.`);
    return members;
  }

  #resolveList(target: CallTarget & { readonly peerList: string }): ResolvedTarget {
    const members = this.#membersOf(target.peerList);
    const options = this.#deps.options.current;
    const memoKey = `${target.profile ?? ''}\u0000${target.peerList}`;
    const known = this.#resolvedLists.get(memoKey);
    if (known !== undefined && known.members === members && known.options === options) return known.resolved;
    const resolved = { ...this.#resolveUncached(options, target, this.#usableMembers(target, members, options)), peerSet: `list:${target.peerList}` };
    this.#resolvedLists.set(memoKey, { members, options, resolved });
    return resolved;
  }

  /** Peer-list members reported as unusable, so each is warned about once. */
  readonly #reportedMembers = new Set<string>();

  /**
   * The members a call can use: one bad discovery entry (unparsable, plaintext for a TLS
   * profile) is left out and reported once as a process warning naming it, instead of failing
   * every call to the list; with no usable member left, the first member's error is thrown.
   */
  #usableMembers(target: CallTarget & { readonly peerList: string }, members: readonly string[], options: ControlPlaneOptions): readonly string[] {
    const usable: string[] = [];
    let first: unknown;
    for (const member of members) {
      try {
        this.#resolveUncached(options, target, [member]);
        usable.push(member);
      } catch (error) {
        first ??= error;
        const key = `${target.peerList}\u0000${member}\u0000${error instanceof Error ? error.message : String(error)}`;
        if (!this.#reportedMembers.has(key)) {
          if (this.#reportedMembers.size >= 1024) this.#reportedMembers.clear();
          this.#reportedMembers.add(key);
          process.emitWarning(`OmniRelay peer list "${target.peerList}": member "${member}" is left out: ${error instanceof Error ? error.message : String(error)}`, { code: 'OMNIRELAY_PEER_LIST_MEMBER_INVALID' });
        }
      }
    }
    if (usable.length === 0) throw first;
    return usable.length === members.length ? members : usable;
  }

  /** Resolved targets per options snapshot: calls name the same few targets over and over. */
  readonly #resolved = new WeakMap<ControlPlaneOptions, Map<string, ResolvedTarget>>();

  #resolve(target: CallTarget): ResolvedTarget {
    if (this.#disposed) throw new DisposedError('The control-plane client factory');
    if (target.peerList !== undefined) return this.#resolveList({ ...target, peerList: target.peerList });
    const options = this.#deps.options.current;
    const names = target.peers ?? (target.endpoint !== undefined ? [target.endpoint] : []);
    const key = `${target.profile ?? ''}\u0000${names.join('\u0000')}`;
    let memo = this.#resolved.get(options);
    if (memo === undefined) {
      memo = new Map();
      this.#resolved.set(options, memo);
    }
    const known = memo.get(key);
    if (known !== undefined) return known;
    const resolved = this.#resolveUncached(options, target, names);
    if (memo.size >= 1024) memo.clear();
    memo.set(key, resolved);
    return resolved;
  }

  #resolveUncached(options: ControlPlaneOptions, target: CallTarget, names: readonly string[]): ResolvedTarget {
    if (names.length === 0) throw new EndpointError('ENDPOINT_INVALID', '(none)', 'A call needs a target: set `endpoint` (URL or configured endpoint name), `peers` or `peerList`.');
    let profileName = target.profile;
    const metadata: Record<string, string | Buffer> = {};
    const peers: PeerCandidate[] = [];
    for (const name of names) {
      const configured = Object.hasOwn(options.endpoints, name) ? options.endpoints[name] : undefined;
      profileName ??= configured?.profile;
      if (configured !== undefined) Object.assign(metadata, configured.metadata);
      const endpoint = resolveEndpoint(name, options);
      peers.push({ authority: endpoint.authority, endpoint });
    }
    profileName ??= 'control-plane';
    const profile = options.profiles[profileName];
    if (profile === undefined) throw new UnknownProfileError(profileName, Object.keys(options.profiles));
    for (const { endpoint } of peers) this.#checkScheme(endpoint, profileName, profile);
    return { profileName, profile, peers, metadata, peerSet: `peers:${names.join(',')}` };
  }

  #checkScheme(endpoint: ParsedEndpoint, profileName: string, profile: ProfileOptions): void {
    if (!endpoint.secure && profile.tls.mode !== 'insecure') {
      throw new EndpointError('ENDPOINT_INSECURE', endpoint.url, `Endpoint ${endpoint.url} is plaintext but profile "${profileName}" uses ${profile.tls.mode}; OmniRelay never sends a TLS profile's calls in plaintext. Use https://.`);
    }
    if (endpoint.secure && profile.tls.mode === 'insecure') {
      throw new EndpointError('ENDPOINT_INVALID', endpoint.url, `Endpoint ${endpoint.url} is https but profile "${profileName}" is insecure (plaintext); use a tls or mtls profile for it.`);
    }
  }

  unary<S extends ServiceDefinition, K extends UnaryMethodKeys<S>>(
    service: S,
    method: K,
    request: RequestOf<S, K>,
    target: CallTarget & CallOptions,
  ): Promise<UnaryResult<ResponseOf<S, K>>> {
    let definition: MethodDefinition<RequestOf<S, K>, ResponseOf<S, K>>;
    try {
      definition = methodOf(service, method, 'unary');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#unary(service, definition, request, target);
  }

  async #unary<Req, Res>(service: ServiceDefinition, method: MethodDefinition<Req, Res>, request: Req, target: CallTarget & CallOptions): Promise<UnaryResult<Res>> {
    checkCallOptions(target);
    const resolved = this.#resolve(target);
    const bytes = method.requestType.encode(request).finish();
    let result: WireUnaryResult | undefined;
    let endpoint = '';
    const outcome = await this.#run(service, method.name, bytes, resolved, target, async (peer, wireCall, observation) => {
      endpoint = peer.authority;
      return this.#onProtocol(resolved, peer, observation, wireCall, async (lease) => {
        result = await lease.unary(wireCall);
        return result;
      });
    });
    const wire: WireUnaryResult | undefined = result;
    if (wire === undefined) throw new Error('unreachable: a successful call has a result');
    return {
      message: method.responseType.decode(wire.message),
      protocol: outcome.protocol,
      endpoint,
      peer: wire.peer,
      attempts: outcome.attempts,
      get headers() {
        return wire.headers;
      },
      get trailers() {
        return wire.trailers;
      },
    };
  }

  serverStream<S extends ServiceDefinition, K extends ServerStreamMethodKeys<S>>(
    service: S,
    method: K,
    request: RequestOf<S, K>,
    target: CallTarget & CallOptions,
  ): AsyncIterable<ResponseOf<S, K>> {
    let definition: MethodDefinition<RequestOf<S, K>, ResponseOf<S, K>>;
    try {
      definition = methodOf(service, method, 'server-stream');
    } catch (error) {
      return failedStream(error);
    }
    return this.#serverStream(service, definition, request, target);
  }

  /**
   * A server stream is placed like a unary call (peer, protocol, HTTP/3 fallback and the
   * circuit breaker until its first message) but is not retried on a gRPC status: messages
   * may already have been delivered to the caller. A stream the server refused without
   * processing it (nothing delivered) is sent again transparently, like a unary call's.
   */
  async *#serverStream<Req, Res>(service: ServiceDefinition, method: MethodDefinition<Req, Res>, request: Req, target: CallTarget & CallOptions): AsyncIterable<Res> {
    checkCallOptions(target);
    const resolved = this.#resolve(target);
    const { clock } = this.#deps;
    const deadline = clock.now() + (target.deadlineMs ?? resolved.profile.deadlineMs);
    const tried = new Set<string>();
    let peer = this.#pick(resolved, 1, tried);
    const observation = this.#deps.telemetry.start({ service: service.fullName, method: method.name, endpoint: peer.authority, profile: resolved.profileName, caller: callerOf(target, this.#deps.caller ?? 'control-plane') });
    let ok = false;
    // The peer whose onCallStart was reported and whose onCallEnd is still due.
    let counting: string | undefined;
    try {
      // Inside the try: a failure while encoding, dialling or racing ends the observation too.
      const wireCall: WireCall = {
        path: `/${service.fullName}/${method.name}`,
        message: method.requestType.encode(request).finish(),
        metadata: { ...resolved.metadata, ...target.metadata },
        deadline: wireDeadline(clock, deadline),
        signal: target.signal,
      };
      let opened: OpenedStream;
      let protocol: WireProtocol;
      let startedAt = this.#refusalSeq;
      for (let transparent = 0; ; transparent++) {
        startedAt = this.#refusalSeq;
        observation.noteAttempt(1, peer.authority, this.#deps.breaker.state(peer.authority, resolved.profileName));
        tried.add(peer.authority);
        counting = peer.authority;
        this.#deps.chooser.onCallStart?.(peer.authority);
        try {
          ({ opened, protocol } = await this.#openStream(resolved, peer, observation, wireCall));
          break;
        } catch (error) {
          const refusal = refusalOf(error);
          if (refusal === undefined) throw error;
          this.#deps.chooser.onCallEnd?.(peer.authority, false);
          counting = undefined;
          this.#noteRefused(peer.authority, resolved.profile, refusal);
          if (transparent >= MAX_TRANSPARENT_RETRIES || target.signal?.aborted === true || clock.now() >= deadline) throw error;
          observation.noteTransparentRetry(1, peer.authority, refusal.details);
          peer = this.#pick(resolved, 1, tried);
        }
      }
      let finished = false;
      try {
        for (let step = opened.first; !step.done; step = await opened.iterator.next()) {
          yield method.responseType.decode(step.value);
        }
        finished = true;
        if (protocol === 'h3') this.#deps.health.markHealthy(peer.authority);
      } finally {
        // A consumer that stops early (break, return) cancels the stream on the wire.
        if (!finished) await opened.iterator.return?.().catch(() => undefined);
        opened.lease.release();
      }
      ok = true;
      if (this.#refusedUntil.size > 0) this.#servedBy(peer.authority, startedAt);
      observation.end(GRPC_STATUS.OK);
    } catch (error) {
      const final = target.signal?.aborted === true ? cancelled(peer.authority, target.signal.reason) : error;
      observation.end(statusOf(final), final as Error);
      throw final;
    } finally {
      if (!ok) observation.end(GRPC_STATUS.CANCELLED);
      if (counting !== undefined) this.#deps.chooser.onCallEnd?.(counting, ok);
    }
  }

  /**
   * Opens a server stream on `peer` up to its first message (or its end): the protocol, the
   * HTTP/3 race and fallback, and the peer's circuit breaker, which counts a stream until then.
   * After that, messages were delivered: no fallback, not counted.
   */
  async #openStream(resolved: ResolvedTarget, peer: PeerCandidate, observation: RpcObservation, wireCall: WireCall): Promise<{ opened: OpenedStream; protocol: WireProtocol }> {
    const target = this.#dialTarget(resolved, peer);
    const choice = this.#protocolFor(resolved, peer);
    const required = choice.required;
    if (required !== undefined) {
      this.#checkRequirement(resolved, peer, choice);
      observation.span.setAttribute(ATTR_PROTOCOL_REASON, 'required');
    } else if (choice.reason !== undefined && resolved.profile.http3 === 'prefer') {
      observation.span.setAttribute(ATTR_PROTOCOL_REASON, choice.reason);
    }
    let protocol = choice.protocol;
    if (protocol === 'h3' && required === undefined) protocol = await this.#raceHttp3(resolved, peer, target, observation, wireCall);
    observation.setProtocol(protocol);
    const open = async (): Promise<OpenedStream> => {
      for (;;) {
        const lease = this.#deps.cache.acquire(target, protocol);
        const iterator = lease.connection.serverStream(wireCall)[Symbol.asyncIterator]();
        try {
          return { lease, iterator, first: await iterator.next() };
        } catch (error) {
          lease.release();
          if (required !== undefined) throw this.#requiredFailure(resolved, peer, required, error);
          const reason = protocol === 'h3' ? http3FailureReason(error) : undefined;
          if (reason === undefined || reason === 'idle-timeout') {
            if (protocol === 'h3' && reason !== undefined) this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
            throw this.#drainAware(peer.authority, error);
          }
          this.#fellBack(resolved, peer, observation, reason);
          protocol = 'h2';
        }
      }
    };
    const opened = await this.#deps.breaker.execute(peer.authority, open, resolved.profileName);
    return { opened, protocol };
  }

  client<S extends ServiceDefinition>(service: S, target: CallTarget): TypedClient<S> {
    // A peer list may still be empty when the client is made; only its binding is checked now.
    if (target.peerList !== undefined) {
      if (!Object.hasOwn(this.#deps.peerLists ?? {}, target.peerList)) this.#membersOf(target.peerList);
    } else {
      this.#resolve(target);
    }
    const client: Record<string, unknown> = {};
    for (const [key, definition] of Object.entries(service.methods)) {
      const method = definition as MethodDefinition<unknown, unknown>;
      if (method.requestStream) continue;
      client[key] = method.responseStream
        ? (request: unknown, options?: CallOptions) => this.#serverStream(service, method, request, { ...target, ...options })
        : async (request: unknown, options?: CallOptions) => (await this.#unary(service, method, request, { ...target, ...options })).message;
    }
    return client as TypedClient<S>;
  }

  httpDispatcher(target: { readonly endpoint: string; readonly profile?: string | undefined }): Dispatcher {
    const resolved = this.#resolve(target);
    const peer = resolved.peers[0];
    if (peer === undefined) throw new EndpointError('ENDPOINT_INVALID', target.endpoint, 'No endpoint given.');
    return this.#deps.http.dispatcherFor(resolved.profileName, peer.endpoint);
  }

  async probeHttp3(endpointOrTarget: string | Http3ProbeTarget): Promise<Http3ProbeResult> {
    const target: Http3ProbeTarget = typeof endpointOrTarget === 'string' ? { endpoint: endpointOrTarget } : endpointOrTarget;
    const resolved = this.#resolve(target);
    const peer = resolved.peers[0];
    if (peer === undefined) throw new EndpointError('ENDPOINT_INVALID', target.endpoint, 'No endpoint given.');
    const endpoint = peer.authority;
    if (!this.#deps.cache.hasTransport('h3')) return { endpoint, ok: false, reason: 'no-http3-transport' };
    const { clock, health } = this.#deps;
    const lease = this.#deps.cache.acquire(this.#dialTarget(resolved, peer), 'h3');
    try {
      const response = await lease.connection.unary({
        path: '/grpc.health.v1.Health/Check',
        message: HealthCheckRequest.encode({ service: target.service ?? '' }).finish(),
        metadata: {},
        deadline: wireDeadline(clock, clock.now() + resolved.profile.connectTimeoutMs),
        signal: undefined,
      });
      const status = HealthCheckResponse.decode(response.message).status;
      if (status === HealthCheckResponse_ServingStatus.SERVING) {
        health.markHealthy(endpoint);
        return { endpoint, ok: true, reason: undefined };
      }
      health.markBroken(endpoint, 'probe', resolved.profile.http3Health);
      return { endpoint, ok: false, reason: `health status ${HealthCheckResponse_ServingStatus[status] ?? status}` };
    } catch (error) {
      health.markBroken(endpoint, 'probe', resolved.profile.http3Health);
      return { endpoint, ok: false, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      lease.release();
    }
  }

  connections(): CacheEntryInfo[] {
    return this.#deps.cache.entries();
  }

  /** Runs the attempts of one call: peer choice, breaker, retry with backoff inside the deadline. */
  async #run<T>(
    service: ServiceDefinition,
    methodName: string,
    message: Uint8Array,
    resolved: ResolvedTarget,
    options: CallOptions,
    attemptOn: (peer: PeerCandidate, call: WireCall, observation: RpcObservation) => Promise<AttemptOutcome<T>>,
  ): Promise<{ value: T; protocol: WireProtocol; attempts: number }> {
    const { clock, random } = this.#deps;
    const deadline = clock.now() + (options.deadlineMs ?? resolved.profile.deadlineMs);
    const tried = new Set<string>();
    let observation: RpcObservation | undefined;
    // A circuit may open between the pick and the call (another call's probe failed); the
    // call is then placed on another peer without counting an attempt, at most once per peer.
    let rejections = 0;
    // Requests the server refused without processing them, sent again without counting an attempt.
    let transparent = 0;
    for (let attempt = 1; ; attempt++) {
      let peer: PeerCandidate | undefined;
      let rejectedByBreaker = false;
      try {
        peer = this.#pick(resolved, attempt, tried);
        observation ??= this.#deps.telemetry.start({ service: service.fullName, method: methodName, endpoint: peer.authority, profile: resolved.profileName, caller: callerOf(options, this.#deps.caller ?? 'control-plane') });
        observation.noteAttempt(attempt, peer.authority, this.#deps.breaker.state(peer.authority, resolved.profileName));
        tried.add(peer.authority);
        if (options.signal?.aborted === true) throw cancelled(peer.authority, options.signal.reason);
        const wireCall: WireCall = {
          path: `/${service.fullName}/${methodName}`,
          message,
          metadata: { ...resolved.metadata, ...options.metadata },
          deadline: wireDeadline(clock, deadline),
          signal: options.signal,
        };
        const chosen = peer;
        const currentObservation = observation;
        const startedAt = this.#refusalSeq;
        this.#deps.chooser.onCallStart?.(chosen.authority);
        let ok = false;
        try {
          const attemptOnPeer = (): Promise<AttemptOutcome<T>> =>
            attemptOn(chosen, wireCall, currentObservation).catch((error: unknown) => {
              throw this.#drainAware(chosen.authority, error);
            });
          const outcome = await this.#deps.breaker.execute(chosen.authority, attemptOnPeer, resolved.profileName).catch((error: unknown) => {
            rejectedByBreaker = error instanceof PeerUnavailableError && error.code === 'CIRCUIT_OPEN';
            throw error;
          });
          ok = true;
          if (this.#refusedUntil.size > 0) this.#servedBy(chosen.authority, startedAt);
          observation.end(GRPC_STATUS.OK);
          return { value: outcome.value, protocol: outcome.protocol, attempts: attempt };
        } finally {
          this.#deps.chooser.onCallEnd?.(chosen.authority, ok);
        }
      } catch (raw) {
        if (rejectedByBreaker && rejections < resolved.peers.length && options.signal?.aborted !== true) {
          rejections++;
          attempt--;
          continue;
        }
        const refusal = refusalOf(raw);
        if (refusal !== undefined && peer !== undefined) {
          this.#noteRefused(peer.authority, resolved.profile, refusal);
          if (transparent < MAX_TRANSPARENT_RETRIES && options.signal?.aborted !== true && clock.now() < deadline) {
            transparent++;
            observation?.noteTransparentRetry(attempt, peer.authority, refusal.details);
            attempt--;
            continue;
          }
        }
        const error = options.signal?.aborted === true && !(raw instanceof OmniRelayError && raw.code !== 'RPC_FAILED') ? cancelled(peer?.authority ?? '', options.signal.reason) : raw;
        const delay = nextRetryDelay({ attempt, error, options: resolved.profile.retry, now: clock.now(), deadline, random });
        if (delay === undefined) {
          observation?.end(statusOf(error), error as Error);
          throw error;
        }
        const sleepSignal = options.signal === undefined ? this.#disposing.signal : AbortSignal.any([options.signal, this.#disposing.signal]);
        await sleep(delay, sleepSignal).catch((reason: unknown) => {
          const abort = this.#disposed ? new DisposedError('The control-plane client factory') : cancelled(peer?.authority ?? '', reason);
          observation?.end(abort instanceof RpcError ? GRPC_STATUS.CANCELLED : statusOf(abort), abort);
          throw abort;
        });
        if (this.#disposed) {
          const disposed = new DisposedError('The control-plane client factory');
          observation?.end(statusOf(disposed), disposed);
          throw disposed;
        }
      }
    }
  }

  /**
   * Offers the chooser every peer that is not draining and whose circuit is not open. When
   * every circuit is open the call fails fast (CIRCUIT_OPEN), unless the profile's
   * `breaker.whenAllOpen` is `probe-least-recently-failed`: then the peer whose last failure
   * is oldest gets the call as its half-open probe.
   */
  #pick(resolved: ResolvedTarget, attempt: number, tried: ReadonlySet<string>): PeerCandidate {
    const profile = resolved.profileName;
    const closed = this.#offered(resolved);
    if (closed.length === 0) {
      const notDraining = resolved.peers.filter((p) => this.#deps.hints.get(p.authority).draining !== true);
      if (notDraining.length === 0) {
        const all = resolved.peers.map((p) => p.authority);
        throw new PeerUnavailableError('PEER_DRAINING', all, `Every peer is draining (${all.join(', ')}); no new calls are placed on a draining endpoint.`);
      }
      return this.#degraded(resolved, notDraining);
    }
    const peer = this.#deps.chooser.choose(closed, { profile, attempt, tried, peerSet: resolved.peerSet });
    if (peer === undefined) throw new PeerUnavailableError('PEER_UNAVAILABLE', closed.map((p) => p.authority), `The peer chooser picked none of ${closed.map((p) => p.authority).join(', ')}.`);
    return peer;
  }

  /** The last offered list per target, reused while the same peers are left out. */
  readonly #offeredMemo = new WeakMap<ResolvedTarget, { readonly excluded: readonly number[]; readonly offered: readonly PeerCandidate[] }>();

  /**
   * The peers that are not draining and whose circuit is not open, less those that just
   * refused work (a draining server's GOAWAY, a refused stream) while any other is left. One
   * pass over the peers; the same array comes back while the same peers are left out (the
   * target's own list when none is), so a pick allocates nothing and choosers may key state
   * on the array.
   */
  #offered(resolved: ResolvedTarget): readonly PeerCandidate[] {
    const { hints, breaker } = this.#deps;
    const profile = resolved.profileName;
    const peers = resolved.peers;
    const avoidRefusing = this.#refusedUntil.size > 0;
    let excluded: number[] | undefined;
    let refusing: number[] | undefined;
    let usable = 0;
    for (let i = 0; i < peers.length; i++) {
      const authority = (peers[i] as PeerCandidate).authority;
      if (hints.get(authority).draining === true || breaker.state(authority, profile) === 'open') {
        (excluded ??= []).push(i);
      } else if (avoidRefusing && this.#isRefusing(authority)) {
        (refusing ??= []).push(i);
      } else {
        usable++;
      }
    }
    if (refusing !== undefined && usable > 0) excluded = excluded === undefined ? refusing : [...excluded, ...refusing].sort((a, b) => a - b);
    if (excluded === undefined) return peers;
    const memo = this.#offeredMemo.get(resolved);
    if (memo !== undefined && memo.excluded.length === excluded.length && memo.excluded.every((index, i) => index === excluded[i])) return memo.offered;
    const skip = new Set(excluded);
    const offered = peers.filter((_, i) => !skip.has(i));
    this.#offeredMemo.set(resolved, { excluded, offered });
    return offered;
  }

  /** Every circuit is open: fail fast, or probe the least recently failed peer. */
  #degraded(resolved: ResolvedTarget, open: readonly PeerCandidate[]): PeerCandidate {
    const { breaker } = this.#deps;
    const profile = resolved.profileName;
    const names = open.map((p) => p.authority);
    if (resolved.profile.breaker.whenAllOpen === 'probe-least-recently-failed' && breaker.allowProbe !== undefined) {
      let best: PeerCandidate | undefined;
      let bestAt = Number.POSITIVE_INFINITY;
      for (const peer of open) {
        const at = breaker.lastFailureAt?.(peer.authority, profile) ?? Number.NEGATIVE_INFINITY;
        if (best === undefined || at < bestAt) {
          best = peer;
          bestAt = at;
        }
      }
      if (best !== undefined) {
        breaker.allowProbe(best.authority, profile);
        return best;
      }
    }
    throw new PeerUnavailableError('CIRCUIT_OPEN', names, `The circuit is open for every available peer (${names.join(', ')}); calls fail fast until a half-open probe succeeds.`);
  }

  #protocolFor(resolved: ResolvedTarget, peer: PeerCandidate) {
    return chooseProtocol({
      profile: resolved.profile,
      hint: this.#deps.hints.get(peer.authority),
      http3Registered: this.#deps.cache.hasTransport('h3'),
      http3Broken: this.#deps.health.isBroken(peer.authority),
    });
  }

  #dialTarget(resolved: ResolvedTarget, peer: PeerCandidate): DialTarget {
    return {
      endpoint: peer.endpoint,
      profileName: resolved.profileName,
      profile: resolved.profile,
      tls: this.#deps.tls.current(resolved.profileName),
      peerValidator: this.#deps.tls.peerValidator,
    };
  }

  /**
   * One attempt on one peer: HTTP/3 when selection allows it; if HTTP/3 fails before
   * anything reached the server, the endpoint is marked broken, the fallback counted, and
   * the same call goes over HTTP/2 with the same TLS material. TLS verification failures
   * never fall back: a peer HTTP/3 rejected is not accepted over HTTP/2 either.
   */
  async #onProtocol<T>(
    resolved: ResolvedTarget,
    peer: PeerCandidate,
    observation: RpcObservation,
    call: WireCall,
    send: (connection: { unary(call: WireCall): Promise<WireUnaryResult> }) => Promise<T>,
  ): Promise<AttemptOutcome<T>> {
    const target = this.#dialTarget(resolved, peer);
    const choice = this.#protocolFor(resolved, peer);
    if (choice.required !== undefined) {
      this.#checkRequirement(resolved, peer, choice);
      observation.span.setAttribute(ATTR_PROTOCOL_REASON, 'required');
      try {
        return { value: await this.#sendOn(target, 'h3', peer, observation, send), protocol: 'h3' };
      } catch (error) {
        throw this.#requiredFailure(resolved, peer, choice.required, error);
      }
    }
    if (choice.protocol === 'h3' && (await this.#raceHttp3(resolved, peer, target, observation, call)) === 'h3') {
      try {
        return { value: await this.#sendOn(target, 'h3', peer, observation, send), protocol: 'h3' };
      } catch (error) {
        const reason = http3FailureReason(error);
        if (reason === undefined) throw error;
        this.#fellBack(resolved, peer, observation, reason);
        if (reason === 'idle-timeout') throw error;
      }
    } else if (choice.reason !== undefined && resolved.profile.http3 === 'prefer') {
      observation.span.setAttribute(ATTR_PROTOCOL_REASON, choice.reason);
    }
    return { value: await this.#sendOn(target, 'h2', peer, observation, send), protocol: 'h2' };
  }

  /** One attempt on a leased connection of `protocol`; an HTTP/3 success clears the endpoint's HTTP/3 failure memory. */
  async #sendOn<T>(target: DialTarget, protocol: WireProtocol, peer: PeerCandidate, observation: RpcObservation, send: (connection: { unary(call: WireCall): Promise<WireUnaryResult> }) => Promise<T>): Promise<T> {
    observation.setProtocol(protocol);
    const lease = this.#deps.cache.acquire(target, protocol);
    try {
      const value = await send(lease.connection);
      if (protocol === 'h3') this.#deps.health.markHealthy(peer.authority);
      return value;
    } finally {
      lease.release();
    }
  }

  /**
   * HTTP/3 is required but ruled out (the profile disables it or is insecure, the endpoint's
   * hint denies it, or no HTTP/3 transport is registered): a ConfigError naming both sides.
   * Configured hints cannot get here (validation refuses them); live hints and a null
   * `TOKENS.Http3Transport` can. Not retried, not counted by the breaker.
   */
  #checkRequirement(resolved: ResolvedTarget, peer: PeerCandidate, choice: ProtocolChoice): void {
    if (choice.conflict === undefined) return;
    const profileKey = `profiles.${resolved.profileName}.http3`;
    const configured = Object.keys(this.#deps.options.current.endpoints).find((name) => this.#authorityOf(name)[0] === peer.authority);
    const hintKey = configured !== undefined ? `endpoints.${configured}.hints.http3` : `EndpointHints[${peer.authority}].http3`;
    const hint = this.#deps.hints.get(peer.authority).http3;
    const requiredBy = choice.required === 'profile' ? `profile "${resolved.profileName}" requires HTTP/3 (http3 "require")` : `the hint for ${peer.authority} requires HTTP/3 (http3 "require")`;
    const issues: ConfigIssue[] = [];
    switch (choice.conflict) {
      case 'profile-disabled':
        issues.push({ key: profileKey, message: `is "disable" (HTTP/2 only), but ${requiredBy}: no protocol is left for the call` });
        issues.push({ key: hintKey, message: `"require" (HTTP/3 only) contradicts profile "${resolved.profileName}", which disables HTTP/3; remove the hint or allow HTTP/3 in the profile` });
        break;
      case 'insecure':
        issues.push({ key: hintKey, message: `"require" (HTTP/3 only) needs TLS, but profile "${resolved.profileName}" has tls.mode "insecure"` });
        break;
      case 'hint-denied':
        issues.push({ key: hintKey, message: `"${String(hint)}" (HTTP/2 only), but ${requiredBy}: no protocol is left for the call` });
        issues.push({ key: profileKey, message: `is "require" (HTTP/3 only), but the hint for ${peer.authority} denies HTTP/3; remove the hint or use a profile that allows HTTP/2` });
        break;
      case 'no-http3-transport':
        issues.push({
          key: choice.required === 'profile' ? profileKey : hintKey,
          message: `"require" (HTTP/3 only), but no HTTP/3 transport is registered (TOKENS.Http3Transport is bound to null)`,
        });
        break;
    }
    throw new ConfigError(issues, `HTTP/3 requirement for a call to ${peer.authority}`);
  }

  /**
   * A required HTTP/3 attempt failed. A transport failure (connect, refused UDP, handshake,
   * idle timeout, a deadline spent connecting) becomes the call's error, saying that HTTP/3
   * was required, by whom, and why it failed (`http3Required` set; status and failure kind
   * kept, so the retry policy and the breaker judge it as usual). The endpoint's HTTP/3 health
   * memory learns from it for calls that may fall back. gRPC statuses from the server, TLS
   * errors and refusals pass through as they are.
   */
  #requiredFailure(resolved: ResolvedTarget, peer: PeerCandidate, required: Http3Requirement, error: unknown): unknown {
    if (!(error instanceof RpcError)) return error;
    const failure = error.failure;
    if (failure !== 'connect' && failure !== 'handshake' && failure !== 'idle-timeout') return error;
    const reason = http3FailureReason(error);
    if (reason !== undefined) this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
    const by = required === 'profile' ? `profile "${resolved.profileName}" has http3 "require"` : `the endpoint hint for ${peer.authority} has http3 "require"`;
    return new RpcError(error.status, error.statusName, `HTTP/3 is required (${by}), so HTTP/2 was not tried; HTTP/3 failed (${failure}): ${error.details}`, { ...error.context, protocol: 'h3', http3Required: true });
  }

  /** Records a fall back from HTTP/3 to HTTP/2: health memory, the fallback counter, the span. */
  #fellBack(resolved: ResolvedTarget, peer: PeerCandidate, observation: RpcObservation | undefined, reason: Http3FailureReason | 'race-delay'): void {
    if (reason !== 'race-delay') this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
    this.#deps.telemetry.recordFallback({ endpoint: peer.authority, profile: resolved.profileName, from: 'h3', to: 'h2', reason });
    observation?.noteFallback('h3', 'h2', reason);
  }

  /**
   * HTTP/3 connections whose dial lost a race to HTTP/2 and is still pending: calls to their
   * endpoint go to HTTP/2 at once (no race delay each) until the dial settles; then a success
   * moves later calls to HTTP/3 and a failure marks the endpoint broken (Http3Health). Keyed by
   * the cached connection, so a new HTTP/3 connection (new generation, new TLS) races afresh.
   */
  readonly #http3Pending = new WeakSet<object>();

  /**
   * Happy eyeballs (RFC 8305 style) between HTTP/3 and HTTP/2 for a connection that is not
   * up yet: dial HTTP/3; if it is not established within the profile's `http3RaceDelayMs`,
   * dial HTTP/2 alongside and use whichever is ready first. When HTTP/2 wins, HTTP/3 keeps
   * connecting in the background: meanwhile the endpoint's calls use HTTP/2 at once (span
   * reason `http3-pending`); if it fails, the endpoint is marked broken; if it succeeds, later
   * calls use it. So a blocked UDP path costs one call the race delay, not a QUIC timeout.
   * HTTP/2's definite answers decide the call without waiting for HTTP/3: a TLS failure over
   * HTTP/2 (certificate or name rejected, client certificate refused) is thrown at once. A TLS
   * verification failure on HTTP/3 is thrown too: it never falls back. The whole race is
   * bounded by the call's deadline and abort signal.
   */
  async #raceHttp3(resolved: ResolvedTarget, peer: PeerCandidate, target: DialTarget, observation: RpcObservation | undefined, call: WireCall): Promise<'h3' | 'h2'> {
    const h3 = this.#deps.cache.acquire(target, 'h3');
    try {
      const ready = h3.connection.ready?.();
      if (ready === undefined) return 'h3';
      // An endpoint whose HTTP/3 handshake failed certificate verification is not raced, and
      // never falls back: its next calls wait (within their deadline) for a fresh HTTP/3
      // handshake. A success clears the mark; any failure fails the call and keeps the mark,
      // so HTTP/2 never carries calls to a peer HTTP/3 rejected, even if UDP then goes quiet.
      const rejectedKey = `${resolved.profileName}\u0000${peer.authority}`;
      if (this.#http3Rejected.has(rejectedKey)) {
        const failure = await withinCall(ready, call, peer.authority, this.#disposing.signal).then(
          () => undefined,
          (error: unknown) => (error instanceof Error ? error : new Error(`HTTP/3 connection failed: ${String(error)}`)),
        );
        if (failure !== undefined) throw failure;
        this.#http3Rejected.delete(rejectedKey);
        return 'h3';
      }
      // HTTP/2 already won against this HTTP/3 dial, which is still pending: no race, no wait.
      if (this.#http3Pending.has(h3.connection)) {
        ready.catch(() => undefined); // its outcome is handled where the race was lost
        observation?.span.setAttribute(ATTR_PROTOCOL_REASON, 'http3-pending');
        return 'h2';
      }
      const noteRejection = (error: unknown): void => {
        if (error instanceof TlsError) this.#http3Rejected.add(rejectedKey);
      };
      ready.catch(noteRejection);
      type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };
      const h3Outcome: Promise<Outcome> = ready.then(
        () => ({ ok: true }),
        (error: unknown) => ({ ok: false, error }),
      );
      const settle = (outcome: Outcome): 'h3' | 'h2' => {
        if (outcome.ok) return 'h3';
        const reason = http3FailureReason(outcome.error);
        if (reason === undefined) throw outcome.error;
        this.#fellBack(resolved, peer, observation, reason);
        return 'h2';
      };
      let timer: NodeJS.Timeout | undefined;
      const delay = new Promise<undefined>((resolve) => {
        timer = setTimeout(resolve, resolved.profile.http3RaceDelayMs, undefined);
      });
      const first = await withinCall(Promise.race([h3Outcome, delay]), call, peer.authority, this.#disposing.signal).finally(() => clearTimeout(timer));
      if (first !== undefined) return settle(first);

      const h2 = this.#deps.cache.acquire(target, 'h2');
      try {
        type H2Outcome = { readonly h2: 'ready' } | { readonly h2: 'failed'; readonly error: unknown };
        const h2Ready: Promise<H2Outcome> = (h2.connection.ready?.() ?? Promise.resolve()).then(
          () => ({ h2: 'ready' }),
          (error: unknown) => ({ h2: 'failed', error }),
        );
        const second = await withinCall<Outcome | H2Outcome>(Promise.race([h3Outcome, h2Ready]), call, peer.authority, this.#disposing.signal, 'HTTP/3 and HTTP/2');
        if ('ok' in second) return settle(second);
        if (second.h2 === 'failed') {
          // A TLS failure over HTTP/2 is a definite answer about this peer (or our
          // certificate): HTTP/3, still silent, would only make the call wait for its timeout.
          if (second.error instanceof TlsError) throw second.error;
          return settle(await withinCall(h3Outcome, call, peer.authority, this.#disposing.signal));
        }
        // HTTP/2 is up first: use it, and let HTTP/3 finish in the background to learn from it;
        // until then the endpoint's calls go to HTTP/2 without waiting.
        const pending = h3.connection;
        this.#http3Pending.add(pending);
        void h3Outcome.then((outcome) => {
          this.#http3Pending.delete(pending);
          const reason = outcome.ok ? undefined : http3FailureReason(outcome.error);
          if (reason !== undefined) this.#deps.health.markBroken(peer.authority, reason, resolved.profile.http3Health);
        });
        this.#fellBack(resolved, peer, observation, 'race-delay');
        return 'h2';
      } finally {
        h2.release();
      }
    } finally {
      h3.release();
    }
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#disposing.abort(new DisposedError('The control-plane client factory'));
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#deps.cache.dispose();
    await this.#deps.http.dispose();
    this.#deps.hints.dispose();
    this.#deps.health.dispose();
  }
}
