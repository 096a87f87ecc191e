import { QpackError } from './errors.js';
import { huffmanDecode } from './huffman.js';
import { decodePrefixedInteger } from './prefixed-integer.js';
import { staticEntry } from './static-table.js';

/** Default limit on the decoded field section size (RFC 9114 §4.2.2 accounting). */
export const DEFAULT_MAX_FIELD_SECTION_SIZE = 64 * 1024;

/** RFC 9114 §4.2.2: each field counts its name and value lengths plus 32 octets. */
export const FIELD_OVERHEAD = 32;

export interface QpackDecodeOptions {
  /**
   * Largest decoded field section to accept (the value we advertise as
   * SETTINGS_MAX_FIELD_SECTION_SIZE). A bigint (a 62-bit settings varint) is clamped to
   * Number.MAX_SAFE_INTEGER. Default {@link DEFAULT_MAX_FIELD_SECTION_SIZE}.
   */
  readonly maxFieldSectionSize?: number | bigint;
}

export interface DecodedFieldSection {
  /** Field lines in order, `[name, value]`, one character per octet (ISO-8859-1). */
  readonly headers: Array<[name: string, value: string]>;
  /** Per line, the N ("never index") bit of a literal; false for indexed lines. */
  readonly neverIndexed: boolean[];
  /** RFC 9114 §4.2.2 size: Σ (name length + value length + 32). */
  readonly size: number;
}

/**
 * The most octets an encoded field section can take when its decoded size (RFC 9114 §4.2.2)
 * is within `maxFieldSectionSize`: Huffman codes are at most 30 bits an octet and every line's
 * prefixes take fewer octets than its 32-octet overhead, so 4 × the limit (plus the section
 * prefix) bounds it. A HEADERS frame declaring more can be refused before its payload arrives.
 */
export function maxEncodedFieldSectionSize(maxFieldSectionSize: number | bigint | undefined): number {
  const limit = limitOf(maxFieldSectionSize);
  return limit > (Number.MAX_SAFE_INTEGER - 16) / 4 ? Number.MAX_SAFE_INTEGER : limit * 4 + 16;
}

function limitOf(max: number | bigint | undefined): number {
  if (max === undefined) return DEFAULT_MAX_FIELD_SECTION_SIZE;
  if (typeof max === 'bigint') {
    if (max < 0n) throw new RangeError('maxFieldSectionSize must not be negative');
    return max > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(max);
  }
  if (Number.isNaN(max) || max < 0) throw new RangeError('maxFieldSectionSize must not be negative');
  return Math.min(Math.floor(max), Number.MAX_SAFE_INTEGER);
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Decodes a field section sent to a decoder whose dynamic table capacity is 0 (we advertise
 * SETTINGS_QPACK_MAX_TABLE_CAPACITY 0). Accepts indexed static lines, literals with a static
 * name reference, literals with a literal name, Huffman or raw strings, either N bit.
 *
 * Throws QpackError (code 0x200, QPACK_DECOMPRESSION_FAILED) for a reference to the dynamic
 * table, an invalid Base, a static index above 98, truncated input, oversized integers, bad
 * Huffman data, and (kind `field-section-too-large`) a section larger than the limit. It does
 * not judge HTTP semantics (uppercase names, pseudo-header order): that is the caller's job.
 */
export function decodeFieldSection(bytes: Uint8Array, options: QpackDecodeOptions = {}): DecodedFieldSection {
  const max = limitOf(options.maxFieldSectionSize);
  const headers: Array<[string, string]> = [];
  const neverIndexed: boolean[] = [];
  let size = 0;

  // RFC 9204 §4.5.1: Required Insert Count (8-bit prefix), Sign bit + Delta Base (7-bit prefix).
  const ric = decodePrefixedInteger(bytes, 0, 8);
  if (ric.value !== 0) {
    throw new QpackError('dynamic-table-reference', `Required Insert Count ${ric.value} with a zero-capacity dynamic table`);
  }
  const signOctet = bytes[ric.next];
  if (signOctet === undefined) throw new QpackError('truncated', 'input ends inside the field section prefix');
  // §4.5.1.2: a Sign bit of 1 is invalid when Required Insert Count (here 0) ≤ Delta Base (≥ 0).
  if ((signOctet & 0x80) !== 0) throw new QpackError('invalid-base', 'Sign bit of 1 with Required Insert Count 0');
  // With no dynamic references, any Base is allowed; the Delta Base is read and ignored.
  let pos = decodePrefixedInteger(bytes, ric.next, 7).next;

  const account = (octets: number): void => {
    size += octets;
    if (size > max) throw new QpackError('field-section-too-large', `field section exceeds ${max} octets`);
  };

  /** Reads a string literal whose H bit sits just above a `prefixBits` length prefix. */
  const readString = (prefixBits: number): string => {
    const first = bytes[pos]!; // callers have just checked that this octet exists
    const huffman = (first & (1 << prefixBits)) !== 0;
    const length = decodePrefixedInteger(bytes, pos, prefixBits);
    pos = length.next;
    if (length.value > bytes.length - pos) {
      throw new QpackError('truncated', `string of ${length.value} octets but ${bytes.length - pos} remain`);
    }
    const raw = bytes.subarray(pos, pos + length.value);
    pos += length.value;
    if (!huffman) {
      account(raw.length);
      return latin1(raw);
    }
    const decoded = huffmanDecode(raw, max - size);
    account(decoded.length);
    return latin1(decoded);
  };

  const needOctet = (what: string): void => {
    if (pos >= bytes.length) throw new QpackError('truncated', `input ends before ${what}`);
  };

  const staticAt = (index: number): readonly [string, string] => {
    const entry = staticEntry(index);
    if (entry === undefined) throw new QpackError('static-index-out-of-range', `static index ${index} is not in 0..98`);
    return entry;
  };

  while (pos < bytes.length) {
    const first = bytes[pos]!;
    account(FIELD_OVERHEAD);
    if ((first & 0x80) !== 0) {
      // §4.5.2 Indexed Field Line: 1 T index(6+).
      if ((first & 0x40) === 0) throw new QpackError('dynamic-table-reference', 'indexed field line refers to the dynamic table');
      const index = decodePrefixedInteger(bytes, pos, 6);
      pos = index.next;
      const [name, value] = staticAt(index.value);
      account(name.length + value.length);
      headers.push([name, value]);
      neverIndexed.push(false);
    } else if ((first & 0x40) !== 0) {
      // §4.5.4 Literal Field Line with Name Reference: 0 1 N T index(4+), value.
      if ((first & 0x10) === 0) throw new QpackError('dynamic-table-reference', 'literal field line refers to a dynamic name');
      const index = decodePrefixedInteger(bytes, pos, 4);
      pos = index.next;
      const [name] = staticAt(index.value);
      account(name.length);
      needOctet('a field value');
      const value = readString(7);
      headers.push([name, value]);
      neverIndexed.push((first & 0x20) !== 0);
    } else if ((first & 0x20) !== 0) {
      // §4.5.6 Literal Field Line with Literal Name: 0 0 1 N H namelen(3+), name, value.
      const name = readString(3);
      needOctet('a field value');
      const value = readString(7);
      headers.push([name, value]);
      neverIndexed.push((first & 0x10) !== 0);
    } else {
      // §4.5.3 (0001) and §4.5.5 (0000): post-base references exist only in the dynamic table.
      throw new QpackError('dynamic-table-reference', 'post-base reference with a zero-capacity dynamic table');
    }
  }
  return { headers, neverIndexed, size };
}
