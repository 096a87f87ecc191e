import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  Server,
  ServerCredentials,
  status as grpcStatus,
  type Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys, MethodDefinition } from '../factory/service-definition.js';
import { RpcError, TlsError } from '../errors.js';
import { CertificateCache } from '../tls/certificate-cache.js';

/** What a handler learns about the call it serves. */
export interface ServerCallInfo {
  /** The client's certificate (mTLS), undefined for plaintext or TLS without client auth. */
  readonly clientCertificate: X509Certificate | undefined;
  /** The client certificate's subject CN, '' without one. */
  readonly clientIdentity: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly protocol: 'h2' | 'h3';
  /** Aborts when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** The call's deadline (ms since the epoch) when the client sent one; undefined otherwise or when the host does not report it. */
  readonly deadline?: number | undefined;
}

export type UnaryHandler<Req, Res> = (request: Req, call: ServerCallInfo) => Res | Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, call: ServerCallInfo) => AsyncIterable<Res>;

/** Handlers for every unary and server-streaming method of a service. */
export type ServiceImplementation<S extends ServiceDefinition> = {
  readonly [K in UnaryMethodKeys<S>]: UnaryHandler<RequestOf<S, K>, ResponseOf<S, K>>;
} & {
  readonly [K in ServerStreamMethodKeys<S>]: ServerStreamHandler<RequestOf<S, K>, ResponseOf<S, K>>;
};

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
}

/** Server credentials from a full secure context (CA, certificate, key and CRLs) with client auth. */
class SecureContextServerCredentials extends ServerCredentials {
  constructor(tls: GrpcHostTls) {
    const ca = tls.caFile !== undefined ? readFileSync(tls.caFile) : undefined;
    const crl = (tls.crlFiles ?? []).map((f) => readFileSync(f));
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

function callInfo(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, cancellation: Cancellation): ServerCallInfo {
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
      identity ??= /(?:^|\n)CN=([^\n]*)/.exec(readCertificate()?.subject ?? '')?.[1] ?? '';
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
  };
}

export function toServiceError(error: unknown): { code: number; details: string } {
  if (error instanceof RpcError) return { code: error.status, details: error.details };
  const code = (error as { code?: unknown } | undefined)?.code;
  return { code: typeof code === 'number' ? code : grpcStatus.UNKNOWN, details: error instanceof Error ? error.message : String(error) };
}

async function serveStream(handler: ServerStreamHandler<unknown, unknown>, call: ServerWritableStream<unknown, unknown>): Promise<void> {
  const cancellation = new Cancellation(call);
  try {
    for await (const message of handler(call.request, callInfo(call, cancellation))) {
      if (cancellation.cancelled) return;
      if (!call.write(message)) await new Promise((resolve) => call.once('drain', resolve));
    }
    call.end();
  } catch (error) {
    const { code, details } = toServiceError(error);
    call.destroy(Object.assign(new Error(details), { code, details }));
  }
}

/**
 * A gRPC server for OmniRelay services over HTTP/2 (@grpc/grpc-js), with mTLS (client
 * certificates required by default) and CRLs. The control-plane agents, the demo and the
 * integration tests serve through it.
 */
export class GrpcHost {
  readonly #server: Server;
  readonly #address: string;

  private constructor(server: Server, address: string, readonly port: number) {
    this.#server = server;
    this.#address = address;
  }

  /** `https://host:port` (or `http://` for an insecure host). */
  get url(): string {
    return this.#address;
  }

  static async start<S extends ServiceDefinition>(options: GrpcHostOptions, services: ReadonlyArray<readonly [S, ServiceImplementation<S>]>): Promise<GrpcHost> {
    const server = new Server({ 'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 4 * 1024 * 1024 });
    for (const [definition, implementation] of services) {
      const handlers: UntypedServiceImplementation = {};
      const descriptors: Record<string, object> = {};
      for (const [key, def] of Object.entries(definition.methods)) {
        const method = def as MethodDefinition<unknown, unknown>;
        if (method.requestStream) continue;
        const handler = (implementation as Record<string, unknown>)[key];
        if (typeof handler !== 'function') throw new Error(`GrpcHost: no handler for ${definition.fullName}/${method.name}`);
        descriptors[method.name] = {
          path: `/${definition.fullName}/${method.name}`,
          requestStream: false,
          responseStream: method.responseStream,
          requestSerialize: (value: unknown) => Buffer.from(method.requestType.encode(value).finish()),
          requestDeserialize: (bytes: Buffer) => method.requestType.decode(bytes),
          responseSerialize: (value: unknown) => Buffer.from(method.responseType.encode(value).finish()),
          responseDeserialize: (bytes: Buffer) => method.responseType.decode(bytes),
        };
        handlers[method.name] = method.responseStream
          ? (call: ServerWritableStream<unknown, unknown>) => {
              void serveStream(handler as ServerStreamHandler<unknown, unknown>, call);
            }
          : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
              const cancellation = new Cancellation(call);
              Promise.resolve()
                .then(() => (handler as UnaryHandler<unknown, unknown>)(call.request, callInfo(call, cancellation)))
                .then(
                  (response) => callback(null, response),
                  (error: unknown) => callback(toServiceError(error)),
                );
            };
      }
      server.addService(descriptors as never, handlers);
    }
    const host = options.host ?? '127.0.0.1';
    const credentials = options.tls === 'insecure' ? ServerCredentials.createInsecure() : new SecureContextServerCredentials(options.tls);
    const bindHost = host.includes(':') ? `[${host}]` : host;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${bindHost}:${options.port ?? 0}`, credentials, (error, boundPort) => (error !== null ? reject(error) : resolve(boundPort)));
    }).catch((error: unknown) => {
      throw options.tls !== 'insecure' && /ENOENT|PEM|key|cert/i.test(String(error))
        ? new TlsError('TLS_CLIENT_CERT_UNREADABLE', `GrpcHost: cannot load its TLS files: ${String(error)}`, { cause: error })
        : error;
    });
    return new GrpcHost(server, `${options.tls === 'insecure' ? 'http' : 'https'}://${bindHost}:${port}`, port);
  }

  /** Stops taking new calls, lets running calls finish for up to `graceMs`, then closes. */
  async close(graceMs = 5_000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
