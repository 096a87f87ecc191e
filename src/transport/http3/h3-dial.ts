/**
 * Dialling an HTTP/3 server with `@matrixai/quic`: the QUIC client options both of our HTTP/3
 * clients use (gRPC's GrpcH3Transport and the plain `Http3Client`): ALPN `h3`, our crypto
 * ops and WARN logger, the stream-reset code mapping, and certificate checks done entirely in
 * `verifyCallback` (the library turns BoringSSL's own chain verification off once one is set).
 */
import { isIP } from 'node:net';
import { QUICClient } from '@matrixai/quic';
import { clientCrypto, codeToReason, quicLogger, reasonToCode } from './quic-support.js';

export interface H3DialOptions {
  readonly host: string;
  readonly port: number;
  /** TLS SNI and the name `verify` checks. */
  readonly serverName: string;
  /** PEM CA bundle handed to the library (our `verify` does the real checking). */
  readonly ca?: string | undefined;
  /** PEM client certificate chain and key, for mTLS. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** QUIC idle timeout (ms): always set, the library's default 0 means never. */
  readonly maxIdleTimeout: number;
  readonly keepAliveIntervalTime?: number | undefined;
  /** Bound on the whole dial: UDP, QUIC and TLS handshake. */
  readonly connectTimeoutMs: number;
  /**
   * Checks the server's chain (leaf first, DER): returns the TLS alert to refuse it with
   * (a `CRYPTO_ALERT` value) or undefined to accept it.
   */
  readonly verify: (certs: readonly Uint8Array[]) => number | undefined;
  readonly loggerName: string;
}

/**
 * Opens a QUIC connection for HTTP/3. Rejects with the library's errors (e.g.
 * `ErrorQUICClientCreateTimeout` when nothing answers within `connectTimeoutMs`); the caller
 * maps them to its own error types.
 */
export async function dialH3(options: H3DialOptions): Promise<QUICClient> {
  return QUICClient.createQUICClient(
    {
      host: options.host,
      port: options.port,
      serverName: options.serverName,
      localHost: isIP(options.host) === 4 ? '0.0.0.0' : '::',
      crypto: clientCrypto,
      config: {
        applicationProtos: ['h3'],
        verifyPeer: true,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        maxIdleTimeout: options.maxIdleTimeout,
        ...(options.keepAliveIntervalTime !== undefined ? { keepAliveIntervalTime: options.keepAliveIntervalTime } : {}),
        verifyCallback: (certs) => Promise.resolve(options.verify(certs)),
      },
      reasonToCode,
      codeToReason,
      logger: quicLogger(options.loggerName),
    },
    { timer: Math.max(1, options.connectTimeoutMs) },
  );
}
