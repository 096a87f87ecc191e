/**
 * HTTP/3 application error codes (RFC 9114 §8.1) and QPACK error codes (RFC 9204 §6), carried
 * in QUIC RESET_STREAM, STOP_SENDING and CONNECTION_CLOSE frames.
 */

/** HTTP/3 error codes by name (RFC 9114 §8.1). */
export const H3_ERROR_CODES = {
  H3_NO_ERROR: 0x100,
  H3_GENERAL_PROTOCOL_ERROR: 0x101,
  H3_INTERNAL_ERROR: 0x102,
  H3_STREAM_CREATION_ERROR: 0x103,
  H3_CLOSED_CRITICAL_STREAM: 0x104,
  H3_FRAME_UNEXPECTED: 0x105,
  H3_FRAME_ERROR: 0x106,
  H3_EXCESSIVE_LOAD: 0x107,
  H3_ID_ERROR: 0x108,
  H3_SETTINGS_ERROR: 0x109,
  H3_MISSING_SETTINGS: 0x10a,
  H3_REQUEST_REJECTED: 0x10b,
  H3_REQUEST_CANCELLED: 0x10c,
  H3_REQUEST_INCOMPLETE: 0x10d,
  H3_MESSAGE_ERROR: 0x10e,
  H3_CONNECT_ERROR: 0x10f,
  H3_VERSION_FALLBACK: 0x110,
} as const;

/** QPACK error codes by name (RFC 9204 §6). */
export const QPACK_ERROR_CODES = {
  QPACK_DECOMPRESSION_FAILED: 0x200,
  QPACK_ENCODER_STREAM_ERROR: 0x201,
  QPACK_DECODER_STREAM_ERROR: 0x202,
} as const;

/** Every error code this layer names: HTTP/3 and QPACK. */
export const HTTP3_ERROR_CODES = { ...H3_ERROR_CODES, ...QPACK_ERROR_CODES } as const;

/** `H3_FRAME_ERROR`, `QPACK_DECOMPRESSION_FAILED`, … */
export type Http3ErrorCodeName = keyof typeof HTTP3_ERROR_CODES;

const NAMES_BY_CODE = new Map<bigint, Http3ErrorCodeName>(
  (Object.entries(HTTP3_ERROR_CODES) as [Http3ErrorCodeName, number][]).map(([name, code]) => [BigInt(code), name]),
);

/**
 * The name of an error code: `H3_FRAME_ERROR` for 0x106. Codes of the form 0x1f*N+0x21 are
 * reserved for greasing (RFC 9114 §8.1) and read `H3_RESERVED_0x21`; any other unknown code
 * reads `UNKNOWN_0x…`. Unknown codes mean H3_NO_ERROR to the receiver (RFC 9114 §9).
 */
export function http3ErrorCodeName(code: number | bigint): string {
  const asBigint = typeof code === 'bigint' ? code : Number.isSafeInteger(code) ? BigInt(code) : undefined;
  if (asBigint === undefined) return `UNKNOWN_${String(code)}`;
  const known = NAMES_BY_CODE.get(asBigint);
  if (known !== undefined) return known;
  const hex = `0x${asBigint.toString(16)}`;
  return asBigint >= 0x21n && (asBigint - 0x21n) % 0x1fn === 0n ? `H3_RESERVED_${hex}` : `UNKNOWN_${hex}`;
}

/**
 * What the transport must do about an {@link Http3Error} (RFC 9114 §8): reset the one stream
 * (a stream error) or close the whole connection (a connection error).
 */
export type Http3ErrorScope = 'stream' | 'connection';

/**
 * A protocol error detected while handling HTTP/3 or QPACK input, with the code to send
 * to the peer and whether it ends a stream or the connection (RFC 9114 §8).
 */
export class Http3Error extends Error {
  override readonly name = 'Http3Error';
  readonly codeName: string;

  constructor(
    readonly code: number,
    readonly scope: Http3ErrorScope,
    message: string,
  ) {
    const codeName = http3ErrorCodeName(code);
    super(`${codeName} (${scope} error): ${message}`);
    this.codeName = codeName;
  }

  /** A connection error (RFC 9114 §8): close the connection with `code`. */
  static connection(code: number, message: string): Http3Error {
    return new Http3Error(code, 'connection', message);
  }

  /** A stream error (RFC 9114 §8): reset the stream with `code`. */
  static stream(code: number, message: string): Http3Error {
    return new Http3Error(code, 'stream', message);
  }
}
