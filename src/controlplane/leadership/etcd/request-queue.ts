/**
 * The request side of one bidi stream, fed by its owner with `push()`: an `AsyncIterable`
 * whose `next()` waits for the next pushed request and whose `return()` (the factory calls it
 * when the stream ends) or `end()` finishes it at once, waking a pending `next()`. Iterated
 * once.
 */
export class RequestQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiter: ((result: IteratorResult<T>) => void) | undefined;
  #ended = false;

  /** Queues a request (dropped once the queue has ended). */
  push(item: T): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter({ done: false, value: item });
    } else {
      this.#items.push(item);
    }
  }

  /** Ends the requests: a pending or later `next()` is done, queued requests are dropped. */
  end(): void {
    this.#ended = true;
    this.#items.length = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ done: false, value: this.#items.shift() as T });
        if (this.#ended) return Promise.resolve({ done: true, value: undefined });
        return new Promise<IteratorResult<T>>((resolve) => (this.#waiter = resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}
