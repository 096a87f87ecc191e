import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  HUFFMAN_EOS,
  HUFFMAN_TABLE,
  QpackError,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from '../../../../src/http3/qpack/index.js';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// RFC 7541 Appendix C.4 (requests) and C.6 (responses): Huffman-coded string literals.
const VECTORS: Array<[string, string]> = [
  ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
  ['no-cache', 'a8eb 1064 9cbf'],
  ['custom-key', '25a8 49e9 5ba9 7d7f'],
  ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ['302', '6402'],
  ['private', 'aec3 771a 4b'],
  ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
  ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
];

// Code lengths for symbols 0..256, transcribed from a second, independent source (the RFC 7541
// Appendix B "len in bits" column as carried by Chromium's quiche huffman_spec_tables.cc).
const LENGTHS_FROM_SECOND_SOURCE = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28,
  28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6,
  12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15,
  5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20,
  22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
  21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26,
  27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

function huffmanError(fn: () => unknown): QpackError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QpackError);
    return err as QpackError;
  }
  throw new Error('expected a QpackError');
}

describe('HPACK Huffman table (RFC 7541 Appendix B)', () => {
  it('has 257 symbols and lengths that match a second source', () => {
    expect(HUFFMAN_TABLE).toHaveLength(257);
    expect(LENGTHS_FROM_SECOND_SOURCE).toHaveLength(257);
    expect(HUFFMAN_TABLE.map(([, bits]) => bits)).toEqual(LENGTHS_FROM_SECOND_SOURCE);
  });

  it('is canonical, so the lengths determine every code', () => {
    const order = [...HUFFMAN_TABLE.keys()].sort((a, b) => HUFFMAN_TABLE[a]![1] - HUFFMAN_TABLE[b]![1] || a - b);
    let code = 0;
    let prevBits = HUFFMAN_TABLE[order[0]!]![1];
    for (const sym of order) {
      const [actual, bits] = HUFFMAN_TABLE[sym]!;
      code *= 2 ** (bits - prevBits);
      prevBits = bits;
      expect([sym, actual]).toEqual([sym, code]);
      code++;
    }
  });

  it('is a complete prefix code (Kraft sum exactly 1) with EOS = 30 ones', () => {
    let kraft = 0n;
    for (const [code, bits] of HUFFMAN_TABLE) {
      expect(code).toBeLessThan(2 ** bits);
      kraft += 1n << BigInt(30 - bits);
    }
    expect(kraft).toBe(1n << 30n);
    expect(HUFFMAN_TABLE[HUFFMAN_EOS]).toEqual([0x3fffffff, 30]);
    expect(HUFFMAN_TABLE[0x30]).toEqual([0x0, 5]); // '0'
    expect(HUFFMAN_TABLE[0x61]).toEqual([0x3, 5]); // 'a'
    expect(HUFFMAN_TABLE[0xff]).toEqual([0x3ffffee, 26]);
  });
});

describe('huffmanEncode / huffmanDecode', () => {
  it.each(VECTORS)('encodes %j as in RFC 7541 Appendix C', (text, coded) => {
    expect(toHex(huffmanEncode(ascii(text)))).toBe(toHex(hex(coded)));
    expect(huffmanEncodedLength(ascii(text))).toBe(hex(coded).length);
  });

  it.each(VECTORS)('decodes %j from RFC 7541 Appendix C', (text, coded) => {
    expect(Buffer.from(huffmanDecode(hex(coded))).toString('latin1')).toBe(text);
  });

  it('handles the empty string', () => {
    expect(huffmanEncode(new Uint8Array(0))).toHaveLength(0);
    expect(huffmanDecode(new Uint8Array(0))).toHaveLength(0);
  });

  it('rejects EOS inside the string', () => {
    // 30 one-bits (EOS) then two zero bits.
    expect(huffmanError(() => huffmanDecode(hex('ffff fffc'))).kind).toBe('huffman');
    // 'a' (00011) then EOS starting mid-octet.
    expect(huffmanError(() => huffmanDecode(hex('1fff ffff ff'))).kind).toBe('huffman');
  });

  it('rejects padding longer than 7 bits', () => {
    expect(huffmanError(() => huffmanDecode(hex('ff'))).kind).toBe('huffman');
    expect(huffmanError(() => huffmanDecode(hex('1fff'))).kind).toBe('huffman'); // 'a' + 11 one-bits
  });

  it('rejects padding that is not all ones', () => {
    expect(huffmanError(() => huffmanDecode(hex('18'))).kind).toBe('huffman'); // 'a' + 000
    expect(huffmanError(() => huffmanDecode(hex('1e'))).kind).toBe('huffman'); // 'a' + 110
    expect(Buffer.from(huffmanDecode(hex('1f'))).toString('latin1')).toBe('a'); // 'a' + 111
  });

  it('stops at maxLength', () => {
    const coded = huffmanEncode(ascii('aaaaaaaaaa'));
    expect(huffmanDecode(coded, 10)).toHaveLength(10);
    expect(huffmanError(() => huffmanDecode(coded, 9)).kind).toBe('field-section-too-large');
  });

  it('round-trips arbitrary octet strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const coded = huffmanEncode(bytes);
        expect(coded.length).toBe(huffmanEncodedLength(bytes));
        expect(Buffer.from(huffmanDecode(coded)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('decodes arbitrary input or throws QpackError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const out = huffmanDecode(bytes);
          // Whatever decodes must re-encode to the same octets: the code has one encoding per string.
          expect(Buffer.from(huffmanEncode(out)).equals(Buffer.from(bytes))).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(QpackError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
