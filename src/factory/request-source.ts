/**
 * The caller's request iterable of a client or bidi stream, encoded lazily, handed to one
 * attempt at a time. An attempt that failed before pulling anything (an HTTP/3 dial refused,
 * a handshake) leaves the requests untouched, so the call may go over HTTP/2 instead; once a
 * request was pulled it was handed to a transport and may have reached the server, so no
 * other attempt may start (the requests cannot be read twice, and they are not buffered).
 * The caller's iterator is closed (`return()`) once, when the call ends — not when an attempt
 * that pulled nothing gives up.
 */
export class RequestSource<Req> {
  readonly #requests: AsyncIterable<Req>;
  readonly #encode: (request: Req) => Uint8Array;
  #iterator: AsyncIterator<Req> | undefined;
  #pulled = 0;
  #closed = false;

  constructor(requests: AsyncIterable<Req>, encode: (request: Req) => Uint8Array) {
    this.#requests = requests;
    this.#encode = encode;
  }

  /** Requests handed to a transport so far. */
  get pulled(): number {
    return this.#pulled;
  }

  /** The requests, encoded, for one attempt. Its `return()` ends this attempt's view only. */
  forAttempt(): AsyncIterable<Uint8Array> {
    let done = false;
    const next = async (): Promise<IteratorResult<Uint8Array>> => {
      if (done || this.#closed) return { done: true, value: undefined };
      this.#iterator ??= this.#requests[Symbol.asyncIterator]();
      this.#pulled++;
      const step = await this.#iterator.next();
      if (step.done === true) {
        done = true;
        return { done: true, value: undefined };
      }
      return { done: false, value: this.#encode(step.value) };
    };
    return {
      [Symbol.asyncIterator]: () => ({
        next,
        return: (): Promise<IteratorResult<Uint8Array>> => {
          done = true;
          return Promise.resolve({ done: true, value: undefined });
        },
      }),
    };
  }

  /**
   * The call is over: close the caller's iterator (its `finally` blocks run), once. Not
   * awaited: an async generator still suspended in a `next()` (waiting for its next request)
   * runs `return()` only after that resolves, and the call's end must not wait for it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const iterator = this.#iterator;
    if (iterator?.return === undefined) return;
    try {
      iterator.return().catch(() => undefined);
    } catch {
      // A throwing return() is the caller's iterator's own failure; the call has ended.
    }
  }
}
