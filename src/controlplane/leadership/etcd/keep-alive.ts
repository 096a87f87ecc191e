import type { Clock } from '../../../clock.js';
import type { BidiStream } from '../../../factory/types.js';
import type { LeaseKeepAliveRequest, LeaseKeepAliveResponse } from '../../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { backoffDelay, type RandomSource } from '../../../resilience/retry.js';
import { EtcdError, leaseText } from './errors.js';
import { RequestQueue } from './request-queue.js';

/** What a keep-alive needs from its client (the client builds it; nothing else should). */
export interface KeepAliveDeps {
  /** Opens one `Lease/LeaseKeepAlive` stream through the factory (no deadline, ended by `signal`). */
  readonly open: (requests: AsyncIterable<LeaseKeepAliveRequest>, signal: AbortSignal) => BidiStream<LeaseKeepAliveResponse>;
  /** Maps a failed stream to an EtcdError (the client's `toEtcdError` with the call's context). */
  readonly mapError: (error: unknown) => unknown;
  /** The configured endpoints, named when the stream ends without saying which member failed. */
  readonly endpoints: readonly string[];
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface EtcdKeepAliveOptions {
  /**
   * How often a keep-alive request is sent (ms). Default: a third of the lease's TTL (what
   * etcd's own clientv3 does), at least 100 ms.
   */
  readonly intervalMs?: number | undefined;
  /** Called after each renewal with the TTL etcd granted (s). A throwing listener is ignored. */
  readonly onRenewed?: ((ttlSeconds: number) => void) | undefined;
}

/** Backoff between two keep-alive streams after a failure (capped by the lease's expiry). */
const STREAM_BACKOFF = { initialBackoffMs: 100, maxBackoffMs: 2_000, multiplier: 2, jitter: 0.2 };

/**
 * Keeps one etcd lease alive over a `LeaseKeepAlive` bidi stream: a request every
 * `intervalMs`, each answer moving the lease's expiry to (when that request was sent + the TTL
 * etcd answered). When the stream fails (etcd restarted, a connection reset) it opens a new
 * one after a short backoff, for as long as the lease has not expired by the client's own
 * clock. `done` resolves with why the lease is lost — `ETCD_LEASE_NOT_FOUND` (etcd answered
 * TTL 0 or "requested lease not found": revoked or expired there) or `ETCD_LEASE_EXPIRED`
 * (no renewal before the expiry: the caller must treat the lease as gone even if etcd might
 * still hold it) — or with `undefined` after `close()`. It never rejects.
 *
 * Owned by the EtcdClient that made it: `client.dispose()` closes it; `close()` ends the
 * loop, its stream and its timer, and resolves once they have stopped.
 */
export class EtcdLeaseKeepAlive {
  readonly leaseId: bigint;
  /** Resolves once the keep-alive has stopped: with the loss, or undefined after `close()`. Never rejects. */
  readonly done: Promise<EtcdError | undefined>;
  readonly #deps: KeepAliveDeps;
  readonly #options: EtcdKeepAliveOptions;
  readonly #controller = new AbortController();
  #ttlSeconds: number;
  #expiresAt: number;
  #renewals = 0;
  /** Why the last stream failed, until a renewal succeeds: the cause of an expiry. */
  #lastFailure: unknown;

  /** `expiresAt`: the client's clock time by which the lease expires unless renewed. */
  constructor(deps: KeepAliveDeps, leaseId: bigint, ttlSeconds: number, expiresAt: number, options: EtcdKeepAliveOptions = {}) {
    this.#deps = deps;
    this.#options = options;
    this.leaseId = leaseId;
    this.#ttlSeconds = ttlSeconds;
    this.#expiresAt = expiresAt;
    this.done = this.#run().catch((error: unknown) => this.#lost('ETCD_UNAVAILABLE', `the keep-alive of lease ${leaseText(leaseId)} stopped: ${String(error)}`, error));
  }

  /** The TTL etcd granted on the last renewal (s). */
  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /** Renewals so far. */
  get renewals(): number {
    return this.#renewals;
  }

  /** When the lease expires unless renewed, on the client's clock (ms). */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Stops renewing (the lease then expires after its TTL unless revoked) and resolves once the stream and the timer have stopped. */
  async close(): Promise<void> {
    this.#controller.abort();
    await this.done;
  }

  async #run(): Promise<EtcdError | undefined> {
    const signal = this.#controller.signal;
    let failures = 0;
    while (!signal.aborted) {
      if (this.#deps.clock.now() >= this.#expiresAt) return this.#expired();
      const outcome = await this.#attempt(signal);
      if (signal.aborted) return undefined;
      if (outcome.lost !== undefined) return outcome.lost;
      failures = outcome.renewed ? 1 : failures + 1;
      this.#lastFailure = outcome.error;
      const untilExpiry = Math.max(0, this.#expiresAt - this.#deps.clock.now());
      try {
        await this.#deps.sleep(Math.min(backoffDelay(failures, STREAM_BACKOFF, this.#deps.random), untilExpiry), signal);
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** One stream: until it fails, the lease is lost, or the keep-alive is closed. */
  async #attempt(signal: AbortSignal): Promise<{ readonly renewed: boolean; readonly lost?: EtcdError | undefined; readonly error?: unknown }> {
    const attempt = new AbortController();
    const onAbort = (): void => attempt.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const queue = new RequestQueue<LeaseKeepAliveRequest>();
    const sentAt: number[] = [];
    let lastSent = 0;
    const send = (): void => {
      lastSent = this.#deps.clock.now();
      sentAt.push(lastSent);
      queue.push({ ID: this.leaseId });
    };
    let lost: EtcdError | undefined;
    let renewed = false;
    send();
    const ticker = this.#tick(attempt.signal, () => lastSent, send, () => {
      lost = this.#expired();
      attempt.abort();
    });
    try {
      for await (const response of this.#deps.open(queue, attempt.signal)) {
        const sent = sentAt.shift() ?? this.#deps.clock.now();
        if (response.TTL <= 0n) {
          lost = this.#lost('ETCD_LEASE_NOT_FOUND', `etcd no longer knows lease ${leaseText(this.leaseId)} (the keep-alive answered TTL ${response.TTL.toString()}): it expired or was revoked`, undefined);
          return { renewed, lost };
        }
        this.#ttlSeconds = Number(response.TTL);
        this.#expiresAt = sent + this.#ttlSeconds * 1000;
        this.#renewals++;
        this.#lastFailure = undefined;
        renewed = true;
        try {
          this.#options.onRenewed?.(this.#ttlSeconds);
        } catch {
          // A throwing listener must not stop the keep-alive.
        }
      }
      if (lost !== undefined) return { renewed, lost };
      return { renewed, error: new Error('etcd ended the keep-alive stream') };
    } catch (error) {
      if (lost !== undefined) return { renewed, lost };
      const mapped = this.#deps.mapError(error);
      if (mapped instanceof EtcdError && mapped.code === 'ETCD_LEASE_NOT_FOUND') return { renewed, lost: mapped };
      return { renewed, error: mapped };
    } finally {
      attempt.abort();
      queue.end();
      signal.removeEventListener('abort', onAbort);
      await ticker;
    }
  }

  /** Sends a request every interval and notices the expiry while the stream is quiet. */
  async #tick(signal: AbortSignal, lastSent: () => number, send: () => void, onExpired: () => void): Promise<void> {
    while (!signal.aborted) {
      const now = this.#deps.clock.now();
      if (now >= this.#expiresAt) {
        onExpired();
        return;
      }
      const interval = this.#options.intervalMs ?? Math.max(100, Math.floor((this.#ttlSeconds * 1000) / 3));
      const nextSend = lastSent() + interval;
      if (now >= nextSend) {
        send();
        continue;
      }
      try {
        await this.#deps.sleep(Math.min(nextSend, this.#expiresAt) - now, signal);
      } catch {
        return;
      }
    }
  }

  #expired(): EtcdError {
    const cause = this.#lastFailure;
    const reason = cause instanceof Error ? `: ${cause.message}` : '';
    return this.#lost('ETCD_LEASE_EXPIRED', `lease ${leaseText(this.leaseId)} was not renewed before its TTL (${this.#ttlSeconds} s) ran out${reason}`, cause);
  }

  #lost(code: 'ETCD_LEASE_NOT_FOUND' | 'ETCD_LEASE_EXPIRED' | 'ETCD_UNAVAILABLE', message: string, cause: unknown): EtcdError {
    const endpoint = cause instanceof EtcdError ? cause.endpoint : this.#deps.endpoints.join(', ');
    return new EtcdError(code, message, { operation: 'LeaseKeepAlive', endpoint, leaseId: this.leaseId, cause });
  }
}
