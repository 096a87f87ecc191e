import type { Dispatcher } from 'undici';
import type { ControlPlaneOptions } from '../config/types.js';
import type { CacheEntryInfo } from '../transport/channel-cache.js';
import type { CallMetadata, PeerIdentity, WireProtocol } from '../transport/types.js';
import type { BidiStreamMethodKeys, ClientStreamMethodKeys, RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';

/** Where a call goes. Give `endpoint` (a URL or a configured endpoint's name), `peers` or `peerList`. */
export interface CallTarget {
  /** Profile name; default: the configured endpoint's profile, else `control-plane`. */
  readonly profile?: string | undefined;
  /** `https://host:port`, `host:port`, or the name of an endpoint in the options. */
  readonly endpoint?: string | undefined;
  /** Several replicas; the peer chooser picks one per attempt. */
  readonly peers?: readonly string[] | undefined;
  /**
   * The name of a live peer list bound to `TOKENS.PeerLists`: the call goes to one of the
   * list's current members (endpoint names or URLs), picked as for `peers`.
   */
  readonly peerList?: string | undefined;
}

export interface CallOptions {
  /**
   * Relative deadline in ms; default: the profile's `deadlineMs` (unary) or `streamDeadlineMs`
   * (streams: no deadline unless configured). `'none'`: no deadline, for streams only (a watch
   * that lives as long as the process; keepalive finds a dead peer) — a unary call refuses it.
   */
  readonly deadlineMs?: number | 'none' | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Extra metadata (lowercase keys; `-bin` keys take Buffers). */
  readonly metadata?: CallMetadata | undefined;
}

export interface UnaryResult<Res> {
  readonly message: Res;
  /** The protocol the successful attempt used. */
  readonly protocol: WireProtocol;
  /** `host:port` of the peer that answered. */
  readonly endpoint: string;
  readonly peer: PeerIdentity;
  readonly attempts: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly trailers: Readonly<Record<string, string>>;
}

/**
 * The responses of a bidi stream: iterate them (once; the call starts on the first `next()`).
 * Leaving the loop early (`break`) cancels the call on the wire and closes the request iterable.
 */
export interface BidiStream<Res> extends AsyncIterable<Res> {
  /** The response headers when they arrive; undefined if the call ended without any. Never rejects. */
  readonly headers: Promise<Readonly<Record<string, string>> | undefined>;
  /** The trailers when the call ends, whatever the outcome (a failed call's too; `{}` when it never reached a server). Never rejects. */
  readonly trailers: Promise<Readonly<Record<string, string>>>;
}

/** What `probeHttp3` probes: the endpoint, the profile whose TLS it uses, the health service name ('' = the server). */
export interface Http3ProbeTarget {
  /** A configured endpoint's name, `https://host:port` or `host:port`. */
  readonly endpoint: string;
  /** Default: the configured endpoint's profile, else `control-plane`. */
  readonly profile?: string | undefined;
  /** The service whose health is asked (`grpc.health.v1.HealthCheckRequest.service`); default '' (the whole server). */
  readonly service?: string | undefined;
}

export interface Http3ProbeResult {
  /** `host:port` probed. */
  readonly endpoint: string;
  /** True when HTTP/3 answered SERVING. */
  readonly ok: boolean;
  /** Why the probe failed (no HTTP/3 transport, transport error, or the serving status). */
  readonly reason: string | undefined;
}

/** A typed client for one generated service, bound to a target. */
export type TypedClient<S extends ServiceDefinition> = {
  readonly [K in UnaryMethodKeys<S>]: (request: RequestOf<S, K>, options?: CallOptions) => Promise<ResponseOf<S, K>>;
} & {
  readonly [K in ServerStreamMethodKeys<S>]: (request: RequestOf<S, K>, options?: CallOptions) => AsyncIterable<ResponseOf<S, K>>;
} & {
  readonly [K in ClientStreamMethodKeys<S>]: (requests: AsyncIterable<RequestOf<S, K>>, options?: CallOptions) => Promise<ResponseOf<S, K>>;
} & {
  readonly [K in BidiStreamMethodKeys<S>]: (requests: AsyncIterable<RequestOf<S, K>>, options?: CallOptions) => BidiStream<ResponseOf<S, K>>;
};

/**
 * The control-plane client factory (bound to `TOKENS.GrpcControlPlaneClientFactory`).
 * Hands out typed clients, lightweight unary calls and undici dispatchers that share one
 * channel cache, TLS provider, hint stream, peer chooser, circuit breaker and telemetry.
 */
export interface IGrpcControlPlaneClientFactory {
  /** The live options snapshot. */
  readonly options: ControlPlaneOptions;
  /** A lightweight unary call: no dispatcher, no middleware. */
  unary<S extends ServiceDefinition, K extends UnaryMethodKeys<S>>(
    service: S,
    method: K,
    request: RequestOf<S, K>,
    target: CallTarget & CallOptions,
  ): Promise<UnaryResult<ResponseOf<S, K>>>;
  /** A server-streaming call. */
  serverStream<S extends ServiceDefinition, K extends ServerStreamMethodKeys<S>>(
    service: S,
    method: K,
    request: RequestOf<S, K>,
    target: CallTarget & CallOptions,
  ): AsyncIterable<ResponseOf<S, K>>;
  /**
   * A client-streaming call: the requests come from an async iterable (pulled with
   * back-pressure, as the connection can take them); resolves with the one response. Placed
   * like a unary call (peer, protocol, breaker) but never retried: the requests cannot be read
   * twice. It may move from HTTP/3 to HTTP/2 only while no request was taken from the iterable.
   */
  clientStream<S extends ServiceDefinition, K extends ClientStreamMethodKeys<S>>(
    service: S,
    method: K,
    requests: AsyncIterable<RequestOf<S, K>>,
    target: CallTarget & CallOptions,
  ): Promise<UnaryResult<ResponseOf<S, K>>>;
  /**
   * A bidirectional-streaming call: requests from an async iterable, responses as an async
   * iterable, both at once. Placed like a server stream (the breaker counts it until its first
   * response); never retried; deadline: the profile's `streamDeadlineMs` (none by default).
   */
  bidiStream<S extends ServiceDefinition, K extends BidiStreamMethodKeys<S>>(
    service: S,
    method: K,
    requests: AsyncIterable<RequestOf<S, K>>,
    target: CallTarget & CallOptions,
  ): BidiStream<ResponseOf<S, K>>;
  /** A typed client for a generated service definition. */
  client<S extends ServiceDefinition>(service: S, target: CallTarget): TypedClient<S>;
  /**
   * An undici Dispatcher for plain HTTP(S) calls to one endpoint (health, readiness, JSON
   * control APIs): same TLS material, rotation, verification and telemetry as gRPC calls.
   */
  httpDispatcher(target: { readonly endpoint: string; readonly profile?: string | undefined }): Dispatcher;
  /**
   * Probes an endpoint's HTTP/3 with the gRPC health checking protocol
   * (`grpc.health.v1.Health/Check`, over HTTP/3 only, no retry, no fallback). A failure or a
   * status other than SERVING marks the endpoint's HTTP/3 broken, so calls use HTTP/2 for the
   * backoff window; SERVING clears the mark. Run it from a timer to probe continuously.
   * Takes the endpoint (a configured name, a URL or `host:port`) or `{ endpoint, profile?, service? }`.
   */
  probeHttp3(endpoint: string | Http3ProbeTarget): Promise<Http3ProbeResult>;
  /** What the channel cache holds now (for diagnostics and tests). */
  connections(): CacheEntryInfo[];
  /** Closes every connection and stops reacting to changes. */
  dispose(): Promise<void>;
}
