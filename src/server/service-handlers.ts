import type { X509Certificate } from 'node:crypto';
import { RpcError } from '../errors.js';
import type { RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';
import { GRPC_STATUS } from '../grpc/status.js';

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
}

export type UnaryHandler<Req, Res> = (request: Req, call: ServerCallInfo) => Res | Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, call: ServerCallInfo) => AsyncIterable<Res>;

/** Handlers for every unary and server-streaming method of a service. */
export type ServiceImplementation<S extends ServiceDefinition> = {
  readonly [K in UnaryMethodKeys<S>]: UnaryHandler<RequestOf<S, K>, ResponseOf<S, K>>;
} & {
  readonly [K in ServerStreamMethodKeys<S>]: ServerStreamHandler<RequestOf<S, K>, ResponseOf<S, K>>;
};

/** A handler's failure as the gRPC status and details sent to the client (both protocols). */
export function toServiceError(error: unknown): { code: number; details: string } {
  if (error instanceof RpcError) return { code: error.status, details: error.details };
  const code = (error as { code?: unknown } | undefined)?.code;
  return { code: typeof code === 'number' ? code : GRPC_STATUS.UNKNOWN, details: error instanceof Error ? error.message : String(error) };
}
