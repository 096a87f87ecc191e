import type { Observable } from 'rxjs';

/** How values wait between the Observable and the reader: `push` may return an error that ends the iteration (after what is buffered). */
interface ValueBuffer<T> {
  push(value: T): { readonly error: unknown } | undefined;
  take(): { readonly value: T } | undefined;
}

/**
 * An Observable as an async iterable for a server stream's handler. Ends when the Observable
 * completes or `signal` aborts; throws what the Observable errors with (or what the buffer
 * refuses with, once the values before it are taken). Subscribes on the first `next()` and
 * unsubscribes (and stops listening to `signal`) when the iteration ends, however it ends.
 */
async function* bufferedValues<T>(source: Observable<T>, signal: AbortSignal, buffer: ValueBuffer<T>): AsyncGenerator<T, void, undefined> {
  if (signal.aborted) return;
  let failure: { readonly error: unknown } | undefined;
  let completed = false;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  signal.addEventListener('abort', notify);
  const subscription = source.subscribe({
    next: (value) => {
      const refused = buffer.push(value);
      if (refused !== undefined) failure ??= refused;
      notify();
    },
    error: (error: unknown) => {
      failure = { error };
      notify();
    },
    complete: () => {
      completed = true;
      notify();
    },
  });
  try {
    for (;;) {
      if (signal.aborted) return;
      const next = buffer.take();
      if (next !== undefined) {
        yield next.value;
        continue;
      }
      if (failure !== undefined) throw failure.error;
      if (completed) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    subscription.unsubscribe();
    signal.removeEventListener('abort', notify);
  }
}

/**
 * Only the newest value not taken yet (the values are full snapshots, so a slow reader skips
 * the ones it missed instead of queueing them).
 */
export function latestValues<T>(source: Observable<T>, signal: AbortSignal): AsyncGenerator<T, void, undefined> {
  let pending: { readonly value: T } | undefined;
  return bufferedValues(source, signal, {
    push: (value) => {
      pending = { value };
      return undefined;
    },
    take: () => {
      const taken = pending;
      pending = undefined;
      return taken;
    },
  });
}

/**
 * Every value in order (transitions, where none may be skipped), at most `max` waiting: a
 * reader that falls further behind gets `overflow()` as its error once it has taken those.
 */
export function queuedValues<T>(source: Observable<T>, signal: AbortSignal, max: number, overflow: () => unknown): AsyncGenerator<T, void, undefined> {
  const queue: T[] = [];
  return bufferedValues(source, signal, {
    push: (value) => {
      if (queue.length >= max) return { error: overflow() };
      queue.push(value);
      return undefined;
    },
    take: () => (queue.length > 0 ? { value: queue.shift()! } : undefined),
  });
}
