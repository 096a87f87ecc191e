/**
 * A deliberately simple, independently written HTTP/3 peer (real UDP on 127.0.0.1) for
 * edge-case tests: it writes raw bytes (its own varints, frames and literal-only QPACK, none
 * of OmniRelay's HTTP/3 code), so a test can make it misbehave in exactly one way and read the
 * error code the other side closed the connection with. Its QUIC is OmniRelay's driver over
 * quiche (from the built `dist/`), the layer below the one under test.
 */
import { dialQuic } from '../../dist/quic/client.js';
import type { QuicConnection } from '../../dist/quic/connection.js';
import { QuicServer } from '../../dist/quic/server.js';
import type { QuicStream } from '../../dist/quic/stream.js';

export type { QuicStream };

// ---- bytes ---------------------------------------------------------------------------------

/** A QUIC variable-length integer (RFC 9000 §16), for values below 2^30. */
export function varint(value: number): Uint8Array {
  if (value < 0x40) return Uint8Array.of(value);
  if (value < 0x4000) return Uint8Array.of(0x40 | (value >> 8), value & 0xff);
  if (value < 0x40000000) return Uint8Array.of(0x80 | (value >>> 24), (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff);
  throw new RangeError(`varint ${value} too large for this helper`);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** An HTTP/3 frame: type, length, payload. */
export function frame(type: number, payload: Uint8Array): Uint8Array {
  return concat(varint(type), varint(payload.length), payload);
}

export const FRAME = { DATA: 0x00, HEADERS: 0x01, SETTINGS: 0x04, GOAWAY: 0x07 } as const;
export const STREAM_TYPE = { CONTROL: 0x00, PUSH: 0x01, QPACK_ENCODER: 0x02, QPACK_DECODER: 0x03 } as const;

/** SETTINGS with the given (id, value) pairs. */
export function settingsFrame(pairs: ReadonlyArray<readonly [number, number]> = []): Uint8Array {
  return frame(FRAME.SETTINGS, concat(...pairs.flatMap(([id, value]) => [varint(id), varint(value)])));
}

/** An RFC 7541 §5.1 prefixed integer whose first byte carries `flags` above an N-bit prefix. */
export function prefixedInteger(value: number, prefixBits: number, flags = 0): Uint8Array {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Uint8Array.of(flags | value);
  const bytes = [flags | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Uint8Array.from(bytes);
}

/**
 * A QPACK field section of literal field lines with literal names (RFC 9204 §4.5.6), no
 * Huffman, no table references: Required Insert Count 0, Base 0.
 */
export function fieldSection(fields: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const lines = fields.map(([name, value]) => {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    return concat(prefixedInteger(n.length, 3, 0x20), n, prefixedInteger(v.length, 7), v);
  });
  return concat(Uint8Array.of(0x00, 0x00), ...lines);
}

export function headersFrame(fields: ReadonlyArray<readonly [string, string]>): Uint8Array {
  return frame(FRAME.HEADERS, fieldSection(fields));
}

/** A gRPC length-prefixed message in a DATA frame. */
export function grpcDataFrame(message: Uint8Array): Uint8Array {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return frame(FRAME.DATA, concat(prefix, message));
}

/** A complete OK gRPC response carrying one empty message (a default PingResponse). */
export function okGrpcResponse(): Uint8Array {
  return concat(
    headersFrame([
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ]),
    grpcDataFrame(new Uint8Array()),
    headersFrame([['grpc-status', '0']]),
  );
}

/** A complete gRPC request (POST `path`, one empty message), with `extra` header fields. */
export function grpcRequest(path: string, extra: ReadonlyArray<readonly [string, string]> = []): Uint8Array {
  return concat(
    headersFrame([
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', 'localhost'],
      [':path', path],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ...extra,
    ]),
    grpcDataFrame(new Uint8Array()),
  );
}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } | undefined {
  const first = bytes[at];
  if (first === undefined) return undefined;
  const length = 1 << (first >> 6);
  if (at + length > bytes.length) return undefined;
  let value = first & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + (bytes[at + i] as number);
  return { value, next: at + length };
}

/** The frame types and payload lengths in `bytes` (complete frames only). */
export function frameTypes(bytes: Uint8Array): Array<{ type: number; length: number }> {
  const frames: Array<{ type: number; length: number }> = [];
  let at = 0;
  for (;;) {
    const type = readVarint(bytes, at);
    const length = type === undefined ? undefined : readVarint(bytes, type.next);
    if (type === undefined || length === undefined || length.next + length.value > bytes.length) return frames;
    frames.push({ type: type.value, length: length.value });
    at = length.next + length.value;
  }
}

// ---- QUIC plumbing -------------------------------------------------------------------------

/** How the other side ended a connection: its CONNECTION_CLOSE (application) code. */
export interface PeerClose {
  readonly errorCode: number;
  readonly isApp: boolean;
  readonly reason: string;
}

async function readAll(stream: QuicStream): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (let chunk = await stream.read(); chunk !== null; chunk = await stream.read()) chunks.push(chunk);
  return concat(...chunks);
}

/** One connection of a raw peer, with helpers to write raw streams and see how it ended. */
export class RawConnection {
  /** Resolves with the other side's CONNECTION_CLOSE; never rejects (and never resolves for any other end). */
  readonly peerClose: Promise<PeerClose>;
  /** Request streams the client opened (server role), in order. */
  readonly requests: QuicStream[] = [];
  /** Server role: requests are answered only after the connection's set-up (onConnection) is done. */
  setUp: Promise<unknown> = Promise.resolve();
  #onRequest: ((stream: QuicStream, request: Uint8Array) => void | Promise<void>) | undefined;

  constructor(
    readonly connection: QuicConnection,
    onRequest?: (stream: QuicStream, request: Uint8Array, peer: RawConnection) => void | Promise<void>,
  ) {
    this.#onRequest = onRequest === undefined ? undefined : (stream, request) => onRequest(stream, request, this);
    this.peerClose = new Promise((resolve) => {
      void connection.closed.then(() => {
        const error = connection.closeError;
        if (error?.source === 'peer') resolve({ errorCode: error.code, isApp: error.isApp, reason: error.reason });
      });
    });
    connection.onStream((stream) => {
      if (stream.bidi) void this.#serve(stream);
      else void readAll(stream).catch(() => undefined);
    });
  }

  async #serve(stream: QuicStream): Promise<void> {
    this.requests.push(stream);
    let request: Uint8Array;
    try {
      request = await readAll(stream);
    } catch {
      return;
    }
    await this.setUp.catch(() => undefined);
    await this.#onRequest?.(stream, request);
  }

  /** Client role: sends `bytes` on a new request stream and reads the response to its end. */
  async request(bytes: Uint8Array): Promise<Uint8Array> {
    const stream = this.connection.openStream(true);
    await stream.end(bytes);
    return readAll(stream);
  }

  /** Opens a unidirectional stream and writes `bytes` (kept open unless `fin`). */
  async openUni(bytes: Uint8Array, fin = false): Promise<QuicStream> {
    const stream = this.connection.openStream(false);
    await stream.write(bytes, fin);
    return stream;
  }

  /** Our control stream with an empty SETTINGS frame, plus `after` on the same stream. */
  openControl(after: Uint8Array = new Uint8Array()): Promise<QuicStream> {
    return this.openUni(concat(varint(STREAM_TYPE.CONTROL), settingsFrame(), after));
  }

  /** Writes `bytes` on an open stream we own (e.g. more frames on our control stream). */
  static async write(stream: QuicStream, bytes: Uint8Array, fin = false): Promise<void> {
    await stream.write(bytes, fin);
  }
}

export interface RawH3Server {
  readonly port: number;
  /** Every connection, in order. */
  readonly connections: RawConnection[];
  /** The next connection (already made or still to come). */
  connection(index: number): Promise<RawConnection>;
  stop(): Promise<void>;
}

/**
 * A raw HTTP/3 server (ALPN h3, no client certificate requested). For each connection it
 * calls `onConnection` (default: open a control stream with empty SETTINGS) once the handshake
 * is done and, for each complete request (read to its FIN), `onRequest` (default: an OK gRPC
 * response).
 */
export async function startRawH3Server(options: {
  certPem: string;
  keyPem: string;
  onConnection?: (peer: RawConnection) => void | Promise<void>;
  onRequest?: (stream: QuicStream, request: Uint8Array, peer: RawConnection) => void | Promise<void>;
}): Promise<RawH3Server> {
  const connections: RawConnection[] = [];
  const waiting = new Map<number, (peer: RawConnection) => void>();
  const onRequest =
    options.onRequest ??
    (async (stream: QuicStream) => {
      await RawConnection.write(stream, okGrpcResponse(), true).catch(() => undefined);
    });
  const server = await QuicServer.listen({
    host: '127.0.0.1',
    port: 0,
    alpn: ['h3'],
    key: options.keyPem,
    cert: options.certPem,
    verifyPeer: false,
    maxIdleTimeoutMs: 10_000,
    onConnection: (connection) => {
      const peer = new RawConnection(connection, onRequest);
      connection.established.then(
        () => {
          connections.push(peer);
          waiting.get(connections.length - 1)?.(peer);
          // A request may arrive with the handshake's last packets: answer it only once the
          // set-up streams have gone out (a stream reset in the same turn as its first write
          // would never be seen by the client).
          peer.setUp = Promise.resolve(options.onConnection !== undefined ? options.onConnection(peer) : peer.openControl()).then(() => new Promise((resolve) => setTimeout(resolve, 50)));
          peer.setUp.catch(() => undefined);
        },
        () => undefined,
      );
    },
  });
  return {
    port: server.port,
    connections,
    connection: (index) => {
      const existing = connections[index];
      return existing !== undefined ? Promise.resolve(existing) : new Promise((resolve) => waiting.set(index, resolve));
    },
    stop: () => server.close(0x100),
  };
}

/** A raw HTTP/3 client connection (ALPN h3) presenting `cert`/`key` (the server's certificate is not checked). */
export async function connectRawH3(options: { port: number; ca: string; certPem: string; keyPem: string; initialMaxStreamsUni?: number }): Promise<{ peer: RawConnection; close(): Promise<void> }> {
  const connection = await dialQuic({
    host: '127.0.0.1',
    port: options.port,
    serverName: 'localhost',
    alpn: ['h3'],
    ca: options.ca,
    cert: options.certPem,
    key: options.keyPem,
    verifyPeer: true,
    verify: () => undefined,
    maxIdleTimeoutMs: 10_000,
    connectTimeoutMs: 5_000,
    initialMaxStreamsUni: options.initialMaxStreamsUni,
  });
  return {
    peer: new RawConnection(connection),
    close: async () => {
      connection.close(0x100);
      await connection.closed;
    },
  };
}
