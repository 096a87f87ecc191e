/**
 * What the HTTP/2 and HTTP/3 transports share for streaming calls: the deadline timer (none
 * for `Infinity`), the request pump (an async iterable pulled with back-pressure), and the
 * {@link WireStream} object around a call's response generator.
 */
import { GRPC_STATUS } from '../grpc/status.js';
import type { PeerIdentity, WireStream } from './types.js';

/** The largest delay `setTimeout` takes (2^31 - 1 ms); longer ones fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Calls `onExpired` at `deadline` (ms since the epoch); returns the cancel function. No timer
 * at all for a deadline of `Infinity`; deadlines beyond `setTimeout`'s range are re-armed.
 */
export function deadlineTimer(deadline: number, onExpired: () => void): () => void {
  if (deadline === Infinity) return () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const remaining = deadline - Date.now();
    if (remaining > MAX_TIMER_MS) timer = setTimeout(arm, MAX_TIMER_MS);
    else timer = setTimeout(onExpired, Math.max(0, remaining));
  };
  arm();
  return () => clearTimeout(timer);
}

/** The relative timeout a `grpc-timeout` header carries, undefined for no deadline. */
export function timeoutOf(deadline: number): number | undefined {
  return deadline === Infinity ? undefined : Math.max(1, deadline - Date.now());
}

/** Where a request pump delivers messages: each write resolves once the transport can take the next one. */
export interface RequestSink {
  /** Resolves once the transport can take the next message; `undefined`: it can take it now. */
  write(message: Uint8Array): Promise<void> | undefined;
  /** Half-closes the request (END_STREAM / FIN). */
  end(): Promise<void> | void;
}

/** Why a pump ended the call. */
export interface PumpFailure {
  /** gRPC status for the call. */
  readonly status: number;
  readonly details: string;
}

/**
 * Pulls a call's request messages from an async iterable, one at a time and only once the
 * previous write resolved (back-pressure), into a {@link RequestSink}; half-closes at the end.
 * A throwing iterable or an oversized message ends the call through `fail`. A failing write
 * stops the pump quietly: the response side reports why the stream broke. `stop()` (the
 * response side is over) returns the iterator if it is still open; nothing keeps pulling.
 */
export class RequestPump {
  readonly #messages: AsyncIterable<Uint8Array>;
  readonly #sink: RequestSink;
  readonly #maxMessageBytes: number;
  readonly #fail: (failure: PumpFailure) => void;
  #iterator: AsyncIterator<Uint8Array> | undefined;
  /** The iterator finished (done, threw, or was returned). */
  #closed = false;
  #stopped = false;
  /** Ends the current wait (a write or the half-close) when the pump stops. */
  #wake: (() => void) | undefined;

  constructor(messages: AsyncIterable<Uint8Array>, sink: RequestSink, maxMessageBytes: number, fail: (failure: PumpFailure) => void) {
    this.#messages = messages;
    this.#sink = sink;
    this.#maxMessageBytes = maxMessageBytes;
    this.#fail = fail;
  }

  /** Starts pulling (the call is on the wire). */
  start(): void {
    void this.#run();
  }

  async #run(): Promise<void> {
    let iterator: AsyncIterator<Uint8Array>;
    try {
      iterator = this.#messages[Symbol.asyncIterator]();
    } catch (error) {
      this.#closed = true;
      this.#sourceFailed(error);
      return;
    }
    this.#iterator = iterator;
    for (;;) {
      if (this.#stopped) return;
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch (error) {
        this.#closed = true;
        this.#sourceFailed(error);
        return;
      }
      if (next.done === true) this.#closed = true;
      if (this.#stopped) return;
      if (next.done === true) {
        try {
          await this.#untilStopped(this.#sink.end());
        } catch {
          // The response side reports why the stream broke.
        }
        return;
      }
      const message: unknown = next.value;
      if (!(message instanceof Uint8Array)) {
        this.#fail({ status: GRPC_STATUS.INTERNAL, details: `a request message must be a Uint8Array (serialized), got ${message === null ? 'null' : typeof message}` });
        return;
      }
      if (message.byteLength > this.#maxMessageBytes) {
        this.#fail({ status: GRPC_STATUS.RESOURCE_EXHAUSTED, details: `request message larger than max (${message.byteLength} vs. ${this.#maxMessageBytes})` });
        return;
      }
      try {
        const written = this.#sink.write(message);
        if (written !== undefined) await this.#untilStopped(written);
      } catch {
        // A write fails when the stream is over (reset, closed, or stopped by a server that
        // answered without needing the rest): the response side reports what happened.
        this.#returnIterator();
        return;
      }
    }
  }

  /**
   * Settles with `work` or when the pump stops, whichever comes first. Not a Promise.race
   * against one promise pending for the pump's life: every race would leave a reaction on it
   * until the stream ends (some 300 bytes per message of a long stream).
   */
  #untilStopped(work: Promise<void> | void): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#wake = resolve;
      Promise.resolve(work).then(resolve, reject);
    });
  }

  #sourceFailed(error: unknown): void {
    if (this.#stopped) return;
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.#fail({ status: GRPC_STATUS.CANCELLED, details: `the request stream failed: ${what}` });
  }

  /** The call is over: no more pulling; the iterator is returned if still open. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake?.();
    this.#returnIterator();
  }

  #returnIterator(): void {
    if (this.#closed || this.#iterator === undefined) return;
    this.#closed = true;
    const iterator = this.#iterator;
    try {
      // Not awaited: an async generator suspended in an await finishes its return() only once
      // that await settles; the call must not wait for it.
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    } catch {
      // A throwing return() is the iterable's business.
    }
  }
}

/** The promises a {@link WireStream} exposes, settled by the transport. */
export class StreamEnd {
  #setHeaders!: (headers: Readonly<Record<string, string>> | undefined) => void;
  #setTrailers!: (trailers: Readonly<Record<string, string>>) => void;
  readonly headers = new Promise<Readonly<Record<string, string>> | undefined>((resolve) => (this.#setHeaders = resolve));
  readonly trailers = new Promise<Readonly<Record<string, string>>>((resolve) => (this.#setTrailers = resolve));

  /** The response headers arrived (later calls are ignored). */
  gotHeaders(headers: Readonly<Record<string, string>>): void {
    this.#setHeaders(headers);
  }

  /** The call is over: headers settle (undefined if none came), trailers resolve. */
  finish(trailers: Readonly<Record<string, string>>): void {
    this.#setHeaders(undefined);
    this.#setTrailers(trailers);
  }
}

/**
 * A WireStream around `responses` (the call's generator, already created): the call starts at
 * once (the generator runs up to its first response), iteration takes the responses. Leaving
 * the iteration early calls `cancel` (so a read still pending ends at once) and returns the
 * generator, whose cleanup cancels the call on the wire and stops the request pump.
 */
export function wireStream(responses: AsyncGenerator<Uint8Array, void, undefined>, end: StreamEnd, peer: PeerIdentity, cancel: () => void): WireStream {
  let first: Promise<IteratorResult<Uint8Array, void>> | undefined = responses.next();
  first.catch(() => undefined); // delivered to the consumer by its first next()
  let iterated = false;
  const iterator: AsyncIterableIterator<Uint8Array> = {
    next: () => {
      if (first === undefined) return responses.next();
      const pending = first;
      first = undefined;
      return pending;
    },
    return: async () => {
      first = undefined;
      cancel();
      await responses.return(undefined).catch(() => undefined);
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return {
    headers: end.headers,
    trailers: end.trailers,
    peer,
    [Symbol.asyncIterator]() {
      if (iterated) throw new TypeError('a WireStream can be iterated once');
      iterated = true;
      return iterator;
    },
  };
}

/** A WireStream for a call that failed before it started: iterating rejects with `error`. */
export function failedWireStream(error: Error): WireStream {
  const end = new StreamEnd();
  end.finish({});
  return {
    headers: end.headers,
    trailers: end.trailers,
    peer: { address: undefined, certificate: undefined },
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(error),
      return: () => Promise.resolve({ done: true as const, value: undefined }),
    }),
  };
}
