/**
 * What the clients of another node's watch services (DiscoveryClient, LeadershipClient) share:
 * a server stream kept live across failures — watched again after a backoff that grows with each
 * failure in a row and starts over after a good message — exposed as one shared, replaying
 * Observable per key however many subscribe.
 */
import { Observable, ReplaySubject, distinctUntilChanged, share, takeUntil, type Subscriber } from 'rxjs';
import { ConfigError, DisposedError, type ConfigIssue } from '../errors.js';
import { backoffDelay, type RandomSource } from '../resilience/retry.js';

/** Backoff between two watches after a failure (or a stream the server ended). */
export interface WatchBackoff {
  /** First wait (ms). */
  readonly initialMs: number;
  /** Cap (ms). */
  readonly maxMs: number;
  /** Growth per failure in a row. */
  readonly multiplier: number;
  /** Fraction (0..1) of each wait that is randomised, so clients do not come back in step. */
  readonly jitter: number;
}

/** `defaults` overridden by the fields `input` defines; a ConfigError (source `source`) names every bad `backoff.*` key. */
export function resolveWatchBackoff(defaults: WatchBackoff, input: Partial<WatchBackoff> | undefined, source: string): WatchBackoff {
  const backoff: WatchBackoff = { ...defaults, ...(Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v !== undefined)) as Partial<WatchBackoff>) };
  const issues: ConfigIssue[] = [];
  const positive = (key: keyof WatchBackoff): void => {
    if (!Number.isFinite(backoff[key]) || backoff[key] <= 0) issues.push({ key: `backoff.${key}`, message: `must be a positive number (got ${String(backoff[key])})` });
  };
  positive('initialMs');
  positive('maxMs');
  if (!Number.isFinite(backoff.multiplier) || backoff.multiplier < 1) issues.push({ key: 'backoff.multiplier', message: `must be at least 1 (got ${String(backoff.multiplier)})` });
  if (!Number.isFinite(backoff.jitter) || backoff.jitter < 0 || backoff.jitter > 1) issues.push({ key: 'backoff.jitter', message: `must be between 0 and 1 (got ${String(backoff.jitter)})` });
  if (issues.length === 0 && backoff.maxMs < backoff.initialMs) issues.push({ key: 'backoff.maxMs', message: `must be at least backoff.initialMs (${backoff.initialMs})` });
  if (issues.length > 0) throw new ConfigError(issues, source);
  return backoff;
}

export interface RewatchOptions {
  readonly backoff: WatchBackoff;
  readonly random: RandomSource;
  /** Waits `ms` or rejects when `signal` aborts. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Told of each failure (a throwing listener does not end the watch). */
  readonly onFailure: (error: unknown, failures: number, delayMs: number) => void;
}

/**
 * Watches until `signal` aborts: `open(signal)` gives a server stream; each message goes to
 * `deliver`, which returns whether it was a good one (it resets the failure count). A stream
 * that fails, or that the server ends (`ended()` names that error), is opened again after the
 * backoff. A DisposedError (the factory was disposed) errors `subscriber` and stops.
 */
export async function rewatch<M>(open: (signal: AbortSignal) => AsyncIterable<M>, deliver: (message: M) => boolean, ended: () => Error, subscriber: Subscriber<unknown>, signal: AbortSignal, options: RewatchOptions): Promise<void> {
  let failures = 0;
  const { backoff } = options;
  while (!signal.aborted) {
    try {
      for await (const message of open(signal)) if (deliver(message)) failures = 0;
      if (signal.aborted) return;
      throw ended();
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof DisposedError) {
        subscriber.error(error);
        return;
      }
      failures++;
      const delayMs = backoffDelay(failures, { initialBackoffMs: backoff.initialMs, maxBackoffMs: backoff.maxMs, multiplier: backoff.multiplier, jitter: backoff.jitter }, options.random);
      try {
        options.onFailure(error, failures, delayMs);
      } catch {
        // A throwing listener must not end the watch.
      }
      try {
        await options.sleep(delayMs, signal);
      } catch {
        return;
      }
    }
  }
}

/**
 * One live stream however many subscribe: `loop(subscriber, signal)` starts with the first
 * subscription and is aborted when the last one leaves; the latest value is replayed to late
 * subscribers; equal consecutive values (`same`) are dropped; `disposed$` completes it. Each
 * running loop is kept in `loops` until it ends, so an owner's dispose() can wait for them.
 */
export function sharedLiveStream<T>(loop: (subscriber: Subscriber<T>, signal: AbortSignal) => Promise<void>, same: (a: T, b: T) => boolean, loops: Set<Promise<void>>, disposed$: Observable<void>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const controller = new AbortController();
    const running = loop(subscriber, controller.signal).finally(() => loops.delete(running));
    loops.add(running);
    return () => controller.abort();
  }).pipe(
    distinctUntilChanged(same),
    takeUntil(disposed$),
    share({ connector: () => new ReplaySubject<T>(1), resetOnRefCountZero: true, resetOnComplete: true, resetOnError: true }),
  );
}
