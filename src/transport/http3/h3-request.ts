/**
 * Plain HTTP/3 requests (GET/HEAD) on our HTTP/3 layer: `Http3Client` keeps one QUIC
 * connection to an origin and sends requests on it; `fetchHttp3` is one request on a
 * connection of its own. Meant for health pages, metrics and interop checks next to the gRPC
 * transport, with the same certificate checks (chain, dates, host name) and typed errors.
 */
import type { QuicConnection } from '../../quic/connection.js';
import { QuicConnectionError, QuicDialError, QuicStreamError } from '../../quic/errors.js';
import { QuicUnavailableError } from '../../quic/native.js';
import type { QuicStream } from '../../quic/stream.js';
import { TlsError } from '../../errors.js';
import { H3_ERROR_CODES, Http3Error, http3ErrorCodeName } from '../../http3/error-codes.js';
import { concatBytes } from '../../http3/frames.js';
import { headerRecord } from '../../grpc/mapping.js';
import { dialH3 } from './h3-dial.js';
import { H3Session, H3SessionClosedError } from '../../http3/session.js';
import { QpackError, type HeaderField } from '../../http3/qpack/index.js';
import { encodeMessage, RequestStreamReader } from '../../http3/request-stream.js';
import { trustStoreOf, verifyChain } from '../../tls/chain-verifier.js';
import { abortable, serverAlertError, serverRejectionError } from './quic-support.js';

export interface Http3ClientTls {
  /** PEM CA bundle the server certificate must chain to. Default: Node's bundled root CAs. */
  readonly ca?: string | Buffer | undefined;
  /** PEM client certificate (chain) and key, for servers that demand mTLS. */
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** The name the certificate must carry (and the SNI). Default: the URL's host. */
  readonly serverName?: string | undefined;
}

export interface Http3ClientOptions {
  readonly tls?: Http3ClientTls | undefined;
  /** Bound on the UDP/QUIC/TLS handshake (ms). Default 5 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** QUIC idle timeout (ms). Default 30 s. */
  readonly idleTimeoutMs?: number | undefined;
}

export interface Http3RequestOptions {
  /** Default `GET`. */
  readonly method?: 'GET' | 'HEAD' | undefined;
  /** Extra request header fields (lowercase names; no pseudo-headers, no connection-specific ones). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Deadline for the whole request (ms), connecting included for `fetchHttp3`. Default 10 s. */
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Largest accepted response body. Default 16 MiB. */
  readonly maxResponseBytes?: number | undefined;
}

export interface Http3Response {
  readonly status: number;
  /** Response header fields (repeated names joined with ", "), pseudo-headers left out. */
  readonly headers: Record<string, string>;
  /** Trailer fields, if the server sent any. */
  readonly trailers: Record<string, string>;
  readonly body: Uint8Array;
}

/** Why an HTTP/3 request failed (certificate problems are `TlsError`s instead). */
export type Http3RequestErrorKind =
  /** The deadline passed (`timeoutMs`). */
  | 'timeout'
  /** The caller's signal aborted it. */
  | 'aborted'
  /** No QUIC answer, or the QUIC/TLS handshake failed. */
  | 'connect'
  /** The connection closed (or the server sent GOAWAY) before the response was complete. */
  | 'closed'
  /** The server reset the request stream. */
  | 'reset'
  /** The server broke HTTP/3 or QPACK rules. */
  | 'protocol'
  /** The response body exceeded `maxResponseBytes`. */
  | 'too-large';

export class Http3RequestError extends Error {
  override readonly name = 'Http3RequestError';
  constructor(
    readonly kind: Http3RequestErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Fields HTTP/3 forbids in requests (RFC 9114 §4.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** The TLS alert behind a connection's end (a QUIC crypto error), if any. */
function alertOf(error: unknown): number | undefined {
  const cause = error instanceof QuicDialError ? error.cause : error;
  return cause instanceof QuicConnectionError ? cause.tlsAlert : undefined;
}

function tlsErrorForAlert(alert: number, peer: string, cause: unknown): TlsError {
  return serverAlertError(alert, { peer }, cause) ?? new TlsError('TLS_HANDSHAKE_FAILED', `TLS with ${peer} failed over HTTP/3: the server ended the handshake. Underlying error: TLS alert ${alert}`, { peer, cause });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function toText(value: string | Buffer | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.toString('utf8');
}

/** `host:port` of an https URL (IPv6 in brackets), and the parts a request needs. */
function originOf(url: URL): { host: string; port: number; authority: string } {
  if (url.protocol !== 'https:') throw new TypeError(`HTTP/3 needs an https URL, got ${url.protocol}`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 443 : Number(url.port);
  return { host, port, authority: url.host };
}

/**
 * One HTTP/3 connection to an origin (`https://host:port`), for any number of sequential or
 * concurrent requests (queued for the server's stream credit).
 */
export class Http3Client {
  readonly #client: QuicConnection;
  readonly #session: H3Session;
  readonly #authority: string;
  readonly #peer: string;
  readonly #inflight = new Set<(error: unknown) => void>();
  #closed = false;

  private constructor(client: QuicConnection, authority: string, peer: string) {
    this.#client = client;
    this.#authority = authority;
    this.#peer = peer;
    this.#session = new H3Session(client, {
      role: 'client',
      onClosed: (error) => {
        for (const fail of this.#inflight) fail(error);
        this.#client.close(H3_ERROR_CODES.H3_NO_ERROR);
      },
    });
    this.#session.start();
  }

  /**
   * Connects to `origin` (an https URL; its path is ignored) and checks the server certificate
   * against `tls.ca` and the host name. Rejects with `TlsError` for a certificate problem and
   * `Http3RequestError` (`connect`, `timeout`, `aborted`) otherwise.
   */
  static async connect(origin: string | URL, options: Http3ClientOptions & { signal?: AbortSignal | undefined } = {}): Promise<Http3Client> {
    const url = typeof origin === 'string' ? new URL(origin) : origin;
    const { host, port, authority } = originOf(url);
    const tls = options.tls ?? {};
    const serverName = tls.serverName ?? host;
    const ca = toText(tls.ca);
    const trust = trustStoreOf(ca, []);
    const connectTimeoutMs = Math.max(1, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    let rejected: TlsError | undefined;
    const dialling = dialH3({
      host,
      port,
      serverName,
      ca,
      cert: toText(tls.cert),
      key: toText(tls.key),
      maxIdleTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      connectTimeoutMs,
      verify: (certs) => {
        const rejection = verifyChain(certs, trust, { peer: 'server', name: serverName });
        if (rejection === undefined) return undefined;
        rejected = serverRejectionError(rejection, { peer: authority, profile: 'fetchHttp3' });
        return rejection.alert;
      },
      signal: options.signal,
    });
    let client: QuicConnection;
    try {
      client = await dialling;
    } catch (error) {
      if (rejected !== undefined) throw rejected;
      if (error instanceof QuicDialError && error.failure === 'aborted') throw abortError(options.signal, 'connecting');
      const alert = alertOf(error);
      if (alert !== undefined) throw tlsErrorForAlert(alert, authority, error);
      if (error instanceof QuicDialError && error.failure === 'timeout') {
        throw new Http3RequestError('connect', `no HTTP/3 (QUIC) answer from ${authority} within ${connectTimeoutMs} ms`, { cause: error });
      }
      if (error instanceof QuicUnavailableError) throw new Http3RequestError('connect', error.message, { cause: error });
      throw new Http3RequestError('connect', `HTTP/3 connect to ${authority} failed: ${describe(error)}`, { cause: error });
    }
    return new Http3Client(client, authority, authority);
  }

  /** Whether the connection has closed (by us, the server, or an error). */
  get closed(): boolean {
    return this.#closed || this.#session.closed;
  }

  /**
   * Sends one request for `path` (e.g. `/index.html?x=1`) and reads the whole response.
   * Any status is a response (404 too); failures are `Http3RequestError` or `TlsError`.
   */
  async request(path: string, options: Http3RequestOptions = {}): Promise<Http3Response> {
    if (!path.startsWith('/')) throw new TypeError(`the request path must start with "/", got ${JSON.stringify(path)}`);
    const method = options.method ?? 'GET';
    const fields: HeaderField[] = [
      [':method', method],
      [':scheme', 'https'],
      [':authority', this.#authority],
      [':path', path],
    ];
    for (const [rawName, value] of Object.entries(options.headers ?? {})) {
      const name = rawName.toLowerCase();
      if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers')) {
        throw new TypeError(`the header ${JSON.stringify(rawName)} is not allowed in an HTTP/3 request`);
      }
      fields.push([name, value]);
    }
    const headerBlock = encodeMessage({ headers: fields });
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const maxBody = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;

    const controller = new AbortController();
    const fail = (error: Error): void => {
      if (!controller.signal.aborted) controller.abort(error);
    };
    const timer = setTimeout(() => fail(new Http3RequestError('timeout', `no complete HTTP/3 response from ${this.#peer} within ${timeoutMs} ms`)), timeoutMs);
    const onCallerAbort = (): void => fail(abortError(options.signal, 'waiting for the response'));
    if (options.signal?.aborted === true) onCallerAbort();
    else options.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const onClosed = (cause: unknown): void => fail(this.#closedError(cause));
    this.#inflight.add(onClosed);

    let stream: QuicStream | undefined;
    let complete = false;
    try {
      if (this.closed) throw this.#closedError(this.#session.closeError);
      stream = await abortable(this.#session.openRequestStream(controller.signal), controller.signal);
      const opened = stream;
      const cancel = (): void => opened.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      controller.signal.addEventListener('abort', cancel, { once: true });
      await abortable(opened.end(headerBlock), controller.signal);
      const response = await abortable(this.#readResponse(opened, method, maxBody), controller.signal);
      complete = true;
      return response;
    } catch (error) {
      throw this.#requestError(error, controller.signal);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCallerAbort);
      this.#inflight.delete(onClosed);
      if (!complete && stream !== undefined) stream.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
    }
  }

  async #readResponse(stream: QuicStream, method: string, maxBody: number): Promise<Http3Response> {
    const response = new RequestStreamReader(stream, this.#session, 'client', maxBody);
    const body: Uint8Array[] = [];
    let bodyBytes = 0;
    let status: number | undefined;
    let headers: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    for (let event = await response.next(); event !== null; event = await response.next()) {
      if (event.kind === 'data') {
        bodyBytes += event.payload.length;
        if (bodyBytes > maxBody) throw new Http3RequestError('too-large', `the response body is larger than ${maxBody} bytes`);
        if (event.payload.length > 0) body.push(event.payload);
        continue;
      }
      const section = event.fields;
      if (status !== undefined) {
        if (section.some(([name]) => name.startsWith(':'))) throw Http3Error.stream(H3_ERROR_CODES.H3_MESSAGE_ERROR, 'a pseudo-header in the trailers');
        trailers = headerRecord(section);
        continue;
      }
      const statusText = section.find(([name]) => name === ':status')?.[1];
      if (statusText === undefined || !/^[1-5]\d\d$/.test(statusText)) {
        throw Http3Error.stream(H3_ERROR_CODES.H3_MESSAGE_ERROR, `a response without a valid :status (${statusText ?? 'none'})`);
      }
      const code = Number(statusText);
      if (code < 200) {
        response.validator.interimResponseReceived(); // 1xx: the final response follows
        continue;
      }
      status = code;
      headers = headerRecord(section);
    }
    if (status === undefined) throw Http3Error.stream(H3_ERROR_CODES.H3_REQUEST_INCOMPLETE, 'the stream ended without a final response');
    if (method === 'HEAD' && bodyBytes > 0) throw Http3Error.stream(H3_ERROR_CODES.H3_MESSAGE_ERROR, 'a response to HEAD carried a body');
    const length = headers['content-length'];
    if (length !== undefined && method !== 'HEAD' && status !== 204 && status !== 304 && Number(length) !== bodyBytes) {
      throw Http3Error.stream(H3_ERROR_CODES.H3_MESSAGE_ERROR, `content-length ${length} but ${bodyBytes} body bytes`);
    }
    return { status, headers, trailers, body: concatBytes(body) };
  }

  #closedError(cause: unknown): Error {
    const alert = alertOf(cause);
    if (alert !== undefined) return tlsErrorForAlert(alert, this.#peer, cause);
    if (cause instanceof QuicConnectionError && cause.source === 'idle-timeout') {
      return new Http3RequestError('closed', `the HTTP/3 connection to ${this.#peer} timed out (no packets within the idle timeout)`, { cause });
    }
    const what = cause === undefined ? 'closed' : describe(cause);
    return new Http3RequestError('closed', `the HTTP/3 connection to ${this.#peer} closed (${what})`, { cause });
  }

  #requestError(error: unknown, signal: AbortSignal): Error {
    if (signal.aborted) return signal.reason as Error;
    if (error instanceof Http3RequestError || error instanceof TlsError) return error;
    if (error instanceof H3SessionClosedError) {
      return error.goaway ? new Http3RequestError('closed', `${this.#peer} sent GOAWAY: open a new connection`, { cause: error }) : this.#closedError(this.#session.closeError);
    }
    if (error instanceof Http3Error || error instanceof QpackError) {
      if (error instanceof QpackError || error.scope === 'connection') this.#session.fail(error instanceof QpackError ? { code: error.code, message: error.message } : error);
      return new Http3RequestError('protocol', `HTTP/3 protocol error from ${this.#peer}: ${error.message}`, { cause: error });
    }
    if (error instanceof QuicStreamError && error.kind === 'closed') return this.#closedError(this.#session.closeError ?? error.cause);
    if (error instanceof QuicStreamError && error.byPeer) {
      return new Http3RequestError('reset', `${this.#peer} reset the request stream with ${http3ErrorCodeName(error.code ?? 0)}`, { cause: error });
    }
    if (this.#session.closed) return this.#closedError(this.#session.closeError);
    return new Http3RequestError('closed', `the HTTP/3 request to ${this.#peer} failed: ${describe(error)}`, { cause: error });
  }

  /** Closes the connection (H3_NO_ERROR); requests still running fail with kind `closed`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.markClosed();
    this.#client.close(H3_ERROR_CODES.H3_NO_ERROR);
    await this.#client.closed;
  }
}

/**
 * One HTTP/3 request on a connection of its own: connects to the URL's origin, sends a GET
 * (or HEAD) for its path and query, reads the whole response, closes the connection.
 * `timeoutMs` (default 10 s) bounds all of it. Any status is a response; failures are
 * `Http3RequestError` (kind `timeout`, `connect`, `closed`, …) or `TlsError`.
 */
export async function fetchHttp3(url: string | URL, options: Http3ClientOptions & Http3RequestOptions = {}): Promise<Http3Response> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const connectTimeoutMs = Math.min(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, timeoutMs);
  const client = await Http3Client.connect(target, { ...options, connectTimeoutMs });
  try {
    return await client.request(`${target.pathname}${target.search}`, { ...options, timeoutMs: Math.max(1, deadline - Date.now()) });
  } finally {
    await client.close();
  }
}

function abortError(signal: AbortSignal | undefined, what: string): Http3RequestError {
  return new Http3RequestError('aborted', `the HTTP/3 request was aborted while ${what}`, { cause: signal?.reason });
}
