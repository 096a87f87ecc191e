/**
 * A deliberately simple, independently written HTTP/3 peer on `@matrixai/quic` (real UDP on
 * 127.0.0.1) for edge-case tests: it writes raw bytes (its own varints, frames and literal-only
 * QPACK, none of OmniRelay's code), so a test can make it misbehave in exactly one way and
 * read the error code the other side closed the connection with.
 */
import { createHmac, randomBytes, randomFillSync } from 'node:crypto';
import Logger, { LogLevel } from '@matrixai/logger';
import { errors, events, QUICClient, QUICServer, type QUICConnection, type QUICStream } from '@matrixai/quic';

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

const logger = (name: string): Logger => new Logger(name, LogLevel.ERROR);

function arrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** How the other side ended a connection: its CONNECTION_CLOSE (application) code. */
export interface PeerClose {
  readonly errorCode: number;
  readonly isApp: boolean;
  readonly reason: string;
}

/** One connection of a raw peer, with helpers to write raw streams and see how it ended. */
export class RawConnection {
  /** Resolves with the other side's CONNECTION_CLOSE; never rejects. */
  readonly peerClose: Promise<PeerClose>;
  /** Request streams the client opened (server role), in order. */
  readonly requests: QUICStream[] = [];
  #onRequest: ((stream: QUICStream, request: Uint8Array) => void | Promise<void>) | undefined;

  constructor(
    readonly connection: QUICConnection,
    onRequest?: (stream: QUICStream, request: Uint8Array, peer: RawConnection) => void | Promise<void>,
  ) {
    this.#onRequest = onRequest === undefined ? undefined : (stream, request) => onRequest(stream, request, this);
    this.peerClose = new Promise((resolve) => {
      connection.addEventListener(events.EventQUICConnectionError.name, (event: Event) => {
        const detail = (event as events.EventQUICConnectionError).detail;
        if (detail instanceof errors.ErrorQUICConnectionPeer || detail instanceof errors.ErrorQUICConnectionPeerTLS) {
          const data = detail.data as { errorCode: number; isApp: boolean; reason: Uint8Array };
          resolve({ errorCode: data.errorCode, isApp: data.isApp, reason: Buffer.from(data.reason).toString('utf8') });
        }
      });
    });
    connection.addEventListener(events.EventQUICConnectionStream.name, (event: Event) => {
      const stream = (event as events.EventQUICConnectionStream).detail;
      if (stream.type === 'bidi') void this.#serve(stream);
      else void stream.readable.pipeTo(new WritableStream()).catch(() => undefined);
    });
  }

  async #serve(stream: QUICStream): Promise<void> {
    this.requests.push(stream);
    const chunks: Uint8Array[] = [];
    try {
      for await (const chunk of stream.readable) chunks.push(chunk);
    } catch {
      return;
    }
    await this.#onRequest?.(stream, concat(...chunks));
  }

  /** Client role: sends `bytes` on a new request stream and reads the response to its end. */
  async request(bytes: Uint8Array): Promise<Uint8Array> {
    const stream = this.connection.newStream('bidi');
    await RawConnection.write(stream, bytes, true);
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream.readable) chunks.push(chunk);
    return concat(...chunks);
  }

  /** Opens a unidirectional stream and writes `bytes` (kept open unless `fin`). */
  async openUni(bytes: Uint8Array, fin = false): Promise<QUICStream> {
    const stream = this.connection.newStream('uni');
    const writer = stream.writable.getWriter();
    await writer.write(bytes);
    if (fin) await writer.close();
    else writer.releaseLock();
    return stream;
  }

  /** Our control stream with an empty SETTINGS frame, plus `after` on the same stream. */
  openControl(after: Uint8Array = new Uint8Array()): Promise<QUICStream> {
    return this.openUni(concat(varint(STREAM_TYPE.CONTROL), settingsFrame(), after));
  }

  /** Writes `bytes` on an open stream we own (e.g. more frames on our control stream). */
  static async write(stream: QUICStream, bytes: Uint8Array, fin = false): Promise<void> {
    const writer = stream.writable.getWriter();
    await writer.write(bytes);
    if (fin) await writer.close();
    else writer.releaseLock();
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
 * calls `onConnection` (default: open a control stream with empty SETTINGS) and, for each
 * complete request (read to its FIN), `onRequest` (default: an OK gRPC response).
 */
export async function startRawH3Server(options: {
  certPem: string;
  keyPem: string;
  onConnection?: (peer: RawConnection) => void | Promise<void>;
  onRequest?: (stream: QUICStream, request: Uint8Array, peer: RawConnection) => void | Promise<void>;
}): Promise<RawH3Server> {
  const key = randomBytes(32);
  const mac = (k: ArrayBuffer, data: ArrayBuffer): Buffer => createHmac('sha256', Buffer.from(k)).update(Buffer.from(data)).digest();
  const server = new QUICServer({
    crypto: {
      key: arrayBuffer(key),
      ops: {
        sign: (k, data) => Promise.resolve(arrayBuffer(mac(k, data))),
        verify: (k, data, sig) => Promise.resolve(Buffer.from(sig).equals(mac(k, data))),
      },
    },
    config: { applicationProtos: ['h3'], key: options.keyPem, cert: options.certPem, maxIdleTimeout: 10_000, verifyPeer: false },
    logger: logger('raw-h3-server'),
  });
  const connections: RawConnection[] = [];
  const waiting = new Map<number, (peer: RawConnection) => void>();
  const onRequest =
    options.onRequest ??
    (async (stream: QUICStream) => {
      await RawConnection.write(stream, okGrpcResponse(), true).catch(() => undefined);
    });
  server.addEventListener(events.EventQUICServerConnection.name, (event: Event) => {
    const peer = new RawConnection((event as events.EventQUICServerConnection).detail, onRequest);
    connections.push(peer);
    waiting.get(connections.length - 1)?.(peer);
    void Promise.resolve(options.onConnection !== undefined ? options.onConnection(peer) : peer.openControl()).catch(() => undefined);
  });
  await server.start({ host: '127.0.0.1', port: 0 });
  return {
    port: server.port,
    connections,
    connection: (index) => {
      const existing = connections[index];
      return existing !== undefined ? Promise.resolve(existing) : new Promise((resolve) => waiting.set(index, resolve));
    },
    stop: () => server.stop({ isApp: true, errorCode: 0x100, force: true }),
  };
}

/** A raw HTTP/3 client connection (ALPN h3) presenting `cert`/`key`, trusting `ca`. */
export async function connectRawH3(options: { port: number; ca: string; certPem: string; keyPem: string }): Promise<{ peer: RawConnection; close(): Promise<void> }> {
  const client = await QUICClient.createQUICClient({
    host: '127.0.0.1',
    port: options.port,
    serverName: 'localhost',
    localHost: '127.0.0.1',
    crypto: {
      ops: {
        randomBytes: (data: ArrayBuffer) => {
          randomFillSync(new Uint8Array(data));
          return Promise.resolve();
        },
      },
    },
    config: { applicationProtos: ['h3'], ca: options.ca, cert: options.certPem, key: options.keyPem, verifyPeer: true, maxIdleTimeout: 10_000 },
    logger: logger('raw-h3-client'),
  });
  return {
    peer: new RawConnection(client.connection),
    close: () => client.destroy({ isApp: true, errorCode: 0x100, force: true }),
  };
}
