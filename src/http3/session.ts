/**
 * An HTTP/3 session (RFC 9114 §6) over one QUIC connection of our driver, for either role:
 * our control stream with SETTINGS, our QPACK encoder/decoder streams (never written to: our
 * dynamic table capacity is 0), the peer's unidirectional streams read by type, GOAWAY, the
 * peer's bidirectional stream credit (requests queue until MAX_STREAMS grants more, woken by
 * the connection, never polled), and connection errors closed with their HTTP/3 code.
 */
import type { QuicConnection } from '../quic/connection.js';
import { QuicStreamError, QuicStreamLimitError } from '../quic/errors.js';
import type { QuicStream } from '../quic/stream.js';
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
  readonly onRequestStream?: ((stream: QuicStream) => void) | undefined;
  /** The peer sent GOAWAY with this stream id (client) or push id (server). */
  readonly onGoaway?: ((id: bigint) => void) | undefined;
  /** The session ended (connection closed or failed); `error` is the connection error, if any. */
  readonly onClosed?: ((error: unknown) => void) | undefined;
}

interface Waiter {
  resolve(stream: QuicStream): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** How long a reset critical stream may precede the peer's CONNECTION_CLOSE before it is a protocol error. */
const CRITICAL_STREAM_CLOSE_GRACE_MS = 250;

export class H3Session {
  readonly role: EndpointRole;
  readonly maxFieldSectionSize: number;
  readonly #connection: QuicConnection;
  readonly #options: H3SessionOptions;
  readonly #waiters: Waiter[] = [];
  #control: QuicStream | undefined;
  #peerSettings: KnownSettings | undefined;
  #peerControlSeen = false;
  readonly #peerQpackStreams = new Set<bigint>();
  #goawayId: bigint | undefined;
  #closed = false;
  #closeError: unknown;
  #active = 0;
  readonly #idleWaiters: (() => void)[] = [];
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(connection: QuicConnection, options: H3SessionOptions) {
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
   * `field-section-too-large`: a stream-level refusal, RFC 9114 §4.2.2), before its payload is
   * held; a DATA frame longer than a message we accept likewise (a stream-level Http3Error
   * H3_EXCESSIVE_LOAD).
   */
  requestStreamParser(maxMessageBytes: number): FrameParser {
    const limit = this.maxFieldSectionSize;
    const encodedLimit = maxEncodedFieldSectionSize(limit);
    const dataLimit = maxMessageBytes + 5 + 1024;
    return new FrameParser({
      maxFramePayloadBytes: Math.max(maxMessageBytes + 5, encodedLimit) + 1024,
      onFrameStart: (type, length) => {
        if (type === FRAME_TYPE.HEADERS && length > BigInt(encodedLimit)) {
          throw new QpackError('field-section-too-large', `a HEADERS frame of ${length} bytes cannot hold a field section within our limit of ${limit} bytes`);
        }
        // A message larger than we accept fails its own request only (a stream error, like
        // gRPC's RESOURCE_EXHAUSTED over HTTP/2), refused from the frame header.
        if (type === FRAME_TYPE.DATA && length > BigInt(dataLimit)) {
          throw Http3Error.stream(H3_ERROR_CODES.H3_EXCESSIVE_LOAD, `a DATA frame of ${length} bytes is larger than the largest message accepted (${maxMessageBytes} bytes)`);
        }
      },
    });
  }

  /** Opens our control and QPACK streams and starts reading the peer's streams. */
  start(): void {
    const connection = this.#connection;
    void connection.closed.then(() => this.#finish(connection.closeError));
    connection.onStream((stream) => this.#accept(stream));
    // RFC 9114 §6.2: a peer must let us open our control and two QPACK streams. One whose
    // transport parameters do not is refused here (never thrown to the caller: a handshake
    // completing in the packet loop must not be able to crash the process).
    if (connection.peerStreamsLeftUni() < 3) {
      this.fail(Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, `the peer allows ${connection.peerStreamsLeftUni()} unidirectional streams; HTTP/3 needs at least 3 (RFC 9114 §6.2)`));
      return;
    }
    try {
      this.#control = connection.openStream(false);
      this.#write(this.#control, concatBytes([encodeVarint(UNIDIRECTIONAL_STREAM_TYPE.CONTROL), encodeSettingsFrame(localSettings(this.maxFieldSectionSize))]));
      for (const type of [UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER, UNIDIRECTIONAL_STREAM_TYPE.QPACK_DECODER]) {
        this.#write(connection.openStream(false), encodeVarint(type));
      }
    } catch (error) {
      this.fail(Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, `cannot open our control and QPACK streams: ${(error as Error).message}`));
    }
  }

  #write(stream: QuicStream, bytes: Uint8Array): void {
    stream.write(bytes).catch(() => undefined);
  }

  /** Sends GOAWAY on our control stream (server: the first client request id we will not serve). */
  sendGoaway(id: bigint): void {
    if (this.#closed || this.#control === undefined) return;
    this.#write(this.#control, encodeGoawayFrame(id));
  }

  /**
   * A new request stream (client): opened at once when the peer's credit allows, otherwise
   * queued until MAX_STREAMS grants more. Rejects with H3SessionClosedError when the session
   * closes or the peer sent GOAWAY, and with the signal's reason when it aborts.
   */
  openRequestStream(signal?: AbortSignal): Promise<QuicStream> {
    if (this.#closed) return Promise.reject(new H3SessionClosedError('the HTTP/3 connection is closed', false, this.#closeError));
    if (this.#goawayId !== undefined) return Promise.reject(new H3SessionClosedError('the server sent GOAWAY', true));
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#waiters.length === 0) {
      const stream = this.#tryOpen();
      if (stream !== undefined) return Promise.resolve(stream);
    }
    return new Promise<QuicStream>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          if (this.#waiters.length === 0) this.#connection.onCredit(undefined);
          reject(signal?.reason as Error);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#connection.onCredit(this.#pump);
    });
  }

  #tryOpen(): QuicStream | undefined {
    if (this.#connection.peerStreamsLeftBidi() <= 0) return undefined;
    let stream: QuicStream;
    try {
      stream = this.#connection.openStream(true);
    } catch (error) {
      if (error instanceof QuicStreamLimitError) return undefined;
      throw error;
    }
    this.#track(stream);
    return stream;
  }

  /** Counts a request stream until it closes, then hands its credit to the queue. */
  #track(stream: QuicStream): void {
    this.#active++;
    void stream.closed.then(() => {
      this.#active--;
      if (this.#waiters.length > 0) this.#pump();
      else if (this.#active === 0) this.#wakeIdle();
    });
  }

  /** Resolves once no request stream is open or queued (or the session closed). */
  whenIdle(): Promise<void> {
    if (this.#closed || (this.#active === 0 && this.#waiters.length === 0)) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdle(): void {
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Hands streams to queued requests while the peer's credit allows (the connection calls it after packets arrive). */
  readonly #pump = (): void => {
    while (this.#waiters.length > 0 && !this.#closed) {
      let stream: QuicStream | undefined;
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
    if (this.#waiters.length === 0) this.#connection.onCredit(undefined);
  };

  #rejectWaiters(error: unknown): void {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(error);
    }
  }

  /** A connection error (RFC 9114 §8): closes the connection with the error's code. */
  fail(error: Http3Error | { code: number; message: string }): void {
    if (this.#closed) return;
    // The connection closes with this code before anyone hears of the end (an onClosed
    // handler closes it too, with H3_NO_ERROR); calls that die with it report the code
    // through closeError, set before their rejections run.
    this.#connection.close(error.code, error.message);
    this.#finish(error instanceof Http3Error ? error : Http3Error.connection(error.code, error.message));
  }

  /** Closes the connection at once (H3_NO_ERROR, streams cancelled). */
  close(errorCode: number = H3_ERROR_CODES.H3_NO_ERROR): void {
    this.#finish(undefined);
    this.#connection.close(errorCode);
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
    this.#rejectWaiters(new H3SessionClosedError('the HTTP/3 connection closed', false, error));
    this.#connection.onCredit(undefined);
    this.#wakeIdle();
    this.#options.onClosed?.(error);
  }

  #accept(stream: QuicStream): void {
    if (this.#closed) {
      stream.reset(H3_ERROR_CODES.H3_REQUEST_REJECTED);
      return;
    }
    if (stream.bidi) {
      if (this.role === 'client') {
        // RFC 9114 §6.1: servers never open bidirectional streams.
        this.fail(Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, 'the server opened a bidirectional stream'));
        return;
      }
      if (this.#options.onRequestStream === undefined) {
        stream.reset(H3_ERROR_CODES.H3_REQUEST_REJECTED);
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
  async #readUni(stream: QuicStream): Promise<void> {
    let buffered: Uint8Array = new Uint8Array(0);
    let type: bigint | undefined;
    while (type === undefined) {
      const chunk = await stream.read().catch(() => null);
      if (chunk === null) return; // closed before its type: ignore
      buffered = concatBytes([buffered, chunk]);
      const decoded = decodeVarint(buffered);
      if (decoded === undefined) continue;
      type = decoded.value;
      buffered = buffered.subarray(decoded.length);
    }
    switch (type) {
      case UNIDIRECTIONAL_STREAM_TYPE.CONTROL:
        if (this.#peerControlSeen) throw Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, 'a second control stream');
        this.#peerControlSeen = true;
        return this.#readControl(stream, buffered);
      case UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER:
      case UNIDIRECTIONAL_STREAM_TYPE.QPACK_DECODER:
        // RFC 9204 §4.2: at most one of each.
        if (this.#peerQpackStreams.has(type)) throw Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, `a second QPACK ${type === UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER ? 'encoder' : 'decoder'} stream`);
        this.#peerQpackStreams.add(type);
        return this.#readQpack(stream, buffered, type);
      case UNIDIRECTIONAL_STREAM_TYPE.PUSH:
        if (this.role === 'server') throw Http3Error.connection(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR, 'a client opened a push stream');
        // We never send MAX_PUSH_ID, so any push id is beyond the limit (RFC 9114 §4.6).
        throw Http3Error.connection(H3_ERROR_CODES.H3_ID_ERROR, 'a push stream without MAX_PUSH_ID');
      default:
        // Unknown or reserved type: abort reading, no connection error (RFC 9114 §6.2, §9).
        stream.stopReading(H3_ERROR_CODES.H3_STREAM_CREATION_ERROR);
        return;
    }
  }

  async #readControl(stream: QuicStream, initial: Uint8Array): Promise<void> {
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
          // RFC 9114 §5.2: a server's GOAWAY carries a client-initiated bidirectional stream id.
          if (this.role === 'client' && id % 4n !== 0n) throw Http3Error.connection(H3_ERROR_CODES.H3_ID_ERROR, `GOAWAY with stream id ${id}, not a client-initiated bidirectional stream`);
          if (this.#goawayId !== undefined && id > this.#goawayId) throw Http3Error.connection(H3_ERROR_CODES.H3_ID_ERROR, 'GOAWAY id increased');
          this.#goawayId = id;
          // Requests still waiting for stream credit would get ids above the GOAWAY id: refuse them now.
          if (this.role === 'client' && this.#waiters.length > 0) {
            this.#rejectWaiters(new H3SessionClosedError('the server sent GOAWAY', true));
            this.#connection.onCredit(undefined);
          }
          this.#options.onGoaway?.(id);
        }
      }
    };
    handle(initial);
    return this.#readCritical(stream, 'control stream', handle);
  }

  /**
   * Feeds every chunk of a critical stream (control, QPACK) to `handle` until it ends; the
   * peer closing or resetting it while the connection lives is a connection error.
   */
  async #readCritical(stream: QuicStream, name: string, handle: (bytes: Uint8Array) => void): Promise<void> {
    for (;;) {
      let chunk: Uint8Array | null;
      try {
        chunk = await stream.read();
      } catch (error) {
        if (this.#closed) return;
        if (error instanceof QuicStreamError && error.byPeer) await this.#criticalStreamEnded(`the peer reset its ${name}`);
        return;
      }
      if (chunk === null) {
        if (this.#closed) return;
        return this.#criticalStreamEnded(`the peer closed its ${name}`);
      }
      handle(chunk);
    }
  }

  /**
   * The peer closed or reset a critical stream: a connection error H3_CLOSED_CRITICAL_STREAM
   * (RFC 9114 §6.2.1), unless the peer is closing the whole connection. Some stacks (e.g.
   * `@matrixai/quic`) reset every stream just before they send CONNECTION_CLOSE, so the reset
   * can arrive first: wait up to {@link CRITICAL_STREAM_CLOSE_GRACE_MS} for the
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
  async #readQpack(stream: QuicStream, initial: Uint8Array, type: bigint): Promise<void> {
    const encoder = type === UNIDIRECTIONAL_STREAM_TYPE.QPACK_ENCODER;
    const instructions = encoder ? new ZeroCapacityEncoderStreamReader() : new NoInsertDecoderStreamReader();
    instructions.push(initial);
    return this.#readCritical(stream, `QPACK ${encoder ? 'encoder' : 'decoder'} stream`, (bytes) => instructions.push(bytes));
  }

}

