import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { H3_ERROR_CODES, Http3Error, http3ErrorCodeName, QPACK_ERROR_CODES } from '../../../src/http3/error-codes.js';
import {
  ControlStreamFrameValidator,
  encodeCancelPushFrame,
  encodeDataFrame,
  encodeFrame,
  encodeFrameHeader,
  encodeGoawayFrame,
  encodeHeadersFrame,
  encodeMaxPushIdFrame,
  encodeSettingsFrame,
  FRAME_TYPE,
  FrameParser,
  type Http3Frame,
  HTTP2_ONLY_FRAME_TYPES,
  isKnownFrameType,
  isReservedIdentifier,
  MAX_FRAME_HEADER_LENGTH,
  parseCancelPushPayload,
  parseGoawayPayload,
  parseMaxPushIdPayload,
  parseSettingsPayload,
  readKnownSettings,
  RequestStreamFrameValidator,
  reservedIdentifier,
  SETTINGS_ID,
  UNIDIRECTIONAL_STREAM_TYPE,
} from '../../../src/http3/frames.js';
import { encodeVarint, MAX_VARINT } from '../../../src/http3/varint.js';

type H3CodeName = keyof typeof H3_ERROR_CODES;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** The Http3Error that `action` throws (failing the test when it throws anything else). */
function http3ErrorOf(action: () => unknown): Http3Error {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(Http3Error);
    return error as Http3Error;
  }
  throw new Error('expected an Http3Error, nothing was thrown');
}

function expectConnectionError(action: () => unknown, codeName: H3CodeName): Http3Error {
  const error = http3ErrorOf(action);
  expect(error.codeName).toBe(codeName);
  expect(error.code).toBe(H3_ERROR_CODES[codeName]);
  expect(error.scope).toBe('connection');
  return error;
}

/** `bytes` cut at the given points (taken modulo its length). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => (bytes.length === 0 ? 0 : cut % (bytes.length + 1))))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** Pushes each chunk and pulls every frame after it, as a transport does. */
function parseChunks(parser: FrameParser, chunks: readonly Uint8Array[]): Http3Frame[] {
  const frames: Http3Frame[] = [];
  for (const chunk of chunks) {
    parser.push(chunk);
    frames.push(...parser.pullAll());
  }
  frames.push(...parser.end());
  return frames;
}

describe('identifiers', () => {
  it('names the RFC 9114 and RFC 9204 error codes', () => {
    expect(H3_ERROR_CODES.H3_NO_ERROR).toBe(0x100);
    expect(H3_ERROR_CODES.H3_VERSION_FALLBACK).toBe(0x110);
    expect(Object.values(H3_ERROR_CODES)).toEqual(Array.from({ length: 17 }, (_, index) => 0x100 + index));
    expect(QPACK_ERROR_CODES).toEqual({ QPACK_DECOMPRESSION_FAILED: 0x200, QPACK_ENCODER_STREAM_ERROR: 0x201, QPACK_DECODER_STREAM_ERROR: 0x202 });
    expect(http3ErrorCodeName(0x10c)).toBe('H3_REQUEST_CANCELLED');
    expect(http3ErrorCodeName(0x202n)).toBe('QPACK_DECODER_STREAM_ERROR');
    expect(http3ErrorCodeName(0x21 + 0x1f * 9)).toBe('H3_RESERVED_0x138');
    expect(http3ErrorCodeName(0x999)).toBe('UNKNOWN_0x999');
    expect(http3ErrorCodeName(0.5)).toBe('UNKNOWN_0.5');
  });

  it('builds Http3Error with code, name and scope', () => {
    const error = Http3Error.stream(H3_ERROR_CODES.H3_MESSAGE_ERROR, 'bad pseudo-header');
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'Http3Error', code: 0x10e, codeName: 'H3_MESSAGE_ERROR', scope: 'stream' });
    expect(error.message).toBe('H3_MESSAGE_ERROR (stream error): bad pseudo-header');
    expect(Http3Error.connection(QPACK_ERROR_CODES.QPACK_DECOMPRESSION_FAILED, 'x').scope).toBe('connection');
  });

  it('recognises reserved identifiers 0x1f*N+0x21', () => {
    expect([0x21n, 0x40n, 0x5fn, reservedIdentifier(1000n), reservedIdentifier((MAX_VARINT - 0x21n) / 0x1fn)].every(isReservedIdentifier)).toBe(true);
    expect([0x0n, 0x20n, 0x22n, 0x41n, FRAME_TYPE.MAX_PUSH_ID].some(isReservedIdentifier)).toBe(false);
  });

  it('knows the seven RFC 9114 frame types, and none of HTTP/2 only', () => {
    expect(Object.values(FRAME_TYPE)).toEqual([0x0n, 0x1n, 0x3n, 0x4n, 0x5n, 0x7n, 0xdn]);
    expect([...HTTP2_ONLY_FRAME_TYPES].some(isKnownFrameType)).toBe(false);
    expect(isKnownFrameType(0x21n)).toBe(false);
    expect(UNIDIRECTIONAL_STREAM_TYPE).toEqual({ CONTROL: 0n, PUSH: 1n, QPACK_ENCODER: 2n, QPACK_DECODER: 3n });
    expect(SETTINGS_ID).toEqual({ QPACK_MAX_TABLE_CAPACITY: 1n, MAX_FIELD_SECTION_SIZE: 6n, QPACK_BLOCKED_STREAMS: 7n });
  });
});

describe('frame encoders', () => {
  it('writes type, length and payload (RFC 9114 §7.1)', () => {
    expect(hex(encodeDataFrame(Uint8Array.of(1, 2, 3)))).toBe('0003010203');
    expect(hex(encodeHeadersFrame(Uint8Array.of(0, 0, 0xd1)))).toBe('01030000d1');
    expect(hex(encodeDataFrame(new Uint8Array(0)))).toBe('0000');
    expect(hex(encodeFrameHeader(FRAME_TYPE.DATA, 16384))).toBe('0080004000');
    expect(hex(encodeFrameHeader(reservedIdentifier(3n), 0n))).toBe('407e00');
    expect(encodeFrame(FRAME_TYPE.DATA, new Uint8Array(300)).subarray(0, 3)).toEqual(Uint8Array.of(0x00, 0x41, 0x2c));
  });

  it('writes GOAWAY, CANCEL_PUSH and MAX_PUSH_ID with 62-bit ids', () => {
    expect(hex(encodeGoawayFrame(4n))).toBe('070104');
    expect(hex(encodeGoawayFrame(MAX_VARINT))).toBe('0708ffffffffffffffff');
    expect(hex(encodeCancelPushFrame(63n))).toBe('03013f');
    expect(hex(encodeMaxPushIdFrame(64n))).toBe('0d024040');
    expect(() => encodeGoawayFrame(MAX_VARINT + 1n)).toThrow(RangeError);
  });

  it('writes SETTINGS in map order, keeping 62-bit values exact', () => {
    const settings = new Map([
      [SETTINGS_ID.QPACK_MAX_TABLE_CAPACITY, 0n],
      [SETTINGS_ID.MAX_FIELD_SECTION_SIZE, MAX_VARINT],
      [SETTINGS_ID.QPACK_BLOCKED_STREAMS, 100n],
    ]);
    const frame = encodeSettingsFrame(settings);
    expect(hex(frame)).toBe('040e' + '0100' + '06ffffffffffffffff' + '07' + '4064');
    expect(parseSettingsPayload(frame.subarray(2))).toEqual(settings);
    expect(hex(encodeSettingsFrame(new Map()))).toBe('0400');
  });

  it('refuses to send HTTP/2-only settings or values beyond 2^62-1', () => {
    for (const id of [0x2n, 0x3n, 0x4n, 0x5n]) expect(() => encodeSettingsFrame(new Map([[id, 1n]]))).toThrow(RangeError);
    expect(() => encodeSettingsFrame(new Map([[SETTINGS_ID.MAX_FIELD_SECTION_SIZE, MAX_VARINT + 1n]]))).toThrow(RangeError);
  });
});

describe('payload parsers', () => {
  it('keeps unknown and reserved settings for the caller to ignore, and fills in known defaults', () => {
    const payload = concat([encodeVarint(reservedIdentifier(7n)), encodeVarint(MAX_VARINT), encodeVarint(0x33n), encodeVarint(1n)]);
    const settings = parseSettingsPayload(payload);
    expect(settings).toEqual(new Map([[reservedIdentifier(7n), MAX_VARINT], [0x33n, 1n]]));
    expect(readKnownSettings(settings)).toEqual({ qpackMaxTableCapacity: 0n, maxFieldSectionSize: undefined, qpackBlockedStreams: 0n });
    expect(readKnownSettings(new Map([[SETTINGS_ID.MAX_FIELD_SECTION_SIZE, MAX_VARINT], [SETTINGS_ID.QPACK_MAX_TABLE_CAPACITY, 4096n]]))).toEqual({
      qpackMaxTableCapacity: 4096n, maxFieldSectionSize: MAX_VARINT, qpackBlockedStreams: 0n,
    });
    expect(parseSettingsPayload(new Uint8Array(0))).toEqual(new Map());
  });

  it('treats a duplicate setting as H3_SETTINGS_ERROR', () => {
    const payload = concat([encodeVarint(6n), encodeVarint(100n), encodeVarint(1n), encodeVarint(0n), encodeVarint(6n), encodeVarint(100n)]);
    expectConnectionError(() => parseSettingsPayload(payload), 'H3_SETTINGS_ERROR');
  });

  it.each([0x2n, 0x3n, 0x4n, 0x5n])('treats HTTP/2 setting 0x%s as H3_SETTINGS_ERROR', (id) => {
    expectConnectionError(() => parseSettingsPayload(concat([encodeVarint(id), encodeVarint(0n)])), 'H3_SETTINGS_ERROR');
  });

  it('treats a truncated setting as H3_FRAME_ERROR', () => {
    expectConnectionError(() => parseSettingsPayload(Uint8Array.of(0x06)), 'H3_FRAME_ERROR');
    expectConnectionError(() => parseSettingsPayload(Uint8Array.of(0x06, 0x80, 0x00)), 'H3_FRAME_ERROR');
    expectConnectionError(() => parseSettingsPayload(Uint8Array.of(0x40)), 'H3_FRAME_ERROR');
  });

  it('reads exactly one varint from GOAWAY, CANCEL_PUSH and MAX_PUSH_ID payloads', () => {
    expect(parseGoawayPayload(encodeVarint(MAX_VARINT))).toBe(MAX_VARINT);
    expect(parseCancelPushPayload(Uint8Array.of(0x40, 0x25))).toBe(37n);
    expect(parseMaxPushIdPayload(Uint8Array.of(0))).toBe(0n);
    for (const parse of [parseGoawayPayload, parseCancelPushPayload, parseMaxPushIdPayload]) {
      expectConnectionError(() => parse(new Uint8Array(0)), 'H3_FRAME_ERROR');
      expectConnectionError(() => parse(Uint8Array.of(0x04, 0x00)), 'H3_FRAME_ERROR');
      expectConnectionError(() => parse(Uint8Array.of(0x80, 0x00)), 'H3_FRAME_ERROR');
    }
  });
});

describe('FrameParser', () => {
  it('yields frames from a stream split one byte at a time', () => {
    const settings = encodeSettingsFrame(new Map([[SETTINGS_ID.MAX_FIELD_SECTION_SIZE, MAX_VARINT]]));
    const stream = concat([settings, encodeGoawayFrame(8n), encodeHeadersFrame(Uint8Array.of(9, 9)), encodeDataFrame(new Uint8Array(0))]);
    const bytewise = Array.from(stream, (byte) => Uint8Array.of(byte));
    expect(parseChunks(new FrameParser(), bytewise)).toEqual([
      { type: FRAME_TYPE.SETTINGS, payload: settings.subarray(2) },
      { type: FRAME_TYPE.GOAWAY, payload: Uint8Array.of(8) },
      { type: FRAME_TYPE.HEADERS, payload: Uint8Array.of(9, 9) },
      { type: FRAME_TYPE.DATA, payload: new Uint8Array(0) },
    ]);
  });

  it('keeps up with thousands of tiny chunks pushed before any pull', () => {
    const parser = new FrameParser();
    for (let index = 0; index < 3000; index++) parser.push(Uint8Array.of(0)); // 1500 empty DATA frames, a byte at a time
    expect(parser.bufferedBytes).toBe(3000);
    const frames = parser.pullAll();
    expect(frames).toHaveLength(1500);
    expect(frames.every((frame) => frame.type === FRAME_TYPE.DATA && frame.payload.length === 0)).toBe(true);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('returns payloads that are copies, not views of pushed bytes', () => {
    const parser = new FrameParser();
    const chunk = encodeDataFrame(Uint8Array.of(1, 2, 3));
    parser.push(chunk);
    const frame = parser.pull();
    chunk.fill(0xff);
    expect(frame?.payload).toEqual(Uint8Array.of(1, 2, 3));
    expect(parser.bufferedBytes).toBe(0);
  });

  it('skips unknown and reserved frame types, reporting each to onSkippedFrame', () => {
    const skipped: [bigint, bigint][] = [];
    const parser = new FrameParser({ onSkippedFrame: (type, length) => skipped.push([type, length]) });
    const stream = concat([
      encodeFrame(reservedIdentifier(0n), Uint8Array.of(1, 2)),
      encodeFrame(0x0cn, new Uint8Array(0)), // ORIGIN (RFC 9412): not understood here
      encodeDataFrame(Uint8Array.of(7)),
      encodeFrame(reservedIdentifier(MAX_VARINT / 0x1fn - 2n), new Uint8Array(70)),
    ]);
    expect(parseChunks(parser, [stream])).toEqual([{ type: FRAME_TYPE.DATA, payload: Uint8Array.of(7) }]);
    expect(skipped).toEqual([[0x21n, 2n], [0x0cn, 0n], [reservedIdentifier(MAX_VARINT / 0x1fn - 2n), 70n]]);
  });

  it('skips a 1 GiB unknown frame without holding its payload', () => {
    const parser = new FrameParser({ maxFramePayloadBytes: 1024 });
    const gibibyte = 1n << 30n;
    parser.push(encodeFrameHeader(0x1234n, gibibyte));
    expect(parser.pull()).toBeUndefined();
    expect(parser.bytesToSkip).toBe(gibibyte);
    const chunk = new Uint8Array(1 << 20);
    // Pushed without pulling: the parser is mid-skip, so it drops the bytes as they arrive.
    for (let pushed = 0; pushed < 1024; pushed++) {
      parser.push(chunk);
      expect(parser.bufferedBytes).toBe(0);
    }
    expect(parser.bytesToSkip).toBe(0n);
    parser.push(encodeDataFrame(Uint8Array.of(5)));
    expect(parser.pullAll()).toEqual([{ type: FRAME_TYPE.DATA, payload: Uint8Array.of(5) }]);
    expect(parser.end()).toEqual([]);
  });

  it('skips an unknown frame declaring 2^62-1 bytes, and a truncated skip fails at end()', () => {
    const parser = new FrameParser();
    parser.push(concat([encodeFrameHeader(reservedIdentifier(5n), MAX_VARINT), new Uint8Array(100_000)]));
    expect(parser.pull()).toBeUndefined();
    expect(parser.bufferedBytes).toBe(0);
    expect(parser.bytesToSkip).toBe(MAX_VARINT - 100_000n);
    expectConnectionError(() => parser.end(), 'H3_FRAME_ERROR');
  });

  it.each([...HTTP2_ONLY_FRAME_TYPES])('rejects HTTP/2-only frame type %s as H3_FRAME_UNEXPECTED from its header alone', (type) => {
    const parser = new FrameParser();
    parser.push(encodeFrameHeader(type, MAX_VARINT));
    expectConnectionError(() => parser.pull(), 'H3_FRAME_UNEXPECTED');
  });

  it('rejects a known frame longer than maxFramePayloadBytes as H3_EXCESSIVE_LOAD from its header alone', () => {
    const parser = new FrameParser({ maxFramePayloadBytes: 1000 });
    parser.push(encodeFrameHeader(FRAME_TYPE.DATA, 1000));
    expect(parser.pull()).toBeUndefined();
    parser.push(new Uint8Array(1000));
    expect(parser.pull()?.payload.length).toBe(1000);
    parser.push(encodeFrameHeader(FRAME_TYPE.HEADERS, 1001));
    expectConnectionError(() => parser.pull(), 'H3_EXCESSIVE_LOAD');
    expect(parser.bufferedBytes).toBe(0);
  });

  it('rejects more buffered bytes than maxBufferedBytes as H3_EXCESSIVE_LOAD', () => {
    const parser = new FrameParser({ maxFramePayloadBytes: 100, maxBufferedBytes: 200 });
    parser.push(new Uint8Array(150)); // 75 empty DATA frames, not pulled yet
    expect(parser.bufferedBytes).toBe(150);
    parser.push(new Uint8Array(50));
    expect(parser.bufferedBytes).toBe(200);
    expectConnectionError(() => parser.push(new Uint8Array(1)), 'H3_EXCESSIVE_LOAD');
  });

  it('holds at most one incomplete frame when the consumer pulls after each push', () => {
    const parser = new FrameParser({ maxFramePayloadBytes: 4096, maxBufferedBytes: 4096 + MAX_FRAME_HEADER_LENGTH + 512 });
    const frames = Array.from({ length: 50 }, (_, index) => encodeDataFrame(new Uint8Array(4096).fill(index)));
    for (const chunk of split(concat(frames), Array.from({ length: 400 }, (_, index) => index * 512))) {
      parser.push(chunk);
      parser.pullAll();
      expect(parser.bufferedBytes).toBeLessThan(4096 + MAX_FRAME_HEADER_LENGTH);
    }
  });

  it('validates its limits', () => {
    expect(() => new FrameParser({ maxFramePayloadBytes: -1 })).toThrow(RangeError);
    expect(() => new FrameParser({ maxFramePayloadBytes: 1.5 })).toThrow(RangeError);
    expect(() => new FrameParser({ maxFramePayloadBytes: 100, maxBufferedBytes: 100 })).toThrow(RangeError);
    expect(() => new FrameParser({ maxFramePayloadBytes: 100, maxBufferedBytes: 100 + MAX_FRAME_HEADER_LENGTH })).not.toThrow();
  });

  it.each([
    ['GOAWAY', FRAME_TYPE.GOAWAY],
    ['CANCEL_PUSH', FRAME_TYPE.CANCEL_PUSH],
    ['MAX_PUSH_ID', FRAME_TYPE.MAX_PUSH_ID],
  ])('rejects a %s frame that cannot hold exactly one varint as H3_FRAME_ERROR', (_name, type) => {
    for (const length of [0, 9]) {
      const parser = new FrameParser();
      parser.push(encodeFrameHeader(type, length));
      expectConnectionError(() => parser.pull(), 'H3_FRAME_ERROR');
    }
  });

  it('treats a stream ending inside a frame header or payload as H3_FRAME_ERROR (RFC 9114 §7.1)', () => {
    const frame = encodeDataFrame(new Uint8Array(100));
    for (const cut of [1, 2, 50, frame.length - 1]) {
      const parser = new FrameParser();
      parser.push(frame.subarray(0, cut));
      expectConnectionError(() => parser.end(), 'H3_FRAME_ERROR');
    }
    const header = new FrameParser();
    header.push(Uint8Array.of(0x40)); // the first byte of a two-byte frame type
    expectConnectionError(() => header.end(), 'H3_FRAME_ERROR');
  });

  it('returns the frames still buffered when the stream ends cleanly, then refuses more bytes', () => {
    const parser = new FrameParser();
    parser.push(concat([encodeHeadersFrame(Uint8Array.of(1)), encodeDataFrame(Uint8Array.of(2))]));
    expect(parser.end()).toHaveLength(2);
    expect(() => parser.push(Uint8Array.of(0))).toThrow(Error);
  });

  it('keeps failing with the same error once it has failed', () => {
    const parser = new FrameParser();
    parser.push(encodeFrameHeader(0x2n, 0));
    const error = expectConnectionError(() => parser.pull(), 'H3_FRAME_UNEXPECTED');
    expect(http3ErrorOf(() => parser.push(encodeDataFrame(Uint8Array.of(1))))).toBe(error);
    expect(http3ErrorOf(() => parser.pull())).toBe(error);
    expect(http3ErrorOf(() => parser.end())).toBe(error);
  });

  it('fails with whatever onSkippedFrame throws', () => {
    const control = new ControlStreamFrameValidator('client');
    const parser = new FrameParser({ onSkippedFrame: (type) => control.accept(type) });
    parser.push(concat([encodeFrame(reservedIdentifier(2n), Uint8Array.of(1)), encodeSettingsFrame(new Map())]));
    expectConnectionError(() => parser.pullAll(), 'H3_MISSING_SETTINGS');
  });

  it('reports each known frame to onFrameStart from its header, before its payload arrives, and fails with what it throws', () => {
    const started: Array<[bigint, bigint]> = [];
    const refusal = new Error('too long');
    const parser = new FrameParser({
      onFrameStart: (type, length) => {
        started.push([type, length]);
        if (length > 100n) throw refusal;
      },
    });
    parser.push(concat([encodeDataFrame(Uint8Array.of(1, 2)), encodeFrame(reservedIdentifier(1n), Uint8Array.of(9))]));
    expect(parser.pullAll().map((f) => f.type)).toEqual([FRAME_TYPE.DATA]);
    // Only the header of a 1 GiB HEADERS frame: refused at once, nothing of the payload awaited.
    parser.push(encodeFrameHeader(FRAME_TYPE.HEADERS, 1 << 30));
    expect(() => parser.pull()).toThrow(refusal);
    expect(() => parser.pull()).toThrow(refusal);
    expect(started).toEqual([
      [FRAME_TYPE.DATA, 2n],
      [FRAME_TYPE.HEADERS, 1n << 30n],
    ]);
  });
});

describe('FrameParser properties', () => {
  const payload = fc.uint8Array({ maxLength: 300 });
  const knownFrame = fc.oneof(
    fc.record({ type: fc.constantFrom(FRAME_TYPE.DATA, FRAME_TYPE.HEADERS, FRAME_TYPE.PUSH_PROMISE), payload }),
    fc.record({
      type: fc.constantFrom(FRAME_TYPE.GOAWAY, FRAME_TYPE.CANCEL_PUSH, FRAME_TYPE.MAX_PUSH_ID),
      payload: fc.bigInt({ min: 0n, max: MAX_VARINT }).map(encodeVarint),
    }),
    fc
      .array(fc.tuple(fc.bigInt({ min: 0n, max: MAX_VARINT }), fc.bigInt({ min: 0n, max: MAX_VARINT })), { maxLength: 6 })
      .map((pairs) => new Map(pairs.filter(([id]) => id < 2n || id > 5n)))
      .map((settings) => ({ type: FRAME_TYPE.SETTINGS, payload: encodeSettingsFrame(settings).subarray(encodeFrameHeader(FRAME_TYPE.SETTINGS, 0).length) })),
  );
  const unknownType = fc.oneof(fc.bigInt({ min: 0n, max: (MAX_VARINT - 0x21n) / 0x1fn }).map(reservedIdentifier), fc.bigInt({ min: 0x0an, max: MAX_VARINT }))
    .filter((type) => !isKnownFrameType(type) && !HTTP2_ONLY_FRAME_TYPES.has(type));
  const unknownFrame = fc.record({ type: unknownType, payload, unknown: fc.constant(true) });
  const cuts = fc.array(fc.nat(), { maxLength: 30 });

  it('round trips frames, skips unknown ones, and gives the same frames however the stream is split', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(knownFrame, unknownFrame), { maxLength: 20 }), cuts, (frames, cutPoints) => {
        const stream = concat(frames.map((frame) => encodeFrame(frame.type, frame.payload)));
        const expected = frames.filter((frame) => !('unknown' in frame)).map(({ type, payload: bytes }) => ({ type, payload: bytes }));
        expect(parseChunks(new FrameParser(), split(stream, cutPoints))).toEqual(expected);
        expect(parseChunks(new FrameParser(), [stream])).toEqual(expected);
        const pushedFirst = new FrameParser();
        for (const chunk of split(stream, cutPoints)) pushedFirst.push(chunk);
        expect(pushedFirst.end()).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('round trips SETTINGS through encodeSettingsFrame, the parser and parseSettingsPayload', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fc.bigInt({ min: 6n, max: MAX_VARINT }), fc.bigInt({ min: 0n, max: MAX_VARINT })), { selector: ([id]) => id, maxLength: 10 }), (pairs) => {
        const settings = new Map(pairs);
        const parser = new FrameParser();
        parser.push(encodeSettingsFrame(settings));
        const [frame] = parser.end();
        expect(frame?.type).toBe(FRAME_TYPE.SETTINGS);
        expect(parseSettingsPayload(frame?.payload ?? new Uint8Array(0))).toEqual(settings);
      }),
    );
  });

  it('never throws anything but Http3Error on arbitrary bytes, and always terminates', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), cuts, fc.nat({ max: 300 }), (bytes, cutPoints, maxFramePayloadBytes) => {
        const parser = new FrameParser({ maxFramePayloadBytes, maxBufferedBytes: maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH + 64 });
        try {
          for (const chunk of split(bytes, cutPoints)) {
            parser.push(chunk);
            let pulls = 0;
            for (let frame = parser.pull(); frame !== undefined; frame = parser.pull()) {
              pulls++;
              expect(pulls).toBeLessThanOrEqual(bytes.length); // every frame consumes at least two bytes
              expect(frame.payload.length).toBeLessThanOrEqual(maxFramePayloadBytes);
              if (frame.type === FRAME_TYPE.SETTINGS) parseSettingsPayload(frame.payload);
              if (frame.type === FRAME_TYPE.GOAWAY) parseGoawayPayload(frame.payload);
            }
            expect(parser.bufferedBytes).toBeLessThanOrEqual(maxFramePayloadBytes + MAX_FRAME_HEADER_LENGTH + 64);
          }
          parser.end();
        } catch (error) {
          expect(error).toBeInstanceOf(Http3Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('RequestStreamFrameValidator (RFC 9114 §4.1)', () => {
  function accepts(receiver: 'client' | 'server', types: readonly bigint[]): void {
    const validator = new RequestStreamFrameValidator(receiver);
    for (const type of types) validator.accept(type);
  }
  const { DATA, HEADERS } = FRAME_TYPE;

  it('accepts HEADERS, DATA*, trailing HEADERS, with unknown frames anywhere', () => {
    expect(() => accepts('server', [HEADERS])).not.toThrow();
    expect(() => accepts('server', [0x21n, HEADERS, DATA, 0x40n, DATA, HEADERS, 0x21n])).not.toThrow();
    expect(() => accepts('client', [HEADERS, HEADERS])).not.toThrow();
  });

  it.each([
    ['DATA before HEADERS', [DATA]],
    ['DATA after trailers', [HEADERS, DATA, HEADERS, DATA]],
    ['HEADERS after trailers', [HEADERS, HEADERS, HEADERS]],
  ])('rejects %s as H3_FRAME_UNEXPECTED', (_case, types) => {
    expectConnectionError(() => accepts('client', types), 'H3_FRAME_UNEXPECTED');
  });

  it.each([FRAME_TYPE.SETTINGS, FRAME_TYPE.GOAWAY, FRAME_TYPE.CANCEL_PUSH, FRAME_TYPE.MAX_PUSH_ID, ...HTTP2_ONLY_FRAME_TYPES])(
    'rejects frame type %s as H3_FRAME_UNEXPECTED',
    (type) => {
      expectConnectionError(() => accepts('client', [HEADERS, type]), 'H3_FRAME_UNEXPECTED');
      expectConnectionError(() => accepts('server', [type]), 'H3_FRAME_UNEXPECTED');
    },
  );

  it('rejects PUSH_PROMISE: unexpected at a server, an id error at a client that never allowed push', () => {
    expectConnectionError(() => accepts('server', [HEADERS, FRAME_TYPE.PUSH_PROMISE]), 'H3_FRAME_UNEXPECTED');
    expectConnectionError(() => accepts('client', [HEADERS, FRAME_TYPE.PUSH_PROMISE]), 'H3_ID_ERROR');
  });

  it('lets a client wait for the final response after an interim one', () => {
    const validator = new RequestStreamFrameValidator('client');
    expect(validator.messageComplete).toBe(false);
    validator.accept(HEADERS);
    validator.interimResponseReceived();
    expect(validator.messageComplete).toBe(false);
    expectConnectionError(() => validator.accept(DATA), 'H3_FRAME_UNEXPECTED');

    const final = new RequestStreamFrameValidator('client');
    final.accept(HEADERS);
    final.interimResponseReceived();
    for (const type of [HEADERS, DATA, HEADERS]) final.accept(type);
    expect(final.messageComplete).toBe(true);
    expectConnectionError(() => final.accept(DATA), 'H3_FRAME_UNEXPECTED');
    expect(() => new RequestStreamFrameValidator('server').interimResponseReceived()).toThrow(Error);
  });
});

describe('ControlStreamFrameValidator (RFC 9114 §6.2.1, §7.2)', () => {
  it('requires SETTINGS first, even before an unknown frame', () => {
    for (const first of [FRAME_TYPE.GOAWAY, FRAME_TYPE.DATA, reservedIdentifier(0n), 0x0cn]) {
      expectConnectionError(() => new ControlStreamFrameValidator('client').accept(first), 'H3_MISSING_SETTINGS');
    }
  });

  it('accepts SETTINGS then GOAWAY, CANCEL_PUSH and unknown frames; MAX_PUSH_ID only at a server', () => {
    const client = new ControlStreamFrameValidator('client');
    expect(client.settingsReceived).toBe(false);
    for (const type of [FRAME_TYPE.SETTINGS, FRAME_TYPE.GOAWAY, FRAME_TYPE.CANCEL_PUSH, 0x21n, 0x0cn, FRAME_TYPE.GOAWAY]) client.accept(type);
    expect(client.settingsReceived).toBe(true);
    expectConnectionError(() => client.accept(FRAME_TYPE.MAX_PUSH_ID), 'H3_FRAME_UNEXPECTED');

    const server = new ControlStreamFrameValidator('server');
    server.accept(FRAME_TYPE.SETTINGS);
    expect(() => server.accept(FRAME_TYPE.MAX_PUSH_ID)).not.toThrow();
  });

  it.each([FRAME_TYPE.SETTINGS, FRAME_TYPE.DATA, FRAME_TYPE.HEADERS, FRAME_TYPE.PUSH_PROMISE, ...HTTP2_ONLY_FRAME_TYPES])(
    'rejects frame type %s after SETTINGS as H3_FRAME_UNEXPECTED',
    (type) => {
      const validator = new ControlStreamFrameValidator('server');
      validator.accept(FRAME_TYPE.SETTINGS);
      expectConnectionError(() => validator.accept(type), 'H3_FRAME_UNEXPECTED');
    },
  );
});
