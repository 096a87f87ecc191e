import { describe, expect, it } from '@jest/globals';
import type { RetryOptions } from '../../../src/config/types.js';
import { RpcError, TlsError } from '../../../src/errors.js';
import { backoffDelay, isRetryable, nextRetryDelay, sleep } from '../../../src/resilience/retry.js';

const policy: RetryOptions = { maxAttempts: 4, initialBackoffMs: 100, maxBackoffMs: 350, multiplier: 2, jitter: 0.2, retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] };
const unavailable = new RpcError(14, 'UNAVAILABLE', 'down', { endpoint: 'a:1', protocol: 'h2' });

describe('retry decisions', () => {
  it('grows the backoff by the multiplier up to the cap, with jitter spread by the injected randomness', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((r) => backoffDelay(r, policy, mid))).toEqual([100, 200, 350, 350]);
    expect(backoffDelay(1, policy, () => 0)).toBe(80);
    expect(backoffDelay(1, policy, () => 0.999999)).toBe(120);
  });

  it('retries only the status codes the policy names', () => {
    expect(isRetryable(unavailable, policy)).toBe(true);
    expect(isRetryable(new RpcError(8, 'RESOURCE_EXHAUSTED', 'x', { endpoint: 'a:1', protocol: 'h2' }), policy)).toBe(true);
    expect(isRetryable(new RpcError(3, 'INVALID_ARGUMENT', 'x', { endpoint: 'a:1', protocol: 'h2' }), policy)).toBe(false);
    expect(isRetryable(new RpcError(4, 'DEADLINE_EXCEEDED', 'x', { endpoint: 'a:1', protocol: 'h2' }), policy)).toBe(false);
  });

  it('never retries TLS failures or non-gRPC errors', () => {
    expect(isRetryable(new TlsError('TLS_PEER_UNTRUSTED', 'x'), policy)).toBe(false);
    expect(isRetryable(new Error('boom'), policy)).toBe(false);
  });

  it('stops after maxAttempts and never starts a retry whose backoff would end past the deadline', () => {
    const base = { error: unavailable, options: policy, now: 0, deadline: 10_000, random: () => 0.5 };
    expect(nextRetryDelay({ ...base, attempt: 1 })).toBe(100);
    expect(nextRetryDelay({ ...base, attempt: 3 })).toBe(350);
    expect(nextRetryDelay({ ...base, attempt: 4 })).toBeUndefined();
    expect(nextRetryDelay({ ...base, attempt: 1, deadline: 100 })).toBeUndefined();
    expect(nextRetryDelay({ ...base, attempt: 1, deadline: 101 })).toBe(100);
  });

  it('sleeps, and stops sleeping when the signal aborts', async () => {
    await expect(sleep(1, undefined)).resolves.toBeUndefined();
    const controller = new AbortController();
    const pending = sleep(60_000, controller.signal);
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
  });
});
