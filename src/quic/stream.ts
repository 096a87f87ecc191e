/**
 * One QUIC stream of a {@link QuicConnection}: reads are pulled from quiche into a bounded
 * buffer (quiche's flow control holds the rest at the peer), writes are handed to quiche at
 * once and, when it has no room, queued and retried by the connection after the next packet
 * arrives (no polling). Errors are `QuicStreamError`s.
 */
import { QuicStreamError } from './errors.js';
import type { NativeConnection } from './native.js';

/** What a stream needs of its connection. */
export interface StreamOwner {
  readonly native: NativeConnection;
  readonly shutdownRead: number;
  readonly shutdownWrite: number;
  /** The largest UDP payload we send. */
  readonly maxPacketBytes: number;
  /** Bytes sent since the last packet was received (see `#canSendFinOnly`). */
  sentSinceReceive(): number;
  /** Packets are waiting: send them soon (once per event-loop turn). */
  scheduleFlush(): void;
  /** The stream has writes queued: retry them after packets arrive. */
  blocked(stream: QuicStream): void;
  /** The reader drained the buffer: pull more from quiche on the next turn. */
  wantsRead(stream: QuicStream): void;
  /** Both directions are over: forget the stream. */
  released(stream: QuicStream): void;
}

/** Bytes read ahead of the application per stream; beyond it quiche's flow control holds the data. */
const READ_AHEAD_BYTES = 256 * 1024;

/** quiche reports stream errors through exception messages. */
function codeIn(error: unknown, what: 'StreamReset' | 'StreamStopped'): number | undefined {
  const match = new RegExp(`${what}\\((\\d{1,20})\\)`).exec(error instanceof Error ? error.message : String(error));
  return match !== null ? Number(match[1]) : undefined;
}

interface PendingWrite {
  bytes: Uint8Array;
  readonly fin: boolean;
  readonly resolve: () => void;
  readonly reject: (error: QuicStreamError) => void;
}

let scratch: Buffer | undefined;

export class QuicStream {
  /** The QUIC stream id (RFC 9000 §2.1). */
  readonly id: number;
  /** Bidirectional (else unidirectional). */
  readonly bidi: boolean;
  /** We opened it (else the peer did). */
  readonly local: boolean;
  readonly #owner: StreamOwner;

  readonly #chunks: Uint8Array[] = [];
  #head = 0;
  #buffered = 0;
  #readEnded: boolean;
  #fin = false;
  #readError: QuicStreamError | undefined;
  #reader: { resolve(chunk: Uint8Array | null): void; reject(error: QuicStreamError): void } | undefined;

  readonly #queue: PendingWrite[] = [];
  #writeEnded: boolean;
  #ending = false;
  #writeError: QuicStreamError | undefined;

  #released = false;
  #resolveClosed!: () => void;
  /** Resolves once both directions are over (FIN, reset, stop, or the connection's end). */
  readonly closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  /** @internal created by QuicConnection */
  constructor(id: number, local: boolean, owner: StreamOwner) {
    this.id = id;
    this.local = local;
    this.bidi = (id & 0b10) === 0;
    this.#owner = owner;
    // A unidirectional stream has only the opener's sending side.
    this.#readEnded = !this.bidi && local;
    this.#writeEnded = !this.bidi && !local;
  }

  /** Unread bytes held for the reader. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** The write side is over (FIN handed to quiche, reset, or stopped). */
  get writeEnded(): boolean {
    return this.#writeEnded;
  }

  // ---- reading -------------------------------------------------------------------------------

  /**
   * The next chunk, or null at the peer's FIN. Rejects with `QuicStreamError` (`reset` by the
   * peer, `cancelled` by us, `closed` with the connection). One read at a time.
   */
  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head] as Uint8Array;
      this.#chunks[this.#head++] = EMPTY;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      }
      const wasFull = this.#buffered >= READ_AHEAD_BYTES;
      this.#buffered -= chunk.byteLength;
      if (wasFull && this.#buffered < READ_AHEAD_BYTES && !this.#readEnded) this.#owner.wantsRead(this);
      return Promise.resolve(chunk);
    }
    if (this.#readError !== undefined) return Promise.reject(this.#readError);
    if (this.#fin) return Promise.resolve(null);
    if (this.#reader !== undefined) return Promise.reject(new QuicStreamError('invalid', undefined, `stream ${this.id}: a read is already pending`));
    return new Promise((resolve, reject) => {
      this.#reader = { resolve, reject };
    });
  }

  /** @internal quiche says the stream is readable: take what it holds, up to the read-ahead. */
  pull(): void {
    if (this.#readEnded) return;
    const native = this.#owner.native;
    scratch ??= Buffer.allocUnsafe(64 * 1024);
    while (this.#buffered < READ_AHEAD_BYTES) {
      let result: [number, boolean] | null;
      try {
        result = native.streamRecv(this.id, scratch);
      } catch (error) {
        const code = codeIn(error, 'StreamReset');
        this.#failRead(
          code !== undefined
            ? new QuicStreamError('reset', code, `the peer reset stream ${this.id} with code 0x${code.toString(16)}`)
            : new QuicStreamError('invalid', undefined, `stream ${this.id} cannot be read: ${(error as Error).message}`, { cause: error }),
        );
        return;
      }
      if (result === null) return;
      const [length, fin] = result;
      if (length > 0) this.#deliver(Buffer.from(scratch.subarray(0, length)));
      if (fin) {
        this.#fin = true;
        this.#readEnded = true;
        if (this.#reader !== undefined && this.#head === this.#chunks.length) {
          const reader = this.#reader;
          this.#reader = undefined;
          reader.resolve(null);
        }
        this.#maybeRelease();
        return;
      }
    }
  }

  #deliver(chunk: Uint8Array): void {
    if (this.#reader !== undefined) {
      const reader = this.#reader;
      this.#reader = undefined;
      reader.resolve(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
  }

  #failRead(error: QuicStreamError): void {
    this.#readEnded = true;
    this.#readError ??= error;
    // Unread data is dropped: a reset stream's data is not to be delivered (RFC 9000 §3.2).
    this.#chunks.length = 0;
    this.#head = 0;
    this.#buffered = 0;
    if (this.#reader !== undefined) {
      const reader = this.#reader;
      this.#reader = undefined;
      reader.reject(error);
    }
    this.#maybeRelease();
  }

  /** Stops reading: STOP_SENDING with `code`; buffered and later data is dropped. */
  stopReading(code: number): void {
    if (this.#readEnded) return;
    this.#shutdown(this.#owner.shutdownRead, code);
    this.#failRead(new QuicStreamError('cancelled', code, `stream ${this.id}: we stopped reading`));
  }

  // ---- writing -------------------------------------------------------------------------------

  /**
   * Hands `bytes` to quiche (with FIN when `fin`): resolves once all of it is accepted, so an
   * awaited write is flow-controlled. Rejects with `QuicStreamError` (`stopped` by the peer,
   * `cancelled` by us, `closed` with the connection).
   */
  write(bytes: Uint8Array, fin = false): Promise<void> {
    if (this.#writeError !== undefined) return Promise.reject(this.#writeError);
    if (this.#writeEnded || this.#ending) return Promise.reject(new QuicStreamError('invalid', undefined, `stream ${this.id}: write after end`));
    if (fin) this.#ending = true;
    if (this.#queue.length === 0) {
      const left = this.#send(bytes, fin);
      if (left === undefined) return Promise.reject(this.#writeError ?? new QuicStreamError('invalid', undefined, `stream ${this.id}: write failed`));
      if (left === null) return Promise.resolve();
      bytes = left;
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ bytes, fin, resolve, reject });
      this.#owner.blocked(this);
    });
  }

  /** Writes `bytes` (if any) with FIN. */
  end(bytes: Uint8Array = EMPTY): Promise<void> {
    return this.write(bytes, true);
  }

  /**
   * Sends what quiche takes of `bytes`: null when all of it went (FIN included), the rest
   * otherwise, undefined when the write side failed.
   */
  #send(bytes: Uint8Array, fin: boolean): Uint8Array | null | undefined {
    if (fin && bytes.byteLength === 0 && !this.#canSendFinOnly()) return bytes;
    let written: number | null;
    try {
      written = this.#owner.native.streamSend(this.id, bytes, fin);
    } catch (error) {
      const code = codeIn(error, 'StreamStopped');
      this.#failWrite(
        code !== undefined
          ? new QuicStreamError('stopped', code, `the peer stopped stream ${this.id} with code 0x${code.toString(16)}`)
          : new QuicStreamError('invalid', undefined, `stream ${this.id} cannot be written: ${(error as Error).message}`, { cause: error }),
      );
      return undefined;
    }
    if (written === null || (written === 0 && bytes.byteLength > 0)) {
      // quiche took nothing: no room yet (the connection retries after packets arrive), or a
      // stream it no longer knows. Nothing new to send either way, so no send pass.
      const gone = this.#stopped();
      if (gone !== undefined) {
        this.#failWrite(gone);
        return undefined;
      }
      return bytes;
    }
    this.#owner.scheduleFlush();
    const count = written;
    if (count === bytes.byteLength) {
      if (fin) {
        this.#writeEnded = true;
        this.#maybeRelease();
      }
      return null;
    }
    return bytes.subarray(count);
  }

  /**
   * quiche 0.18 collects a stream once the peer has acked all data up to its final size,
   * whether or not the FIN itself went out: a FIN queued alone (the data was sent before) while
   * the congestion window is full can be lost for good, and the peer waits until its idle
   * timeout. So a FIN-only frame is queued only with a full packet of real send room:
   * `streamCapacity` (quiche's tx_cap, refreshed when a packet arrives) minus everything sent
   * since. Our own writers put the FIN on their last data and never get here.
   */
  #canSendFinOnly(): boolean {
    let capacity: number;
    try {
      capacity = this.#owner.native.streamCapacity(this.id);
    } catch {
      return true; // let streamSend report the stream's state
    }
    return capacity - this.#owner.sentSinceReceive() >= this.#owner.maxPacketBytes;
  }

  /** @internal after packets arrived: retry the queued writes in order. */
  retryWrites(): boolean {
    while (this.#queue.length > 0) {
      const pending = this.#queue[0] as PendingWrite;
      const left = this.#send(pending.bytes, pending.fin);
      if (left === undefined) return false; // failed: the queue was rejected
      if (left !== null) {
        pending.bytes = left;
        return true; // still blocked
      }
      this.#queue.shift();
      pending.resolve();
    }
    return false;
  }

  /**
   * @internal whether the peer sent STOP_SENDING for a write side with nothing queued (quiche
   * reports it only through a write or the stream's capacity).
   */
  checkStopped(): void {
    if (this.#writeEnded || this.#queue.length > 0) return;
    const stopped = this.#stopped();
    if (stopped !== undefined) this.#failWrite(stopped);
  }

  /**
   * Whether the peer stopped our write side, asked of quiche's `streamCapacity`: it throws
   * `StreamStopped(code)` after a STOP_SENDING, and `InvalidStreamState` once quiche collected
   * the stream. quiche collects a stream when both sides are over; while our write side is
   * not, only the peer's STOP_SENDING (which ends it in quiche) gets it there — e.g. one that
   * came with the request's FIN or RESET_STREAM and was read in the same pass, its code gone
   * with the stream. `streamSend` on such a stream returns Done, as when there is no room.
   */
  #stopped(): QuicStreamError | undefined {
    try {
      this.#owner.native.streamCapacity(this.id);
    } catch (error) {
      const code = codeIn(error, 'StreamStopped');
      if (code !== undefined) return new QuicStreamError('stopped', code, `the peer stopped stream ${this.id} with code 0x${code.toString(16)}`);
      if (/InvalidStreamState/.test(error instanceof Error ? error.message : String(error))) {
        return new QuicStreamError('stopped', undefined, `the peer stopped stream ${this.id} (STOP_SENDING) and quiche has closed the stream`);
      }
    }
    return undefined;
  }

  #failWrite(error: QuicStreamError): void {
    this.#writeEnded = true;
    this.#writeError ??= error;
    for (const pending of this.#queue.splice(0)) pending.reject(error);
    this.#maybeRelease();
  }

  // ---- both ------------------------------------------------------------------------------------

  /**
   * Abandons the stream: RESET_STREAM on our sending side and STOP_SENDING on the receiving
   * side, both with `code`. Pending reads and writes reject with kind `cancelled`.
   */
  reset(code: number): void {
    if (!this.#writeEnded) {
      this.#shutdown(this.#owner.shutdownWrite, code);
      this.#failWrite(new QuicStreamError('cancelled', code, `stream ${this.id}: we reset it`));
    }
    this.stopReading(code);
  }

  #shutdown(direction: number, code: number): void {
    try {
      this.#owner.native.streamShutdown(this.id, direction, code);
    } catch {
      // The stream is already over in quiche: nothing to send.
    }
    this.#owner.scheduleFlush();
  }

  /** @internal the connection ended: fail everything pending. */
  abort(error: QuicStreamError): void {
    if (!this.#readEnded) this.#failRead(error);
    if (!this.#writeEnded) this.#failWrite(error);
    this.#maybeRelease();
  }

  #maybeRelease(): void {
    if (this.#released || !this.#readEnded || !this.#writeEnded) return;
    this.#released = true;
    this.#owner.released(this);
    this.#resolveClosed();
  }
}

const EMPTY = new Uint8Array(0);
