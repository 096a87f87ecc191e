/**
 * QUIC variable-length integers (RFC 9000 §16), the integer encoding every HTTP/3 frame,
 * stream type, setting and error code uses (RFC 9114 §1.2).
 *
 * The two most significant bits of the first byte give the encoded length (1, 2, 4 or 8
 * bytes); the remaining bits, in network byte order, give the value, up to 2^62-1.
 *
 * Values above Number.MAX_SAFE_INTEGER cannot be a `number` without rounding, so the general
 * API uses `bigint`; the `number` fast path throws {@link VarintPrecisionError} instead of
 * ever rounding silently.
 */

/** The largest value a variable-length integer can carry: 2^62-1 (RFC 9000 §16). */
export const MAX_VARINT = (1n << 62n) - 1n;

/** The longest encoding of a variable-length integer, in bytes. */
export const MAX_VARINT_LENGTH = 8;

/** An encoded length: the only four that RFC 9000 §16 allows. */
export type VarintLength = 1 | 2 | 4 | 8;

/** A decoded integer and how many bytes its encoding took. */
export interface DecodedVarint<T extends bigint | number> {
  readonly value: T;
  readonly length: VarintLength;
}

/** A value that cannot be encoded: negative, not an integer, or above 2^62-1. */
export class VarintRangeError extends RangeError {
  override readonly name = 'VarintRangeError';
  constructor(readonly value: bigint | number) {
    super(`${String(value)} cannot be a QUIC variable-length integer (an integer from 0 to 2^62-1)`);
  }
}

/**
 * A value that a `number` cannot hold exactly: above Number.MAX_SAFE_INTEGER (2^53-1).
 * Raised by the `number` fast path instead of rounding; use the `bigint` API for such values.
 */
export class VarintPrecisionError extends RangeError {
  override readonly name = 'VarintPrecisionError';
  constructor(readonly value: bigint | number) {
    super(`${String(value)} is above Number.MAX_SAFE_INTEGER: a number would lose precision, use bigint`);
  }
}

const LIMIT_1_BYTE = 1n << 6n;
const LIMIT_2_BYTES = 1n << 14n;
const LIMIT_4_BYTES = 1n << 30n;

/** Encoded length (RFC 9000 §16, Table 4) from the first byte's two most significant bits. */
export function varintLengthFromFirstByte(firstByte: number): VarintLength {
  switch (firstByte >> 6) {
    case 0:
      return 1;
    case 1:
      return 2;
    case 2:
      return 4;
    default:
      return 8;
  }
}

/**
 * The value as a bigint, checked: an integer from 0 to 2^62-1. A `number` above
 * MAX_SAFE_INTEGER is refused: the caller may already have lost precision.
 */
function checkedBigint(value: bigint | number): bigint {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw new VarintRangeError(value);
    if (value > Number.MAX_SAFE_INTEGER) throw new VarintPrecisionError(value);
    return BigInt(value);
  }
  if (value < 0n || value > MAX_VARINT) throw new VarintRangeError(value);
  return value;
}

/** The shortest encoded length of `value` (RFC 9000 §16). */
export function varintLength(value: bigint | number): VarintLength {
  const checked = checkedBigint(value);
  if (checked < LIMIT_1_BYTE) return 1;
  if (checked < LIMIT_2_BYTES) return 2;
  if (checked < LIMIT_4_BYTES) return 4;
  return 8;
}

/**
 * Writes `value` in its shortest encoding into `target` at `offset` and returns the number of
 * bytes written. Throws a RangeError when `target` is too short.
 */
export function writeVarint(value: bigint | number, target: Uint8Array, offset = 0): VarintLength {
  const checked = checkedBigint(value);
  const length = varintLength(checked);
  if (!Number.isInteger(offset) || offset < 0 || offset + length > target.length) {
    throw new RangeError(`a ${length}-byte varint does not fit at offset ${offset} of ${target.length} bytes`);
  }
  const view = new DataView(target.buffer, target.byteOffset + offset, length);
  switch (length) {
    case 1:
      view.setUint8(0, Number(checked));
      break;
    case 2:
      view.setUint16(0, Number(checked) | 0x4000);
      break;
    case 4:
      view.setUint32(0, (Number(checked) | 0x8000_0000) >>> 0);
      break;
    case 8:
      view.setBigUint64(0, checked | (0b11n << 62n));
      break;
  }
  return length;
}

/** The shortest encoding of `value` (RFC 9000 §16). */
export function encodeVarint(value: bigint | number): Uint8Array {
  const bytes = new Uint8Array(varintLength(value));
  writeVarint(value, bytes);
  return bytes;
}

function checkOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`invalid offset ${offset}`);
}

/**
 * Decodes the variable-length integer at `offset`, or returns `undefined` when `bytes` ends
 * before the encoding does (a streaming parser then waits for more bytes). Non-minimal
 * encodings are accepted, as RFC 9000 §16 allows.
 */
export function decodeVarint(bytes: Uint8Array, offset = 0): DecodedVarint<bigint> | undefined {
  checkOffset(offset);
  const first = bytes[offset];
  if (first === undefined) return undefined;
  const length = varintLengthFromFirstByte(first);
  if (offset + length > bytes.length) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length);
  switch (length) {
    case 1:
      return { value: BigInt(first), length };
    case 2:
      return { value: BigInt(view.getUint16(0) & 0x3fff), length };
    case 4:
      return { value: BigInt(view.getUint32(0) & 0x3fff_ffff), length };
    case 8:
      return { value: view.getBigUint64(0) & MAX_VARINT, length };
  }
}

/**
 * The `number` fast path of {@link decodeVarint}: same contract, but throws
 * {@link VarintPrecisionError} when the value is above Number.MAX_SAFE_INTEGER.
 */
export function decodeVarintNumber(bytes: Uint8Array, offset = 0): DecodedVarint<number> | undefined {
  checkOffset(offset);
  const first = bytes[offset];
  if (first === undefined) return undefined;
  const length = varintLengthFromFirstByte(first);
  if (offset + length > bytes.length) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length);
  switch (length) {
    case 1:
      return { value: first, length };
    case 2:
      return { value: view.getUint16(0) & 0x3fff, length };
    case 4:
      return { value: (view.getUint32(0) & 0x3fff_ffff) >>> 0, length };
    case 8: {
      const high = view.getUint32(0) & 0x3fff_ffff;
      const low = view.getUint32(4);
      // 2^53-1 has 21 bits above the low 32: any higher bit set means the value is unsafe.
      if (high >= 0x20_0000) throw new VarintPrecisionError(view.getBigUint64(0) & MAX_VARINT);
      return { value: high * 0x1_0000_0000 + low, length };
    }
  }
}
