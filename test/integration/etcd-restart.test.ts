/**
 * The etcd client while its etcd stops and restarts (same data directory and port,
 * test/support/etcd.ts `restart()`): a keep-alive rides through a restart shorter than the
 * lease's TTL, reports ETCD_LEASE_EXPIRED when etcd stays away longer, a watch fails with a
 * typed error, and unary calls work again once etcd is back.
 */
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createControlPlaneClientFactory } from 'omnirelay';
import type { IGrpcControlPlaneClientFactory } from 'omnirelay';
import { EtcdClient, EtcdError, type EtcdLeaseKeepAlive, type EtcdWatchEvent } from '../../dist/controlplane/leadership/etcd/index.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

let pki: TestPki;
let etcd: EtcdServer;
const factories: IGrpcControlPlaneClientFactory[] = [];
const clients: EtcdClient[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  etcd = await startEtcd({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile });
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.dispose();
  for (const f of factories.splice(0)) await f.dispose();
  if (!etcd.running) await etcd.start();
});

afterAll(async () => {
  await etcd?.close();
  await pki?.cleanup();
});

function etcdClient(): EtcdClient {
  const factory = createControlPlaneClientFactory({
    options: { profiles: { etcd: { http3: 'disable', tls: { mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile } } } },
  });
  factories.push(factory);
  const client = new EtcdClient(factory, { endpoints: [etcd.url] });
  clients.push(client);
  return client;
}

/** Resolves once the keep-alive has renewed `count` times in all; rejects if it stops first. */
function renewedTimes(keepAlive: EtcdLeaseKeepAlive, count: number, events: EventTarget): Promise<void> {
  if (keepAlive.renewals >= count) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onRenewed = (): void => {
      if (keepAlive.renewals < count) return;
      events.removeEventListener('renewed', onRenewed);
      resolve();
    };
    events.addEventListener('renewed', onRenewed);
    void keepAlive.done.then((lost) => {
      events.removeEventListener('renewed', onRenewed);
      reject(new Error(`the keep-alive stopped after ${keepAlive.renewals} renewals: ${lost?.message ?? 'closed'}`));
    });
  });
}

/** The first successful result of `call`, retried every 100 ms while it fails with ETCD_UNAVAILABLE, for at most `withinMs`. */
async function firstSuccess<T>(call: () => Promise<T>, withinMs: number): Promise<T> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof EtcdError) || error.code !== 'ETCD_UNAVAILABLE' || Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('etcd restarted mid-run', () => {
  it('a keep-alive rides through a restart shorter than the TTL: the lease and its key survive', async () => {
    const client = etcdClient();
    const lease = await client.leaseGrant(20);
    const key = '/omnirelay-test/restart/leader';
    expect((await client.createIfAbsent(key, 'node-a', lease.id)).created).toBe(true);
    const events = new EventTarget();
    const keepAlive = client.leaseKeepAlive(lease, { intervalMs: 200, onRenewed: () => events.dispatchEvent(new Event('renewed')) });
    await renewedTimes(keepAlive, 2, events);

    await etcd.restart();
    const before = keepAlive.renewals;
    // Renewed again after the restart: the keep-alive opened a new stream to the new process.
    await renewedTimes(keepAlive, before + 2, events);
    const ttl = await client.leaseTimeToLive(lease.id);
    expect(ttl.ttlSeconds).toBeGreaterThan(0);
    expect(ttl.keys).toEqual([key]);
    expect((await client.get(key)).kv?.lease).toBe(lease.id);
    await keepAlive.close();
    expect(await keepAlive.done).toBeUndefined();
    await client.leaseRevoke(lease.id);
  });

  it('etcd away for longer than the TTL: the keep-alive reports ETCD_LEASE_EXPIRED naming the lease', async () => {
    const client = etcdClient();
    const lease = await client.leaseGrant(2);
    const events = new EventTarget();
    const keepAlive = client.leaseKeepAlive(lease, { intervalMs: 200, onRenewed: () => events.dispatchEvent(new Event('renewed')) });
    await renewedTimes(keepAlive, 1, events);
    await etcd.stop();
    const lost = await keepAlive.done;
    expect(lost).toBeInstanceOf(EtcdError);
    expect(lost?.code).toBe('ETCD_LEASE_EXPIRED');
    expect(lost?.leaseId).toBe(lease.id);
    expect(lost?.message).toContain(lease.id.toString());
    await etcd.start();
  });

  it('a running watch fails with ETCD_UNAVAILABLE when etcd stops; calls fail typed while it is down and work once it is back', async () => {
    const client = etcdClient();
    const key = '/omnirelay-test/restart/watched';
    const { revision } = await client.get(key);
    const iterator = client.watch(key, { startRevision: revision + 1n })[Symbol.asyncIterator]();
    const first = iterator.next();
    await client.put(key, 'before');
    const step = await first;
    expect(step.done).toBe(false);
    expect((step.value as EtcdWatchEvent).kv.key).toBe(key);

    const failed = iterator.next().then(
      () => undefined,
      (error: unknown) => error,
    );
    await etcd.stop();
    const error = await failed;
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_UNAVAILABLE');
    expect((error as EtcdError).key).toBe(key);

    await expect(client.get(key, { deadlineMs: 1_000 })).rejects.toMatchObject({ code: 'ETCD_UNAVAILABLE', endpoint: `127.0.0.1:${etcd.clientPort}` });
    await etcd.start();
    // The HTTP/2 channel reconnects on its own backoff (grpc-js, at most the profile's
    // connectTimeoutMs, 1.5 s), so a call right after the restart may still fail fast, typed.
    // What a user relies on: calls fail only with ETCD_UNAVAILABLE and work again within a
    // few backoffs, without a new client.
    const after = await firstSuccess(() => client.get(key), 15_000);
    expect(new TextDecoder().decode(after.kv?.value)).toBe('before');
    expect(after.revision >= revision + 1n).toBe(true);
  });
});
