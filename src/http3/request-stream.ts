/**
 * One HTTP/3 request stream read and written as an HTTP message (RFC 9114 §4.1), for both
 * roles: frames parsed with a bound (a HEADERS frame too long for our field section limit is
 * refused from its frame header, before its payload is held), checked in order by the
 * request-stream rules of the receiving role, field sections decoded with QPACK. Every reader
 * of a request stream (gRPC client and host, the plain HTTP/3 client and file host) uses it.
 */
import type { QuicStream } from '../quic/stream.js';
import { concatBytes, encodeDataFrame, encodeHeadersFrame, FRAME_TYPE, RequestStreamFrameValidator, type EndpointRole, type FrameParser, type Http3Frame } from './frames.js';
import type { H3Session } from './session.js';
import { decodeFieldSection, encodeFieldSection, type HeaderField } from './qpack/index.js';

/** What a request stream carries, in order: header sections (headers, then maybe trailers) and DATA. */
export type RequestStreamEvent = { readonly kind: 'headers'; readonly fields: HeaderField[] } | { readonly kind: 'data'; readonly payload: Uint8Array };

export class RequestStreamReader {
  readonly #stream: QuicStream;
  readonly #parser: FrameParser;
  readonly #maxFieldSectionSize: number;
  /** The frame-order rules; a client marks a 1xx response with `interimResponseReceived()`. */
  readonly validator: RequestStreamFrameValidator;
  #frames: Http3Frame[] = [];
  #next = 0;
  #ended = false;
  #received = false;

  /**
   * @param receiver the role reading: 'client' reads responses, 'server' reads requests.
   * @param maxMessageBytes the largest gRPC message (or body chunk) a DATA frame may carry; the
   *   frame bound adds the gRPC prefix and slack (H3Session.requestStreamParser).
   */
  constructor(stream: QuicStream, session: H3Session, receiver: EndpointRole, maxMessageBytes: number) {
    this.#stream = stream;
    this.#parser = session.requestStreamParser(maxMessageBytes);
    this.#maxFieldSectionSize = session.maxFieldSectionSize;
    this.validator = new RequestStreamFrameValidator(receiver);
  }

  /**
   * The next header section or DATA payload, or null once the peer's FIN ended the stream.
   * Throws `Http3Error` / `QpackError` for a malformed stream (the caller decides between a
   * stream and a connection error) and `QuicStreamError` when the stream was reset.
   */
  async next(): Promise<RequestStreamEvent | null> {
    for (;;) {
      if (this.#next < this.#frames.length) {
        const frame = this.#frames[this.#next++] as Http3Frame;
        this.validator.accept(frame.type);
        if (frame.type === FRAME_TYPE.HEADERS) return { kind: 'headers', fields: decodeFieldSection(frame.payload, { maxFieldSectionSize: this.#maxFieldSectionSize }).headers };
        if (frame.type === FRAME_TYPE.DATA) return { kind: 'data', payload: frame.payload };
        continue;
      }
      if (this.#ended) return null;
      const chunk = await this.#stream.read();
      if (chunk === null) {
        this.#ended = true;
        this.#frames = this.#parser.end();
      } else {
        if (chunk.byteLength > 0) this.#received = true;
        this.#parser.push(chunk);
        this.#frames = this.#parser.pullAll();
      }
      this.#next = 0;
    }
  }

  /** Whether any byte of the peer's message arrived (a client: the server was processing the request). */
  get received(): boolean {
    return this.#received;
  }

  /** Stops reading (STOP_SENDING with `code`): for a message refused at the stream level. */
  stop(code: number): void {
    this.#stream.stopReading(code);
  }
}

/** An HTTP message's frames in one buffer: header section, DATA payloads, trailer section (each optional). */
export function encodeMessage(parts: { headers?: readonly HeaderField[] | undefined; data?: readonly Uint8Array[] | undefined; trailers?: readonly HeaderField[] | undefined }): Uint8Array {
  const frames: Uint8Array[] = [];
  if (parts.headers !== undefined) frames.push(encodeHeadersFrame(encodeFieldSection(parts.headers)));
  for (const payload of parts.data ?? []) frames.push(encodeDataFrame(payload));
  if (parts.trailers !== undefined) frames.push(encodeHeadersFrame(encodeFieldSection(parts.trailers)));
  return frames.length === 1 ? (frames[0] as Uint8Array) : concatBytes(frames);
}
