/** quiche's Config for our HTTP/3 endpoints: TLS material, ALPN `h3`, windows, timeouts. */
import type { NativeConfig, QuicheBinding } from './native.js';

/** Signature algorithms offered (BoringSSL has no rsa_pss_pss_* and no ed448). */
const SIGALGS = [
  'rsa_pkcs1_sha256',
  'rsa_pkcs1_sha384',
  'rsa_pkcs1_sha512',
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ecdsa_secp521r1_sha512',
  'ed25519',
].join(':');

/** The largest UDP payload we send: fits a 1500-byte Ethernet MTU with IPv6 and headroom (quiche's default datagram size). */
export const MAX_PACKET_BYTES = 1350;

export interface QuicEndpointConfig {
  /** PEM CA bundle: BoringSSL's store; our own `verify` does the real checking. */
  readonly ca?: string | undefined;
  /** PEM certificate chain and private key (a server's; a client's for mTLS). */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /**
   * Ask for (server: demand) the peer's certificate. Failures are left to our `verify`
   * (BoringSSL's own verdict is allowed to fail), except a missing client certificate, which
   * BoringSSL refuses with alert 116.
   */
  readonly verifyPeer: boolean;
  /** QUIC idle timeout (ms); 0 would mean never, so always set it. */
  readonly maxIdleTimeoutMs: number;
  /** Bidirectional streams the peer may open at once (a server's concurrent requests per client). Default 100. */
  readonly initialMaxStreamsBidi?: number | undefined;
  /** Unidirectional streams the peer may open at once. Default 100 (HTTP/3 needs at least 3). */
  readonly initialMaxStreamsUni?: number | undefined;
  /** ALPN; default `h3`. */
  readonly alpn?: readonly string[] | undefined;
}

/** Connection-level receive window: 64 KiB × 50 concurrent calls, with room. */
const INITIAL_MAX_DATA = 32 * 1024 * 1024;
/** Per-stream receive window: a 1 MiB message in flight at once. */
const INITIAL_MAX_STREAM_DATA = 512 * 1024;

export function buildQuicConfig(binding: QuicheBinding, options: QuicEndpointConfig): NativeConfig {
  const encode = (text: string): Uint8Array => Buffer.from(text, 'utf8');
  const config = binding.Config.withBoringSslCtx(
    options.verifyPeer,
    true,
    options.ca !== undefined ? encode(options.ca) : null,
    options.key !== undefined ? [encode(options.key)] : null,
    options.cert !== undefined ? [encode(options.cert)] : null,
    SIGALGS,
  );
  config.setApplicationProtos([...(options.alpn ?? ['h3'])]);
  config.setMaxIdleTimeout(options.maxIdleTimeoutMs);
  config.setMaxRecvUdpPayloadSize(binding.MAX_UDP_PACKET_SIZE);
  config.setMaxSendUdpPayloadSize(MAX_PACKET_BYTES);
  config.setInitialMaxData(INITIAL_MAX_DATA);
  config.setInitialMaxStreamDataBidiLocal(INITIAL_MAX_STREAM_DATA);
  config.setInitialMaxStreamDataBidiRemote(INITIAL_MAX_STREAM_DATA);
  config.setInitialMaxStreamDataUni(1024 * 1024);
  config.setInitialMaxStreamsBidi(options.initialMaxStreamsBidi ?? 100);
  config.setInitialMaxStreamsUni(options.initialMaxStreamsUni ?? 100);
  config.setDisableActiveMigration(true);
  // quiche's pacing only stamps each packet with a send time; Node cannot honour it per packet,
  // so bursts are bounded by the driver instead (MAX_PACKETS_PER_PASS).
  config.enablePacing(false);
  return config;
}
