import type { Observable } from 'rxjs';

/**
 * An Observable as an async iterable that yields only the newest value not taken yet (the
 * values are full snapshots, so a slow reader skips the ones it missed instead of queueing
 * them). Ends when the Observable completes or `signal` aborts; throws what the Observable
 * errors with. Subscribes on the first `next()` and unsubscribes (and stops listening to
 * `signal`) when the iteration ends, however it ends.
 */
export async function* latestValues<T>(source: Observable<T>, signal: AbortSignal): AsyncGenerator<T, void, undefined> {
  if (signal.aborted) return;
  let pending: { readonly value: T } | undefined;
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
      pending = { value };
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
      if (pending !== undefined) {
        const { value } = pending;
        pending = undefined;
        yield value;
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
