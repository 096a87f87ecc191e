import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { QpackError, decodePrefixedInteger, encodePrefixedInteger } from '../../../../src/http3/qpack/index.js';

const encode = (value: number, prefix: number, flags = 0): number[] => {
  const out: number[] = [];
  encodePrefixedInteger(out, value, prefix, flags);
  return out;
};

function kindOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QpackError);
    return (err as QpackError).kind;
  }
  throw new Error('expected a QpackError');
}

describe('prefixed integers (RFC 7541 §5.1)', () => {
  it('matches RFC 7541 Appendix C.1', () => {
    expect(encode(10, 5)).toEqual([0x0a]);
    expect(encode(1337, 5)).toEqual([0x1f, 0x9a, 0x0a]);
    expect(encode(42, 8)).toEqual([0x2a]);
    expect(decodePrefixedInteger(Uint8Array.from([0xea]), 0, 5)).toEqual({ value: 10, next: 1 });
    expect(decodePrefixedInteger(Uint8Array.from([0xff, 0x9a, 0x0a, 0x99]), 0, 5)).toEqual({ value: 1337, next: 3 });
  });

  it('handles the prefix boundary and keeps the flag bits', () => {
    expect(encode(30, 5, 0xe0)).toEqual([0xfe]);
    expect(encode(31, 5, 0xe0)).toEqual([0xff, 0x00]);
    expect(encode(63 + 36, 6, 0xc0)).toEqual([0xff, 0x24]);
    expect(decodePrefixedInteger(Uint8Array.from([0xff, 0x00]), 0, 5).value).toBe(31);
    expect(decodePrefixedInteger(Uint8Array.from([0x00, 0xfe]), 1, 8)).toEqual({ value: 254, next: 2 });
    expect(decodePrefixedInteger(Uint8Array.from([0x00, 0xff, 0x00]), 1, 8)).toEqual({ value: 255, next: 3 });
  });

  it('refuses what the encoder cannot represent', () => {
    expect(() => encode(-1, 5)).toThrow(RangeError);
    expect(() => encode(1.5, 5)).toThrow(RangeError);
    expect(() => encode(2 ** 53, 5)).toThrow(RangeError);
    expect(() => encode(1, 5, 0x10)).toThrow(RangeError);
    expect(() => encode(1, 9)).toThrow(RangeError);
  });

  it('rejects truncated input', () => {
    expect(kindOf(() => decodePrefixedInteger(new Uint8Array(0), 0, 5))).toBe('truncated');
    expect(kindOf(() => decodePrefixedInteger(Uint8Array.from([0x1f]), 0, 5))).toBe('truncated');
    expect(kindOf(() => decodePrefixedInteger(Uint8Array.from([0x1f, 0x80, 0x80]), 0, 5))).toBe('truncated');
  });

  it('rejects values above the limit and over-long encodings without losing precision', () => {
    expect(kindOf(() => decodePrefixedInteger(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), 0, 8))).toBe(
      'integer-overflow',
    );
    // 2^62 - 1 style values (QUIC-sized) are refused rather than rounded.
    const huge = encodeBig(2n ** 62n - 1n, 8);
    expect(kindOf(() => decodePrefixedInteger(huge, 0, 8))).toBe('integer-overflow');
    // Zero-valued continuation octets cannot go on forever.
    const padded = Uint8Array.from([0x1f, ...new Array<number>(20).fill(0x80), 0x00]);
    expect(kindOf(() => decodePrefixedInteger(padded, 0, 5))).toBe('integer-overflow');
    expect(kindOf(() => decodePrefixedInteger(Uint8Array.from(encode(1000, 5)), 0, 5, 999))).toBe('integer-overflow');
    expect(decodePrefixedInteger(Uint8Array.from(encode(1000, 5)), 0, 5, 1000).value).toBe(1000);
    expect(kindOf(() => decodePrefixedInteger(Uint8Array.from([20]), 0, 5, 19))).toBe('integer-overflow');
  });

  it('decodes the largest safe integer exactly', () => {
    const max = Number.MAX_SAFE_INTEGER;
    for (let prefix = 1; prefix <= 8; prefix++) {
      expect(decodePrefixedInteger(Uint8Array.from(encode(max, prefix)), 0, prefix).value).toBe(max);
      expect(kindOf(() => decodePrefixedInteger(encodeBig(BigInt(max) + 1n, prefix), 0, prefix))).toBe('integer-overflow');
    }
  });

  it('round-trips every safe integer and prefix', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 1, max: 8 }), (value, prefix) => {
        const flags = prefix === 8 ? 0 : (0xff << prefix) & 0xff;
        const bytes = Uint8Array.from(encode(value, prefix, flags));
        expect(decodePrefixedInteger(bytes, 0, prefix)).toEqual({ value, next: bytes.length });
      }),
      { numRuns: 1000 },
    );
  });
});

/** Reference encoder with BigInt, for values a number cannot hold. */
function encodeBig(value: bigint, prefix: number): Uint8Array {
  const max = (1n << BigInt(prefix)) - 1n;
  if (value < max) return Uint8Array.from([Number(value)]);
  const out = [Number(max)];
  let rest = value - max;
  while (rest >= 128n) {
    out.push(Number(rest % 128n) | 0x80);
    rest /= 128n;
  }
  out.push(Number(rest));
  return Uint8Array.from(out);
}
