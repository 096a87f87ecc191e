import { describe, expect, it } from '@jest/globals';
import { Http3Error, QPACK_ERROR_CODES } from '../../../../src/http3/error-codes.js';
import { NoInsertDecoderStreamReader, ZeroCapacityEncoderStreamReader } from '../../../../src/http3/qpack/instruction-streams.js';

function errorOf(run: () => void): Http3Error {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(Http3Error);
    return error as Http3Error;
  }
  throw new Error('expected an Http3Error');
}

describe('the peer QPACK encoder stream with our capacity 0 (RFC 9204 §4.3)', () => {
  it('accepts any number of Set Dynamic Table Capacity 0 instructions, in any chunking', () => {
    const reader = new ZeroCapacityEncoderStreamReader();
    reader.push(Uint8Array.of(0x20));
    reader.push(new Uint8Array(100_000).fill(0x20));
    reader.push(new Uint8Array(0));
  });

  it.each([
    ['Set Dynamic Table Capacity 1', [0x21], 'Set Dynamic Table Capacity above 0'],
    ['Set Dynamic Table Capacity 4096', [0x3f, 0xe1, 0x1f], 'Set Dynamic Table Capacity above 0'],
    ['Insert With Name Reference (static 17)', [0xd1, 0x01, 0x61], 'Insert With Name Reference'],
    ['Insert With Literal Name', [0x41, 0x61, 0x01, 0x62], 'Insert With Literal Name'],
    ['Duplicate 0', [0x00], 'Duplicate'],
  ])('%s is a connection error QPACK_ENCODER_STREAM_ERROR', (_name, bytes, named) => {
    const reader = new ZeroCapacityEncoderStreamReader();
    reader.push(Uint8Array.of(0x20));
    const error = errorOf(() => reader.push(Uint8Array.from(bytes)));
    expect({ code: error.code, scope: error.scope, codeName: error.codeName }).toEqual({ code: QPACK_ERROR_CODES.QPACK_ENCODER_STREAM_ERROR, scope: 'connection', codeName: 'QPACK_ENCODER_STREAM_ERROR' });
    expect(error.message).toContain(named);
  });
});

describe('the peer QPACK decoder stream when our encoder never inserts (RFC 9204 §4.4)', () => {
  it('accepts Stream Cancellations, with one-byte and multi-byte stream ids split across chunks', () => {
    const reader = new NoInsertDecoderStreamReader();
    reader.push(Uint8Array.of(0x40, 0x44)); // streams 0 and 4
    reader.push(Uint8Array.of(0x7f)); // stream id ≥ 63 ...
    reader.push(Uint8Array.of(0x81)); // ... continues ...
    reader.push(Uint8Array.of(0x01, 0x48)); // ... ends (63 + 1 + 128 = 192), then stream 8
    for (let i = 0; i < 10_000; i++) reader.push(Uint8Array.of(0x7f, 0xc1, 0x07));
  });

  it('a Section Acknowledgment is QPACK_DECODER_STREAM_ERROR (no section of ours referenced the dynamic table)', () => {
    const error = errorOf(() => new NoInsertDecoderStreamReader().push(Uint8Array.of(0x84)));
    expect(error.code).toBe(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR);
    expect(error.message).toContain('Section Acknowledgment');
  });

  it.each([[0x00], [0x01]])('an Insert Count Increment (0x%s) is QPACK_DECODER_STREAM_ERROR: we inserted nothing', (byte) => {
    const error = errorOf(() => new NoInsertDecoderStreamReader().push(Uint8Array.of(0x40, byte)));
    expect(error.code).toBe(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR);
    expect(error.message).toContain('Insert Count Increment');
  });

  it('an endless Stream Cancellation stream id is refused after 62 bits, not buffered', () => {
    const reader = new NoInsertDecoderStreamReader();
    const error = errorOf(() => reader.push(Uint8Array.from([0x7f, ...new Array<number>(20).fill(0xff)])));
    expect(error.code).toBe(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR);
  });

  it('takes a 62-bit Stream Cancellation stream id (8 continuation bytes) and refuses a 9th', () => {
    const largest = Uint8Array.from([0x7f, ...new Array<number>(7).fill(0xff), 0x7f]); // 6 + 8 × 7 = 62 bits
    expect(() => new NoInsertDecoderStreamReader().push(largest)).not.toThrow();
    const longer = Uint8Array.from([0x7f, ...new Array<number>(8).fill(0xff), 0x01]);
    expect(errorOf(() => new NoInsertDecoderStreamReader().push(longer)).code).toBe(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR);
  });
});
