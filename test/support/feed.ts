/**
 * Request streams for `TransportConnection.stream()` tests: a {@link Feed} records every
 * `next()` (pulled) and `return()` the transport makes.
 */
import { controlPlaneV1 } from 'omnirelay';

const { PingRequest } = controlPlaneV1;

/**
 * Request messages the test feeds by hand (or from a script), as a plain AsyncIterator so the
 * test sees every `next()` (pulled) and `return()` the transport makes.
 */
export class Feed implements AsyncIterable<Uint8Array> {
  pulled = 0;
  returned = false;
  readonly #queue: Array<Uint8Array | Error | null> = [];
  #waiter: ((item: Uint8Array | Error | null) => void) | undefined;
  #onReturn: (() => void) | undefined;
  /** Resolves when the transport calls `return()`. */
  readonly whenReturned = new Promise<void>((resolve) => (this.#onReturn = resolve));

  constructor(private readonly source?: (index: number) => Uint8Array | Error | null) {}

  push(item: Uint8Array | Error | null): void {
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter(item);
    } else {
      this.#queue.push(item);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: async () => {
        this.pulled++;
        let item: Uint8Array | Error | null;
        if (this.source !== undefined) item = this.source(this.pulled - 1);
        else if (this.#queue.length > 0) item = this.#queue.shift() as Uint8Array | Error | null;
        else item = await new Promise<Uint8Array | Error | null>((resolve) => (this.#waiter = resolve));
        if (this.returned || item === null) return { done: true, value: undefined };
        if (item instanceof Error) throw item;
        return { done: false, value: item };
      },
      return: () => {
        this.returned = true;
        this.#onReturn?.();
        this.#waiter?.(null);
        this.#waiter = undefined;
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

export function ping(sequence: number, payload = new Uint8Array()): Uint8Array {
  return PingRequest.encode({ fromNode: 'streaming-test', sequence, payload }).finish();
}

/** Requests 1..count, then the end. */
export function sequence(count: number, payloadBytes = 0): Feed {
  return new Feed((index) => (index < count ? ping(index + 1, new Uint8Array(payloadBytes)) : null));
}

