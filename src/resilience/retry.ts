import type { RetryOptions } from '../config/types.js';
import { RpcError } from '../errors.js';
import { GRPC_STATUS } from '../grpc/status.js';

/** A number in [0, 1), injected so tests decide jitter. */
export type RandomSource = () => number;

/**
 * Backoff before retry number `retry` (1 = first retry): initial × multiplier^(retry-1),
 * capped at max, then spread by ±jitter (a fraction of the delay).
 */
export function backoffDelay(retry: number, options: Pick<RetryOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'multiplier' | 'jitter'>, random: RandomSource): number {
  const base = Math.min(options.maxBackoffMs, options.initialBackoffMs * options.multiplier ** Math.max(0, retry - 1));
  const spread = base * options.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/** Only gRPC statuses named in the policy are retried; TLS, configuration and peer errors never are. */
export function isRetryable(error: unknown, options: RetryOptions): boolean {
  if (!(error instanceof RpcError)) return false;
  return options.retryableStatusCodes.some((name) => GRPC_STATUS[name] === error.status);
}

/**
 * Decides whether to try again: attempts left, a retryable error, and a backoff that ends
 * before the deadline (a retry that could not finish in time is not started).
 * Returns the delay to wait, or undefined to give up.
 */
export function nextRetryDelay(input: {
  readonly attempt: number;
  readonly error: unknown;
  readonly options: RetryOptions;
  readonly now: number;
  readonly deadline: number;
  readonly random: RandomSource;
}): number | undefined {
  if (input.attempt >= input.options.maxAttempts) return undefined;
  if (!isRetryable(input.error, input.options)) return undefined;
  const delay = backoffDelay(input.attempt, input.options, input.random);
  if (input.now + delay >= input.deadline) return undefined;
  return delay;
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
