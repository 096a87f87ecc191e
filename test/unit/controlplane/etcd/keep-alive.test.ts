import { describe, expect, it } from '@jest/globals';
import { EtcdError } from '../../../../src/controlplane/leadership/etcd/errors.js';
import { EtcdLeaseKeepAlive, type KeepAliveDeps } from '../../../../src/controlplane/leadership/etcd/keep-alive.js';
import { RequestQueue } from '../../../../src/controlplane/leadership/etcd/request-queue.js';
import { RpcError } from '../../../../src/errors.js';
import type { BidiStream } from '../../../../src/factory/types.js';
import type { LeaseKeepAliveRequest, LeaseKeepAliveResponse } from '../../../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

const LEASE = 0x694d86964eed4618n;

/** Time that moves only when the test says so; `sleep` resolves when its moment comes. */
class FakeTime {
  now = 1_000_000;
  readonly #timers: { at: number; resolve: () => void }[] = [];
  readonly clock = { now: () => this.now };
  readonly sleep = (ms: number, signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new Error('aborted'));
      const timer = { at: this.now + ms, resolve };
      this.#timers.push(timer);
      signal.addEventListener('abort', () => {
        this.#timers.splice(this.#timers.indexOf(timer), 1);
        reject(new Error('aborted'));
      }, { once: true });
    });

  /** Moves the clock forward `ms`, firing due timers in order and letting their work run. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.now = Math.max(this.now, due.at);
      due.resolve();
    }
    this.now = end;
    await settle();
  }

  get pending(): number {
    return this.#timers.length;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** One LeaseKeepAlive stream the fake factory opened: it records requests and answers as told. */
class FakeStream {
  readonly requests: bigint[] = [];
  readonly #responses = new RequestQueue<LeaseKeepAliveResponse | Error>();
  ended = false;

  constructor(requests: AsyncIterable<LeaseKeepAliveRequest>, readonly signal: AbortSignal) {
    void (async () => {
      for await (const request of requests) this.requests.push(request.ID);
    })();
    signal.addEventListener('abort', () => this.#responses.end());
  }

  answer(ttl: bigint): void {
    this.#responses.push({ header: undefined, ID: LEASE, TTL: ttl });
  }

  fail(error: Error): void {
    this.#responses.push(error);
  }

  stream(): BidiStream<LeaseKeepAliveResponse> {
    const responses = this.#responses;
    const markEnded = (): void => {
      this.ended = true;
    };
    return {
      headers: Promise.resolve(undefined),
      trailers: Promise.resolve({}),
      async *[Symbol.asyncIterator]() {
        try {
          for await (const item of responses) {
            if (item instanceof Error) throw item;
            yield item;
          }
        } finally {
          markEnded();
        }
      },
    };
  }
}

function setup(ttlSeconds = 3, intervalMs?: number) {
  const time = new FakeTime();
  const streams: FakeStream[] = [];
  const deps: KeepAliveDeps = {
    open: (requests, signal) => {
      const stream = new FakeStream(requests, signal);
      streams.push(stream);
      return stream.stream();
    },
    mapError: (error) => (error instanceof RpcError && error.statusName === 'NOT_FOUND' ? new EtcdError('ETCD_LEASE_NOT_FOUND', 'gone', { operation: 'LeaseKeepAlive', endpoint: 'e:1', leaseId: LEASE }) : error),
    endpoints: ['https://e:1'],
    clock: time.clock,
    random: () => 0.5,
    sleep: time.sleep,
  };
  const renewed: number[] = [];
  const keepAlive = new EtcdLeaseKeepAlive(deps, LEASE, ttlSeconds, time.now + ttlSeconds * 1000, { intervalMs, onRenewed: (ttl) => renewed.push(ttl) });
  return { time, streams, keepAlive, renewed };
}

describe('EtcdLeaseKeepAlive', () => {
  it('sends a request every third of the TTL and moves the expiry to (request sent + TTL) on each answer', async () => {
    const { time, streams, keepAlive, renewed } = setup(3);
    await time.advance(0);
    expect(streams).toHaveLength(1);
    expect(streams[0]!.requests).toEqual([LEASE]);
    const sentAt = time.now;
    await time.advance(50);
    streams[0]!.answer(3n);
    await time.advance(0);
    expect(keepAlive.expiresAt).toBe(sentAt + 3000);
    expect(renewed).toEqual([3]);
    await time.advance(950); // 1000 ms after the first request
    expect(streams[0]!.requests).toHaveLength(2);
    await keepAlive.close();
    expect(await keepAlive.done).toBeUndefined();
    expect(streams[0]!.ended).toBe(true);
    expect(time.pending).toBe(0);
  });

  it('TTL 0 in an answer: lost with ETCD_LEASE_NOT_FOUND naming the lease', async () => {
    const { time, streams, keepAlive } = setup(3);
    await time.advance(0);
    streams[0]!.answer(0n);
    const lost = await keepAlive.done;
    expect(lost).toMatchObject({ code: 'ETCD_LEASE_NOT_FOUND', leaseId: LEASE, operation: 'LeaseKeepAlive' });
    expect(lost?.message).toContain(LEASE.toString());
    expect(time.pending).toBe(0);
  });

  it('a failed stream is reopened after a backoff and renewals go on', async () => {
    const { time, streams, keepAlive, renewed } = setup(3);
    await time.advance(0);
    streams[0]!.fail(new RpcError(14, 'UNAVAILABLE', 'Connection dropped', { endpoint: 'e:1', protocol: 'h2' }));
    await time.advance(0);
    expect(streams[0]!.ended).toBe(true);
    await time.advance(150); // the first backoff is 100 ms (± jitter; 0.5 means none)
    expect(streams).toHaveLength(2);
    streams[1]!.answer(3n);
    await time.advance(0);
    expect(renewed).toEqual([3]);
    await keepAlive.close();
  });

  it('no answer before the expiry: lost with ETCD_LEASE_EXPIRED, even while the stream stays open', async () => {
    const { time, streams, keepAlive } = setup(3, 500);
    await time.advance(0);
    streams[0]!.answer(3n);
    await time.advance(2999);
    expect(await Promise.race([keepAlive.done.then(() => 'done'), Promise.resolve('running')])).toBe('running');
    await time.advance(1);
    const lost = await keepAlive.done;
    expect(lost).toMatchObject({ code: 'ETCD_LEASE_EXPIRED', leaseId: LEASE });
    expect(streams[0]!.ended).toBe(true);
    expect(time.pending).toBe(0);
  });

  it('a stream that keeps failing: lost with ETCD_LEASE_EXPIRED when the TTL has run out', async () => {
    const { time, streams, keepAlive } = setup(2);
    // Every stream fails at once (as a member that refuses connections would); the backoff
    // grows (100, 200, 400, 800 ms, capped by the expiry) until the 2 s TTL has run out.
    for (let opened = 0; time.now < 1_000_000 + 2_000; ) {
      await time.advance(0);
      if (streams.length > opened) {
        opened = streams.length;
        streams[opened - 1]!.fail(new RpcError(14, 'UNAVAILABLE', 'No connection established', { endpoint: 'e:1', protocol: 'none', failure: 'connect' }));
      }
      await time.advance(50);
    }
    const lost = await keepAlive.done;
    expect(lost?.code).toBe('ETCD_LEASE_EXPIRED');
    expect(lost?.cause).toBeInstanceOf(RpcError);
    expect(streams.length).toBeGreaterThan(2);
    expect(time.pending).toBe(0);
  });
});
