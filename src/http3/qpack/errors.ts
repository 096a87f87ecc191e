/** RFC 9204 §6: the decoder failed to interpret an encoded field section. */
export const QPACK_DECOMPRESSION_FAILED = 0x200;

/** What went wrong, for logs and tests; every kind is reported on the wire as {@link QpackError.code}. */
export type QpackErrorKind =
  /** The input ended inside an integer, a string literal or a field line. */
  | 'truncated'
  /** A prefixed integer exceeds the limit we accept, or is encoded with too many octets. */
  | 'integer-overflow'
  /** Invalid Huffman data: EOS inside the string, padding longer than 7 bits or not all ones. */
  | 'huffman'
  /** A reference to the dynamic table (Required Insert Count ≠ 0, dynamic or post-base index). */
  | 'dynamic-table-reference'
  /** A Sign bit of 1 in the field section prefix (Base would be negative, RFC 9204 §4.5.1.2). */
  | 'invalid-base'
  /** A static table index outside 0..98. */
  | 'static-index-out-of-range'
  /** The decoded field section exceeds the configured maximum (RFC 9114 §4.2.2 size). */
  | 'field-section-too-large';

/**
 * A field section that cannot be decoded. `code` is QPACK_DECOMPRESSION_FAILED (0x200) for every
 * kind. A caller may answer `field-section-too-large` differently (RFC 9114 §4.2.2 lets it refuse
 * the message, e.g. with H3_EXCESSIVE_LOAD or a 431, rather than close the connection).
 */
export class QpackError extends Error {
  override readonly name = 'QpackError';
  readonly code: number;
  readonly kind: QpackErrorKind;

  constructor(kind: QpackErrorKind, message: string) {
    super(message);
    this.kind = kind;
    this.code = QPACK_DECOMPRESSION_FAILED;
  }
}
