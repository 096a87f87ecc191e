/**
 * The peer's QPACK encoder and decoder streams (RFC 9204 §4.3, §4.4) for an endpoint whose
 * dynamic table capacity is 0 and whose encoder never inserts: almost every instruction is
 * then an error, which these readers detect byte by byte, holding O(1) state whatever the
 * stream's length.
 */
import { Http3Error, QPACK_ERROR_CODES } from '../error-codes.js';

/**
 * The peer's encoder stream when our SETTINGS_QPACK_MAX_TABLE_CAPACITY is 0. The only valid
 * instruction is Set Dynamic Table Capacity 0 (the single byte 0x20). Any larger capacity
 * (§4.3.1), any insert (§3.2.2: an entry larger than the capacity) and any Duplicate (§4.3.4: no
 * entry to duplicate) is a connection error QPACK_ENCODER_STREAM_ERROR.
 */
export class ZeroCapacityEncoderStreamReader {
  push(bytes: Uint8Array): void {
    for (const byte of bytes) {
      if (byte === 0x20) continue;
      throw Http3Error.connection(QPACK_ERROR_CODES.QPACK_ENCODER_STREAM_ERROR, `${encoderInstructionName(byte)} on the QPACK encoder stream, but our dynamic table capacity is 0`);
    }
  }
}

function encoderInstructionName(first: number): string {
  if ((first & 0x80) !== 0) return 'Insert With Name Reference';
  if ((first & 0x40) !== 0) return 'Insert With Literal Name';
  if ((first & 0x20) !== 0) return 'Set Dynamic Table Capacity above 0';
  return 'Duplicate';
}

/** Continuation bytes of a 6-bit-prefix integer that still fit 62 bits (6 + 8 × 7); a stream id needs no more. */
const MAX_CONTINUATION_BYTES = 8;

/**
 * The peer's decoder stream when our encoder never references the dynamic table. Section
 * Acknowledgment (§4.4.1: no field section with a non-zero Required Insert Count is
 * outstanding) and Insert Count Increment (§4.4.3: we inserted nothing) are connection errors
 * QPACK_DECODER_STREAM_ERROR; Stream Cancellation (§4.4.2) is valid and ignored.
 */
export class NoInsertDecoderStreamReader {
  /** Continuation bytes read of a Stream Cancellation's stream id, or -1 between instructions. */
  #continuation = -1;

  push(bytes: Uint8Array): void {
    for (const byte of bytes) {
      if (this.#continuation >= 0) {
        this.#continuation++;
        if ((byte & 0x80) === 0) this.#continuation = -1;
        else if (this.#continuation >= MAX_CONTINUATION_BYTES) throw Http3Error.connection(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR, 'a Stream Cancellation stream id longer than 62 bits');
        continue;
      }
      if ((byte & 0x80) !== 0) throw Http3Error.connection(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR, 'a Section Acknowledgment, but no field section we sent referenced the dynamic table');
      if ((byte & 0x40) === 0) throw Http3Error.connection(QPACK_ERROR_CODES.QPACK_DECODER_STREAM_ERROR, 'an Insert Count Increment, but we inserted nothing');
      if ((byte & 0x3f) === 0x3f) this.#continuation = 0; // the stream id continues (6-bit prefix)
    }
  }
}
