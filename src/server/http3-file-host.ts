/**
 * A read-only static file server over HTTP/3 (QUIC on UDP through our driver, our HTTP/3 and
 * QPACK layer): GET and HEAD of the files under one directory; 404 for anything missing or
 * outside it, 405 for other methods. Small on purpose: diagnostics pages, bootstrap bundles
 * and interop checks with other HTTP/3 implementations.
 */
import { open, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import type { QuicConnection } from '../quic/connection.js';
import { QuicStreamError } from '../quic/errors.js';
import type { QuicServer } from '../quic/server.js';
import type { QuicStream } from '../quic/stream.js';
import { H3_ERROR_CODES, Http3Error } from '../http3/error-codes.js';
import { concatBytes } from '../http3/frames.js';
import { H3Session } from '../http3/session.js';
import { QpackError, type HeaderField } from '../http3/qpack/index.js';
import { encodeMessage, RequestStreamReader, type RequestStreamEvent } from '../http3/request-stream.js';
import { startH3QuicServer, stopH3QuicServer, type H3QuicServerOptions } from './h3-quic-server.js';

export interface Http3FileHostOptions extends H3QuicServerOptions {
  /** The directory to serve (read-only). */
  readonly root: string;
}

const CHUNK_BYTES = 64 * 1024;
/** Request body bytes we read and throw away (GET/HEAD carry none in practice). */
const MAX_REQUEST_BODY_BYTES = 64 * 1024;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.pem': 'application/x-pem-file',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

interface ConnectionState {
  readonly connection: QuicConnection;
  readonly session: H3Session;
}

interface Request {
  readonly method: string;
  readonly path: string;
}

/** Serves the files under a directory over HTTP/3. */
export class Http3FileHost {
  #server!: QuicServer;
  readonly #root: string;
  readonly #connections = new Set<ConnectionState>();
  #requests = 0;
  #closed = false;

  private constructor(root: string) {
    this.#root = root;
  }

  /** The bound address. */
  get host(): string {
    return this.#server.host;
  }

  /** The bound UDP port. */
  get port(): number {
    return this.#server.port;
  }

  /** `https://host:port`. */
  get url(): string {
    return `https://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Requests answered so far (any status). */
  get requestsServed(): number {
    return this.#requests;
  }

  static async start(options: Http3FileHostOptions): Promise<Http3FileHost> {
    const root = await realpath(options.root);
    if (!(await stat(root)).isDirectory()) throw new Error(`Http3FileHost: ${options.root} is not a directory`);
    const host = new Http3FileHost(root);
    host.#server = await startH3QuicServer(options, (connection) => {
      connection.established.then(() => host.#startSession(connection), () => undefined);
    });
    return host;
  }

  #startSession(connection: QuicConnection): void {
    if (connection.isClosed) return;
    const holder: { state?: ConnectionState } = {};
    const session = new H3Session(connection, {
      role: 'server',
      onRequestStream: (stream) => void this.#serve(session, stream),
      onClosed: () => {
        if (holder.state !== undefined) this.#connections.delete(holder.state);
      },
    });
    holder.state = { connection, session };
    this.#connections.add(holder.state);
    session.start();
    if (this.#closed) session.sendGoaway(0n);
  }

  async #serve(session: H3Session, stream: QuicStream): Promise<void> {
    if (this.#closed) {
      stream.reset(H3_ERROR_CODES.H3_REQUEST_REJECTED);
      return;
    }
    let responded = false;
    try {
      const request = await this.#readRequest(session, stream);
      if (request === undefined) return;
      responded = true;
      this.#requests++;
      await this.#respond(stream, request);
    } catch (error) {
      if (error instanceof Http3Error && error.scope === 'connection') session.fail(error);
      else if (error instanceof QpackError) session.fail({ code: error.code, message: error.message });
      else if (error instanceof Http3Error) stream.reset(error.code);
      else stream.reset(responded ? H3_ERROR_CODES.H3_INTERNAL_ERROR : H3_ERROR_CODES.H3_REQUEST_CANCELLED);
    }
  }

  /** Reads the request's header section, then drains the stream to the client's FIN. */
  async #readRequest(session: H3Session, stream: QuicStream): Promise<Request | undefined> {
    const request = new RequestStreamReader(stream, session, 'server', MAX_REQUEST_BODY_BYTES);
    let fields: HeaderField[] | undefined;
    let bodyBytes = 0;
    for (;;) {
      let event: RequestStreamEvent | null;
      try {
        event = await request.next();
      } catch (error) {
        if (error instanceof QuicStreamError) return undefined; // the client reset the request
        throw error;
      }
      if (event === null) break;
      if (event.kind === 'headers') {
        fields ??= event.fields;
      } else {
        bodyBytes += event.payload.length;
        if (bodyBytes > MAX_REQUEST_BODY_BYTES) throw Http3Error.stream(H3_ERROR_CODES.H3_EXCESSIVE_LOAD, 'request body too large');
      }
    }
    if (fields === undefined) throw Http3Error.stream(H3_ERROR_CODES.H3_REQUEST_INCOMPLETE, 'request without headers');
    const method = fields.find(([name]) => name === ':method')?.[1];
    const path = fields.find(([name]) => name === ':path')?.[1];
    if (method === undefined || path === undefined) throw Http3Error.stream(H3_ERROR_CODES.H3_MESSAGE_ERROR, 'request without :method or :path');
    return { method, path };
  }


  /** Writes the whole response; its last bytes carry the FIN. */
  async #respond(stream: QuicStream, request: Request): Promise<void> {
    const headers = (status: number, extra: HeaderField[]): Uint8Array => encodeMessage({ headers: [[':status', String(status)], ['server', 'omnirelay-h3'], ...extra] });
    const text = async (status: number, body: string, extra: HeaderField[] = []): Promise<void> => {
      const bytes = Buffer.from(body, 'utf8');
      const head = headers(status, [['content-type', 'text/plain; charset=utf-8'], ['content-length', String(bytes.length)], ...extra]);
      await stream.end(request.method === 'HEAD' ? head : concatBytes([head, encodeMessage({ data: [bytes] })]));
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      await text(405, 'method not allowed\n', [['allow', 'GET, HEAD']]);
      return;
    }
    const file = await this.#resolve(request.path);
    if (file === undefined) {
      await text(404, 'not found\n');
      return;
    }
    const handle = await open(file, 'r').catch(() => undefined);
    if (handle === undefined) {
      await text(404, 'not found\n');
      return;
    }
    try {
      const size = (await handle.stat()).size;
      const head = headers(200, [
        ['content-type', CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream'],
        ['content-length', String(size)],
      ]);
      if (request.method === 'HEAD' || size === 0) {
        await stream.end(head);
        return;
      }
      let first: Uint8Array | undefined = head;
      for (let offset = 0; offset < size; ) {
        const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size - offset));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) throw new Error(`${file} shrank while it was sent`);
        offset += bytesRead;
        const data = encodeMessage({ data: [buffer.subarray(0, bytesRead)] });
        await stream.write(first !== undefined ? concatBytes([first, data]) : data, offset >= size);
        first = undefined;
      }
    } finally {
      await handle.close();
    }
  }

  /** The regular file a request path names, inside the root (symlinks resolved), or undefined. */
  async #resolve(rawPath: string): Promise<string | undefined> {
    const pathOnly = rawPath.split(/[?#]/, 1)[0] ?? '';
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathOnly);
    } catch {
      return undefined;
    }
    if (!decoded.startsWith('/') || decoded.includes('\0')) return undefined;
    let candidate = resolve(this.#root, `.${decoded}`);
    if (candidate !== this.#root && !candidate.startsWith(this.#root + sep)) return undefined;
    try {
      if ((await stat(candidate)).isDirectory()) candidate = join(candidate, 'index.html');
      const real = await realpath(candidate);
      if (!real.startsWith(this.#root + sep)) return undefined;
      return (await stat(real)).isFile() ? real : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Sends GOAWAY, closes every connection (H3_NO_ERROR) and the UDP socket. Requests still
   * being answered are cut off.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const sessions = [...this.#connections].map((state) => state.session);
    this.#connections.clear();
    for (const session of sessions) session.sendGoaway(0n);
    await stopH3QuicServer(this.#server, sessions);
  }
}
