/**
 * What the etcd lease store adds to the ILeaseStore contract (which
 * lease-store-contract.test.ts checks), on a real etcd (test/support/etcd.ts, mTLS): validated
 * options, terms that come from etcd even across store instances, the keys it writes, typed
 * errors when etcd is unreachable or presents an untrusted certificate (the EtcdError kept as
 * the cause), and a scope watch that rides through an etcd restart.
 */
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ConfigError,
  createControlPlaneClientFactory,
  ETCD_LEASE_STORE_DEFAULTS,
  EtcdLeaseStore,
  LeaseStoreUnavailableError,
  resolveEtcdLeaseStoreOptions,
  type IGrpcControlPlaneClientFactory,
  type LeaderRecord,
} from 'omnirelay';
import { EtcdClient, EtcdError } from '../../dist/controlplane/leadership/etcd/index.js';
import { freePort, startEtcd, type EtcdServer } from '../support/etcd.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

let pki: TestPki;
let etcd: EtcdServer;
const factories: IGrpcControlPlaneClientFactory[] = [];
const stores: EtcdLeaseStore[] = [];
const PREFIX = '/omnirelay-test/etcd-store/';

beforeAll(async () => {
  pki = await createTestPki();
  etcd = await startEtcd({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile });
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.dispose();
  for (const f of factories.splice(0)) await f.dispose();
  if (!etcd.running) await etcd.start();
});

afterAll(async () => {
  await etcd?.close();
  await pki?.cleanup();
});

function factory(tls: { certFile: string; keyFile: string; caFile: string } = { certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile }): IGrpcControlPlaneClientFactory {
  const f = createControlPlaneClientFactory({ options: { profiles: { etcd: { http3: 'disable', connectTimeoutMs: 1_000, tls: { mode: 'mtls', ...tls } } } } });
  factories.push(f);
  return f;
}

function etcdStore(options: { endpoints?: string[]; watchRetries?: number; tls?: { certFile: string; keyFile: string; caFile: string } } = {}): EtcdLeaseStore {
  const store = new EtcdLeaseStore(factory(options.tls), { endpoints: options.endpoints ?? [etcd.url], prefix: PREFIX, watchRetries: options.watchRetries, watchRetryInitialMs: 50, watchRetryMaxMs: 200 });
  stores.push(store);
  return store;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function eventually(done: () => boolean, limitMs = 30_000): Promise<boolean> {
  for (let waited = 0; !done() && waited < limitMs; waited += 20) await pause(20);
  return done();
}

describe('EtcdLeaseStore options', () => {
  it('applies the defaults and names every bad key in one ConfigError', () => {
    expect(resolveEtcdLeaseStoreOptions({ endpoints: ['https://127.0.0.1:2379'] })).toEqual({ endpoints: ['https://127.0.0.1:2379'], ...ETCD_LEASE_STORE_DEFAULTS });
    let error: unknown;
    try {
      resolveEtcdLeaseStoreOptions({ endpoints: [], prefix: 'no-slash', watchRetries: -1, electionAttempts: 0, bogus: 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key).sort()).toEqual(['bogus', 'electionAttempts', 'endpoints', 'prefix', 'watchRetries']);
    expect(() => resolveEtcdLeaseStoreOptions({})).toThrow(/endpoints: is required/);
    expect(() => resolveEtcdLeaseStoreOptions({ endpoints: ['e'], watchRetryInitialMs: 500, watchRetryMaxMs: 100 })).toThrow(/watchRetryMaxMs/);
    expect(() => new EtcdLeaseStore(factory(), { endpoints: ['e'], prefix: '/a b/' })).toThrow(ConfigError);
  });
});

describe('EtcdLeaseStore on etcd', () => {
  it('keeps its keys under the prefix: the leader key on the lease, the term key whose version is the term, fenced data', async () => {
    const store = etcdStore();
    const lease = await store.grant(5_000);
    const created = await store.createLeader('layout', 'node-a', lease.leaseId);
    if (!created.acquired) throw new Error('expected to acquire');
    await store.fencedPut('layout', created.record.fenceToken, 'layout/owner', 'node-a');
    const client = new EtcdClient(factories[0]!, { endpoints: [etcd.url] });
    try {
      const leader = (await client.get(`${PREFIX}scopes/layout/leader`)).kv!;
      expect(JSON.parse(new TextDecoder().decode(leader.value))).toEqual({ leaderId: 'node-a', term: 1 });
      expect(leader.lease.toString()).toBe(lease.leaseId);
      expect(leader.createRevision).toBe(created.record.fenceToken);
      const term = (await client.get(`${PREFIX}scopes/layout/term`)).kv!;
      expect(term.version).toBe(1n);
      expect(term.lease).toBe(0n);
      expect(term.modRevision).toBe(leader.createRevision);
      expect(new TextDecoder().decode((await client.get(`${PREFIX}data/layout/owner`)).kv!.value)).toBe('node-a');
    } finally {
      await client.dispose();
      await store.revoke(lease.leaseId);
    }
  });

  it('takes terms from etcd: a store that never saw the scope still elects with the next term (its guarded txn retries)', async () => {
    const first = etcdStore();
    const second = etcdStore();
    for (let i = 0; i < 3; i++) {
      const lease = await first.grant(5_000);
      const created = await first.createLeader('terms', 'node-a', lease.leaseId);
      expect(created.acquired && created.record.term).toBe(i + 1);
      await first.revoke(lease.leaseId);
    }
    const lease = await second.grant(5_000);
    const created = await second.createLeader('terms', 'node-b', lease.leaseId);
    expect(created.acquired && created.record.term).toBe(4);
    // And the first store, whose guess is now stale, reads the holder with its term.
    const other = await first.grant(5_000);
    const lost = await first.createLeader('terms', 'node-a', other.leaseId);
    expect(lost.acquired ? undefined : lost.current).toMatchObject({ leaderId: 'node-b', term: 4 });
    await first.revoke(other.leaseId);
    await second.revoke(lease.leaseId);
  });

  it('etcd unreachable: every call rejects with LeaseStoreUnavailableError (cause: EtcdError ETCD_UNAVAILABLE); the watch errors after its retries', async () => {
    const port = await freePort();
    const store = etcdStore({ endpoints: [`https://127.0.0.1:${port}`], watchRetries: 1 });
    expect(store.name).toBe(`etcd://127.0.0.1:${port}`);
    for (const call of [store.grant(1_000), store.get('down'), store.keepAlive('7'), store.fencedPut('down', 5n, 'k', 'v'), store.read('k')]) {
      const error = await rejection(call);
      expect(error).toBeInstanceOf(LeaseStoreUnavailableError);
      expect(error).toMatchObject({ code: 'LEADERSHIP_STORE_UNAVAILABLE', store: store.name });
      expect((error as Error).cause).toBeInstanceOf(EtcdError);
      expect((error as Error).cause).toMatchObject({ code: 'ETCD_UNAVAILABLE' });
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    }
    const errors: unknown[] = [];
    const subscription = store.watch('down').subscribe({ error: (e: unknown) => errors.push(e) });
    expect(await eventually(() => errors.length === 1)).toBe(true);
    subscription.unsubscribe();
    expect(errors[0]).toBeInstanceOf(LeaseStoreUnavailableError);
  });

  it('etcd presenting a certificate we do not trust: LeaseStoreUnavailableError (cause: ETCD_TLS_FAILED, TLS_PEER_UNTRUSTED); nothing is written', async () => {
    const store = etcdStore({ tls: { certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.otherCaFile } });
    const error = await rejection(store.grant(1_000));
    expect(error).toBeInstanceOf(LeaseStoreUnavailableError);
    expect((error as Error).cause).toMatchObject({ code: 'ETCD_TLS_FAILED', tlsCode: 'TLS_PEER_UNTRUSTED' });
    // Our certificate not trusted by etcd: refused too.
    const refused = etcdStore({ tls: { certFile: pki.untrustedClient.certFile, keyFile: pki.untrustedClient.keyFile, caFile: pki.caFile } });
    const refusal = await rejection(refused.createLeader('tls', 'node-x', '7'));
    expect(refusal).toBeInstanceOf(LeaseStoreUnavailableError);
    expect((refusal as Error).cause).toMatchObject({ code: 'ETCD_TLS_FAILED' });
    expect(await etcdStore().get('tls')).toBeUndefined();
  });

  it('a scope watch rides through an etcd restart: re-opened from the last revision + 1, it reports what happened after', async () => {
    const watcher = etcdStore({ watchRetries: 1_000 });
    const seen: (LeaderRecord | undefined)[] = [];
    const errors: unknown[] = [];
    const subscription = watcher.watch('restart').subscribe({ next: (r) => seen.push(r), error: (e: unknown) => errors.push(e) });
    try {
      const writer = etcdStore();
      const lease = await writer.grant(10_000);
      const created = await writer.createLeader('restart', 'node-a', lease.leaseId);
      if (!created.acquired) throw new Error('expected to acquire');
      expect(await eventually(() => seen.length === 2)).toBe(true);
      await etcd.restart();
      // The lease survived the restart (etcd restores leases); revoking it is seen by the re-opened watch.
      await writer.revoke(lease.leaseId);
      const next = await writer.grant(10_000);
      const again = await writer.createLeader('restart', 'node-b', next.leaseId);
      expect(await eventually(() => seen.length === 4)).toBe(true);
      expect(seen.map((r) => r?.leaderId)).toEqual([undefined, 'node-a', undefined, 'node-b']);
      expect(again.acquired && seen[3]?.fenceToken === again.record.fenceToken).toBe(true);
      expect(errors).toEqual([]);
      await writer.revoke(next.leaseId);
    } finally {
      subscription.unsubscribe();
    }
  });
});
