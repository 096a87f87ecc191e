import { readFileSync } from 'node:fs';
import type { QuicConnection } from '../quic/connection.js';
import { QuicServer } from '../quic/server.js';
import { H3_ERROR_CODES } from '../http3/error-codes.js';
import type { H3Session } from '../http3/session.js';
import { trustStoreOf, verifyChain } from '../tls/chain-verifier.js';
import type { GrpcHostTls } from './grpc-host.js';

/** What every HTTP/3 host (gRPC or files) configures on its QUIC server. */
export interface H3QuicServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined;
  /** UDP port; default 0 (ephemeral). May equal an HTTP/2 host's TCP port (GrpcHost). */
  readonly port?: number | undefined;
  /** Certificate and key; with `caFile`, client certificates are requested and checked (CA, CRLs). */
  readonly tls: GrpcHostTls;
  /** QUIC idle timeout (ms). Default 30 s. */
  readonly maxIdleTimeoutMs?: number | undefined;
  /** Concurrent requests one client may open (initial_max_streams_bidi). Default 100. */
  readonly initialMaxStreamsBidi?: number | undefined;
}

/**
 * Starts a QUIC server speaking ALPN `h3` with the host's TLS: client certificates are
 * required by default when a CA is given (BoringSSL refuses a client without one, alert 116),
 * and checked by the shared verifier (`verifyChain`, purpose clientAuth) against the CA and
 * the CRLs exactly as the HTTP/2 side's OpenSSL checks them; a refusal closes the handshake
 * with OpenSSL's alert for the reason.
 */
export async function startH3QuicServer(options: H3QuicServerOptions, onConnection: (connection: QuicConnection) => void): Promise<QuicServer> {
  const tls = options.tls;
  const ca = tls.caFile !== undefined ? readFileSync(tls.caFile, 'utf8') : undefined;
  const crls = (tls.crlFiles ?? []).map((file) => readFileSync(file, 'utf8'));
  const verifyPeer = (tls.requireClientCertificate ?? true) && ca !== undefined;
  const trust = ca !== undefined ? trustStoreOf(ca, crls) : undefined;
  return QuicServer.listen({
    host: options.host,
    port: options.port ?? 0,
    alpn: ['h3'],
    key: readFileSync(tls.keyFile, 'utf8'),
    cert: readFileSync(tls.certFile, 'utf8'),
    ca,
    verifyPeer,
    verify: trust !== undefined ? (certs) => verifyChain(certs, trust, { peer: 'client' })?.alert : undefined,
    maxIdleTimeoutMs: options.maxIdleTimeoutMs ?? 30_000,
    initialMaxStreamsBidi: options.initialMaxStreamsBidi ?? 100,
    onConnection,
  });
}

/**
 * Ends an HTTP/3 host: every session is marked closed first (so the close is not taken for a
 * peer error), then every connection is closed with H3_NO_ERROR and the socket released.
 */
export async function stopH3QuicServer(server: QuicServer, sessions: Iterable<H3Session>): Promise<void> {
  for (const session of sessions) session.markClosed();
  await server.close(H3_ERROR_CODES.H3_NO_ERROR);
}
