import { readFileSync } from 'node:fs';
import { events, QUICServer, type QUICConnection } from '@matrixai/quic';
import { H3_ERROR_CODES } from '../transport/http3/error-codes.js';
import type { H3Session } from '../transport/http3/h3-session.js';
import { codeToReason, quicLogger, reasonToCode, serverCrypto, trustStoreOf, verifyChain } from '../transport/http3/quic-support.js';
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
 * required by default when a CA is given, and checked by our verify callback (the library's
 * own chain check is off once a callback is set) against the CA and the CRLs.
 */
export async function startH3QuicServer(options: H3QuicServerOptions, loggerName: string): Promise<{ server: QUICServer; host: string }> {
  const tls = options.tls;
  const ca = tls.caFile !== undefined ? readFileSync(tls.caFile, 'utf8') : undefined;
  const crls = (tls.crlFiles ?? []).map((file) => readFileSync(file, 'utf8'));
  const verifyPeer = (tls.requireClientCertificate ?? true) && ca !== undefined;
  const trust = ca !== undefined ? trustStoreOf(ca, crls) : undefined;
  const server = new QUICServer({
    crypto: serverCrypto(),
    config: {
      applicationProtos: ['h3'],
      key: readFileSync(tls.keyFile, 'utf8'),
      cert: readFileSync(tls.certFile, 'utf8'),
      ca,
      verifyPeer,
      verifyCallback: verifyPeer && trust !== undefined ? (certs) => Promise.resolve(verifyChain(certs, trust)?.alert) : undefined,
      maxIdleTimeout: options.maxIdleTimeoutMs ?? 30_000,
      initialMaxStreamsBidi: options.initialMaxStreamsBidi ?? 100,
    },
    reasonToCode,
    codeToReason,
    logger: quicLogger(loggerName),
  });
  const host = options.host ?? '127.0.0.1';
  await server.start({ host, port: options.port ?? 0 });
  return { server, host };
}

/**
 * Ends an HTTP/3 host: every connection is closed with H3_NO_ERROR (its session marked closed
 * first, so the close is not taken for a peer error), then the QUIC server stops and stops
 * announcing connections to `onConnection`.
 */
export async function stopH3QuicServer(
  server: QUICServer,
  connections: Iterable<{ readonly session: H3Session; readonly connection: QUICConnection }>,
  onConnection: (event: Event) => void,
): Promise<void> {
  const stops: Promise<void>[] = [];
  for (const { session, connection } of connections) {
    session.markClosed();
    stops.push(connection.stop({ isApp: true, errorCode: H3_ERROR_CODES.H3_NO_ERROR, force: true }).catch(() => undefined));
  }
  await Promise.all(stops);
  server.removeEventListener(events.EventQUICServerConnection.name, onConnection);
  await server.stop({ isApp: true, errorCode: H3_ERROR_CODES.H3_NO_ERROR, force: true });
}
