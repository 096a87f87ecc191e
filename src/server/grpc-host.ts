import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { MethodDefinition, ServiceDefinition } from '../grpc/service-definition.js';
import { ConfigError, TlsError } from '../errors.js';
import { commonNameOf } from '../grpc/peer-identity.js';
import { CertificateCache } from '../tls/certificate-cache.js';
import { quicAvailable, quiche } from '../quic/native.js';
import { splitCrlFile } from '../tls/pem.js';
import { GrpcH3Host, type Http3ConnectionStats } from './grpc-h3-host.js';
import { builtInHealthService } from './health-service.js';
import {
  CallTrailers,
  cancelledRequests,
  toServiceError,
  type BidiStreamHandler,
  type ClientStreamHandler,
  type ServerCallInfo,
  type ServerStreamHandler,
  type ServiceImplementation,
  type ServiceRegistrations,
  type UnaryHandler,
} from './service-handlers.js';

export type { BidiStreamHandler, ClientStreamHandler, ServerCallInfo, ServerStreamHandler, ServiceImplementation, ServiceRegistrations, UnaryHandler } from './service-handlers.js';

export interface GrpcHostTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle client certificates must chain to. */
  readonly caFile?: string | undefined;
  readonly crlFiles?: readonly string[] | undefined;
  /** Reject clients without a valid certificate. Default: true. */
  readonly requireClientCertificate?: boolean | undefined;
}

export interface GrpcHostOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined;
  /** Default 0 (an ephemeral port). */
  readonly port?: number | undefined;
  /** TLS settings, or `'insecure'` (plaintext; for local development only). */
  readonly tls: GrpcHostTls | 'insecure';
  /** Largest accepted request message. Default 4 MiB. */
  readonly maxReceiveMessageBytes?: number | undefined;
  /**
   * Serve the same services over HTTP/3 (QUIC, UDP) on the same port number as HTTP/2 (TCP),
   * with the same TLS settings and client-certificate checks. Default: on for a TLS host
   * (`true` or QUIC settings); `false` serves HTTP/2 only. An insecure host cannot serve
   * HTTP/3 (it is TLS-only), nor can a host with optional client certificates (HTTP/2 only by
   * default for it); asking either for HTTP/3 is a ConfigError.
   */
  readonly http3?: boolean | GrpcHostHttp3Options | undefined;
}

/** QUIC settings of a GrpcHost's HTTP/3 side. */
export interface GrpcHostHttp3Options {
  /** QUIC idle timeout (ms). Default 30 s. */
  readonly maxIdleTimeoutMs?: number | undefined;
  /** Concurrent requests one client may open (initial_max_streams_bidi). Default 100. */
  readonly initialMaxStreamsBidi?: number | undefined;
}

/** Ephemeral TCP ports tried before giving up when their UDP twin is taken. */
const SAME_PORT_ATTEMPTS = 8;

/** Server credentials from a full secure context (CA, certificate, key and CRLs) with client auth. */
class SecureContextServerCredentials extends ServerCredentials {
  constructor(tls: GrpcHostTls) {
    const ca = tls.caFile !== undefined ? readFileSync(tls.caFile) : undefined;
    const crl = (tls.crlFiles ?? []).flatMap((f) => splitCrlFile(readFileSync(f)));
    const require = tls.requireClientCertificate ?? true;
    super(
      { requestCert: ca !== undefined, rejectUnauthorized: require && ca !== undefined },
      { ca, cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), crl: crl.length > 0 ? crl : undefined },
    );
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function metadataOf(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) out[key] = typeof value === 'string' ? value : value.toString('base64');
  return out;
}

const certificates = new CertificateCache(1024);

/** Certificate, identity and metadata are read on first use: many handlers never look. */
/**
 * The call's cancellation as an AbortSignal, built only if the handler asks for it (an
 * AbortController per call, aborted at the end of every call, costs more than the call).
 */
class Cancellation {
  #cancelled = false;
  #controller: AbortController | undefined;

  constructor(call: { on(event: 'cancelled', listener: () => void): unknown }) {
    call.on('cancelled', () => {
      this.#cancelled = true;
      this.#controller?.abort();
    });
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#cancelled) this.#controller.abort();
    }
    return this.#controller.signal;
  }
}

/** Any server call grpc-js hands a handler. */
type AnyServerCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

function callInfo(call: AnyServerCall, cancellation: Cancellation, trailers: CallTrailers): ServerCallInfo {
  let certificate: X509Certificate | undefined;
  let identity: string | undefined;
  let metadata: Record<string, string> | undefined;
  let read = false;
  const readCertificate = (): X509Certificate | undefined => {
    if (!read) {
      read = true;
      const raw = call.getAuthContext().sslPeerCertificate?.raw;
      certificate = raw !== undefined ? certificates.get(raw) : undefined;
    }
    return certificate;
  };
  return {
    get clientCertificate() {
      return readCertificate();
    },
    get clientIdentity() {
      identity ??= commonNameOf(readCertificate()?.subject);
      return identity;
    },
    get metadata() {
      metadata ??= metadataOf(call.metadata);
      return metadata;
    },
    protocol: 'h2',
    get signal() {
      return cancellation.signal;
    },
    get deadline() {
      const deadline = call.getDeadline();
      const ms = deadline instanceof Date ? deadline.getTime() : deadline;
      return Number.isFinite(ms) ? ms : undefined;
    },
    setTrailer: (name, value) => trailers.set(name, value),
  };
}

/** The trailers a handler set, as grpc-js metadata (`-bin` values as bytes). */
function trailerMetadata(trailers: CallTrailers): Metadata {
  const metadata = new Metadata();
  for (const [name, value] of trailers.entries) {
    if (name.endsWith('-bin')) metadata.add(name, Buffer.from(value, 'utf8'));
    else metadata.add(name, value);
  }
  return metadata;
}

/** A handler's failure as grpc-js takes it: status, details and the trailers set. */
function serviceErrorOf(error: unknown, trailers: CallTrailers): Error & { code: number; details: string; metadata: Metadata } {
  const { code, details } = toServiceError(error);
  return Object.assign(new Error(details), { code, details, metadata: trailerMetadata(trailers) });
}

/** Resolves once `stream` can take more (its 'drain'), or at once when the call is over. */
function drained(stream: Writable, cancellation: Cancellation): Promise<void> {
  if (cancellation.cancelled || stream.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('cancelled', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('cancelled', done);
  });
}

/**
 * A grpc-js server call's request messages as an async iterable: in order, ending at the
 * client's half-close, throwing CANCELLED once the call is cancelled (client cancel, deadline).
 * Leaving early stops reading without destroying the call (its response still goes out).
 */
function requestsOf(stream: Readable, cancellation: Cancellation): AsyncIterable<unknown> {
  let stopped = false;
  const next = (): Promise<IteratorResult<unknown>> => {
    if (stopped) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        stream.off('readable', attempt);
        stream.off('end', attempt);
        stream.off('close', attempt);
        stream.off('cancelled', attempt);
        stream.off('error', attempt);
      };
      function attempt(): void {
        if (cancellation.cancelled) {
          cleanup();
          reject(cancelledRequests('the client cancelled the call'));
          return;
        }
        const value: unknown = stream.read();
        if (value !== null) {
          cleanup();
          resolve({ done: false, value });
          return;
        }
        if (stream.readableEnded) {
          cleanup();
          // Node's HTTP/2 ends a stream's readable side when the client resets it, and grpc-js
          // reports the cancellation ('cancelled') a tick later: look once more before taking
          // the end for the client's half-close.
          setImmediate(() => (cancellation.cancelled ? reject(cancelledRequests('the client cancelled the call')) : resolve({ done: true, value: undefined })));
          return;
        }
        if (stream.destroyed) {
          cleanup();
          reject(cancelledRequests('the call ended before the client finished sending'));
        }
      }
      stream.on('readable', attempt);
      stream.on('end', attempt);
      stream.on('close', attempt);
      stream.on('cancelled', attempt);
      stream.on('error', attempt);
      attempt();
    });
  };
  return {
    [Symbol.asyncIterator]: () => ({
      next,
      return: () => {
        stopped = true;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
}

async function serveBidi(handler: BidiStreamHandler<unknown, unknown>, call: ServerDuplexStream<unknown, unknown>): Promise<void> {
  const cancellation = new Cancellation(call);
  const trailers = new CallTrailers();
  try {
    for await (const message of handler(requestsOf(call, cancellation), callInfo(call, cancellation, trailers))) {
      if (cancellation.cancelled) return;
      if (!call.write(message)) await drained(call, cancellation);
    }
    if (!cancellation.cancelled) call.end(trailerMetadata(trailers));
  } catch (error) {
    // Not destroy(): grpc-js sends the status from its 'error' listener through end(), which a
    // destroyed stream never reaches.
    if (!cancellation.cancelled) call.emit('error', serviceErrorOf(error, trailers));
  }
}

async function serveStream(handler: ServerStreamHandler<unknown, unknown>, call: ServerWritableStream<unknown, unknown>): Promise<void> {
  const cancellation = new Cancellation(call);
  const trailers = new CallTrailers();
  try {
    for await (const message of handler(call.request, callInfo(call, cancellation, trailers))) {
      if (cancellation.cancelled) return;
      // A call cancelled while waiting for 'drain' never drains: stop waiting then too.
      if (!call.write(message)) await drained(call, cancellation);
    }
    call.end(trailerMetadata(trailers));
  } catch (error) {
    // Not destroy(): see serveBidi.
    if (!cancellation.cancelled) call.emit('error', serviceErrorOf(error, trailers));
  }
}

/**
 * A gRPC server for OmniRelay services: one registration served over HTTP/2
 * (@grpc/grpc-js, TCP) and HTTP/3 (GrpcH3Host, QUIC over UDP) on the same port number, with
 * mTLS on both (client certificates required by default) and CRLs. The control-plane
 * agents, the demo and the integration tests serve through it.
 */
export class GrpcHost {
  readonly #server: Server;
  readonly #address: string;
  readonly #http3: GrpcH3Host | undefined;

  private constructor(server: Server, http3: GrpcH3Host | undefined, address: string, readonly port: number) {
    this.#server = server;
    this.#http3 = http3;
    this.#address = address;
  }

  /** `https://host:port` (or `http://` for an insecure host). */
  get url(): string {
    return this.#address;
  }

  /**
   * The HTTP/3 side's connections, open now and accepted since start (both 0 when HTTP/3 is
   * off). HTTP/2 connections are grpc-js's and are not counted here.
   */
  get http3Connections(): Http3ConnectionStats {
    return this.#http3?.connectionStats ?? { open: 0, accepted: 0 };
  }

  /** The protocols served on `port`: `['h2', 'h3']`, or `['h2']` when HTTP/3 is off. */
  get protocols(): readonly ('h2' | 'h3')[] {
    return this.#http3 !== undefined ? ['h2', 'h3'] : ['h2'];
  }

  /**
   * Serves `services` (plus `grpc.health.v1.Health/Check` answering SERVING for them, unless
   * the application registers its own Health service).
   */
  static async start<const T extends readonly ServiceDefinition[]>(options: GrpcHostOptions, registered: ServiceRegistrations<T>): Promise<GrpcHost> {
    const services = [...registered, ...builtInHealthService(registered)] as unknown as ReadonlyArray<readonly [ServiceDefinition, ServiceImplementation<ServiceDefinition>]>;
    const http3 = http3Settings(options);
    const host = options.host ?? '127.0.0.1';
    const bindHost = host.includes(':') ? `[${host}]` : host;
    const scheme = options.tls === 'insecure' ? 'http' : 'https';
    // With an ephemeral port, TCP picks the number and UDP must take the same one; if that
    // UDP port is taken, try another TCP port. A fixed port is tried once.
    const attempts = http3 !== undefined && (options.port ?? 0) === 0 ? SAME_PORT_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt++) {
      const server = http2Server(options, services);
      const port = await bindHttp2(server, options, bindHost);
      if (http3 === undefined || options.tls === 'insecure') return new GrpcHost(server, undefined, `${scheme}://${bindHost}:${port}`, port);
      try {
        const h3 = await GrpcH3Host.start({ ...http3, host, port, tls: options.tls, maxReceiveMessageBytes: options.maxReceiveMessageBytes }, services);
        return new GrpcHost(server, h3, `${scheme}://${bindHost}:${port}`, port);
      } catch (error) {
        server.forceShutdown();
        if (attempt >= attempts || !isAddressInUse(error)) {
          if (isAddressInUse(error)) throw new Error(`GrpcHost: UDP port ${port} on ${host} is in use, so HTTP/3 cannot share the HTTP/2 port number; free it or start with http3: false.`, { cause: error });
          throw error;
        }
      }
    }
  }

  /**
   * Stops taking new calls (HTTP/3 clients get GOAWAY), lets running calls on both protocols
   * finish for up to `graceMs`, then closes what is left.
   */
  async close(graceMs = 5_000): Promise<void> {
    const http2 = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await Promise.all([http2, this.#http3?.close(graceMs)]);
  }
}

/**
 * Optional client certificates (a CA, `requireClientCertificate: false`) exist on HTTP/2 only:
 * the QUIC library either demands a certificate or asks for none, so an HTTP/3 side would
 * see every client as anonymous. Such a host serves HTTP/2 only by default, and asking it for
 * HTTP/3 is a ConfigError.
 */
function optionalClientCertificates(tls: GrpcHostTls): boolean {
  return tls.caFile !== undefined && tls.requireClientCertificate === false;
}

function http3Settings(options: GrpcHostOptions): GrpcHostHttp3Options | undefined {
  const tls = options.tls;
  const wanted = options.http3 ?? (tls !== 'insecure' && !optionalClientCertificates(tls));
  if (wanted === false) return undefined;
  if (tls === 'insecure') {
    throw new ConfigError([{ key: 'http3', message: 'HTTP/3 needs TLS; an insecure (plaintext) GrpcHost serves HTTP/2 only. Set http3: false or give tls settings.' }], 'GrpcHost options');
  }
  if (optionalClientCertificates(tls)) {
    throw new ConfigError(
      [{ key: 'http3', message: 'optional client certificates (caFile with requireClientCertificate: false) are served over HTTP/2 only: over HTTP/3 our QUIC configuration cannot ask for a certificate without demanding it. Set http3: false, or require client certificates.' }],
      'GrpcHost options',
    );
  }
  if (!quicAvailable()) {
    // The default follows what this machine can do (the load already warned once, naming why);
    // an explicit request for HTTP/3 that cannot be met is an error.
    if (options.http3 === undefined) return undefined;
    let reason = 'the QUIC binding is unavailable';
    try {
      quiche();
    } catch (error) {
      reason = (error as Error).message;
    }
    throw new ConfigError([{ key: 'http3', message: `${reason}. Set http3: false (or leave it unset to serve HTTP/2 only where HTTP/3 cannot run).` }], 'GrpcHost options');
  }
  return wanted === true ? {} : wanted;
}

/** EADDRINUSE anywhere in the cause chain (duck-typed: Node's own errors may come from another realm). */
function isAddressInUse(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'EADDRINUSE') return true;
  }
  return false;
}

/** The grpc-js server with every method of `services`. */
function http2Server<S extends ServiceDefinition>(options: GrpcHostOptions, services: ReadonlyArray<readonly [S, ServiceImplementation<S>]>): Server {
  const server = new Server({ 'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 4 * 1024 * 1024 });
  for (const [definition, implementation] of services) {
    const handlers: UntypedServiceImplementation = {};
    const descriptors: Record<string, object> = {};
    for (const [key, def] of Object.entries(definition.methods)) {
      const method = def as MethodDefinition<unknown, unknown>;
      const handler = (implementation as Record<string, unknown>)[key];
      if (typeof handler !== 'function') throw new Error(`GrpcHost: no handler for ${definition.fullName}/${method.name}`);
      descriptors[method.name] = {
        path: `/${definition.fullName}/${method.name}`,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        requestSerialize: (value: unknown) => Buffer.from(method.requestType.encode(value).finish()),
        requestDeserialize: (bytes: Buffer) => method.requestType.decode(bytes),
        responseSerialize: (value: unknown) => Buffer.from(method.responseType.encode(value).finish()),
        responseDeserialize: (bytes: Buffer) => method.responseType.decode(bytes),
      };
      handlers[method.name] = method.requestStream
        ? method.responseStream
          ? (call: ServerDuplexStream<unknown, unknown>) => {
              void serveBidi(handler as BidiStreamHandler<unknown, unknown>, call);
            }
          : (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
              const cancellation = new Cancellation(call);
              const trailers = new CallTrailers();
              Promise.resolve()
                .then(() => (handler as ClientStreamHandler<unknown, unknown>)(requestsOf(call, cancellation), callInfo(call, cancellation, trailers)))
                .then(
                  (response) => callback(null, response, trailerMetadata(trailers)),
                  (error: unknown) => callback(serviceErrorOf(error, trailers)),
                );
            }
        : method.responseStream
          ? (call: ServerWritableStream<unknown, unknown>) => {
              void serveStream(handler as ServerStreamHandler<unknown, unknown>, call);
            }
          : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
              const cancellation = new Cancellation(call);
              const trailers = new CallTrailers();
              Promise.resolve()
                .then(() => (handler as UnaryHandler<unknown, unknown>)(call.request, callInfo(call, cancellation, trailers)))
                .then(
                  (response) => callback(null, response, trailerMetadata(trailers)),
                  (error: unknown) => callback(serviceErrorOf(error, trailers)),
                );
            };
    }
    server.addService(descriptors as never, handlers);
  }
  return server;
}

async function bindHttp2(server: Server, options: GrpcHostOptions, bindHost: string): Promise<number> {
  const credentials = options.tls === 'insecure' ? ServerCredentials.createInsecure() : new SecureContextServerCredentials(options.tls);
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(`${bindHost}:${options.port ?? 0}`, credentials, (error, boundPort) => (error !== null ? reject(error) : resolve(boundPort)));
  }).catch((error: unknown) => {
    throw options.tls !== 'insecure' && /ENOENT|PEM|key|cert/i.test(String(error))
      ? new TlsError('TLS_CLIENT_CERT_UNREADABLE', `GrpcHost: cannot load its TLS files: ${String(error)}`, { cause: error })
      : error;
  });
}
