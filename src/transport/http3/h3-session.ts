/**
 * An HTTP/3 session (RFC 9114 §6) over one `@matrixai/quic` connection, for either role:
 * our control stream with SETTINGS, our QPACK encoder/decoder streams (never written to: our
 * dynamic table capacity is 0), the peer's unidirectional streams read by type, GOAWAY, the
 * peer's bidirectional stream credit (requests queue instead of opening past it: the library
 * breaks a connection for good once `newStream` exceeds it), and connection errors closed
 * with their HTTP/3 code.
 */
import { events, type QUICConnection, type QUICStream } from '@matrixai/quic';
import { H3_ERROR_CODES, Http3Error } from './error-codes.js';
import {
  concatBytes,
  ControlStreamFrameValidator,
  encodeGoawayFrame,
  encodeSettingsFrame,
  FRAME_TYPE,
  FrameParser,
  parseGoawayPayload,
  parseSettingsPayload,
  readKnownSettings,
  SETTINGS_ID,
  UNIDIRECTIONAL_STREAM_TYPE,
  type EndpointRole,
  type KnownSettings,
} from './frames.js';
import { maxEncodedFieldSectionSize, QpackError } from './qpack/index.js';
import { NoInsertDecoderStreamReader, ZeroCapacityEncoderStreamReader } from './qpack/instruction-streams.js';
import { H3StreamAbort, knownStreams, peerStreamsLeftBidi } from './quic-support.js';
import { decodeVarint, encodeVarint } from './varint.js';

/** Default SETTINGS_MAX_FIELD_SECTION_SIZE we advertise and enforce: 64 KiB. */
export const DEFAULT_MAX_FIELD_SECTION_SIZE = 64 * 1024;

/** The longest control-stream frame we accept (SETTINGS, GOAWAY, …). */
const CONTROL_FRAME_LIMIT = 16 * 1024;

/** The SETTINGS we send: no dynamic table, no blocked streams, our field section limit. */
export function localSettings(maxFieldSectionSize: number): Map<bigint, bigint> {
  return new Map([
    [SETTINGS_ID.QPACK_MAX_TABLE_CAPACITY, 0n],
    [SETTINGS_ID.QPACK_BLOCKED_STREAMS, 0n],
    [SETTINGS_ID.MAX_FIELD_SECTION_SIZE, BigInt(maxFieldSectionSize)],
  ]);
}

/** Why a session refuses new requests: it closed, or the peer sent GOAWAY. */
export class H3SessionClosedError extends Error {
  override readonly name = 'H3SessionClosedError';
  constructor(
    message: string,
    /** True when the peer's GOAWAY refused it: the request never left, retry on a new connection. */
    readonly goaway: boolean,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

export interface H3SessionOptions {
  readonly role: EndpointRole;
  readonly maxFieldSectionSize?: number | undefined;
  /** Server: a request stream the client opened. */
  readonly onRequestStream?: ((stream: QUICStream) => void) | undefined;
  /** The peer sent GOAWAY with this stream id (client) or push id (server). */
  readonly onGoaway?: ((id: bigint) => void) | undefined;
  /** The session ended (connection closed or failed); `error` is the connection error, if any. */
  readonly onClosed?: ((error: unknown) => void) | undefined;
}

interface Waiter {
  resolve(stream: QUICStream): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** How long a reset critical stream may precede the peer's CONNECTION_CLOSE before it is a protocol error. */
const CRITICAL_STREAM_CLOSE_GRACE_MS = 250;

/** How often a queued request re-checks the peer's stream credit (MAX_STREAMS raises no event). */
const CREDIT_POLL_MS = 2;

export class H3Session {
  readonly role: EndpointRole;
  readonly maxFieldSectionSize: number;
  readonly #connection: QUICConnection;
  readonly #options: H3SessionOptions;
  readonly #handled = new WeakSet<QUICStream>();
  readonly #waiters: Waiter[] = [];
  readonly #ownStreams: QUICStream[] = [];
  #controlWriter: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #peerSettings: KnownSettings | undefined;
  #peerControlSeen = false;
  readonly #peerQpackStreams = new Set<bigint>();
  #goawayId: bigint | undefined;
  #closed = false;
  #closeError: unknown;
  #poll: NodeJS.Timeout | undefined;
  #active = 0;
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(connection: QUICConnection, options: H3SessionOptions) {
    this.#connection = connection;
    this.#options = options;
    this.role = options.role;
    this.maxFieldSectionSize = options.maxFieldSectionSize ?? DEFAULT_MAX_FIELD_SECTION_SIZE;
  }

  /** The peer's settings, once its control stream delivered them. */
  get peerSettings(): KnownSettings | undefined {
    return this.#peerSettings;
  }

  /** The id of the peer's last GOAWAY. */
  get goawayId(): bigint | undefined {
    return this.#goawayId;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The error that closed the session (undefined for a clean close or while open). */
  get closeError(): unknown {
    return this.#closeError;
  }

  /** Request streams currently open (ours or the peer's). */
  get activeRequests(): number {
    return this.#active;
  }

  /** Requests waiting for stream credit. */
  get queuedRequests(): number {
    return this.#waiters.length;
  }

  /**
   * A frame parser for one request stream: frames up to the larger of a gRPC message of
   * `maxMessageBytes` and our field section limit, and a HEADERS frame too long to hold a field
   * section within SETTINGS_MAX_FIELD_SECTION_SIZE refused from its frame header (a QpackError
   * `field-section-too-large`: a stream-level refusal, RFC 9114 §4.2.2), before its payload is held.
   */
  requestStreamParser(maxMessageBytes: number): FrameParser {
    const limit = this.maxFieldSectionSize;
    const encodedLimit = maxEncodedFieldSectionSize(limit);
    return new FrameParser({
      maxFramePayloadBytes: Math.max(maxMessageBytes + 5, encodedLimit) + 1024,
      onFrameStart: (type, length) => {
        if (type === FRAME_TYPE.HEADERS && length > BigInt(encodedLimit)) {
          throw new QpackError('field-section-too-large', `a HEADERS frame of ${length} bytes cannot hold a field section within our limit of ${limit} bytes`);
        }
      },
    });
  }

  /** Opens our control and QPACK streams and starts reading the peer's streams. */
  start(): void {
    const connection = this.#connection;
    connection.addEventListener(events.EventQUICConnectionStream.name, this.#onStream);
    connection.addEventListener(events.EventQUICConnectionError.name, this.#onConnectionError);
    connection.addEventListener(events.EventQUICConnectionStopped.name, this.#onStopped, { once: true });
    // Streams the library announced before we could listen (see docs/http3.md).
    for (const stream of knownStreams(connection)) {
      if (stream.initiated === 'peer') this.#accept(stream);
    }
    const control = connection.newStream('uni');
    this.#ownStreams.push(control);
    this.#controlWriter = control.writable.getWriter();
    this.#write(this.#controlWriter, concatBytes([encodeVarint(UNIDIRECTIONAL_STREAM_TYPE.CONTROL), encodeSettingsFrame(localSettings(this.maxFieldSectionSize))]));
    for (const type of [UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER, UNIDIRECTIONAL_STREAM_TYPE.QPACK_DECODER]) {
      const stream = connection.newStream('uni');
      this.#ownStreams.push(stream);
      const writer = stream.writable.getWriter();
      this.#write(writer, encodeVarint(type));
      writer.releaseLock();
    }
  }

  #write(writer: WritableStreamDefaultWriter<Uint8Array>, bytes: Uint8Array): void {
    writer.write(bytes).catch(() => undefined);
  }

  /** Sends GOAWAY on our control stream (server: the first client request id we will not serve). */
  sendGoaway(id: bigint): void {
    if (this.#closed || this.#controlWriter === undefined) return;
    this.#write(this.#controlWriter, encodeGoawayFrame(id));
  }

  /**
   * A new request stream (client): opened at once when the peer's credit allows, otherwise
   * queued until MAX_STREAMS grants more. Rejects with H3SessionClosedError when the session
   * closes or the peer sent GOAWAY, and with the signal's reason when it aborts.
   */
  openRequestStream(signal?: AbortSignal): Promise<QUICStream> {
    if (this.#closed) return Promise.reject(new H3SessionClosedError('the HTTP/3 connection is closed', false, this.#closeError));
    if (this.#goawayId !== undefined) return Promise.reject(new H3SessionClosedError('the server sent GOAWAY', true));
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#waiters.length === 0) {
      const stream = this.#tryOpen();
      if (stream !== undefined) return Promise.resolve(stream);
    }
    return new Promise<QUICStream>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(signal?.reason as Error);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#schedulePoll();
    });
  }

  #tryOpen(): QUICStream | undefined {
    if (peerStreamsLeftBidi(this.#connection) <= 0) return undefined;
    const stream = this.#connection.newStream('bidi');
    this.#track(stream);
    return stream;
  }

  /** Counts a request stream until it closes, then hands its credit to the queue. */
  #track(stream: QUICStream): void {
    this.#active++;
    void stream.closedP.then(() => {
      this.#active--;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      let stream: QUICStream | undefined;
      try {
        stream = this.#tryOpen();
      } catch (error) {
        this.#rejectWaiters(error);
        return;
      }
      if (stream === undefined) break;
      const waiter = this.#waiters.shift() as Waiter;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(stream);
    }
    if (this.#waiters.length > 0) this.#schedulePoll();
  }

  #schedulePoll(): void {
    if (this.#poll !== undefined || this.#closed) return;
    this.#poll = setTimeout(() => {
      this.#poll = undefined;
      this.#pump();
    }, CREDIT_POLL_MS);
  }

  #rejectWaiters(error: unknown): void {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(error);
    }
  }

  /** A connection error (RFC 9114 §8): closes the connection with the error's code. */
  fail(error: Http3Error | { code: number; message: string }): void {
    if (this.#closed) return;
    // Calls that die with the connection report the code through closeError.
    this.#finish(error instanceof Http3Error ? error : Http3Error.connection(error.code, error.message));
    void this.#connection.stop({ isApp: true, errorCode: error.code, reason: Buffer.from(error.message.slice(0, 200)), force: true }).catch(() => undefined);
  }

  /** Closes the connection at once (H3_NO_ERROR, streams cancelled). */
  async close(errorCode: number = H3_ERROR_CODES.H3_NO_ERROR): Promise<void> {
    this.#finish(undefined);
    await this.#connection.stop({ isApp: true, errorCode, force: true }).catch(() => undefined);
  }

  /** Marks the session closed (the caller closes the QUIC connection itself). */
  markClosed(): void {
    this.#finish(undefined);
  }

  #finish(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#resolveClosed();
    if (this.#poll !== undefined) clearTimeout(this.#poll);
    this.#poll = undefined;
    this.#rejectWaiters(new H3SessionClosedError('the HTTP/3 connection closed', false, error));
    this.#connection.removeEventListener(events.EventQUICConnectionStream.name, this.#onStream);
    this.#connection.removeEventListener(events.EventQUICConnectionError.name, this.#onConnectionError);
    this.#options.onClosed?.(error);
  }

  readonly #onConnectionError = (event: Event): void => {
    const detail = (event as events.EventQUICConnectionError).detail;
    this.#finish(detail);
  };

  readonly #onStopped = (): void => {
    this.#finish(this.#closeError);
  };

  readonly #onStream = (event: Event): void => {
    this.#accept((event as events.EventQUICConnectionStream).detail);
  };

  #accept(stream: QUICStream): void {
    if (this.#handled.has(stream) || this.#closed) return;
    this.#handled.add(stream);
    if (stream.type === 'bidi') {
      if (this.role === 'client') {
        // RFC 9114 §6.1: servers never open bidirectional streams.
        this.fail(Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, 'the server opened a bidirectional stream'));
        return;
      }
      if (this.#options.onRequestStream === undefined) {
        stream.cancel(new H3StreamAbort(H3_ERROR_CODES.H3_REQUEST_REJECTED, 'no request handler'));
        return;
      }
      this.#track(stream);
      this.#options.onRequestStream(stream);
      return;
    }
    void this.#readUni(stream).catch((error: unknown) => {
      if (error instanceof Http3Error && error.scope === 'connection') this.fail(error);
    });
  }

  /** Reads a peer unidirectional stream: its type first (RFC 9114 §6.2), then by type. */
  async #readUni(stream: QUICStream): Promise<void> {
    const reader = stream.readable.getReader();
    let buffered: Uint8Array = new Uint8Array(0);
    let type: bigint | undefined;
    while (type === undefined) {
      const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) return; // closed before its type: ignore
      buffered = concatBytes([buffered, chunk.value]);
      const decoded = decodeVarint(buffered);
      if (decoded === undefined) continue;
      type = decoded.value;
      buffered = buffered.subarray(decoded.length);
    }
    switch (type) {
      case UNIDIRECTIONAL_STREAM_TYPE.CONTROL:
        if (this.#peerControlSeen) throw Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, 'a second control stream');
        this.#peerControlSeen = true;
        return this.#readControl(reader, buffered);
      case UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER:
      case UNIDIRECTIONAL_STREAM_TYPE.QPACK_DECODER:
        // RFC 9204 §4.2: at most one of each.
        if (this.#peerQpackStreams.has(type)) throw Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, `a second QPACK ${type === UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER ? 'encoder' : 'decoder'} stream`);
        this.#peerQpackStreams.add(type);
        return this.#readQpack(reader, buffered, type);
      case UNIDIRECTIONAL_STREAM_TYPE.PUSH:
        if (this.role === 'server') throw Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, 'a client opened a push stream');
        // We never send MAX_PUSH_ID, so any push id is beyond the limit (RFC 9114 §4.6).
        throw Http3Error.connection(H3_ERROR_CODES.H3_ID_ERROR, 'a push stream without MAX_PUSH_ID');
      default:
        // Unknown or reserved type: abort reading, no connection error (RFC 9114 §6.2, §9).
        await reader.cancel(new H3StreamAbort(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, `unknown stream type 0x${type.toString(16)}`)).catch(() => undefined);
        return;
    }
  }

  async #readControl(reader: ReadableStreamDefaultReader<Uint8Array>, initial: Uint8Array): Promise<void> {
    const validator = new ControlStreamFrameValidator(this.role === 'client' ? 'client' : 'server');
    const parser = new FrameParser({ maxFramePayloadBytes: CONTROL_FRAME_LIMIT, onSkippedFrame: (type) => validator.accept(type) });
    const handle = (bytes: Uint8Array): void => {
      if (bytes.length > 0) parser.push(bytes);
      for (let frame = parser.pull(); frame !== undefined; frame = parser.pull()) {
        validator.accept(frame.type);
        if (frame.type === FRAME_TYPE.SETTINGS) {
          this.#peerSettings = readKnownSettings(parseSettingsPayload(frame.payload));
        } else if (frame.type === FRAME_TYPE.GOAWAY) {
          const id = parseGoawayPayload(frame.payload);
          if (this.#goawayId !== undefined && id > this.#goawayId) throw Http3Error.connection(H3_ERROR_CODES.H3_ID_ERROR, 'GOAWAY id increased');
          this.#goawayId = id;
          this.#options.onGoaway?.(id);
        }
      }
    };
    handle(initial);
    return this.#readCritical(reader, 'control stream', handle);
  }

  /**
   * Feeds every chunk of a critical stream (control, QPACK) to `handle` until it ends; the
   * peer closing or resetting it while the connection lives is a connection error.
   */
  async #readCritical(reader: ReadableStreamDefaultReader<Uint8Array>, name: string, handle: (bytes: Uint8Array) => void): Promise<void> {
    for (;;) {
      let chunk: { done: boolean; value?: Uint8Array | undefined };
      try {
        chunk = await reader.read();
      } catch (error) {
        if (this.#closed) return;
        if (error instanceof H3StreamAbort && error.byPeer) await this.#criticalStreamEnded(`the peer reset its ${name}`);
        return;
      }
      if (chunk.done || chunk.value === undefined) {
        if (this.#closed) return;
        return this.#criticalStreamEnded(`the peer closed its ${name}`);
      }
      handle(chunk.value);
    }
  }

  /**
   * The peer closed or reset a critical stream: a connection error H3_CLOSED_CRITICAL_STREAM
   * (RFC 9114 §6.2.1), unless the peer is closing the whole connection. `@matrixai/quic` (ours
   * and other peers' stacks alike) resets every stream just before it sends CONNECTION_CLOSE, so
   * the reset can arrive first: wait up to {@link CRITICAL_STREAM_CLOSE_GRACE_MS} for the
   * connection to end before calling it a protocol error.
   */
  async #criticalStreamEnded(what: string): Promise<void> {
    if (this.#closed) return;
    let timer: NodeJS.Timeout | undefined;
    const closedFirst = await Promise.race([
      this.#closedPromise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), CRITICAL_STREAM_CLOSE_GRACE_MS).unref();
      }),
    ]);
    clearTimeout(timer);
    if (closedFirst || this.#closed) return;
    throw Http3Error.connection(H3_ERROR_CODES.H3_CLOSED_CRITICAL_STREAM, what);
  }

  /**
   * Reads the peer's QPACK encoder or decoder stream: with our capacity 0 and no inserts of
   * ours, nearly every instruction is a connection error (RFC 9204 §4.3, §4.4); the readers
   * keep O(1) state, so a long-lived connection may carry any number of valid instructions.
   */
  async #readQpack(reader: ReadableStreamDefaultReader<Uint8Array>, initial: Uint8Array, type: bigint): Promise<void> {
    const encoder = type === UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER;
    const instructions = encoder ? new ZeroCapacityEncoderStreamReader() : new NoInsertDecoderStreamReader();
    instructions.push(initial);
    return this.#readCritical(reader, `QPACK ${encoder ? 'encoder' : 'decoder'} stream`, (bytes) => instructions.push(bytes));
  }

}

