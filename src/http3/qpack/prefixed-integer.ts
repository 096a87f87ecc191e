import { QpackError } from './errors.js';

/**
 * RFC 7541 §5.1 prefixed integers, as used by QPACK (RFC 9204 §4.1.1). Not QUIC varints.
 *
 * Values are JS numbers; decoding refuses anything above `maxValue` (at most
 * Number.MAX_SAFE_INTEGER), so no precision is ever lost, and refuses encodings with more
 * continuation octets than a safe integer needs, so a run of 0x80 octets cannot make it loop.
 */

/** Continuation octets a value up to 2^53 - 1 can need (7 bits each, 8 × 7 = 56 ≥ 53). */
const MAX_CONTINUATION_OCTETS = 8;

export interface DecodedInteger {
  readonly value: number;
  /** Offset of the first octet after the integer. */
  readonly next: number;
}

function checkPrefix(prefixBits: number): void {
  if (!Number.isInteger(prefixBits) || prefixBits < 1 || prefixBits > 8) {
    throw new RangeError(`prefix must be 1..8 bits, got ${prefixBits}`);
  }
}

/**
 * Decodes an integer whose prefix occupies the low `prefixBits` bits of `bytes[offset]` (the
 * high bits belong to the caller). Throws QpackError `truncated` or `integer-overflow`.
 */
export function decodePrefixedInteger(
  bytes: Uint8Array,
  offset: number,
  prefixBits: number,
  maxValue: number = Number.MAX_SAFE_INTEGER,
): DecodedInteger {
  checkPrefix(prefixBits);
  const limit = Math.min(maxValue, Number.MAX_SAFE_INTEGER);
  const first = bytes[offset];
  if (first === undefined) throw new QpackError('truncated', 'input ends before an integer');
  const prefixMax = (1 << prefixBits) - 1;
  let value = first & prefixMax;
  let pos = offset + 1;
  if (value < prefixMax) {
    if (value > limit) throw new QpackError('integer-overflow', `integer ${value} exceeds ${limit}`);
    return { value, next: pos };
  }
  let scale = 1;
  for (let i = 0; i < MAX_CONTINUATION_OCTETS; i++) {
    const b = bytes[pos];
    if (b === undefined) throw new QpackError('truncated', 'input ends inside an integer');
    pos++;
    value += (b & 0x7f) * scale;
    // Once the true value is past 2^53 the float sum is ≥ 2^53 too, so this catches it.
    if (value > limit) throw new QpackError('integer-overflow', `integer exceeds ${limit}`);
    if ((b & 0x80) === 0) return { value, next: pos };
    scale *= 128;
  }
  throw new QpackError('integer-overflow', 'integer encoding is too long');
}

/**
 * Appends the encoding of `value` to `out`; `flags` are the bits above the prefix in the first
 * octet (they must not overlap the prefix). Throws RangeError for a value that is not a
 * non-negative safe integer.
 */
export function encodePrefixedInteger(out: number[], value: number, prefixBits: number, flags = 0): void {
  checkPrefix(prefixBits);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`cannot encode ${value} as a prefixed integer`);
  }
  const prefixMax = (1 << prefixBits) - 1;
  if ((flags & prefixMax) !== 0 || flags < 0 || flags > 0xff) {
    throw new RangeError(`flags 0x${flags.toString(16)} overlap a ${prefixBits}-bit prefix`);
  }
  if (value < prefixMax) {
    out.push(flags | value);
    return;
  }
  out.push(flags | prefixMax);
  let rest = value - prefixMax;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}
