import { setMaxListeners } from 'node:events';
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';
import type { OptionsMonitor } from '../config/options-monitor.js';
import type { ControlPlaneOptions } from '../config/types.js';
import { DisposedError, EndpointError, RpcError } from '../errors.js';
import type { EndpointHintStore } from '../hints/endpoint-hints.js';
import type { Http3Health } from '../hints/http3-health.js';
import type { IPeerChooser } from '../peers/peer-chooser.js';
import type { ICircuitBreaker } from '../resilience/circuit-breaker.js';
import type { RandomSource } from '../resilience/retry.js';
import type { RpcCaller, RpcTelemetry } from '../telemetry/index.js';
import type { ITlsProvider } from '../tls/tls-provider.js';
import type { ChannelCache, CacheEntryInfo, Lease } from '../transport/channel-cache.js';
import type { CallMetadata, PeerIdentity, WireProtocol, WireStream, WireUnaryResult } from '../transport/types.js';
import { GRPC_STATUS } from '../grpc/status.js';
import type { BidiStreamMethodKeys, ClientStreamMethodKeys, MethodDefinition, RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';
import { HealthCheckRequest, HealthCheckResponse, HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health.js';
import { wireDeadline, withinCall } from './call-bounds.js';
import { checkCallOptions, failedStream, kindOf, methodOf, type MethodKind } from './call-validation.js';
import { CacheInvalidation } from './cache-invalidation.js';
import { callerOf } from './caller.js';
import type { HttpDispatcherPool } from './http-dispatchers.js';
import { Picker } from './picker.js';
import { ProtocolSelector } from './protocol-selector.js';
import { RefusalMemory } from './refusal-memory.js';
import { RequestSource } from './request-source.js';
import { RetryingCall, type CallPlan, type Placed, type RetryMode } from './retrying-call.js';
import { TargetResolver, type PeerLists, type ResolvedTarget } from './target-resolver.js';
import type { BidiStream, CallOptions, CallTarget, Http3ProbeResult, Http3ProbeTarget, IGrpcControlPlaneClientFactory, TypedClient, UnaryResult } from './types.js';

export type { PeerLists } from './target-resolver.js';
export { MAX_TRANSPARENT_RETRIES } from './retrying-call.js';

/** Everything the factory runs on, built (see create-factory.ts for the defaults). */
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
  readonly caller?: RpcCaller | undefined;
  /** Named live peer lists (`CallTarget.peerList`); each emits the list's current members. */
  readonly peerLists?: PeerLists | undefined;
  /** Parts built for this factory alone, disposed (newest first) after its connections are closed. */
  readonly owned?: readonly { dispose(): void }[] | undefined;
}

/** A server stream up to its first message. */
interface OpenedStream {
  readonly lease: Lease;
  readonly iterator: AsyncIterator<Uint8Array>;
  readonly first: IteratorResult<Uint8Array>;
}

/** A client or bidi stream up to its first response (or its end). */
interface OpenedDuplex extends OpenedStream {
  readonly wire: WireStream;
}

/**
 * The responses of a placed stream, decoded, from its first one to its end; records the end
 * (OK, the failure, or CANCELLED when the consumer stops early, which also cancels the stream
 * on the wire) and releases the connection lease.
 */
async function* responses<Res>(placed: Placed<OpenedStream>, decode: (bytes: Uint8Array) => Res): AsyncIterable<Res> {
  const opened = placed.value;
  let finished = false;
  try {
    for (let step = opened.first; step.done !== true; step = await opened.iterator.next()) {
      yield decode(step.value);
    }
    finished = true;
    placed.finish({ ok: true });
  } catch (error) {
    const failure = placed.failure(error);
    placed.finish({ ok: false, error: failure });
    throw failure;
  } finally {
    if (!finished) await opened.iterator.return?.().catch(() => undefined);
    opened.lease.release();
    placed.finish({ ok: false, abandoned: true });
  }
}

/** `/package.Service/Method` of each method definition (a definition belongs to one service). */
const paths = new WeakMap<object, string>();

function pathOf(service: ServiceDefinition, method: MethodDefinition<unknown, unknown> | { readonly name: string }): string {
  let path = paths.get(method);
  if (path === undefined) {
    path = `/${service.fullName}/${method.name}`;
    paths.set(method, path);
  }
  return path;
}

/** The call's metadata: the configured endpoint's, overlaid by the call's own (no copy when the call adds none). */
function metadataOf(resolved: ResolvedTarget, options: CallOptions): CallMetadata {
  return options.metadata === undefined ? resolved.metadata : { ...resolved.metadata, ...options.metadata };
}

/** A unary (or client-stream) result: headers, trailers and the peer are read from the wire result only when asked for. */
class UnaryResponse<Res> implements UnaryResult<Res> {
  readonly #wire: WireUnaryResult;

  constructor(
    readonly message: Res,
    readonly protocol: WireProtocol,
    readonly endpoint: string,
    readonly attempts: number,
    wire: WireUnaryResult,
  ) {
    this.#wire = wire;
  }

  get peer(): PeerIdentity {
    return this.#wire.peer;
  }

  get headers(): Readonly<Record<string, string>> {
    return this.#wire.headers;
  }

  get trailers(): Readonly<Record<string, string>> {
    return this.#wire.trailers;
  }
}

/** The trailers a call that failed before or while it was placed carries (`{}` when it never reached a server). */
function trailersOf(error: unknown): Readonly<Record<string, string>> {
  return error instanceof RpcError ? (error.context.trailers ?? {}) : {};
}

/** A promise with its resolver, for the headers and trailers of a stream not placed yet. */
function settleLater<T>(): { readonly promise: Promise<T>; readonly resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * The factory's facade: validates a call, resolves its target and hands it to the call path —
 * retrying call → picker → protocol selector → channel cache lease → transport — then decodes
 * what comes back. Owns the layers, the cache-invalidation listener and, through `dispose`,
 * everything they opened.
 */
export class ControlPlaneClientFactory implements IGrpcControlPlaneClientFactory {
  readonly #deps: FactoryDependencies;
  readonly #resolver: TargetResolver;
  readonly #selector: ProtocolSelector;
  readonly #retrying: RetryingCall;
  readonly #invalidation: CacheInvalidation;
  #disposed = false;
  /** Aborted by dispose(): ends connection waits and retry backoff at once, so nothing outlives the factory. */
  readonly #disposing = new AbortController();

  constructor(deps: FactoryDependencies) {
    // Every call waiting for a connection or a retry listens to the disposal: a fan-out signal.
    setMaxListeners(0, this.#disposing.signal);
    this.#deps = deps;
    const stop = this.#disposing.signal;
    const refusals = new RefusalMemory(deps.clock);
    this.#resolver = new TargetResolver(deps.options, deps.peerLists);
    this.#selector = new ProtocolSelector({ cache: deps.cache, hints: deps.hints, health: deps.health, tls: deps.tls, telemetry: deps.telemetry, resolver: this.#resolver, stop });
    const picker = new Picker({ hints: deps.hints, breaker: deps.breaker, chooser: deps.chooser, refusals });
    this.#retrying = new RetryingCall({ clock: deps.clock, random: deps.random, chooser: deps.chooser, breaker: deps.breaker, telemetry: deps.telemetry, picker, refusals, stop });
    this.#invalidation = new CacheInvalidation(deps.cache, { options: deps.options, tls: deps.tls, hints: deps.hints, health: deps.health, resolver: this.#resolver });
    this.#preloadTls(deps.options.current);
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

  #resolve(target: CallTarget): ResolvedTarget {
    if (this.#disposed) throw new DisposedError('The control-plane client factory');
    return this.#resolver.resolve(target);
  }

  /**
   * The call's target; a call to a peer list that has not emitted yet queues for its first
   * members within the call's deadline, abort signal and the factory's disposal (the time it
   * waited, `queuedMs`, is taken from the call's budget).
   */
  async #resolveQueued(target: CallTarget & CallOptions, kind: MethodKind): Promise<{ readonly resolved: ResolvedTarget; readonly queuedMs: number }> {
    if (this.#disposed) throw new DisposedError('The control-plane client factory');
    const first = target.peerList === undefined ? undefined : this.#resolver.firstMembers(target.peerList);
    if (first === undefined) return { resolved: this.#resolve(target), queuedMs: 0 };
    const { clock } = this.#deps;
    const started = clock.now();
    const budget = this.#budgetOf(target, kind);
    const deadline = budget === Number.POSITIVE_INFINITY ? budget : wireDeadline(clock, started + budget);
    await withinCall(first, { deadline, signal: target.signal }, target.peerList ?? '', this.#disposing.signal, { waitingFor: `the first members of peer list "${target.peerList ?? ''}"` });
    return { resolved: this.#resolve(target), queuedMs: clock.now() - started };
  }

  /** The call's budget before it is resolved: the call's own deadline, else the profile's (of the target's profile, or the configured endpoint's, or control-plane). */
  #budgetOf(target: CallTarget & CallOptions, kind: MethodKind): number {
    const requested = target.deadlineMs;
    if (requested === 'none') return Number.POSITIVE_INFINITY;
    if (requested !== undefined) return requested;
    const profile = this.#deps.options.current.profiles[target.profile ?? 'control-plane'];
    const budget = profile === undefined ? undefined : kind === 'unary' ? profile.deadlineMs : profile.streamDeadlineMs;
    return budget === undefined || budget === 'none' ? Number.POSITIVE_INFINITY : budget;
  }

  /** The retrying layer's view of one call. */
  #plan(service: ServiceDefinition, method: { readonly name: string }, resolved: ResolvedTarget, options: CallOptions, kind: MethodKind, retries: RetryMode, queuedMs = 0): CallPlan {
    const requested = options.deadlineMs;
    const budget = requested ?? (kind === 'unary' ? resolved.profile.deadlineMs : resolved.profile.streamDeadlineMs);
    return {
      service: service.fullName,
      method: method.name,
      resolved,
      deadlineMs: budget === 'none' ? Number.POSITIVE_INFINITY : Math.max(0, budget - queuedMs),
      signal: options.signal,
      caller: callerOf(options, this.#deps.caller ?? 'control-plane'),
      retries,
    };
  }

  unary<S extends ServiceDefinition, K extends UnaryMethodKeys<S>>(service: S, method: K, request: RequestOf<S, K>, target: CallTarget & CallOptions): Promise<UnaryResult<ResponseOf<S, K>>> {
    let definition: MethodDefinition<RequestOf<S, K>, ResponseOf<S, K>>;
    try {
      definition = methodOf(service, method, 'unary');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#unary(service, definition, request, target);
  }

  async #unary<Req, Res>(service: ServiceDefinition, method: MethodDefinition<Req, Res>, request: Req, target: CallTarget & CallOptions): Promise<UnaryResult<Res>> {
    checkCallOptions(target, 'unary');
    const { resolved, queuedMs } = await this.#resolveQueued(target, 'unary');
    const message = method.requestType.encode(request).finish();
    const path = pathOf(service, method);
    const metadata = metadataOf(resolved, target);
    const plan = this.#plan(service, method, resolved, target, 'unary', 'policy', queuedMs);
    const placed = await this.#retrying.place(plan, (peer, call, observation) =>
      this.#selector.send(resolved, peer, observation, call, async (lease): Promise<WireUnaryResult> => {
        try {
          return await lease.connection.unary({ path, message, metadata, deadline: call.deadline, signal: call.signal });
        } finally {
          lease.release();
        }
      }),
    );
    placed.finish({ ok: true });
    return new UnaryResponse(method.responseType.decode(placed.value.message), placed.sent, placed.peer, placed.attempts, placed.value);
  }

  serverStream<S extends ServiceDefinition, K extends ServerStreamMethodKeys<S>>(service: S, method: K, request: RequestOf<S, K>, target: CallTarget & CallOptions): AsyncIterable<ResponseOf<S, K>> {
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
    checkCallOptions(target, 'server-stream');
    const { resolved, queuedMs } = await this.#resolveQueued(target, 'server-stream');
    const message = method.requestType.encode(request).finish();
    const path = pathOf(service, method);
    const metadata = metadataOf(resolved, target);
    const plan = this.#plan(service, method, resolved, target, 'server-stream', 'transparent', queuedMs);
    const placed = await this.#retrying.place(plan, (peer, call, observation) =>
      this.#selector.send(resolved, peer, observation, call, async (lease): Promise<OpenedStream> => {
        try {
          const iterator = lease.connection.serverStream({ path, message, metadata, deadline: call.deadline, signal: call.signal })[Symbol.asyncIterator]();
          return { lease, iterator, first: await iterator.next() };
        } catch (error) {
          lease.release();
          throw error;
        }
      }),
    );
    yield* responses(placed, (bytes) => method.responseType.decode(bytes));
  }

  clientStream<S extends ServiceDefinition, K extends ClientStreamMethodKeys<S>>(
    service: S,
    method: K,
    requests: AsyncIterable<RequestOf<S, K>>,
    target: CallTarget & CallOptions,
  ): Promise<UnaryResult<ResponseOf<S, K>>> {
    let definition: MethodDefinition<RequestOf<S, K>, ResponseOf<S, K>>;
    try {
      definition = methodOf(service, method, 'client-stream');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#clientStream(service, definition, requests, target);
  }

  /**
   * Placed like a unary call, never retried (the requests cannot be read twice): the response
   * and the status end the call. A server that ends it without exactly one response message
   * breaks the call's contract: INTERNAL (as grpc-go and grpc-js report it).
   */
  async #clientStream<Req, Res>(service: ServiceDefinition, method: MethodDefinition<Req, Res>, requests: AsyncIterable<Req>, target: CallTarget & CallOptions): Promise<UnaryResult<Res>> {
    const source = new RequestSource(requests, (request: Req) => method.requestType.encode(request).finish());
    let placed: Placed<OpenedDuplex>;
    try {
      placed = await this.#openDuplex(service, method, source, target, 'client-stream');
    } catch (error) {
      source.close();
      throw error;
    }
    const opened = placed.value;
    const violation = (details: string): RpcError => new RpcError(GRPC_STATUS.INTERNAL, 'INTERNAL', details, { endpoint: placed.peer, protocol: placed.sent });
    try {
      if (opened.first.done === true) throw violation(`${service.fullName}/${method.name} is client-streaming, but the server ended the call without a response message`);
      const end = await opened.iterator.next();
      if (end.done !== true) throw violation(`${service.fullName}/${method.name} is client-streaming, but the server sent more than one response message`);
      const message = method.responseType.decode(opened.first.value);
      const [headers, trailers] = await Promise.all([opened.wire.headers, opened.wire.trailers]);
      placed.finish({ ok: true });
      return { message, protocol: placed.sent, endpoint: placed.peer, peer: opened.wire.peer, attempts: placed.attempts, headers: headers ?? {}, trailers };
    } catch (error) {
      const failure = placed.failure(error);
      placed.finish({ ok: false, error: failure });
      throw failure;
    } finally {
      await opened.iterator.return?.().catch(() => undefined);
      opened.lease.release();
      source.close();
    }
  }

  bidiStream<S extends ServiceDefinition, K extends BidiStreamMethodKeys<S>>(
    service: S,
    method: K,
    requests: AsyncIterable<RequestOf<S, K>>,
    target: CallTarget & CallOptions,
  ): BidiStream<ResponseOf<S, K>> {
    let definition: MethodDefinition<RequestOf<S, K>, ResponseOf<S, K>>;
    try {
      definition = methodOf(service, method, 'bidi-stream');
    } catch (error) {
      return { headers: Promise.resolve(undefined), trailers: Promise.resolve({}), ...failedStream<ResponseOf<S, K>>(error) };
    }
    return this.#bidi(service, definition, requests, target);
  }

  #bidi<Req, Res>(service: ServiceDefinition, method: MethodDefinition<Req, Res>, requests: AsyncIterable<Req>, target: CallTarget & CallOptions): BidiStream<Res> {
    const headers = settleLater<Readonly<Record<string, string>> | undefined>();
    const trailers = settleLater<Readonly<Record<string, string>>>();
    const responses = this.#bidiStream(service, method, requests, target, (h, t) => {
      void h.then(headers.resolve);
      void t.then(trailers.resolve);
    });
    return { headers: headers.promise, trailers: trailers.promise, [Symbol.asyncIterator]: () => responses[Symbol.asyncIterator]() };
  }

  /**
   * Placed like a server stream (peer, protocol, the breaker until the first response), never
   * retried. `onPlaced` gets the headers and trailers of the call's wire stream, or settled
   * ones when the call failed before it was placed.
   */
  async *#bidiStream<Req, Res>(
    service: ServiceDefinition,
    method: MethodDefinition<Req, Res>,
    requests: AsyncIterable<Req>,
    target: CallTarget & CallOptions,
    onPlaced: (headers: Promise<Readonly<Record<string, string>> | undefined>, trailers: Promise<Readonly<Record<string, string>>>) => void,
  ): AsyncIterable<Res> {
    const source = new RequestSource(requests, (request: Req) => method.requestType.encode(request).finish());
    let placed: Placed<OpenedDuplex>;
    try {
      placed = await this.#openDuplex(service, method, source, target, 'bidi-stream');
    } catch (error) {
      source.close();
      onPlaced(Promise.resolve(undefined), Promise.resolve(trailersOf(error)));
      throw error;
    }
    onPlaced(placed.value.wire.headers, placed.value.wire.trailers);
    try {
      yield* responses(placed, (bytes) => method.responseType.decode(bytes));
    } finally {
      source.close();
    }
  }

  /**
   * Opens a client or bidi stream up to its first response: placed through the retrying call
   * (no retries) and the protocol selector, which may move it from HTTP/3 to HTTP/2 only while
   * no request was taken from the caller's iterable.
   */
  async #openDuplex<Req>(service: ServiceDefinition, method: MethodDefinition<Req, unknown>, source: RequestSource<Req>, target: CallTarget & CallOptions, kind: 'client-stream' | 'bidi-stream'): Promise<Placed<OpenedDuplex>> {
    checkCallOptions(target, kind);
    const { resolved, queuedMs } = await this.#resolveQueued(target, kind);
    const path = pathOf(service, method);
    const metadata = metadataOf(resolved, target);
    const plan = this.#plan(service, method, resolved, target, kind, 'none', queuedMs);
    const replayable = (): boolean => source.pulled === 0;
    return this.#retrying.place(plan, (peer, call, observation) =>
      this.#selector.send(
        resolved,
        peer,
        observation,
        call,
        async (lease): Promise<OpenedDuplex> => {
          try {
            const wire = lease.connection.stream({ path, messages: source.forAttempt(), metadata, deadline: call.deadline, signal: call.signal });
            const iterator = wire[Symbol.asyncIterator]();
            return { lease, wire, iterator, first: await iterator.next() };
          } catch (error) {
            lease.release();
            throw error;
          }
        },
        replayable,
      ),
    );
  }

  client<S extends ServiceDefinition>(service: S, target: CallTarget): TypedClient<S> {
    if (this.#disposed) throw new DisposedError('The control-plane client factory');
    this.#resolver.check(target);
    const client: Record<string, unknown> = {};
    for (const [key, definition] of Object.entries(service.methods)) {
      const method = definition as MethodDefinition<unknown, unknown>;
      switch (kindOf(method)) {
        case 'unary':
          client[key] = async (request: unknown, options?: CallOptions) => (await this.#unary(service, method, request, { ...target, ...options })).message;
          break;
        case 'server-stream':
          client[key] = (request: unknown, options?: CallOptions) => this.#serverStream(service, method, request, { ...target, ...options });
          break;
        case 'client-stream':
          client[key] = async (requests: AsyncIterable<unknown>, options?: CallOptions) => (await this.#clientStream(service, method, requests, { ...target, ...options })).message;
          break;
        case 'bidi-stream':
          client[key] = (requests: AsyncIterable<unknown>, options?: CallOptions) => this.#bidi(service, method, requests, { ...target, ...options });
          break;
      }
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
    const lease = this.#deps.cache.acquire(this.#selector.dialTarget(resolved, peer), 'h3');
    try {
      const response = await lease.connection.unary({
        path: '/grpc.health.v1.Health/Check',
        message: HealthCheckRequest.encode({ service: target.service ?? '' }).finish(),
        metadata: {},
        deadline: wireDeadline(clock, clock.now() + resolved.profile.connectTimeoutMs),
        signal: this.#disposing.signal,
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

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#disposing.abort(new DisposedError('The control-plane client factory'));
    this.#invalidation.dispose();
    this.#resolver.dispose();
    this.#deps.cache.dispose();
    await this.#deps.http.dispose();
    this.#deps.hints.dispose();
    for (const part of [...(this.#deps.owned ?? [])].reverse()) part.dispose();
  }
}
