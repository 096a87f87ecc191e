import { QpackError } from './errors.js';

/**
 * The HPACK Huffman code (RFC 7541 Appendix B), which QPACK reuses (RFC 9204 §4.1.2).
 *
 * `[code, bit length]` for symbols 0..255 and EOS (256), codes right-aligned as the RFC prints
 * them. The code is canonical: the lengths alone determine every code (the unit tests check
 * this, that the code is prefix-free and complete, and the RFC 7541 Appendix C.4 vectors).
 */
export const HUFFMAN_TABLE: ReadonlyArray<readonly [code: number, bits: number]> = [
  [0x1ff8, 13], [0x7fffd8, 23], [0xfffffe2, 28], [0xfffffe3, 28], // 0-3
  [0xfffffe4, 28], [0xfffffe5, 28], [0xfffffe6, 28], [0xfffffe7, 28], // 4-7
  [0xfffffe8, 28], [0xffffea, 24], [0x3ffffffc, 30], [0xfffffe9, 28], // 8-11
  [0xfffffea, 28], [0x3ffffffd, 30], [0xfffffeb, 28], [0xfffffec, 28], // 12-15
  [0xfffffed, 28], [0xfffffee, 28], [0xfffffef, 28], [0xffffff0, 28], // 16-19
  [0xffffff1, 28], [0xffffff2, 28], [0x3ffffffe, 30], [0xffffff3, 28], // 20-23
  [0xffffff4, 28], [0xffffff5, 28], [0xffffff6, 28], [0xffffff7, 28], // 24-27
  [0xffffff8, 28], [0xffffff9, 28], [0xffffffa, 28], [0xffffffb, 28], // 28-31
  [0x14, 6], [0x3f8, 10], [0x3f9, 10], [0xffa, 12], // 32-35
  [0x1ff9, 13], [0x15, 6], [0xf8, 8], [0x7fa, 11], // 36-39
  [0x3fa, 10], [0x3fb, 10], [0xf9, 8], [0x7fb, 11], // 40-43
  [0xfa, 8], [0x16, 6], [0x17, 6], [0x18, 6], // 44-47
  [0x0, 5], [0x1, 5], [0x2, 5], [0x19, 6], // 48-51
  [0x1a, 6], [0x1b, 6], [0x1c, 6], [0x1d, 6], // 52-55
  [0x1e, 6], [0x1f, 6], [0x5c, 7], [0xfb, 8], // 56-59
  [0x7ffc, 15], [0x20, 6], [0xffb, 12], [0x3fc, 10], // 60-63
  [0x1ffa, 13], [0x21, 6], [0x5d, 7], [0x5e, 7], // 64-67
  [0x5f, 7], [0x60, 7], [0x61, 7], [0x62, 7], // 68-71
  [0x63, 7], [0x64, 7], [0x65, 7], [0x66, 7], // 72-75
  [0x67, 7], [0x68, 7], [0x69, 7], [0x6a, 7], // 76-79
  [0x6b, 7], [0x6c, 7], [0x6d, 7], [0x6e, 7], // 80-83
  [0x6f, 7], [0x70, 7], [0x71, 7], [0x72, 7], // 84-87
  [0xfc, 8], [0x73, 7], [0xfd, 8], [0x1ffb, 13], // 88-91
  [0x7fff0, 19], [0x1ffc, 13], [0x3ffc, 14], [0x22, 6], // 92-95
  [0x7ffd, 15], [0x3, 5], [0x23, 6], [0x4, 5], // 96-99
  [0x24, 6], [0x5, 5], [0x25, 6], [0x26, 6], // 100-103
  [0x27, 6], [0x6, 5], [0x74, 7], [0x75, 7], // 104-107
  [0x28, 6], [0x29, 6], [0x2a, 6], [0x7, 5], // 108-111
  [0x2b, 6], [0x76, 7], [0x2c, 6], [0x8, 5], // 112-115
  [0x9, 5], [0x2d, 6], [0x77, 7], [0x78, 7], // 116-119
  [0x79, 7], [0x7a, 7], [0x7b, 7], [0x7ffe, 15], // 120-123
  [0x7fc, 11], [0x3ffd, 14], [0x1ffd, 13], [0xffffffc, 28], // 124-127
  [0xfffe6, 20], [0x3fffd2, 22], [0xfffe7, 20], [0xfffe8, 20], // 128-131
  [0x3fffd3, 22], [0x3fffd4, 22], [0x3fffd5, 22], [0x7fffd9, 23], // 132-135
  [0x3fffd6, 22], [0x7fffda, 23], [0x7fffdb, 23], [0x7fffdc, 23], // 136-139
  [0x7fffdd, 23], [0x7fffde, 23], [0xffffeb, 24], [0x7fffdf, 23], // 140-143
  [0xffffec, 24], [0xffffed, 24], [0x3fffd7, 22], [0x7fffe0, 23], // 144-147
  [0xffffee, 24], [0x7fffe1, 23], [0x7fffe2, 23], [0x7fffe3, 23], // 148-151
  [0x7fffe4, 23], [0x1fffdc, 21], [0x3fffd8, 22], [0x7fffe5, 23], // 152-155
  [0x3fffd9, 22], [0x7fffe6, 23], [0x7fffe7, 23], [0xffffef, 24], // 156-159
  [0x3fffda, 22], [0x1fffdd, 21], [0xfffe9, 20], [0x3fffdb, 22], // 160-163
  [0x3fffdc, 22], [0x7fffe8, 23], [0x7fffe9, 23], [0x1fffde, 21], // 164-167
  [0x7fffea, 23], [0x3fffdd, 22], [0x3fffde, 22], [0xfffff0, 24], // 168-171
  [0x1fffdf, 21], [0x3fffdf, 22], [0x7fffeb, 23], [0x7fffec, 23], // 172-175
  [0x1fffe0, 21], [0x1fffe1, 21], [0x3fffe0, 22], [0x1fffe2, 21], // 176-179
  [0x7fffed, 23], [0x3fffe1, 22], [0x7fffee, 23], [0x7fffef, 23], // 180-183
  [0xfffea, 20], [0x3fffe2, 22], [0x3fffe3, 22], [0x3fffe4, 22], // 184-187
  [0x7ffff0, 23], [0x3fffe5, 22], [0x3fffe6, 22], [0x7ffff1, 23], // 188-191
  [0x3ffffe0, 26], [0x3ffffe1, 26], [0xfffeb, 20], [0x7fff1, 19], // 192-195
  [0x3fffe7, 22], [0x7ffff2, 23], [0x3fffe8, 22], [0x1ffffec, 25], // 196-199
  [0x3ffffe2, 26], [0x3ffffe3, 26], [0x3ffffe4, 26], [0x7ffffde, 27], // 200-203
  [0x7ffffdf, 27], [0x3ffffe5, 26], [0xfffff1, 24], [0x1ffffed, 25], // 204-207
  [0x7fff2, 19], [0x1fffe3, 21], [0x3ffffe6, 26], [0x7ffffe0, 27], // 208-211
  [0x7ffffe1, 27], [0x3ffffe7, 26], [0x7ffffe2, 27], [0xfffff2, 24], // 212-215
  [0x1fffe4, 21], [0x1fffe5, 21], [0x3ffffe8, 26], [0x3ffffe9, 26], // 216-219
  [0xffffffd, 28], [0x7ffffe3, 27], [0x7ffffe4, 27], [0x7ffffe5, 27], // 220-223
  [0xfffec, 20], [0xfffff3, 24], [0xfffed, 20], [0x1fffe6, 21], // 224-227
  [0x3fffe9, 22], [0x1fffe7, 21], [0x1fffe8, 21], [0x7ffff3, 23], // 228-231
  [0x3fffea, 22], [0x3fffeb, 22], [0x1ffffee, 25], [0x1ffffef, 25], // 232-235
  [0xfffff4, 24], [0xfffff5, 24], [0x3ffffea, 26], [0x7ffff4, 23], // 236-239
  [0x3ffffeb, 26], [0x7ffffe6, 27], [0x3ffffec, 26], [0x3ffffed, 26], // 240-243
  [0x7ffffe7, 27], [0x7ffffe8, 27], [0x7ffffe9, 27], [0x7ffffea, 27], // 244-247
  [0x7ffffeb, 27], [0xffffffe, 28], [0x7ffffec, 27], [0x7ffffed, 27], // 248-251
  [0x7ffffee, 27], [0x7ffffef, 27], [0x7fffff0, 27], [0x3ffffee, 26], // 252-255
  [0x3fffffff, 30], // 256
];

/** The End-Of-String symbol: 30 one-bits, never valid inside a string (RFC 7541 §5.2). */
export const HUFFMAN_EOS = 256;

const CODES = new Uint32Array(257);
const LENGTHS = new Uint8Array(257);
for (let sym = 0; sym < 257; sym++) {
  const entry = HUFFMAN_TABLE[sym];
  if (entry === undefined) throw new Error('HPACK Huffman table is incomplete');
  CODES[sym] = entry[0];
  LENGTHS[sym] = entry[1];
}

// Decoding tree as flat arrays. Node 0 is the root; a child value ≥ 0 is a node index, a value
// < 0 is a leaf holding symbol -(value + 1). 257 leaves need 256 internal nodes.
const NODES = 256;
const CHILD0 = new Int32Array(NODES);
const CHILD1 = new Int32Array(NODES);
{
  let used = 1;
  for (let sym = 0; sym < 257; sym++) {
    const code = CODES[sym]!;
    const len = LENGTHS[sym]!;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const children = ((code >>> bit) & 1) === 0 ? CHILD0 : CHILD1;
      const current = children[node]!;
      if (bit === 0) {
        if (current !== 0) throw new Error(`HPACK Huffman table is not prefix-free at symbol ${sym}`);
        children[node] = -(sym + 1);
      } else if (current === 0) {
        if (used >= NODES) throw new Error('HPACK Huffman table has too many nodes');
        children[node] = used;
        node = used++;
      } else if (current < 0) {
        throw new Error(`HPACK Huffman table is not prefix-free at symbol ${sym}`);
      } else {
        node = current;
      }
    }
  }
  for (let n = 0; n < used; n++) {
    if (CHILD0[n] === 0 || CHILD1[n] === 0) throw new Error('HPACK Huffman table is not complete');
  }
}

/** Octets the Huffman encoding of `bytes` takes (bits rounded up to whole octets). */
export function huffmanEncodedLength(bytes: Uint8Array): number {
  let bits = 0;
  for (const b of bytes) bits += LENGTHS[b]!;
  return Math.ceil(bits / 8);
}

/** Huffman-encodes `bytes`, padding the last octet with the high bits of EOS (ones). */
export function huffmanEncode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(bytes));
  let pos = 0;
  // Pending bits, right-aligned; at most 7 + 30 = 37 of them, exact in a double.
  let acc = 0;
  let accBits = 0;
  for (const b of bytes) {
    const len = LENGTHS[b]!;
    acc = acc * 2 ** len + CODES[b]!;
    accBits += len;
    while (accBits >= 8) {
      accBits -= 8;
      const scale = 2 ** accBits;
      const octet = Math.floor(acc / scale);
      out[pos++] = octet;
      acc -= octet * scale;
    }
  }
  if (accBits > 0) {
    const pad = 8 - accBits;
    out[pos] = acc * 2 ** pad + (2 ** pad - 1);
  }
  return out;
}

/**
 * Decodes a Huffman-encoded string. Throws QpackError `huffman` if the data contains EOS, ends
 * with more than 7 bits of padding, or with padding that is not a prefix of EOS (all ones).
 * Throws QpackError `field-section-too-large` as soon as the output would exceed `maxLength`.
 */
export function huffmanDecode(encoded: Uint8Array, maxLength: number = Number.MAX_SAFE_INTEGER): Uint8Array {
  // Shortest code is 5 bits, so the output is at most 8/5 of the input.
  const out = new Uint8Array(Math.min(Math.floor((encoded.length * 8) / 5), maxLength + 1));
  let length = 0;
  let node = 0;
  let pendingBits = 0; // bits read since the last complete symbol
  let pendingAllOnes = true;
  for (const octet of encoded) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = ((octet >>> bit) & 1) === 1;
      const next = one ? CHILD1[node]! : CHILD0[node]!;
      pendingBits++;
      pendingAllOnes &&= one;
      if (next >= 0) {
        node = next;
        continue;
      }
      const sym = -(next + 1);
      if (sym === HUFFMAN_EOS) throw new QpackError('huffman', 'Huffman string contains EOS');
      if (length >= maxLength) {
        throw new QpackError('field-section-too-large', `Huffman string decodes to more than ${maxLength} octets`);
      }
      out[length++] = sym;
      node = 0;
      pendingBits = 0;
      pendingAllOnes = true;
    }
  }
  if (pendingBits > 7) throw new QpackError('huffman', `Huffman padding is ${pendingBits} bits, more than 7`);
  if (!pendingAllOnes) throw new QpackError('huffman', 'Huffman padding is not a prefix of EOS');
  return out.subarray(0, length);
}
