/**
 * Our QUIC driver over quiche's native binding, on its own (no HTTP/3): real UDP sockets on
 * 127.0.0.1, a QuicServer and dialQuic clients from the built `dist/`. Each case pins one
 * behaviour the HTTP/3 layers above rely on: how a dial fails (refused, timed out), that
 * stream data is neither lost nor corrupted (early streams, large writes with FIN, many
 * streams at once), how stream and connection ends surface (RESET_STREAM, STOP_SENDING,
 * CONNECTION_CLOSE), and that a server's certificate refusal reaches the client as its TLS alert.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createDevCertificateAuthority } from 'omnirelay';
import { dialQuic, type QuicDialOptions } from '../../dist/quic/client.js';
import { quicDriverActivity, type QuicConnection } from '../../dist/quic/connection.js';
import { QuicConnectionError, QuicDialError, QuicStreamError } from '../../dist/quic/errors.js';
import { QuicServer, type QuicServerOptions } from '../../dist/quic/server.js';
import type { QuicStream } from '../../dist/quic/stream.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Pki {
  readonly caPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
}

let pki: Pki;
/** Run after each test, last registered first: clients before servers, servers before sockets. */
let cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  const ca = await createDevCertificateAuthority({ commonName: 'QUIC driver test CA' });
  const server = await ca.issue({ commonName: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' });
  const client = await ca.issue({ commonName: 'client', usage: 'client' });
  pki = { caPem: ca.certPem, serverCertPem: server.certPem, serverKeyPem: server.keyPem, clientCertPem: client.certPem, clientKeyPem: client.keyPem };
});

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const cleanup of pending) await cleanup();
});

// ---- helpers ---------------------------------------------------------------------------------

/** A server on an ephemeral port of 127.0.0.1 (ALPN `test`), closed after the test. */
async function startServer(onConnection: (connection: QuicConnection) => void, extra: Partial<QuicServerOptions> = {}): Promise<QuicServer> {
  const server = await QuicServer.listen({
    host: '127.0.0.1',
    port: 0,
    alpn: ['test'],
    cert: pki.serverCertPem,
    key: pki.serverKeyPem,
    verifyPeer: false,
    maxIdleTimeoutMs: 30_000,
    onConnection,
    ...extra,
  });
  cleanups.push(() => server.close(0));
  return server;
}

function dialOptions(port: number, extra: Partial<QuicDialOptions> = {}): QuicDialOptions {
  return {
    host: '127.0.0.1',
    port,
    serverName: 'localhost',
    alpn: ['test'],
    ca: pki.caPem,
    verifyPeer: false,
    verify: () => undefined,
    maxIdleTimeoutMs: 30_000,
    connectTimeoutMs: 10_000,
    ...extra,
  };
}

/** A client connection to `port`, closed after the test. */
async function dial(port: number, extra: Partial<QuicDialOptions> = {}): Promise<QuicConnection> {
  const connection = await dialQuic(dialOptions(port, extra));
  cleanups.push(async () => {
    connection.close(0);
    await connection.closed;
  });
  return connection;
}

/** A dgram socket bound to an ephemeral port of 127.0.0.1, closed after the test. */
async function boundUdpSocket(onMessage: (datagram: Buffer) => void = () => undefined): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  socket.on('message', onMessage);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let open = true;
  socket.once('close', () => (open = false));
  cleanups.push(() => (open ? new Promise<void>((resolve) => socket.close(() => resolve())) : undefined));
  return { socket, port: socket.address().port };
}

/** The dial's rejection (fails the test if the dial succeeds). */
async function dialFailure(options: QuicDialOptions): Promise<QuicDialError> {
  let connection: QuicConnection;
  try {
    connection = await dialQuic(options);
  } catch (error) {
    expect(error).toBeInstanceOf(QuicDialError);
    return error as QuicDialError;
  }
  connection.close(0);
  await connection.closed;
  throw new Error(`the dial to port ${options.port} succeeded`);
}

/**
 * UDP sockets of this machine connected to 127.0.0.1:`port` (the kernel's /proc/net/udp): an
 * independent view of the client sockets a dial holds (a connected UDP socket has state 01).
 */
function udpSocketsConnectedTo(port: number): number {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => line.trim().split(/\s+/)[2] === remote).length;
}

/**
 * How many of this process's handles are UDP sockets, once sockets closed earlier are gone (a
 * dgram socket's handle is released on the event-loop turn after close()).
 */
async function udpHandles(): Promise<number> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  return process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;
}

/** Reads a stream to its FIN; afterwards the stream keeps answering null. */
async function readAll(stream: QuicStream): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for (let chunk = await stream.read(); chunk !== null; chunk = await stream.read()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The first streams `connection`'s peer opens, in arrival order. */
function streamsOf(connection: QuicConnection, count: number): Promise<QuicStream[]> {
  const streams: QuicStream[] = [];
  return new Promise((resolve) => {
    connection.onStream((stream) => {
      streams.push(stream);
      if (streams.length === count) resolve(streams);
    });
  });
}

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Writes 1 KiB chunks until a write rejects (at most 2,000 chunks, one per 5 ms): that rejection. */
async function writeUntilRejected(stream: QuicStream): Promise<unknown> {
  const chunk = new Uint8Array(KiB);
  for (let i = 0; i < 2_000; i++) {
    try {
      await stream.write(chunk);
    } catch (error) {
      return error;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`stream ${stream.id}: every write succeeded`);
}

/** A server that echoes each bidirectional stream back: everything read, written with FIN. */
function echoServer(): Promise<QuicServer> {
  return startServer((connection) => {
    connection.onStream((stream) => {
      if (!stream.bidi) return;
      void readAll(stream)
        .then((bytes) => stream.end(bytes))
        .catch(() => undefined);
    });
  });
}

// ---- dialling --------------------------------------------------------------------------------

describe('dialling', () => {
  it("fails with 'refused' when nothing listens on the UDP port (ICMP port unreachable), not at the connect timeout", async () => {
    // A port that was free a moment ago: bound, then released.
    const { socket, port } = await boundUdpSocket();
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    // Both timeouts far beyond this test's own: only the refusal can end the dial in time.
    const error = await dialFailure(dialOptions(port, { connectTimeoutMs: 60_000, maxIdleTimeoutMs: 60_000 }));
    expect(error.failure).toBe('refused');
    expect(error.failure).not.toBe('timeout');
    expect(error.cause).toBeInstanceOf(QuicConnectionError);
    expect(error.cause).toMatchObject({ source: 'socket', reason: 'ECONNREFUSED' });
    expect(udpSocketsConnectedTo(port)).toBe(0);
  }, 30_000);

  it("fails with 'timeout' after connectTimeoutMs when the port swallows every datagram, and leaves no socket open", async () => {
    let swallowed = 0;
    const udpBefore = await udpHandles();
    const { port } = await boundUdpSocket(() => swallowed++);
    expect(await udpHandles()).toBe(udpBefore + 1);
    const dialling = dialFailure(dialOptions(port, { connectTimeoutMs: 300, maxIdleTimeoutMs: 30_000 }));
    // While the dial runs it holds one connected socket (this also checks the count below can see it).
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(udpSocketsConnectedTo(port)).toBe(1);
    expect(await udpHandles()).toBe(udpBefore + 2);
    const error = await dialling;
    expect(error.failure).toBe('timeout');
    expect(swallowed).toBeGreaterThan(0); // the Initial reached the port
    expect(udpSocketsConnectedTo(port)).toBe(0);
    expect(await udpHandles()).toBe(udpBefore + 1); // only the swallowing socket
  });
});

// ---- streams ---------------------------------------------------------------------------------

describe('streams', () => {
  it('delivers stream data the server writes in the same turn its handshake completes', async () => {
    const uni = randomBytes(20 * KiB);
    const bidi = randomBytes(3 * KiB);
    const server = await startServer((connection) => {
      void connection.established.then(
        () => {
          // Same turn as `established`: before the client can have set its onStream handler.
          void connection.openStream(false).end(uni);
          void connection.openStream(true).end(bidi);
        },
        () => undefined,
      );
    });
    const client = await dial(server.port);
    const [first, second] = await streamsOf(client, 2);
    const byKind = new Map([first, second].map((stream) => [stream?.bidi === true ? 'bidi' : 'uni', stream as QuicStream]));
    expect(byKind.get('uni')?.local).toBe(false);
    expect(Buffer.compare(await readAll(byKind.get('uni') as QuicStream), uni)).toBe(0);
    expect(Buffer.compare(await readAll(byKind.get('bidi') as QuicStream), bidi)).toBe(0);
  });

  it('carries a 1 MiB write with FIN intact both ways; the reader sees null (FIN) after the last byte', async () => {
    const received: Buffer[] = [];
    const finAgain: Array<Uint8Array | null> = [];
    const server = await startServer((connection) => {
      connection.onStream((stream) => {
        void (async () => {
          const bytes = await readAll(stream);
          received.push(bytes);
          finAgain.push(await stream.read());
          await stream.end(bytes);
        })().catch(() => undefined);
      });
    });
    const client = await dial(server.port);
    const payload = randomBytes(MiB);
    const stream = client.openStream(true);
    await stream.end(payload);
    const echoed = await readAll(stream);
    expect(received).toHaveLength(1);
    expect(received[0]?.length).toBe(MiB);
    expect(Buffer.compare(received[0] as Buffer, payload)).toBe(0);
    expect(finAgain).toEqual([null]);
    expect(echoed.length).toBe(MiB);
    expect(Buffer.compare(echoed, payload)).toBe(0);
    expect(await stream.read()).toBeNull();
    await stream.closed;
  });

  it('carries 8 concurrent streams of 256 KiB each intact', async () => {
    const server = await echoServer();
    const client = await dial(server.port);
    const payloads = Array.from({ length: 8 }, () => randomBytes(256 * KiB));
    const echoed = await Promise.all(
      payloads.map(async (payload) => {
        const stream = client.openStream(true);
        const [, back] = await Promise.all([stream.end(payload), readAll(stream)]);
        return back;
      }),
    );
    for (const [i, payload] of payloads.entries()) {
      expect(echoed[i]?.length).toBe(256 * KiB);
      expect(Buffer.compare(echoed[i] as Buffer, payload)).toBe(0);
    }
  });

  it("surfaces the peer's RESET_STREAM on the reader as kind 'reset' with the code", async () => {
    let serverSide!: Promise<QuicStream[]>;
    const server = await startServer((connection) => {
      serverSide = streamsOf(connection, 1);
    });
    const client = await dial(server.port);
    const stream = client.openStream(true);
    await stream.write(Buffer.from('partial request'));
    const [peerStream] = await serverSide;
    // The reader has the data sent so far, then waits for more; the writer resets instead.
    expect(Buffer.from((await peerStream?.read()) as Uint8Array).toString()).toBe('partial request');
    const pending = rejectionOf((peerStream as QuicStream).read());
    stream.reset(0x1234);
    const error = await pending;
    expect(error).toBeInstanceOf(QuicStreamError);
    expect(error).toMatchObject({ kind: 'reset', code: 0x1234, byPeer: true });
    // Our own side of the reset: the writer's later writes fail as cancelled.
    await expect(stream.write(new Uint8Array(1))).rejects.toMatchObject({ kind: 'cancelled', code: 0x1234 });
  });

  it("surfaces the peer's RESET_STREAM sent before any data as kind 'reset' with the code", async () => {
    let seen: QuicStream | undefined;
    const reads: Promise<unknown>[] = [];
    const server = await startServer((connection) => {
      connection.onStream((stream) => {
        seen = stream;
        reads.push(rejectionOf(stream.read()));
      });
    });
    const client = await dial(server.port);
    const stream = client.openStream(true);
    await stream.write(new Uint8Array(0));
    stream.reset(0x42);
    // The stream may reach the server with its reset alone.
    for (let i = 0; i < 400 && reads.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen).toBeDefined();
    const error = await reads[0];
    expect(error).toBeInstanceOf(QuicStreamError);
    expect(error).toMatchObject({ kind: 'reset', code: 0x42 });
  });

  it.each(['client', 'server'] as const)("surfaces STOP_SENDING on the writer (%s) as kind 'stopped' with the code", async (writer) => {
    const serverStreams: QuicStream[] = [];
    const server = await startServer((connection) => connection.onStream((stream) => serverStreams.push(stream)));
    const client = await dial(server.port);
    const stream = client.openStream(true);
    await stream.write(Buffer.from('hello'));
    for (let i = 0; i < 400 && serverStreams.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const peerStream = serverStreams[0] as QuicStream;
    expect(peerStream).toBeDefined();
    expect(Buffer.from((await peerStream.read()) as Uint8Array).toString()).toBe('hello');
    const [writing, reading] = writer === 'client' ? [stream, peerStream] : [peerStream, stream];
    reading.stopReading(0x77);
    const error = await writeUntilRejected(writing);
    expect(error).toBeInstanceOf(QuicStreamError);
    expect(error).toMatchObject({ kind: 'stopped', code: 0x77, byPeer: true });
    expect(writing.writeEnded).toBe(true);
  });
  it.each([
    ['with the FIN of its request', 'stop'],
    ['before its request ended (RESET_STREAM too)', 'reset'],
  ] as const)("a response written after the client's STOP_SENDING %s, which quiche forgets at once, fails as 'stopped' and does not spin", async (_, how) => {
    // The gossip bench's busy loop: a client call hits its deadline, and its STOP_SENDING
    // reaches the server with the end of the request (its FIN, or a RESET_STREAM). Once the
    // server reads that end, both sides of the stream are over in quiche, which forgets the
    // stream at once. A response the handler writes later got Done from quiche, as for a
    // stream with no room yet: the write stayed queued and was retried, with a new send pass,
    // on every event-loop turn until the connection ended.
    const serverStreams: QuicStream[] = [];
    let serverSide!: QuicConnection;
    const server = await startServer((connection) => {
      serverSide = connection;
      connection.onStream((stream) => serverStreams.push(stream));
    });
    const client = await dial(server.port);
    const stream = client.openStream(true);
    // Both in one turn, so in one packet.
    if (how === 'stop') {
      void stream.end(Buffer.from('request'));
      stream.stopReading(0x10c);
    } else {
      void stream.write(Buffer.from('request')).catch(() => undefined);
      stream.reset(0x10c);
    }
    for (let i = 0; i < 400 && serverStreams.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const peerStream = serverStreams[0] as QuicStream;
    expect(peerStream).toBeDefined();
    if (how === 'stop') expect((await readAll(peerStream)).toString()).toBe('request');
    else await expect(readAll(peerStream)).rejects.toMatchObject({ kind: 'reset', code: 0x10c });
    // A handler that answers a little later.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = { ...quicDriverActivity };
    const outcome = await Promise.race([
      rejectionOf(peerStream.end(Buffer.from('late response'))),
      new Promise((resolve) => setTimeout(() => resolve('the write is still pending after 1 s'), 1_000)),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const pumps = quicDriverActivity.pumps - before.pumps;
    const retries = quicDriverActivity.writeRetries - before.writeRetries;
    expect(outcome).toBeInstanceOf(QuicStreamError);
    expect(outcome).toMatchObject({ kind: 'stopped', byPeer: true });
    expect(peerStream.writeEnded).toBe(true);
    await peerStream.closed;
    // Two quiet connections for 1-2 s: a few passes (ACKs, timers), not one per event-loop turn.
    expect(pumps).toBeLessThan(100);
    expect(retries).toBeLessThan(10);
    expect(serverSide.isEstablished && client.isEstablished).toBe(true);
  });
});

// ---- connection ends -------------------------------------------------------------------------

describe('connection ends', () => {
  it.each(['client', 'server'] as const)("close(0x100) by the %s: the peer's closed resolves with source 'peer', an application code 0x100, and every pending read rejects as 'closed'", async (closer) => {
    const serverStreams: QuicStream[] = [];
    let serverSide: QuicConnection | undefined;
    const server = await startServer((connection) => {
      serverSide = connection;
      connection.onStream((stream) => serverStreams.push(stream));
    });
    const client = await dial(server.port);
    const clientStreams = [client.openStream(true), client.openStream(true), client.openStream(true)];
    for (const stream of clientStreams) await stream.write(Buffer.from(`stream ${stream.id}`));
    for (let i = 0; i < 400 && serverStreams.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(serverStreams).toHaveLength(3);
    for (const stream of serverStreams) expect(Buffer.from((await stream.read()) as Uint8Array).toString()).toBe(`stream ${stream.id}`);
    const server1 = serverSide as QuicConnection;
    // Every stream on both sides has a read pending.
    const clientReads = clientStreams.map((stream) => rejectionOf(stream.read()));
    const serverReads = serverStreams.map((stream) => rejectionOf(stream.read()));
    const [closing, peer, peerReads, ownReads] = closer === 'client' ? [client, server1, serverReads, clientReads] : [server1, client, clientReads, serverReads];

    closing.close(0x100, 'bye');
    await peer.closed;
    expect(peer.isClosed).toBe(true);
    expect(peer.closeError).toBeInstanceOf(QuicConnectionError);
    expect(peer.closeError).toMatchObject({ source: 'peer', isApp: true, code: 0x100, reason: 'bye' });
    expect(peer.closeError?.tlsAlert).toBeUndefined();
    for (const error of await Promise.all(peerReads)) {
      expect(error).toBeInstanceOf(QuicStreamError);
      expect(error).toMatchObject({ kind: 'closed' });
      expect((error as QuicStreamError).cause).toBe(peer.closeError);
    }
    // The closing side: its own reads end too, with its local close as the cause.
    await closing.closed;
    expect(closing.closeError).toMatchObject({ source: 'local', isApp: true, code: 0x100 });
    for (const error of await Promise.all(ownReads)) expect(error).toMatchObject({ kind: 'closed' });
    // Nothing can be opened on an ended connection.
    expect(() => peer.openStream(true)).toThrow(QuicStreamError);
  });

  it("ends the client's connection with the TLS alert (48) the server's verify refused its certificate with", async () => {
    let verified = 0;
    const server = await startServer(() => undefined, {
      verifyPeer: true,
      ca: pki.caPem,
      verify: (chain) => {
        verified++;
        expect(chain.length).toBeGreaterThan(0);
        return 48; // unknown_ca
      },
    });
    const options = dialOptions(server.port, { cert: pki.clientCertPem, key: pki.clientKeyPem });
    let closeError: QuicConnectionError | undefined;
    try {
      // The client's handshake completes before the server sees its certificate: the dial
      // usually succeeds and the connection is closed right after.
      const client = await dialQuic(options);
      await client.closed;
      closeError = client.closeError;
    } catch (error) {
      // Or the server's close arrives before the client's handshake is done.
      expect(error).toBeInstanceOf(QuicDialError);
      expect((error as QuicDialError).failure).toBe('handshake');
      closeError = (error as QuicDialError).cause as QuicConnectionError;
    }
    expect(verified).toBe(1);
    expect(closeError).toBeInstanceOf(QuicConnectionError);
    expect(closeError).toMatchObject({ source: 'peer', isApp: false, code: 0x100 + 48 });
    expect(closeError?.tlsAlert).toBe(48);
    expect(server.connections.size).toBe(0);
  });
});
