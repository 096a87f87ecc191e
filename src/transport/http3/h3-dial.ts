/**
 * Dialling an HTTP/3 server with our QUIC driver: what both of our HTTP/3 clients (gRPC's
 * GrpcH3Transport and the plain `Http3Client`) ask of it — ALPN `h3`, the server's certificate
 * requested and checked entirely by `verify` (our chain, name and CRL checks).
 */
import { dialQuic } from '../../quic/client.js';
import type { QuicConnection } from '../../quic/connection.js';

export interface H3DialOptions {
  readonly host: string;
  readonly port: number;
  /** TLS SNI and the name `verify` checks. */
  readonly serverName: string;
  /** PEM CA bundle handed to BoringSSL (our `verify` does the real checking). */
  readonly ca?: string | undefined;
  /** PEM client certificate chain and key, for mTLS. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** QUIC idle timeout (ms): always set (0 would mean never). */
  readonly maxIdleTimeout: number;
  readonly keepAliveIntervalTime?: number | undefined;
  /** Bound on the whole dial: UDP, QUIC and TLS handshake. */
  readonly connectTimeoutMs: number;
  /** Checks the server's chain (leaf first, DER): a TLS alert (`TLS_ALERT`) to refuse it with, or undefined to accept it. */
  readonly verify: (certs: readonly Uint8Array[]) => number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Opens a verified QUIC connection for HTTP/3. Rejects with `QuicDialError` (timeout,
 * refused, handshake, verify, socket, aborted) or `QuicUnavailableError`; the caller maps them
 * to its own error types.
 */
export function dialH3(options: H3DialOptions): Promise<QuicConnection> {
  return dialQuic({
    host: options.host,
    port: options.port,
    serverName: options.serverName,
    alpn: ['h3'],
    verifyPeer: true,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    maxIdleTimeoutMs: options.maxIdleTimeout,
    keepAliveMs: options.keepAliveIntervalTime,
    connectTimeoutMs: Math.max(1, options.connectTimeoutMs),
    verify: options.verify,
    signal: options.signal,
  });
}
