/**
 * HTTP/3 frames (RFC 9114 §7): type and setting identifiers, encoders, payload parsers, an
 * incremental frame parser for one stream, and the rules for which frames may appear where.
 *
 * Identifiers (frame types, stream types, setting ids) are 62-bit variable-length integers,
 * kept as `bigint` so that no value ever loses precision.
 */
import { H3_ERROR_CODES, Http3Error } from './error-codes.js';
import { decodeVarint, encodeVarint, MAX_VARINT_LENGTH, varintLength, writeVarint } from './varint.js';

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/** Frame types defined by RFC 9114 §7.2 (registry: §11.2.1). */
export const FRAME_TYPE = {
  DATA: 0x0n,
  HEADERS: 0x1n,
  CANCEL_PUSH: 0x3n,
  SETTINGS: 0x4n,
  PUSH_PROMISE: 0x5n,
  GOAWAY: 0x7n,
  MAX_PUSH_ID: 0xdn,
} as const;

const KNOWN_FRAME_TYPES: ReadonlySet<bigint> = new Set(Object.values(FRAME_TYPE));

/**
 * Frame types of HTTP/2 with no HTTP/3 equivalent (PRIORITY 0x2, PING 0x6, WINDOW_UPDATE 0x8,
 * CONTINUATION 0x9). Their receipt is a connection error H3_FRAME_UNEXPECTED (RFC 9114 §7.2.8).
 */
export const HTTP2_ONLY_FRAME_TYPES: ReadonlySet<bigint> = new Set([0x2n, 0x6n, 0x8n, 0x9n]);

/** Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2). */
export const UNIDIRECTIONAL_STREAM_TYPE = {
  CONTROL: 0x00n,
  PUSH: 0x01n,
  QPACK_ENCODER: 0x02n,
  QPACK_DECODER: 0x03n,
} as const;

/** Setting identifiers (RFC 9114 §7.2.4.1, RFC 9204 §5). */
export const SETTINGS_ID = {
  QPACK_MAX_TABLE_CAPACITY: 0x1n,
  MAX_FIELD_SECTION_SIZE: 0x6n,
  QPACK_BLOCKED_STREAMS: 0x7n,
} as const;

/**
 * Setting identifiers of HTTP/2 with no HTTP/3 equivalent (0x2-0x5): they MUST NOT be sent and
 * their receipt is a connection error H3_SETTINGS_ERROR (RFC 9114 §7.2.4.1).
 */
export const HTTP2_ONLY_SETTINGS_IDS: ReadonlySet<bigint> = new Set([0x2n, 0x3n, 0x4n, 0x5n]);

/**
 * Whether `value` is of the form 0x1f*N+0x21: reserved for greasing in the frame type
 * (RFC 9114 §7.2.8), stream type (§6.2.3), setting (§7.2.4.1) and error code (§8.1) spaces.
 * Receivers ignore such values.
 */
export function isReservedIdentifier(value: bigint): boolean {
  return value >= 0x21n && (value - 0x21n) % 0x1fn === 0n;
}

/** The N-th reserved (greasing) identifier, 0x1f*N+0x21 (RFC 9114 §7.2.8). */
export function reservedIdentifier(n: bigint): bigint {
  return 0x1fn * n + 0x21n;
}

/** Whether this layer understands `type` (the seven frame types of RFC 9114 §7.2). */
export function isKnownFrameType(type: bigint): boolean {
  return KNOWN_FRAME_TYPES.has(type);
}

const FRAME_TYPE_NAMES = new Map<bigint, string>(Object.entries(FRAME_TYPE).map(([name, type]) => [type, name]));

/** `HEADERS` for 0x1; `0x21` for types this layer does not name. */
export function frameTypeName(type: bigint): string {
  return FRAME_TYPE_NAMES.get(type) ?? `0x${type.toString(16)}`;
}

// ---------------------------------------------------------------------------------------------
// Encoding (RFC 9114 §7.1: Type (i), Length (i), Frame Payload (..))
// ---------------------------------------------------------------------------------------------

/** The longest frame header: an 8-byte type and an 8-byte length. */
export const MAX_FRAME_HEADER_LENGTH = 2 * MAX_VARINT_LENGTH;

/** A frame: its type and its whole payload. */
export interface Http3Frame {
  readonly type: bigint;
  readonly payload: Uint8Array;
}

/**
 * The type and length of a frame (RFC 9114 §7.1), for writing a large payload after it
 * without copying.
 */
export function encodeFrameHeader(type: bigint, payloadLength: bigint | number): Uint8Array {
  const header = new Uint8Array(varintLength(type) + varintLength(payloadLength));
  const typeLength = writeVarint(type, header, 0);
  writeVarint(payloadLength, header, typeLength);
  return header;
}

/** A whole frame of any type (RFC 9114 §7.1). */
export function encodeFrame(type: bigint, payload: Uint8Array): Uint8Array {
  const header = encodeFrameHeader(type, payload.length);
  const frame = new Uint8Array(header.length + payload.length);
  frame.set(header, 0);
  frame.set(payload, header.length);
  return frame;
}

/** A DATA frame (RFC 9114 §7.2.1). */
export function encodeDataFrame(payload: Uint8Array): Uint8Array {
  return encodeFrame(FRAME_TYPE.DATA, payload);
}

/** A HEADERS frame carrying a QPACK-encoded field section (RFC 9114 §7.2.2). */
export function encodeHeadersFrame(fieldSection: Uint8Array): Uint8Array {
  return encodeFrame(FRAME_TYPE.HEADERS, fieldSection);
}

/**
 * A SETTINGS frame (RFC 9114 §7.2.4): identifier/value pairs in map order. Throws a RangeError
 * for HTTP/2-only identifiers, which MUST NOT be sent (§7.2.4.1), and for values that are not
 * 62-bit unsigned integers.
 */
export function encodeSettingsFrame(settings: ReadonlyMap<bigint, bigint>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [id, value] of settings) {
    if (HTTP2_ONLY_SETTINGS_IDS.has(id)) throw new RangeError(`setting 0x${id.toString(16)} is HTTP/2-only and must not be sent`);
    parts.push(encodeVarint(id), encodeVarint(value));
  }
  return encodeFrame(FRAME_TYPE.SETTINGS, concatBytes(parts));
}

/** A GOAWAY frame (RFC 9114 §7.2.6): a stream id from a server, a push id from a client. */
export function encodeGoawayFrame(id: bigint): Uint8Array {
  return encodeFrame(FRAME_TYPE.GOAWAY, encodeVarint(id));
}

/** A CANCEL_PUSH frame (RFC 9114 §7.2.3). */
export function encodeCancelPushFrame(pushId: bigint): Uint8Array {
  return encodeFrame(FRAME_TYPE.CANCEL_PUSH, encodeVarint(pushId));
}

/** A MAX_PUSH_ID frame (RFC 9114 §7.2.7). */
export function encodeMaxPushIdFrame(pushId: bigint): Uint8Array {
  return encodeFrame(FRAME_TYPE.MAX_PUSH_ID, encodeVarint(pushId));
}

/** Joins byte arrays into one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

// ---------------------------------------------------------------------------------------------
// Payload parsing
// ---------------------------------------------------------------------------------------------

function frameError(message: string): Http3Error {
  return Http3Error.connection(H3_ERROR_CODES.H3_FRAME_ERROR, message);
}

/**
 * The settings of a SETTINGS frame payload (RFC 9114 §7.2.4), every identifier included
 * (unknown and reserved ones are for the caller to ignore). Values are 62-bit: kept as bigint.
 * Throws a connection Http3Error: H3_FRAME_ERROR for a truncated pair (§7.1), H3_SETTINGS_ERROR
 * for a duplicate identifier (§7.2.4) or an HTTP/2-only one (§7.2.4.1).
 */
export function parseSettingsPayload(payload: Uint8Array): Map<bigint, bigint> {
  const settings = new Map<bigint, bigint>();
  let offset = 0;
  while (offset < payload.length) {
    const id = decodeVarint(payload, offset);
    const value = id === undefined ? undefined : decodeVarint(payload, offset + id.length);
    if (id === undefined || value === undefined) throw frameError('SETTINGS payload ends inside a setting');
    if (HTTP2_ONLY_SETTINGS_IDS.has(id.value)) {
      throw Http3Error.connection(H3_ERROR_CODES.H3_SETTINGS_ERROR, `HTTP/2-only setting 0x${id.value.toString(16)}`);
    }
    if (settings.has(id.value)) {
      throw Http3Error.connection(H3_ERROR_CODES.H3_SETTINGS_ERROR, `duplicate setting 0x${id.value.toString(16)}`);
    }
    settings.set(id.value, value.value);
    offset += id.length + value.length;
  }
  return settings;
}

/** The settings this layer uses, with the defaults that apply when a peer omits them. */
export interface KnownSettings {
  /** RFC 9204 §5: default 0 (no dynamic table). */
  readonly qpackMaxTableCapacity: bigint;
  /** RFC 9114 §7.2.4.1: default unlimited, shown as `undefined`. */
  readonly maxFieldSectionSize: bigint | undefined;
  /** RFC 9204 §5: default 0. */
  readonly qpackBlockedStreams: bigint;
}

/** The known settings from a parsed SETTINGS payload, defaults filled in. */
export function readKnownSettings(settings: ReadonlyMap<bigint, bigint>): KnownSettings {
  return {
    qpackMaxTableCapacity: settings.get(SETTINGS_ID.QPACK_MAX_TABLE_CAPACITY) ?? 0n,
    maxFieldSectionSize: settings.get(SETTINGS_ID.MAX_FIELD_SECTION_SIZE),
    qpackBlockedStreams: settings.get(SETTINGS_ID.QPACK_BLOCKED_STREAMS) ?? 0n,
  };
}

/** A payload that must be exactly one varint; anything else is H3_FRAME_ERROR (RFC 9114 §7.1). */
function parseSingleVarintPayload(payload: Uint8Array, frameName: string): bigint {
  const decoded = decodeVarint(payload, 0);
  if (decoded === undefined || decoded.length !== payload.length) {
    throw frameError(`${frameName} payload must be exactly one variable-length integer`);
  }
  return decoded.value;
}

/** The stream id (from a server) or push id (from a client) of a GOAWAY payload (RFC 9114 §7.2.6). */
export function parseGoawayPayload(payload: Uint8Array): bigint {
  return parseSingleVarintPayload(payload, 'GOAWAY');
}

/** The push id of a CANCEL_PUSH payload (RFC 9114 §7.2.3). */
export function parseCancelPushPayload(payload: Uint8Array): bigint {
  return parseSingleVarintPayload(payload, 'CANCEL_PUSH');
}

/** The push id of a MAX_PUSH_ID payload (RFC 9114 §7.2.7). */
export function parseMaxPushIdPayload(payload: Uint8Array): bigint {
  return parseSingleVarintPayload(payload, 'MAX_PUSH_ID');
}

/** Frame types whose payload is exactly one varint, hence 1 to 8 bytes long. */
const SINGLE_VARINT_FRAME_TYPES: ReadonlySet<bigint> = new Set([FRAME_TYPE.CANCEL_PUSH, FRAME_TYPE.GOAWAY, FRAME_TYPE.MAX_PUSH_ID]);

// ---------------------------------------------------------------------------------------------
// Incremental parsing of one stream
// ---------------------------------------------------------------------------------------------

/** Default {@link FrameParserOptions.maxFramePayloadBytes}: 16 MiB. */
export const DEFAULT_MAX_FRAME_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** Default allowance, on top of one largest frame, for bytes pushed before they are pulled: 1 MiB. */
export const DEFAULT_BUFFER_ALLOWANCE_BYTES = 1024 * 1024;

export interface FrameParserOptions {
  /**
   * The largest payload accepted for a known frame type; a larger declared length is a
   * connection error H3_EXCESSIVE_LOAD, raised from its header before any payload is held.
   * Unknown and reserved types are skipped whatever their length. Default 16 MiB.
   */
  readonly maxFramePayloadBytes?: number;
  /**
   * The most bytes the parser holds (pushed, not yet pulled as frames, not skipped); exceeding
   * it is a connection error H3_EXCESSIVE_LOAD. A consumer that pulls every frame after each
   * push holds at most one incomplete frame, so this must be at least
   * maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH, plus the largest chunk it pushes.
   * Default: maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH + 1 MiB.
   */
  readonly maxBufferedBytes?: number;
  /**
   * Called, in stream order, with the type and declared length of each frame of an unknown or
   * reserved type as it is skipped (RFC 9114 §9). Lets a control-stream validator see that the
   * first frame was not SETTINGS. An exception it throws fails the parser.
   */
  readonly onSkippedFrame?: (type: bigint, payloadLength: bigint) => void;
  /**
   * Called with the type and declared length of each frame of a known type as soon as its
   * header is read, before any of its payload is held (e.g. to refuse a HEADERS frame longer
   * than the field section limit allows). An exception it throws fails the parser.
   */
  readonly onFrameStart?: (type: bigint, payloadLength: bigint) => void;
}

interface PendingFrame {
  readonly type: bigint;
  readonly payloadLength: number;
}

function checkedSize(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  return value;
}

/**
 * Splits the bytes of one stream into HTTP/3 frames (RFC 9114 §7.1): `push` bytes as they
 * arrive, then `pull` complete frames. Frames of unknown and reserved types are skipped
 * without holding their payload (RFC 9114 §9); HTTP/2-only types are H3_FRAME_UNEXPECTED
 * (§7.2.8). After an error, every call throws that same error.
 *
 * The parser takes ownership of pushed chunks until it has consumed them: do not modify a
 * chunk after pushing it. Pulled payloads are copies, never views of pushed chunks.
 */
export class FrameParser {
  private readonly maxFramePayloadBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly onSkippedFrame: ((type: bigint, payloadLength: bigint) => void) | undefined;
  private readonly onFrameStart: ((type: bigint, payloadLength: bigint) => void) | undefined;

  /** Pushed chunks not yet consumed; `chunks[head]` starts at `headOffset`. */
  private chunks: Uint8Array[] = [];
  private head = 0;
  private headOffset = 0;
  private buffered = 0;

  /** A known frame whose header is consumed and whose payload is awaited. */
  private pending: PendingFrame | undefined;
  /** Payload bytes of an unknown frame still to discard. */
  private skipRemaining = 0n;
  private failure: Error | undefined;
  private ended = false;
  private readonly headerScratch = new Uint8Array(MAX_FRAME_HEADER_LENGTH);

  constructor(options: FrameParserOptions = {}) {
    this.maxFramePayloadBytes = checkedSize(options.maxFramePayloadBytes ?? DEFAULT_MAX_FRAME_PAYLOAD_BYTES, 'maxFramePayloadBytes');
    this.maxBufferedBytes = checkedSize(
      options.maxBufferedBytes ?? this.maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH + DEFAULT_BUFFER_ALLOWANCE_BYTES,
      'maxBufferedBytes',
    );
    if (this.maxBufferedBytes < this.maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH) {
      throw new RangeError('maxBufferedBytes must be at least maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH');
    }
    this.onSkippedFrame = options.onSkippedFrame;
    this.onFrameStart = options.onFrameStart;
  }

  /** Bytes held: pushed, not yet pulled as part of a frame, not skipped. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Payload bytes of an unknown frame that the parser will still discard as they arrive. */
  get bytesToSkip(): bigint {
    return this.skipRemaining;
  }

  /** Adds bytes received on the stream. Throws a connection Http3Error H3_EXCESSIVE_LOAD past the buffer cap. */
  push(bytes: Uint8Array): void {
    this.throwIfFailed();
    if (this.ended) throw new Error('FrameParser.push after end()');
    let chunk = bytes;
    if (this.skipRemaining > 0n) {
      // Skipping means every earlier byte is consumed: discard straight from the new chunk.
      const skipped = this.skipRemaining < BigInt(chunk.length) ? Number(this.skipRemaining) : chunk.length;
      this.skipRemaining -= BigInt(skipped);
      chunk = chunk.subarray(skipped);
    }
    if (chunk.length === 0) return;
    if (this.buffered + chunk.length > this.maxBufferedBytes) {
      this.fail(
        Http3Error.connection(H3_ERROR_CODES.H3_EXCESSIVE_LOAD, `more than ${this.maxBufferedBytes} bytes buffered on a stream`),
      );
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or `undefined` until more bytes arrive. Throws a connection Http3Error on invalid input. */
  pull(): Http3Frame | undefined {
    this.throwIfFailed();
    try {
      return this.pullFrame();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Every complete frame available now. */
  pullAll(): Http3Frame[] {
    const frames: Http3Frame[] = [];
    for (let frame = this.pull(); frame !== undefined; frame = this.pull()) frames.push(frame);
    return frames;
  }

  /**
   * Marks the clean end of the stream (FIN) and returns the frames still to pull. A truncated
   * last frame, of any type, is a connection error H3_FRAME_ERROR (RFC 9114 §7.1).
   */
  end(): Http3Frame[] {
    const frames = this.pullAll();
    this.ended = true;
    if (this.buffered > 0 || this.pending !== undefined || this.skipRemaining > 0n) {
      this.fail(frameError('stream ended inside a frame'));
    }
    return frames;
  }

  private pullFrame(): Http3Frame | undefined {
    for (;;) {
      if (this.skipRemaining > 0n) {
        const skipped = this.skipRemaining < BigInt(this.buffered) ? Number(this.skipRemaining) : this.buffered;
        this.discard(skipped);
        this.skipRemaining -= BigInt(skipped);
        if (this.skipRemaining > 0n) return undefined;
      }
      if (this.pending !== undefined) {
        if (this.buffered < this.pending.payloadLength) return undefined;
        const frame = { type: this.pending.type, payload: this.take(this.pending.payloadLength) };
        this.pending = undefined;
        return frame;
      }
      if (!this.readHeader()) return undefined;
    }
  }

  /** Consumes one frame header if complete; returns whether it did. */
  private readHeader(): boolean {
    const available = this.peek(this.headerScratch);
    const type = decodeVarint(available, 0);
    const length = type === undefined ? undefined : decodeVarint(available, type.length);
    if (type === undefined || length === undefined) return false;
    this.discard(type.length + length.length);
    this.startFrame(type.value, length.value);
    return true;
  }

  private startFrame(type: bigint, payloadLength: bigint): void {
    if (HTTP2_ONLY_FRAME_TYPES.has(type)) {
      throw Http3Error.connection(H3_ERROR_CODES.H3_FRAME_UNEXPECTED, `HTTP/2-only frame type 0x${type.toString(16)}`);
    }
    if (!KNOWN_FRAME_TYPES.has(type)) {
      this.onSkippedFrame?.(type, payloadLength);
      this.skipRemaining = payloadLength;
      return;
    }
    this.onFrameStart?.(type, payloadLength);
    if (payloadLength > BigInt(this.maxFramePayloadBytes)) {
      throw Http3Error.connection(
        H3_ERROR_CODES.H3_EXCESSIVE_LOAD,
        `${frameTypeName(type)} frame of ${payloadLength} bytes exceeds the limit of ${this.maxFramePayloadBytes}`,
      );
    }
    if (SINGLE_VARINT_FRAME_TYPES.has(type) && (payloadLength === 0n || payloadLength > BigInt(MAX_VARINT_LENGTH))) {
      throw frameError(`${frameTypeName(type)} frame of ${payloadLength} bytes cannot hold exactly one variable-length integer`);
    }
    this.pending = { type, payloadLength: Number(payloadLength) };
  }

  /** Copies up to `target.length` buffered bytes into `target` without consuming them. */
  private peek(target: Uint8Array): Uint8Array {
    let filled = 0;
    let offset = this.headOffset;
    for (let index = this.head; index < this.chunks.length && filled < target.length; index++) {
      const chunk = this.chunks[index] as Uint8Array;
      const count = Math.min(chunk.length - offset, target.length - filled);
      target.set(chunk.subarray(offset, offset + count), filled);
      filled += count;
      offset = 0;
    }
    return target.subarray(0, filled);
  }

  /** Consumes `count` buffered bytes into a new array. */
  private take(count: number): Uint8Array {
    const taken = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[this.head] as Uint8Array;
      const available = Math.min(chunk.length - this.headOffset, count - filled);
      taken.set(chunk.subarray(this.headOffset, this.headOffset + available), filled);
      filled += available;
      this.advance(available);
    }
    return taken;
  }

  /** Consumes `count` buffered bytes, dropping them. */
  private discard(count: number): void {
    let remaining = count;
    while (remaining > 0) {
      const chunk = this.chunks[this.head] as Uint8Array;
      const available = Math.min(chunk.length - this.headOffset, remaining);
      remaining -= available;
      this.advance(available);
    }
  }

  private advance(count: number): void {
    this.buffered -= count;
    this.headOffset += count;
    const chunk = this.chunks[this.head] as Uint8Array;
    if (this.headOffset < chunk.length) return;
    this.head++;
    this.headOffset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private fail(error: unknown): never {
    const failure = error instanceof Error ? error : new Error(`FrameParser failed: ${String(error)}`);
    this.failure = failure;
    this.chunks = [];
    this.head = 0;
    this.headOffset = 0;
    this.buffered = 0;
    throw failure;
  }
}

// ---------------------------------------------------------------------------------------------
// Frame placement (RFC 9114 §4.1, §6.2.1, §7.2)
// ---------------------------------------------------------------------------------------------

/** The endpoint receiving the frames being checked. */
export type EndpointRole = 'client' | 'server';

function unexpected(type: bigint, where: string): Http3Error {
  return Http3Error.connection(H3_ERROR_CODES.H3_FRAME_UNEXPECTED, `${frameTypeName(type)} frame on ${where}`);
}

/**
 * Checks that a frame type may appear on a request stream received by `receiver`, ignoring
 * order: DATA, HEADERS and unknown or reserved types (RFC 9114 §4.1, §9). Throws a connection
 * Http3Error: H3_FRAME_UNEXPECTED for CANCEL_PUSH, SETTINGS, GOAWAY, MAX_PUSH_ID (§7.2.3-7) and
 * HTTP/2-only types (§7.2.8), and for PUSH_PROMISE received by a server (§7.2.5). A client
 * receiving PUSH_PROMISE gets H3_ID_ERROR: this layer never sends MAX_PUSH_ID, so every push id
 * exceeds the (absent) limit (§4.6).
 */
export function checkRequestStreamFrameType(type: bigint, receiver: EndpointRole): void {
  if (type === FRAME_TYPE.DATA || type === FRAME_TYPE.HEADERS) return;
  if (type === FRAME_TYPE.PUSH_PROMISE) {
    if (receiver === 'server') throw unexpected(type, 'a request stream received by a server');
    throw Http3Error.connection(H3_ERROR_CODES.H3_ID_ERROR, 'PUSH_PROMISE without MAX_PUSH_ID: server push is never enabled');
  }
  if (KNOWN_FRAME_TYPES.has(type) || HTTP2_ONLY_FRAME_TYPES.has(type)) throw unexpected(type, 'a request stream');
}

/**
 * The frame order of a request stream (RFC 9114 §4.1): HEADERS, then DATA frames, then an
 * optional trailing HEADERS, and nothing after it. A DATA frame before the first HEADERS or any
 * DATA or HEADERS after the trailers is a connection error H3_FRAME_UNEXPECTED.
 */
export class RequestStreamFrameValidator {
  private state: 'awaiting-headers' | 'headers-received' | 'data-received' | 'trailers-received' = 'awaiting-headers';

  constructor(readonly receiver: EndpointRole) {}

  /** Checks the next frame type on the stream (unknown types included, in order). */
  accept(type: bigint): void {
    checkRequestStreamFrameType(type, this.receiver);
    if (type === FRAME_TYPE.HEADERS) {
      if (this.state === 'trailers-received') throw unexpected(type, 'a request stream after the trailers');
      this.state = this.state === 'awaiting-headers' ? 'headers-received' : 'trailers-received';
    } else if (type === FRAME_TYPE.DATA) {
      if (this.state === 'awaiting-headers') throw unexpected(type, 'a request stream before HEADERS');
      if (this.state === 'trailers-received') throw unexpected(type, 'a request stream after the trailers');
      this.state = 'data-received';
    }
  }

  /**
   * Records that the HEADERS frame just accepted held an interim (1xx) response, so the final
   * response's HEADERS must still follow (RFC 9114 §4.1). Only a client receives those.
   */
  interimResponseReceived(): void {
    if (this.receiver !== 'client' || this.state !== 'headers-received') {
      throw new Error('an interim response can only be the HEADERS frame a client has just accepted');
    }
    this.state = 'awaiting-headers';
  }

  /** Whether the stream's message so far ends where one may end: after HEADERS, DATA or trailers. */
  get messageComplete(): boolean {
    return this.state !== 'awaiting-headers';
  }
}

/**
 * The rules of a peer's control stream (RFC 9114 §6.2.1, §7.2): SETTINGS first (anything else,
 * even an unknown type, is H3_MISSING_SETTINGS), never again (H3_FRAME_UNEXPECTED); DATA,
 * HEADERS, PUSH_PROMISE and HTTP/2-only types are H3_FRAME_UNEXPECTED, and so is MAX_PUSH_ID
 * received by a client (§7.2.7). Feed it every frame type, skipped ones included
 * (see {@link FrameParserOptions.onSkippedFrame}).
 */
export class ControlStreamFrameValidator {
  private settingsSeen = false;

  constructor(readonly receiver: EndpointRole) {}

  /** Whether the peer's SETTINGS frame has arrived. */
  get settingsReceived(): boolean {
    return this.settingsSeen;
  }

  /** Checks the next frame type on the control stream. */
  accept(type: bigint): void {
    if (!this.settingsSeen) {
      if (type !== FRAME_TYPE.SETTINGS) {
        throw Http3Error.connection(H3_ERROR_CODES.H3_MISSING_SETTINGS, `control stream began with a ${frameTypeName(type)} frame`);
      }
      this.settingsSeen = true;
      return;
    }
    switch (type) {
      case FRAME_TYPE.SETTINGS:
        throw unexpected(type, 'the control stream a second time');
      case FRAME_TYPE.DATA:
      case FRAME_TYPE.HEADERS:
      case FRAME_TYPE.PUSH_PROMISE:
        throw unexpected(type, 'the control stream');
      case FRAME_TYPE.MAX_PUSH_ID:
        if (this.receiver === 'client') throw unexpected(type, 'a control stream received by a client');
        return;
      default:
        if (HTTP2_ONLY_FRAME_TYPES.has(type)) throw unexpected(type, 'the control stream');
    }
  }
}
