import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  decodeVarint,
  decodeVarintNumber,
  encodeVarint,
  MAX_VARINT,
  varintLength,
  varintLengthFromFirstByte,
  VarintPrecisionError,
  VarintRangeError,
  writeVarint,
} from '../../../src/http3/varint.js';

function hex(value: string): Uint8Array {
  return Uint8Array.from(Buffer.from(value, 'hex'));
}

describe('RFC 9000 Appendix A.1 sample variable-length integers', () => {
  it.each([
    ['c2197c5eff14e88c', 151288809941952652n],
    ['9d7f3e7d', 494878333n],
    ['7bbd', 15293n],
    ['25', 37n],
  ])('decodes and encodes %s as %s', (bytes, value) => {
    expect(decodeVarint(hex(bytes))).toEqual({ value, length: bytes.length / 2 });
    expect(Buffer.from(encodeVarint(value)).toString('hex')).toBe(bytes);
  });

  it('decodes the non-minimal two-byte 0x4025 as 37 (RFC 9000 §16 allows it)', () => {
    expect(decodeVarint(hex('4025'))).toEqual({ value: 37n, length: 2 });
    expect(decodeVarintNumber(hex('4025'))).toEqual({ value: 37, length: 2 });
  });

  it('gives the number fast path the same values where they are safe', () => {
    expect(decodeVarintNumber(hex('9d7f3e7d'))).toEqual({ value: 494878333, length: 4 });
    expect(decodeVarintNumber(hex('7bbd'))).toEqual({ value: 15293, length: 2 });
    expect(() => decodeVarintNumber(hex('c2197c5eff14e88c'))).toThrow(VarintPrecisionError);
  });
});

describe('encoded length boundaries', () => {
  it.each([
    [0n, 1, '00'],
    [63n, 1, '3f'],
    [64n, 2, '4040'],
    [16383n, 2, '7fff'],
    [16384n, 4, '80004000'],
    [(1n << 30n) - 1n, 4, 'bfffffff'],
    [1n << 30n, 8, 'c000000040000000'],
    [MAX_VARINT, 8, 'ffffffffffffffff'],
  ])('encodes %s in %s bytes', (value, length, bytes) => {
    expect(varintLength(value)).toBe(length);
    expect(Buffer.from(encodeVarint(value)).toString('hex')).toBe(bytes);
    expect(decodeVarint(hex(bytes))).toEqual({ value, length });
    if (value <= BigInt(Number.MAX_SAFE_INTEGER)) {
      expect(Buffer.from(encodeVarint(Number(value))).toString('hex')).toBe(bytes);
      expect(decodeVarintNumber(hex(bytes))).toEqual({ value: Number(value), length });
    }
  });

  it('rejects 2^62, negative values and non-integers', () => {
    expect(() => encodeVarint(1n << 62n)).toThrow(VarintRangeError);
    expect(() => varintLength(MAX_VARINT + 1n)).toThrow(VarintRangeError);
    expect(() => encodeVarint(-1n)).toThrow(VarintRangeError);
    expect(() => encodeVarint(-1)).toThrow(VarintRangeError);
    expect(() => encodeVarint(1.5)).toThrow(VarintRangeError);
    expect(() => encodeVarint(Number.NaN)).toThrow(VarintRangeError);
    expect(() => encodeVarint(Number.POSITIVE_INFINITY)).toThrow(VarintRangeError);
    expect(new VarintRangeError(-1)).toBeInstanceOf(RangeError);
  });

  it('never takes an unsafe number: it might already be rounded', () => {
    expect(() => encodeVarint(Number.MAX_SAFE_INTEGER + 1)).toThrow(VarintPrecisionError);
    expect(() => encodeVarint(2 ** 60)).toThrow(VarintPrecisionError);
    expect(Buffer.from(encodeVarint(Number.MAX_SAFE_INTEGER)).toString('hex')).toBe('c01fffffffffffff');
  });

  it('decodes MAX_SAFE_INTEGER as a number and MAX_SAFE_INTEGER + 1 only as a bigint', () => {
    expect(decodeVarintNumber(hex('c01fffffffffffff'))).toEqual({ value: Number.MAX_SAFE_INTEGER, length: 8 });
    const unsafe = hex('c020000000000000');
    expect(decodeVarint(unsafe)).toEqual({ value: 1n << 53n, length: 8 });
    expect(() => decodeVarintNumber(unsafe)).toThrow(VarintPrecisionError);
    try {
      decodeVarintNumber(unsafe);
    } catch (error) {
      expect(error).toBeInstanceOf(RangeError);
      expect((error as VarintPrecisionError).value).toBe(1n << 53n);
    }
  });

  it('reads the length from the two most significant bits of the first byte', () => {
    expect([0x00, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff].map(varintLengthFromFirstByte)).toEqual([1, 1, 2, 2, 4, 4, 8, 8]);
  });
});

describe('streaming decode', () => {
  it('returns undefined for every strict prefix of an encoding, and at or past the end', () => {
    for (const bytes of [hex('7bbd'), hex('9d7f3e7d'), hex('c2197c5eff14e88c')]) {
      for (let length = 0; length < bytes.length; length++) {
        expect(decodeVarint(bytes.subarray(0, length))).toBeUndefined();
        expect(decodeVarintNumber(bytes.subarray(0, length))).toBeUndefined();
      }
      expect(decodeVarint(bytes, bytes.length)).toBeUndefined();
      expect(decodeVarint(bytes, bytes.length + 5)).toBeUndefined();
    }
  });

  it('decodes at an offset inside a view that does not start its buffer', () => {
    const backing = hex('ffff257bbd9d7f3e7dc2197c5eff14e88cff');
    const view = backing.subarray(2, 17);
    expect(decodeVarint(view, 0)).toEqual({ value: 37n, length: 1 });
    expect(decodeVarint(view, 1)).toEqual({ value: 15293n, length: 2 });
    expect(decodeVarint(view, 3)).toEqual({ value: 494878333n, length: 4 });
    expect(decodeVarint(view, 7)).toEqual({ value: 151288809941952652n, length: 8 });
    expect(decodeVarint(view.subarray(0, 14), 7)).toBeUndefined();
  });

  it('rejects a negative or fractional offset', () => {
    expect(() => decodeVarint(hex('25'), -1)).toThrow(RangeError);
    expect(() => decodeVarintNumber(hex('25'), 0.5)).toThrow(RangeError);
  });

  it('writes at an offset and refuses a target that is too short', () => {
    const target = new Uint8Array(6);
    expect(writeVarint(15293n, target, 1)).toBe(2);
    expect(writeVarint(37, target, 3)).toBe(1);
    expect(Buffer.from(target).toString('hex')).toBe('007bbd250000');
    expect(() => writeVarint(494878333n, target, 3)).toThrow(RangeError);
    expect(() => writeVarint(1n, target, -1)).toThrow(RangeError);
  });
});

describe('varint properties', () => {
  it('round trips every bigint from 0 to 2^62-1 in its shortest length', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_VARINT }), (value) => {
        const bytes = encodeVarint(value);
        expect(bytes.length).toBe(varintLength(value));
        expect(decodeVarint(bytes)).toEqual({ value, length: bytes.length });
        const shorter = [1, 2, 4].filter((length) => length < bytes.length);
        for (const length of shorter) expect(value >= 1n << BigInt(8 * length - 2)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('round trips every safe number through the number fast path', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (value) => {
        const bytes = encodeVarint(value);
        expect(bytes).toEqual(encodeVarint(BigInt(value)));
        expect(decodeVarintNumber(bytes)).toEqual({ value, length: bytes.length });
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes any bytes the same way through both APIs, or refuses to round', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 12 }), fc.nat({ max: 12 }), (bytes, offset) => {
        const asBigint = decodeVarint(bytes, offset);
        if (asBigint === undefined) {
          expect(decodeVarintNumber(bytes, offset)).toBeUndefined();
        } else if (asBigint.value > BigInt(Number.MAX_SAFE_INTEGER)) {
          expect(() => decodeVarintNumber(bytes, offset)).toThrow(VarintPrecisionError);
        } else {
          expect(decodeVarintNumber(bytes, offset)).toEqual({ value: Number(asBigint.value), length: asBigint.length });
        }
      }),
      { numRuns: 2000 },
    );
  });
});
