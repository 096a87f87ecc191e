/**
 * quiche's N-API binding, loaded lazily from the prebuilt per-platform package that npm
 * installs as an optional dependency (`@matrixai/quic-<platform>-<arch>`): no install script,
 * no download. Only the parts our driver uses are typed here. The binding is loaded on the
 * first HTTP/3 dial or HTTP/3 server start, so HTTP/2-only users never load the addon.
 */
import { createRequire } from 'node:module';

/** Host and port as the binding takes and returns them. */
export interface NativeHostPort {
  host: string;
  port: number;
}

export interface NativeConnectionError {
  isApp: boolean;
  errorCode: number;
  reason: Uint8Array;
}

export interface NativeStats {
  recv: number;
  sent: number;
  lost: number;
  retrans: number;
  sentBytes: number;
  recvBytes: number;
  lostBytes: number;
}

export interface NativePathStats {
  rtt: number;
  cwnd: number;
  pmtu: number;
}

export interface NativeConfig {
  verifyPeer(verify: boolean): void;
  grease(grease: boolean): void;
  setApplicationProtos(protos: string[]): void;
  setMaxIdleTimeout(timeout: number): void;
  setMaxRecvUdpPayloadSize(size: number): void;
  setMaxSendUdpPayloadSize(size: number): void;
  setInitialMaxData(v: number): void;
  setInitialMaxStreamDataBidiLocal(v: number): void;
  setInitialMaxStreamDataBidiRemote(v: number): void;
  setInitialMaxStreamDataUni(v: number): void;
  setInitialMaxStreamsBidi(v: number): void;
  setInitialMaxStreamsUni(v: number): void;
  setMaxAckDelay(v: number): void;
  setDisableActiveMigration(v: boolean): void;
  setCcAlgorithm(algo: number): void;
  enablePacing(v: boolean): void;
  setMaxStreamWindow(v: number): void;
  setMaxConnectionWindow(v: number): void;
}

export interface NativeConnection {
  recv(data: Uint8Array, info: { from: NativeHostPort; to: NativeHostPort }): number;
  send(data: Uint8Array): [number, { from: NativeHostPort; to: NativeHostPort }] | null;
  streamRecv(streamId: number, data: Uint8Array): [number, boolean] | null;
  streamSend(streamId: number, data: Uint8Array, fin: boolean): number | null;
  streamShutdown(streamId: number, direction: number, err: number): void | null;
  streamCapacity(streamId: number): number;
  peerStreamsLeftBidi(): number;
  peerStreamsLeftUni(): number;
  readable(): Iterable<number>;
  isReadable(): boolean;
  timeout(): number | null;
  onTimeout(): void;
  close(app: boolean, err: number, reason: Uint8Array): void | null;
  applicationProto(): Uint8Array;
  peerCertChain(): Uint8Array[] | null;
  isEstablished(): boolean;
  isDraining(): boolean;
  isClosed(): boolean;
  isTimedOut(): boolean;
  peerError(): NativeConnectionError | null;
  localError(): NativeConnectionError | null;
  stats(): NativeStats;
  pathStats(): NativePathStats[];
  sendAckEliciting(): void;
}

export interface QuicheBinding {
  Config: {
    withBoringSslCtx(verifyPeer: boolean, verifyAllowFail: boolean, ca?: Uint8Array | null, key?: Uint8Array[] | null, cert?: Uint8Array[] | null, sigalgs?: string | null): NativeConfig;
  };
  Connection: {
    connect(serverName: string | null, scid: Uint8Array, local: NativeHostPort, remote: NativeHostPort, config: NativeConfig): NativeConnection;
    accept(scid: Uint8Array, odcid: Uint8Array | null, local: NativeHostPort, remote: NativeHostPort, config: NativeConfig): NativeConnection;
  };
  negotiateVersion(scid: Uint8Array, dcid: Uint8Array, data: Uint8Array): number;
  versionIsSupported(version: number): boolean;
  Shutdown: { Read: number; Write: number };
  CongestionControlAlgorithm: { Reno: number; CUBIC: number; BBR: number };
  MAX_UDP_PACKET_SIZE: number;
  MIN_CLIENT_INITIAL_LEN: number;
}

/**
 * The binding's package for this platform, or undefined where none is published. The binding
 * our driver is written against (2.0.9, quiche 0.18) is published for linux-x64 only; the
 * darwin and win32 packages exist only at 1.2.12, an older, different API.
 */
export function bindingPackageName(platform: string = process.platform, arch: string = process.arch): string | undefined {
  return platform === 'linux' && arch === 'x64' ? '@matrixai/quic-linux-x64' : undefined;
}

/** HTTP/3 cannot run in this process: the reason names the platform or the load failure. */
export class QuicUnavailableError extends Error {
  override readonly name = 'QuicUnavailableError';
}

let loaded: QuicheBinding | QuicUnavailableError | undefined;

/**
 * The binding, loaded on first use (and the outcome remembered). Throws
 * `QuicUnavailableError` when this platform has no prebuilt binding or it fails to load;
 * the first failure is also reported once as a process warning.
 */
export function quiche(): QuicheBinding {
  loaded ??= load();
  if (loaded instanceof QuicUnavailableError) throw loaded;
  return loaded;
}

/** Whether HTTP/3 can run here (loads the binding if not yet loaded). */
export function quicAvailable(): boolean {
  try {
    quiche();
    return true;
  } catch {
    return false;
  }
}

function load(): QuicheBinding | QuicUnavailableError {
  const name = bindingPackageName();
  let failure: QuicUnavailableError;
  if (name === undefined) {
    failure = new QuicUnavailableError(`HTTP/3 is off: no prebuilt QUIC (quiche) binding is published for ${process.platform}-${process.arch}; calls use HTTP/2`);
  } else {
    try {
      return createRequire(import.meta.url)(name) as QuicheBinding;
    } catch (error) {
      failure = new QuicUnavailableError(`HTTP/3 is off: the QUIC binding ${name} could not be loaded (${(error as Error).message.split('\n')[0] ?? ''}); install it (it is an optional dependency of omnirelay) or calls use HTTP/2`, { cause: error });
    }
  }
  process.emitWarning(failure.message, { code: 'OMNIRELAY_HTTP3_UNAVAILABLE' });
  return failure;
}
