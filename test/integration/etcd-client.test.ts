/**
 * The typed etcd client (src/controlplane/leadership/etcd/, internal: imported from dist/)
 * against a real etcd 3.4 (Debian's etcd-server, test/support/etcd.ts) with client-certificate
 * authentication, every call through the control-plane client factory over HTTP/2.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError, createControlPlaneClientFactory } from 'omnirelay';
import type { IGrpcControlPlaneClientFactory, ProfileOptionsInput } from 'omnirelay';
import { EtcdClient, EtcdError, type EtcdLeaseKeepAlive, type EtcdWatchEvent } from '../../dist/controlplane/leadership/etcd/index.js';
import { freePort, startEtcd, type EtcdServer } from '../support/etcd.js';
import { silentTcp } from '../support/grpc-go.js';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';

const execFileAsync = promisify(execFile);

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
});

afterAll(async () => {
  await etcd?.close();
  await pki?.cleanup();
});

type Tls = NonNullable<ProfileOptionsInput['tls']>;

function mtls(client: Pick<Files, 'certFile' | 'keyFile'> = pki.client, caFile = pki.caFile): Tls {
  return { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile };
}

/** A factory with an `etcd` profile (HTTP/2 only) and an EtcdClient over it, both disposed after the test. */
function etcdClient(options: { tls?: Tls; endpoints?: string[]; profile?: ProfileOptionsInput } = {}): EtcdClient {
  const factory = createControlPlaneClientFactory({ options: { profiles: { etcd: { http3: 'disable', tls: options.tls ?? mtls(), ...options.profile } } } });
  factories.push(factory);
  const client = new EtcdClient(factory, { endpoints: options.endpoints ?? [etcd.url] });
  clients.push(client);
  return client;
}

let keys = 0;
/** A key no other test uses (the suite shares one etcd). */
function uniqueKey(name: string): string {
  return `/omnirelay-test/${name}/${++keys}`;
}

/** Counts renewals through the keep-alive's `onRenewed`; `reached(n)` fails if the keep-alive stops first. */
function renewalCounter(): { onRenewed: () => void; reached: (keepAlive: EtcdLeaseKeepAlive, count: number) => Promise<void> } {
  let renewed = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  return {
    onRenewed: () => {
      renewed++;
      for (const waiter of waiters.filter((w) => renewed >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    reached: (keepAlive, count) =>
      renewed >= count
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiters.push({ count, resolve })),
            keepAlive.done.then((lost) => {
              if (renewed < count) throw new Error(`the keep-alive stopped after ${renewed} renewals: ${lost?.message ?? 'closed'}`);
            }),
          ]),
  };
}

async function etcdctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('etcdctl', ['--endpoints', etcd.url, '--cacert', pki.caFile, '--cert', pki.client.certFile, '--key', pki.client.keyFile, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('leases', () => {
  it('grants a lease whose 63-bit id survives the round trip, keeps it alive past its TTL, and revokes it with its keys', async () => {
    const client = etcdClient();
    const lease = await client.leaseGrant(3);
    expect(typeof lease.id).toBe('bigint');
    expect(lease.ttlSeconds).toBe(3);
    // etcdctl prints lease ids in hex: the same id, every bit of it (ids are above 2^53).
    const listed = await etcdctl('lease', 'list');
    expect(listed).toContain(lease.id.toString(16));

    const key = uniqueKey('lease');
    await client.put(key, 'held', { lease: lease.id });
    const counter = renewalCounter();
    const keepAlive = client.leaseKeepAlive(lease, { intervalMs: 300, onRenewed: counter.onRenewed });
    // 12 renewals 300 ms apart span more than the 3 s TTL: only the keep-alive kept the lease.
    await counter.reached(keepAlive, 12);
    const ttl = await client.leaseTimeToLive(lease.id);
    expect(ttl.id).toBe(lease.id);
    expect(ttl.ttlSeconds).toBeGreaterThan(0);
    expect(ttl.grantedTtlSeconds).toBe(3);
    expect(ttl.keys).toEqual([key]);
    expect((await client.get(key)).kv?.lease).toBe(lease.id);

    await client.leaseRevoke(lease.id);
    expect((await client.get(key)).kv).toBeUndefined();
    // The next keep-alive answer says TTL 0: the keep-alive reports the loss, naming the lease.
    const lost = await keepAlive.done;
    expect(lost).toBeInstanceOf(EtcdError);
    expect(lost?.code).toBe('ETCD_LEASE_NOT_FOUND');
    expect(lost?.leaseId).toBe(lease.id);
    expect(lost?.message).toContain(lease.id.toString());

    const again = await rejection(client.leaseRevoke(lease.id));
    expect(again).toBeInstanceOf(EtcdError);
    expect((again as EtcdError).code).toBe('ETCD_LEASE_NOT_FOUND');
    expect((again as EtcdError).leaseId).toBe(lease.id);
    expect((again as EtcdError).endpoint).toBe(`127.0.0.1:${etcd.clientPort}`);
    expect((again as EtcdError).message).toContain(`lease ${lease.id.toString()}`);
  });

  it('close() stops the keep-alive without a loss; dispose() stops the ones still running', async () => {
    const client = etcdClient();
    const counter = renewalCounter();
    const a = client.leaseKeepAlive(await client.leaseGrant(5), { onRenewed: counter.onRenewed });
    const b = client.leaseKeepAlive(await client.leaseGrant(5));
    await counter.reached(a, 1);
    await a.close();
    expect(await a.done).toBeUndefined();
    await client.dispose();
    expect(await b.done).toBeUndefined();
    await expect(client.leaseGrant(5)).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});

describe('create-if-absent (the election transaction)', () => {
  it('wins once; a second caller with another lease and another client certificate loses and sees the holder', async () => {
    const first = etcdClient();
    const second = etcdClient({ tls: mtls(pki.client2) });
    const leaseA = await first.leaseGrant(10);
    const leaseB = await second.leaseGrant(10);
    const key = uniqueKey('election');

    const won = await first.createIfAbsent(key, 'node-a', leaseA.id);
    expect(won.created).toBe(true);
    expect(won.kv.createRevision).toBe(won.revision);
    expect(won.kv.lease).toBe(leaseA.id);

    const lost = await second.createIfAbsent(key, 'node-b', leaseB.id);
    expect(lost.created).toBe(false);
    expect(lost.kv.lease).toBe(leaseA.id);
    expect(new TextDecoder().decode(lost.kv.value)).toBe('node-a');
    expect(lost.kv.createRevision).toBe(won.revision);

    // Both at once on a fresh key: exactly one creates it.
    const race = uniqueKey('election-race');
    const results = await Promise.all([first.createIfAbsent(race, 'node-a', leaseA.id), second.createIfAbsent(race, 'node-b', leaseB.id)]);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const holder = results.find((r) => r.created)!.kv.lease;
    expect(results.every((r) => r.kv.lease === holder)).toBe(true);

    await first.leaseRevoke(leaseA.id);
    await second.leaseRevoke(leaseB.id);
  });

  it("the key's create revision increases from one term to the next", async () => {
    const client = etcdClient();
    const key = uniqueKey('terms');
    const revisions: bigint[] = [];
    for (let term = 0; term < 3; term++) {
      const lease = await client.leaseGrant(10);
      const result = await client.createIfAbsent(key, `term-${term}`, lease.id);
      expect(result.created).toBe(true);
      expect((await client.get(key)).kv?.createRevision).toBe(result.kv.createRevision);
      revisions.push(result.kv.createRevision);
      // The term ends: revoking the lease deletes the key, so the next term can create it.
      await client.leaseRevoke(lease.id);
      expect((await client.get(key)).kv).toBeUndefined();
    }
    expect(revisions[1]! > revisions[0]!).toBe(true);
    expect(revisions[2]! > revisions[1]!).toBe(true);
  });
});

describe('watch', () => {
  it('sees a put and a delete of the key, then ends when the loop is left', async () => {
    const client = etcdClient();
    const key = uniqueKey('watch');
    const { revision } = await client.get(key);
    const events: EtcdWatchEvent[] = [];
    // From the next revision on: the events are replayed however late the stream opens.
    const watching = (async () => {
      for await (const event of client.watch(key, { startRevision: revision + 1n, prevKv: true })) {
        events.push(event);
        if (events.length === 2) break;
      }
    })();
    const put = await client.put(key, 'v1');
    const removed = await client.delete(key);
    await watching;
    expect(removed.deleted).toBe(1n);
    expect(events.map((e) => e.type)).toEqual(['put', 'delete']);
    expect(events[0]!.kv.key).toBe(key);
    expect(new TextDecoder().decode(events[0]!.kv.value)).toBe('v1');
    expect(events[0]!.kv.modRevision).toBe(put.revision);
    expect(events[1]!.kv.modRevision).toBe(removed.revision);
    expect(new TextDecoder().decode(events[1]!.prevKv!.value)).toBe('v1');
  });

  it('watches a prefix and ends quietly when its signal aborts', async () => {
    const client = etcdClient();
    const prefix = uniqueKey('watch-prefix');
    const { revision } = await client.get(prefix);
    const controller = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const event of client.watch(`${prefix}/`, { prefix: true, startRevision: revision + 1n, signal: controller.signal })) {
        seen.push(event.kv.key);
        if (seen.length === 2) controller.abort();
      }
    })();
    await client.put(`${prefix}/a`, '1');
    await client.put(`${prefix}-outside`, 'x');
    await client.put(`${prefix}/b`, '2');
    await watching;
    expect(seen).toEqual([`${prefix}/a`, `${prefix}/b`]);
  });
});

describe('watch from compacted history', () => {
  it('a startRevision etcd has compacted: ETCD_COMPACTED naming the key and the oldest revision left', async () => {
    const client = etcdClient();
    const key = uniqueKey('compacted');
    const first = await client.put(key, 'v1');
    const last = await client.put(key, 'v2');
    await etcdctl('compact', last.revision.toString());
    const error = await (async () => {
      try {
        for await (const event of client.watch(key, { startRevision: first.revision })) throw new Error(`unexpected event ${event.type}`);
      } catch (e) {
        return e;
      }
      throw new Error('the watch ended without an error');
    })();
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_COMPACTED');
    expect((error as EtcdError).key).toBe(key);
    expect((error as EtcdError).compactRevision).toBe(last.revision);
  });
});

describe('failures are typed and name the endpoint', () => {
  it('etcd unreachable (nothing listens): ETCD_UNAVAILABLE naming the endpoint, within the deadline', async () => {
    const port = await freePort();
    const client = etcdClient({ endpoints: [`https://127.0.0.1:${port}`], profile: { deadlineMs: 1_000 } });
    const error = await rejection(client.leaseGrant(5));
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_UNAVAILABLE');
    expect((error as EtcdError).endpoint).toBe(`127.0.0.1:${port}`);
    expect((error as EtcdError).operation).toBe('LeaseGrant');
  });

  it('etcd accepts TCP but never answers: ETCD_DEADLINE_EXCEEDED naming the endpoint when the deadline ends', async () => {
    const silent = await silentTcp();
    try {
      const client = etcdClient({ endpoints: [`https://127.0.0.1:${silent.port}`], profile: { deadlineMs: 800, connectTimeoutMs: 800 } });
      const error = await rejection(client.get(uniqueKey('silent')));
      expect(error).toBeInstanceOf(EtcdError);
      expect((error as EtcdError).code).toBe('ETCD_DEADLINE_EXCEEDED');
      expect((error as EtcdError).endpoint).toBe(`127.0.0.1:${silent.port}`);
      expect((error as EtcdError).key).toContain('/omnirelay-test/silent/');
    } finally {
      await silent.close();
    }
  });

  it("etcd's certificate does not chain to our CA: ETCD_TLS_FAILED (TLS_PEER_UNTRUSTED)", async () => {
    const client = etcdClient({ tls: mtls(pki.client, pki.otherCaFile) });
    const error = await rejection(client.get(uniqueKey('untrusted')));
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_TLS_FAILED');
    expect((error as EtcdError).tlsCode).toBe('TLS_PEER_UNTRUSTED');
    expect((error as EtcdError).endpoint).toContain(`${etcd.clientPort}`);
  });

  it('no client certificate: etcd refuses us, ETCD_TLS_FAILED (TLS_CLIENT_CERT_REQUIRED)', async () => {
    const client = etcdClient({ tls: { mode: 'tls', caFile: pki.caFile } });
    const error = await rejection(client.leaseGrant(5));
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_TLS_FAILED');
    expect((error as EtcdError).tlsCode).toBe('TLS_CLIENT_CERT_REQUIRED');
    expect((error as EtcdError).endpoint).toContain(`${etcd.clientPort}`);
  });

  it('a client certificate from another CA: etcd refuses us, ETCD_TLS_FAILED (TLS_CLIENT_CERT_REJECTED)', async () => {
    const client = etcdClient({ tls: mtls(pki.untrustedClient) });
    const error = await rejection(client.leaseGrant(5));
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_TLS_FAILED');
    expect((error as EtcdError).tlsCode).toBe('TLS_CLIENT_CERT_REJECTED');
  });

  it('refuses a profile that would race HTTP/3 against etcd, naming the key', () => {
    const factory = createControlPlaneClientFactory({ options: { profiles: { etcd: { tls: mtls() } } } });
    factories.push(factory);
    expect(() => new EtcdClient(factory, { endpoints: [etcd.url] })).toThrow(ConfigError);
    expect(() => new EtcdClient(factory, { endpoints: [etcd.url] })).toThrow(/profiles\.etcd\.http3: must be 'disable'/);
    expect(() => new EtcdClient(factory, { endpoints: [etcd.url], profile: 'nope' })).toThrow(/profiles\.nope: is not defined/);
  });
});
