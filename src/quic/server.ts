/**
 * A QUIC server: one UDP socket per port, datagrams routed to connections by destination
 * connection id (ours, or the client's original one until it switches), new connections
 * accepted from full-size Initial packets, version negotiation for other versions. No Retry:
 * quiche's anti-amplification limit (3× what the client sent) bounds the bytes an unvalidated
 * address gets from us, and at most MAX_HANDSHAKES handshakes are pending at once (each given
 * HANDSHAKE_TIMEOUT_MS) so junk Initials cannot grow our memory without bound.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { growSocketBuffers } from './client.js';
import { buildQuicConfig, MAX_PACKET_BYTES, type QuicEndpointConfig } from './config.js';
import { QuicConnection } from './connection.js';
import { quiche, type NativeConfig, type NativeHostPort, type QuicheBinding } from './native.js';
import { CONNECTION_ID_LENGTH, connectionIdKey, routingHeader } from './packets.js';

export interface QuicServerOptions extends QuicEndpointConfig {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined;
  /** UDP port; 0 = ephemeral. */
  readonly port?: number | undefined;
  /** Checks a client's chain (leaf first, DER) when `verifyPeer`: a TLS alert to refuse with, or undefined. */
  readonly verify?: ((chain: readonly Uint8Array[]) => number | undefined) | undefined;
  /** A new connection (its handshake still running: wait for `established`, or just take its streams). */
  readonly onConnection: (connection: QuicConnection) => void;
}

/**
 * Connections whose handshake is still running, at most. Real handshakes finish within a few
 * round trips; junk Initials (random ids, no client behind them) hold a slot until quiche's idle
 * timeout. 256 × ~50 KB bounds that memory to ~13 MB per server.
 */
const MAX_HANDSHAKES = 256;
/** A handshake takes a few round trips; one still running after this is given up. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export class QuicServer {
  readonly host: string;
  readonly port: number;
  readonly #socket: Socket;
  readonly #binding: QuicheBinding;
  readonly #config: NativeConfig;
  readonly #options: QuicServerOptions;
  readonly #local: NativeHostPort;
  readonly #routes = new Map<string, QuicConnection>();
  readonly #connections = new Set<QuicConnection>();
  /** Connections accepted whose handshake has not completed (see MAX_HANDSHAKES). */
  #handshaking = 0;
  #closing = false;

  private constructor(socket: Socket, binding: QuicheBinding, config: NativeConfig, options: QuicServerOptions, host: string, port: number) {
    this.#socket = socket;
    this.#binding = binding;
    this.#config = config;
    this.#options = options;
    this.host = host;
    this.port = port;
    this.#local = { host, port };
    socket.on('message', this.#onDatagram);
    // An ICMP error for one client (its port closed) must not end the server.
    socket.on('error', () => undefined);
  }

  /** Binds the UDP port and starts accepting. Rejects with the socket's error (e.g. EADDRINUSE). */
  static async listen(options: QuicServerOptions): Promise<QuicServer> {
    const binding = quiche();
    const config = buildQuicConfig(binding, options);
    const host = options.host ?? '127.0.0.1';
    const family = isIP(host) === 6 ? 6 : 4;
    const socket = createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      // Every address we send to is an IP from a received datagram: no DNS, no extra tick.
      lookup: (address, _options, callback) => (callback as (error: null, address: string, family: number) => void)(null, address, family),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: host, port: options.port ?? 0, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      try {
        socket.close();
      } catch {
        // never bound
      }
      throw error;
    });
    growSocketBuffers(socket);
    return new QuicServer(socket, binding, config, options, host, socket.address().port);
  }

  /** Connections accepted and not yet over. */
  get connections(): ReadonlySet<QuicConnection> {
    return this.#connections;
  }

  readonly #onDatagram = (datagram: Buffer, from: { address: string; port: number }): void => {
    const header = routingHeader(datagram);
    if (header === undefined) return;
    const known = this.#routes.get(connectionIdKey(header.dcid));
    const peer = { host: from.address, port: from.port };
    if (known !== undefined) {
      known.receive(datagram, peer);
      return;
    }
    if (!header.long || this.#closing) return;
    const binding = this.#binding;
    if (!binding.versionIsSupported(header.version)) {
      if (datagram.length >= binding.MIN_CLIENT_INITIAL_LEN && header.scid !== undefined) {
        const reply = Buffer.allocUnsafe(MAX_PACKET_BYTES);
        const length = binding.negotiateVersion(header.scid, header.dcid, reply);
        this.#socket.send(reply, 0, length, peer.port, peer.host);
      }
      return;
    }
    // A new client: only a full-size Initial opens a connection (RFC 9000 §14.1).
    if (!header.initial || datagram.length < binding.MIN_CLIENT_INITIAL_LEN) return;
    // Each accepted Initial costs a quiche connection (~50 KB) until its handshake completes or
    // its idle timeout ends it: bound how many may be pending. A client turned away here
    // resends its Initial (after its probe timeout) and gets in once slots free up.
    if (this.#handshaking >= MAX_HANDSHAKES) return;
    this.#accept(datagram, header.dcid, peer);
  };

  #accept(datagram: Buffer, clientDcid: Uint8Array, peer: NativeHostPort): void {
    const scid = randomBytes(CONNECTION_ID_LENGTH);
    let native;
    try {
      native = this.#binding.Connection.accept(scid, null, this.#local, peer, this.#config);
    } catch {
      return; // quiche refused the packet
    }
    const keys = [connectionIdKey(Buffer.from(clientDcid)), connectionIdKey(scid)];
    const socket = this.#socket;
    const connection = new QuicConnection({
      role: 'server',
      binding: this.#binding,
      native,
      local: this.#local,
      remote: peer,
      transmit: (packet, length, to) => socket.send(packet, 0, length, to.port, to.host),
      maxPacketBytes: MAX_PACKET_BYTES,
      verify: this.#options.verifyPeer ? this.#options.verify : undefined,
      onEnd: (ended) => {
        for (const key of keys) if (this.#routes.get(key) === ended) this.#routes.delete(key);
        this.#connections.delete(ended);
      },
    });
    for (const key of keys) this.#routes.set(key, connection);
    this.#connections.add(connection);
    this.#handshaking++;
    // A handshake not done in HANDSHAKE_TIMEOUT_MS gives its slot back (quiche's own limit is
    // the idle timeout, 30 s by default).
    const deadline = setTimeout(() => connection.close(0, 'handshake timeout', false), HANDSHAKE_TIMEOUT_MS);
    const handshakeOver = (): void => {
      clearTimeout(deadline);
      this.#handshaking--;
    };
    connection.established.then(handshakeOver, handshakeOver);
    connection.receive(datagram, peer);
    this.#options.onConnection(connection);
  }

  /**
   * Closes every connection (one CONNECTION_CLOSE with `code`, an application code) and the
   * socket. Nothing of the server runs afterwards.
   */
  async close(code: number): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const connection of [...this.#connections]) connection.close(code);
    this.#socket.off('message', this.#onDatagram);
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }
}
