/**
 * Dialling a QUIC server: one UDP socket per client connection, `connect()`ed to the server,
 * so the kernel hands it only that server's datagrams and reports ICMP port unreachable as
 * ECONNREFUSED (an unconnected socket never hears of it): a dial to a port where nothing
 * listens ends in milliseconds instead of at the connect timeout.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { buildQuicConfig, MAX_PACKET_BYTES, type QuicEndpointConfig } from './config.js';
import { QuicConnection } from './connection.js';
import { QuicConnectionError, QuicDialError } from './errors.js';
import { quiche } from './native.js';
import { CONNECTION_ID_LENGTH } from './packets.js';

export interface QuicDialOptions extends QuicEndpointConfig {
  readonly host: string;
  readonly port: number;
  /** SNI (and the name the caller's `verify` checks). */
  readonly serverName: string;
  /** Bound on the whole dial: address lookup, QUIC and TLS handshake, verification. */
  readonly connectTimeoutMs: number;
  /** Checks the server's chain (leaf first, DER): a TLS alert to refuse with, or undefined. */
  readonly verify: (chain: readonly Uint8Array[]) => number | undefined;
  /** PING after this much quiet (ms), so the idle timeout only fires on a dead peer. */
  readonly keepAliveMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** UDP socket buffers we ask for (the kernel caps them at net.core.[rw]mem_max). */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** Asks for larger socket buffers; the kernel may give less, which is not an error. */
export function growSocketBuffers(socket: Socket): void {
  try {
    socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
    socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
  } catch {
    // capped or refused by the kernel: keep its default
  }
}

function closeSocket(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}

/**
 * Opens a verified QUIC connection. Rejects with `QuicDialError` (`timeout`, `refused`,
 * `handshake` with the peer's or our close as cause, `verify`, `socket`, `aborted`), or
 * `QuicUnavailableError` where the binding cannot load. A failed or aborted dial leaves nothing
 * open.
 */
export async function dialQuic(options: QuicDialOptions): Promise<QuicConnection> {
  const binding = quiche();
  const peer = `${options.host}:${options.port}`;
  const deadline = performance.now() + options.connectTimeoutMs;
  if (options.signal?.aborted === true) throw new QuicDialError('aborted', `the dial to ${peer} was aborted`, { cause: options.signal.reason });

  let address = options.host;
  if (isIP(address) === 0) address = await resolveWithin(options.host, peer, deadline, options);
  const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(options.port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    closeSocket(socket);
    throw new QuicDialError('socket', `cannot open a UDP socket to ${peer}: ${(error as Error).message}`, { cause: error });
  }
  growSocketBuffers(socket);
  const local = socket.address();
  const remote = { host: address, port: options.port };
  let connection: QuicConnection;
  try {
    const config = buildQuicConfig(binding, options);
    const native = binding.Connection.connect(options.serverName, randomBytes(CONNECTION_ID_LENGTH), { host: local.address, port: local.port }, remote, config);
    connection = new QuicConnection({
      role: 'client',
      binding,
      native,
      local: { host: local.address, port: local.port },
      remote,
      transmit: (packet, length) => socket.send(packet, 0, length),
      maxPacketBytes: MAX_PACKET_BYTES,
      verify: options.verify,
      keepAliveMs: options.keepAliveMs,
      onEnd: () => closeSocket(socket),
    });
  } catch (error) {
    closeSocket(socket);
    throw new QuicDialError('socket', `cannot start a QUIC connection to ${peer}: ${(error as Error).message}`, { cause: error });
  }
  socket.on('message', (datagram, from) => connection.receive(datagram, { host: from.address, port: from.port }));
  socket.on('error', (error) => connection.socketFailed(error));
  connection.kick();

  let failure: QuicDialError | undefined;
  const timer = setTimeout(
    () => {
      failure = new QuicDialError('timeout', `no QUIC handshake with ${peer} within ${options.connectTimeoutMs} ms`);
      connection.close(0, 'connect timeout', false);
    },
    Math.max(0, deadline - performance.now()),
  );
  const onAbort = (): void => {
    failure = new QuicDialError('aborted', `the dial to ${peer} was aborted`, { cause: options.signal?.reason });
    connection.close(0, 'dial aborted', false);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await connection.established;
    return connection;
  } catch (error) {
    if (failure !== undefined) throw failure;
    throw dialFailure(error, peer);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** The host's first address, within the dial's deadline and abort signal (a lookup cannot be cancelled, only abandoned). */
async function resolveWithin(host: string, peer: string, deadline: number, options: QuicDialOptions): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const bounds = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new QuicDialError('timeout', `no address for ${host} within ${options.connectTimeoutMs} ms`)), Math.max(0, deadline - performance.now()));
    onAbort = () => reject(new QuicDialError('aborted', `the dial to ${peer} was aborted`, { cause: options.signal?.reason }));
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return (await Promise.race([lookup(host), bounds])).address;
  } catch (error) {
    if (error instanceof QuicDialError) throw error;
    throw new QuicDialError('socket', `cannot resolve ${host}: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
  }
}

function dialFailure(error: unknown, peer: string): QuicDialError {
  if (!(error instanceof QuicConnectionError)) return new QuicDialError('handshake', `the QUIC handshake with ${peer} failed: ${String(error)}`, { cause: error });
  if (error.source === 'socket') {
    const refused = error.reason === 'ECONNREFUSED';
    return new QuicDialError(refused ? 'refused' : 'socket', refused ? `nothing answers on UDP ${peer} (ICMP port unreachable)` : `the UDP socket to ${peer} failed: ${error.reason}`, { cause: error });
  }
  if (error.source === 'local' && error.tlsAlert !== undefined) return new QuicDialError('verify', `we refused the certificate of ${peer} (TLS alert ${error.tlsAlert})`, { cause: error });
  if (error.source === 'idle-timeout') return new QuicDialError('timeout', `no QUIC handshake with ${peer} within the idle timeout`, { cause: error });
  return new QuicDialError('handshake', `the QUIC handshake with ${peer} failed: ${error.message}`, { cause: error });
}
