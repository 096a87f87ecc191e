/**
 * gRPC over HTTP semantics, independent of the HTTP version (gRPC's PROTOCOL-HTTP2.md
 * applies to HTTP/3 unchanged): request headers, grpc-timeout, custom metadata, and how a
 * response's headers and trailers become a gRPC status.
 */
import { GRPC_STATUS, statusName } from './status.js';
import type { HeaderField } from '../http3/qpack/index.js';

/** gRPC call metadata: ASCII values as strings, `-bin` keys as bytes. */
export type CallMetadata = Readonly<Record<string, string | Buffer>>;

/** Headers a caller may not set as metadata: the transport owns them. */
const RESERVED_METADATA = new Set(['content-type', 'te', 'user-agent', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

const METADATA_KEY = /^[0-9a-z_.-]+$/;

export class GrpcMappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrpcMappingError';
  }
}

/**
 * `grpc-timeout` for a relative timeout: at most 8 digits and the finest unit that fits
 * (gRPC spec: `TimeoutValue = 1*8DIGIT`, units n u m S M H).
 */
export function encodeGrpcTimeout(timeoutMs: number): string {
  const ms = Math.max(0, Math.ceil(timeoutMs));
  const units: readonly [string, number][] = [
    ['m', 1],
    ['S', 1_000],
    ['M', 60_000],
    ['H', 3_600_000],
  ];
  for (const [unit, scale] of units) {
    const value = Math.ceil(ms / scale);
    if (value < 100_000_000) return `${value}${unit}`;
  }
  return '99999999H';
}

/** Parses `grpc-timeout` into milliseconds; undefined when malformed. */
export function decodeGrpcTimeout(value: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  const amount = Number(match[1]);
  switch (match[2]) {
    case 'H':
      return amount * 3_600_000;
    case 'M':
      return amount * 60_000;
    case 'S':
      return amount * 1_000;
    case 'm':
      return amount;
    case 'u':
      return amount / 1_000;
    default:
      return amount / 1_000_000;
  }
}

/** Percent-encodes `grpc-message` (gRPC spec: bytes outside 0x20-0x7E and `%` itself). */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Decodes `grpc-message`; malformed escapes are kept as they are (the spec asks receivers to be lenient). */
export function decodeGrpcMessage(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Custom metadata as header fields. Keys are lowercase `[0-9a-z_.-]`; `-bin` keys carry
 * bytes (base64 on the wire), other keys printable ASCII. Reserved and `grpc-` keys are refused.
 */
export function metadataToHeaders(metadata: CallMetadata): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    const problem = metadataProblem(key, value);
    if (problem !== undefined) throw new GrpcMappingError(problem);
    if (key.endsWith('-bin')) {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
      fields.push([key, bytes.toString('base64').replace(/=+$/, '')]);
    } else {
      fields.push([key, typeof value === 'string' ? value : value.toString('latin1')]);
    }
  }
  return fields;
}

/**
 * What is wrong with one metadata entry, the same rules for HTTP/2 and HTTP/3: keys lowercase
 * `[0-9a-z_.-]`, not reserved (`grpc-`, pseudo-headers, connection headers, content-type, te,
 * user-agent); values strings or Buffers; text values printable ASCII (bytes go in `-bin` keys).
 */
export function metadataProblem(key: string, value: unknown): string | undefined {
  if (!METADATA_KEY.test(key)) return `metadata key "${key}" must be lowercase letters, digits, "_", "." or "-"`;
  if (RESERVED_METADATA.has(key) || key.startsWith('grpc-') || key.startsWith(':')) return `metadata key "${key}" is reserved by gRPC`;
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) return `metadata "${key}" must be a string or a Buffer, got ${value === null ? 'null' : typeof value}`;
  if (!key.endsWith('-bin')) {
    const text = typeof value === 'string' ? value : value.toString('latin1');
    if (!/^[\x20-\x7e]*$/.test(text)) return `metadata "${key}" must be printable ASCII; use a "-bin" key for bytes`;
  }
  return undefined;
}

/** The request header section of a gRPC call. */
export function requestHeaders(input: { authority: string; path: string; timeoutMs: number | undefined; metadata: CallMetadata; userAgent?: string }): HeaderField[] {
  const fields: HeaderField[] = [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':authority', input.authority],
    [':path', input.path],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ['user-agent', input.userAgent ?? 'omnirelay-h3'],
  ];
  if (input.timeoutMs !== undefined) fields.push(['grpc-timeout', encodeGrpcTimeout(input.timeoutMs)]);
  fields.push(...metadataToHeaders(input.metadata));
  return fields;
}

/** Header fields as a record; repeated names are joined with ", " as HTTP allows. */
export function headerRecord(fields: readonly HeaderField[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (name.startsWith(':')) continue;
    record[name] = record[name] === undefined ? value : `${record[name]}, ${value}`;
  }
  return record;
}

/** gRPC's mapping of HTTP statuses for responses that are not gRPC (http-grpc-status-mapping.md). */
export function grpcStatusForHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

export interface GrpcOutcome {
  readonly status: number;
  readonly statusName: string;
  readonly message: string;
}

/**
 * Checks the response header section. A gRPC response has `:status 200` and a
 * `content-type` of `application/grpc[+...]`; anything else ends the call with the mapped
 * status. When the section also carries `grpc-status` it is a trailers-only response.
 */
export function interpretResponseHeaders(fields: readonly HeaderField[]): { outcome: GrpcOutcome | undefined; trailersOnly: boolean } {
  const status = fields.find(([n]) => n === ':status')?.[1];
  if (status === undefined || !/^\d{3}$/.test(status)) {
    return { outcome: { status: GRPC_STATUS.INTERNAL, statusName: 'INTERNAL', message: 'response without a valid :status' }, trailersOnly: false };
  }
  const code = Number(status);
  if (code !== 200) {
    const grpc = grpcStatusForHttpStatus(code);
    return { outcome: { status: grpc, statusName: statusName(grpc), message: `HTTP status ${code}` }, trailersOnly: false };
  }
  const contentType = fields.find(([n]) => n === 'content-type')?.[1] ?? '';
  if (!/^application\/grpc($|[+;])/.test(contentType)) {
    return { outcome: { status: GRPC_STATUS.UNKNOWN, statusName: 'UNKNOWN', message: `response content-type "${contentType}" is not gRPC` }, trailersOnly: false };
  }
  if (fields.some(([n]) => n === 'grpc-status')) return { outcome: interpretTrailers(fields), trailersOnly: true };
  return { outcome: undefined, trailersOnly: false };
}

/** The gRPC status carried by a trailer section (or a trailers-only header section). */
export function interpretTrailers(fields: readonly HeaderField[]): GrpcOutcome {
  const raw = fields.find(([n]) => n === 'grpc-status')?.[1];
  if (raw === undefined || !/^\d{1,2}$/.test(raw)) {
    return { status: GRPC_STATUS.INTERNAL, statusName: 'INTERNAL', message: raw === undefined ? 'trailers without grpc-status' : `malformed grpc-status "${raw}"` };
  }
  const status = Number(raw);
  const message = decodeGrpcMessage(fields.find(([n]) => n === 'grpc-message')?.[1] ?? '');
  return { status, statusName: statusName(status), message };
}

/** One length-prefixed gRPC message (flag byte 0: not compressed). */
export function frameGrpcMessage(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.byteLength);
  new DataView(out.buffer).setUint32(1, message.byteLength);
  out.set(message, 5);
  return out;
}

/**
 * Splits a byte stream (the DATA frames of one call) into gRPC messages. Refuses compressed
 * messages (we never negotiate grpc-encoding) and messages over `maxMessageBytes` as soon as
 * their length prefix arrives, so a peer cannot make it buffer more than that.
 */
export class GrpcMessageDeframer {
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Adds bytes; returns every message now complete. Throws GrpcDeframeError on a bad prefix. */
  push(bytes: Uint8Array): Uint8Array[] {
    if (bytes.byteLength > 0) {
      this.#chunks.push(bytes);
      this.#buffered += bytes.byteLength;
    }
    const messages: Uint8Array[] = [];
    for (;;) {
      if (this.#buffered < 5) return messages;
      const header = this.#peek(5);
      const compressed = header[0] ?? 0;
      const length = new DataView(header.buffer, header.byteOffset, 5).getUint32(1);
      if (compressed !== 0) throw new GrpcDeframeError(GRPC_STATUS.INTERNAL, 'received a compressed message, but no grpc-encoding was negotiated');
      if (length > this.maxMessageBytes) throw new GrpcDeframeError(GRPC_STATUS.RESOURCE_EXHAUSTED, `received message larger than max (${length} vs. ${this.maxMessageBytes})`);
      if (this.#buffered < 5 + length) return messages;
      this.#take(5);
      messages.push(this.#take(length));
    }
  }

  /** Bytes held for an incomplete message. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first !== undefined && first.byteLength >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let filled = 0;
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.byteLength;
      if (filled === n) break;
    }
    return out;
  }

  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) break;
      const part = chunk.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.byteLength;
      if (part.byteLength === chunk.byteLength) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part.byteLength);
    }
    this.#buffered -= n;
    return out;
  }
}

export class GrpcDeframeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'GrpcDeframeError';
  }
}
