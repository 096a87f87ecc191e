import type { X509Certificate } from 'node:crypto';
import { RpcError } from '../errors.js';
import { GrpcMappingError, metadataToHeaders } from '../grpc/mapping.js';
import type { BidiStreamMethodKeys, ClientStreamMethodKeys, RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';
import { GRPC_STATUS } from '../grpc/status.js';
import type { HeaderField } from '../http3/qpack/index.js';

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
  /** The call's deadline (ms since the epoch) when the client sent one; undefined otherwise. */
  readonly deadline?: number | undefined;
  /**
   * Adds a custom trailer, sent with the call's status (success or error) on both protocols.
   * Names follow the metadata rules (lowercase `[0-9a-z_.-]`, no `grpc-` or reserved names;
   * a `-bin` name carries the value's UTF-8 bytes); a bad name or value throws a TypeError.
   * Calls after the status went out have no effect.
   */
  setTrailer(name: string, value: string): void;
}

export type UnaryHandler<Req, Res> = (request: Req, call: ServerCallInfo) => Res | Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, call: ServerCallInfo) => AsyncIterable<Res>;
/**
 * A client-streaming method: `requests` yields each request message in order and ends at the
 * client's half-close; it throws an RpcError CANCELLED when the client cancels (or the
 * deadline passes; `info.signal` aborts too).
 */
export type ClientStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, info: ServerCallInfo) => Promise<Res>;
/** A bidi-streaming method: requests as for {@link ClientStreamHandler}, responses written as they are yielded (with back-pressure). */
export type BidiStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, info: ServerCallInfo) => AsyncIterable<Res>;

/** Handlers for every method of a service, by kind. */
export type ServiceImplementation<S extends ServiceDefinition> = {
  readonly [K in UnaryMethodKeys<S>]: UnaryHandler<RequestOf<S, K>, ResponseOf<S, K>>;
} & {
  readonly [K in ServerStreamMethodKeys<S>]: ServerStreamHandler<RequestOf<S, K>, ResponseOf<S, K>>;
} & {
  readonly [K in ClientStreamMethodKeys<S>]: ClientStreamHandler<RequestOf<S, K>, ResponseOf<S, K>>;
} & {
  readonly [K in BidiStreamMethodKeys<S>]: BidiStreamHandler<RequestOf<S, K>, ResponseOf<S, K>>;
};

/** A handler's failure as the gRPC status and details sent to the client (both protocols). */
export function toServiceError(error: unknown): { code: number; details: string } {
  if (error instanceof RpcError) return { code: error.status, details: error.details };
  const code = (error as { code?: unknown } | undefined)?.code;
  return { code: typeof code === 'number' ? code : GRPC_STATUS.UNKNOWN, details: error instanceof Error ? error.message : String(error) };
}

/** The custom trailers a handler set (ServerCallInfo.setTrailer), checked as metadata. */
export class CallTrailers {
  readonly #entries: [string, string][] = [];

  set(name: string, value: string): void {
    if (typeof name !== 'string' || typeof value !== 'string') throw new TypeError('setTrailer takes a name and a value, both strings');
    try {
      metadataToHeaders({ [name]: value });
    } catch (error) {
      if (error instanceof GrpcMappingError) throw new TypeError(`setTrailer: ${error.message}`, { cause: error });
      throw error;
    }
    this.#entries.push([name, value]);
  }

  /** As name/value pairs for a metadata object (`-bin` values as their UTF-8 bytes). */
  get entries(): readonly (readonly [string, string])[] {
    return this.#entries;
  }

  /** As HTTP/3 header fields (`-bin` values base64, as metadataToHeaders writes them). */
  fields(): HeaderField[] {
    return this.#entries.flatMap(([name, value]) => metadataToHeaders({ [name]: value }));
  }
}

/** The request stream was cancelled (client cancel, deadline, or the server closing). */
export function cancelledRequests(reason: string): RpcError {
  return new RpcError(GRPC_STATUS.CANCELLED, 'CANCELLED', reason, { endpoint: 'client', protocol: 'none' });
}

/**
 * The services one host serves: each entry pairs a generated definition with its
 * implementation, checked per entry, so one host can serve services of different definitions
 * (e.g. gossip, discovery and the application's own) without casts.
 */
export type ServiceRegistrations<T extends readonly ServiceDefinition[]> = { readonly [I in keyof T]: readonly [T[I], ServiceImplementation<T[I]>] };
