// Child-process scenario for test/integration/quic-control-stream-race.test.ts.
//
// An HTTP/3 peer sends its control stream together with its last handshake packets.
// @matrixai/quic 2.0.9 then sees a readable peer stream while the connection is still
// `starting`, rejects it with a write-side shutdown, and quiche throws
// `InvalidStreamState` for a receive-only (peer unidirectional) stream: an uncaught
// exception that ends the process. The same shutdown happens for a peer uni stream
// that arrives while the connection is `stopping`.
//
// @matrixai/quic itself cannot produce that packet pattern (its `newStream` only works
// once running), so the peer here is an HTTP/3-style client written directly on the
// quiche binding that @matrixai/quic ships: like ngtcp2/nghttp3 it queues its control
// stream as soon as the handshake completes, so quiche coalesces the STREAM frame with
// the client Finished into one datagram. The library under test is the server side:
// QUICServer, ALPN h3, a real HMAC for its crypto ops, logger at WARN.
//
// Per connection (RACE_CONNECTIONS, default 20):
//   1. the client's control stream (uni 2) reaches the server connection while it is
//      starting; the server app must still receive it, and the client must receive
//      the server's control stream (uni 3);
//   2. the server stops that connection gracefully (force: false, which waits for its
//      never-ending control stream) and the client then opens another uni stream
//      (uni 6, like a late QPACK stream): it must be refused without a crash.
//
// Environment:
//   RACE_PKI          path of a JSON file { caPem, certPem, keyPem }: a server leaf for
//                     127.0.0.1/localhost issued by caPem                  (required)
//   RACE_QUIC_LIBRARY absolute path of the library's dist/index.js; default is the
//                     installed `@matrixai/quic`
//   RACE_CONNECTIONS  number of connections, default 20
//
// Exits 0 after every connection passed both steps, printing one JSON line.
import { Buffer } from 'node:buffer';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { pathToFileURL } from 'node:url';
import { TextDecoder, TextEncoder } from 'node:util';
import Logger, { LogLevel } from '@matrixai/logger';

const libraryPath = process.env.RACE_QUIC_LIBRARY;
const quic = await import(libraryPath ? pathToFileURL(libraryPath).href : '@matrixai/quic');
const { QUICServer, events, native } = quic;
const { quiche } = native;

const pki = JSON.parse(readFileSync(process.env.RACE_PKI ?? '', 'utf8'));
const connections = Number(process.env.RACE_CONNECTIONS ?? '20');
const logger = new Logger('race', LogLevel.WARN);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DEADLINE_MS = 5_000;
const H3_NO_ERROR = 0x100;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function toArrayBuffer(buffer) {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

// ---- the library under test: a QUICServer -------------------------------------

// A real MAC: the server derives connection IDs and signs Retry tokens with it.
const hmacKey = randomBytes(32);
const hmac = (key, data) => createHmac('sha256', Buffer.from(key)).update(Buffer.from(data)).digest();
const server = new QUICServer({
  crypto: {
    key: toArrayBuffer(hmacKey),
    ops: {
      sign: async (key, data) => toArrayBuffer(hmac(key, data)),
      verify: async (key, data, sig) => Buffer.from(sig).equals(hmac(key, data)),
    },
  },
  config: { applicationProtos: ['h3'], maxIdleTimeout: 10_000, key: pki.keyPem, cert: pki.certPem },
  logger: logger.getChild('server'),
});

/** Accepted connections in order, each with what it read from its peer's control stream. */
const accepted = [];
let onAccepted = () => {};
server.addEventListener(events.EventQUICServerConnection.name, (evt) => {
  const connection = evt.detail;
  const controlRead = new Promise((resolve, reject) => {
    connection.addEventListener(events.EventQUICConnectionStream.name, (streamEvt) => {
      const stream = streamEvt.detail;
      if (stream.type !== 'uni') return;
      const reader = stream.readable.getReader();
      reader.read().then((chunk) => {
        reader.releaseLock();
        resolve(decoder.decode(chunk.value));
      }, reject);
    });
  });
  // The server's own control stream, opened at once; it never ends.
  void connection.newStream('uni').writable.getWriter().write(encoder.encode('server-control'));
  accepted.push({ connection, controlRead });
  onAccepted();
});

async function nextAccepted(i) {
  while (accepted.length <= i) await new Promise((resolve) => (onAccepted = resolve));
  return accepted[i];
}

// ---- the peer: an HTTP/3-style client on the raw quiche binding -------------------

function clientConfig() {
  const config = quiche.Config.withBoringSslCtx(true, false, encoder.encode(pki.caPem), null, null, null);
  config.setApplicationProtos(['h3']);
  config.setMaxIdleTimeout(10_000);
  config.setInitialMaxData(1 << 20);
  config.setInitialMaxStreamDataBidiLocal(1 << 20);
  config.setInitialMaxStreamDataBidiRemote(1 << 20);
  config.setInitialMaxStreamDataUni(1 << 20);
  config.setInitialMaxStreamsBidi(16);
  config.setInitialMaxStreamsUni(16);
  return config;
}

async function rawClient(serverPort, text) {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const local = { host: '127.0.0.1', port: socket.address().port };
  const remote = { host: '127.0.0.1', port: serverPort };
  const conn = quiche.Connection.connect('localhost', randomBytes(20), local, remote, clientConfig());
  const out = Buffer.alloc(1500);
  let timer;
  const flush = () => {
    for (let sent = conn.send(out); sent !== null; sent = conn.send(out)) {
      socket.send(Buffer.from(out.subarray(0, sent[0])), remote.port, remote.host);
    }
    clearTimeout(timer);
    const timeout = conn.timeout();
    if (timeout !== null && !conn.isClosed()) {
      timer = setTimeout(() => {
        conn.onTimeout();
        flush();
      }, timeout);
    }
  };
  let controlQueued = false;
  let serverControl;
  const serverControlRead = new Promise((resolve) => (serverControl = resolve));
  const chunk = Buffer.alloc(1500);
  socket.on('message', (msg) => {
    conn.recv(msg, { to: local, from: remote });
    if (conn.isEstablished() && !controlQueued) {
      // Queued before the next send: it leaves in the datagram of the client Finished.
      controlQueued = true;
      conn.streamSend(2, encoder.encode(text), false);
    }
    for (const streamId of conn.readable()) {
      let result = null;
      try {
        result = conn.streamRecv(streamId, chunk);
      } catch {
        // StreamReset: the server reset its streams while stopping.
      }
      if (streamId === 3 && result !== null) serverControl(decoder.decode(chunk.subarray(0, result[0])));
    }
    flush();
  });
  flush();
  return {
    serverControlRead,
    openUniStream(streamId, data) {
      conn.streamSend(streamId, data, false);
      flush();
    },
    async close() {
      if (!conn.isClosed()) {
        conn.close(true, H3_NO_ERROR, new Uint8Array());
        flush();
      }
      clearTimeout(timer);
      await new Promise((resolve) => socket.close(resolve));
    },
  };
}

// ---- the scenario -----------------------------------------------------------------

await server.start({ host: '127.0.0.1', port: 0 });
let exchanged = 0;
let refusedWhileStopping = 0;
try {
  for (let i = 0; i < connections; i += 1) {
    const client = await rawClient(server.port, `client-control-${i}`);
    try {
      const { connection, controlRead } = await withDeadline(nextAccepted(i), `accept #${i}`);
      const fromClient = await withDeadline(controlRead, `server read #${i}`);
      if (fromClient !== `client-control-${i}`) throw new Error(`server #${i} read ${fromClient}`);
      const fromServer = await withDeadline(client.serverControlRead, `client read #${i}`);
      if (fromServer !== 'server-control') throw new Error(`client #${i} read ${fromServer}`);
      exchanged += 1;

      // A graceful stop waits for the server's control stream; meanwhile the peer
      // opens one more uni stream, which must be refused (STOP_SENDING only).
      const stopped = connection.stop({ isApp: true, errorCode: H3_NO_ERROR, force: false });
      await sleep(5);
      client.openUniStream(6, new Uint8Array([0x02]));
      await sleep(20);
      connection.destroyStreams();
      await withDeadline(stopped, `stop #${i}`);
      refusedWhileStopping += 1;
    } finally {
      await client.close();
    }
  }
} finally {
  await server.stop({ isApp: true, errorCode: H3_NO_ERROR, force: true });
}
process.stdout.write(`${JSON.stringify({ connections, exchanged, refusedWhileStopping })}\n`);
