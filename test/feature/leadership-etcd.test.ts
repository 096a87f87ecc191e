/**
 * Feature tier: leader election on a real etcd (test/support/etcd.ts: Debian's etcd 3.4 on
 * 127.0.0.1, client certificates required, started and stopped here). Each node runs its own
 * EtcdLeaseStore (`etcdLeaseStoreModule`) over its own factory's `etcd` profile with its own
 * certificate. The scenarios of the embedded store (support/leadership-scenarios.ts), then
 * etcd's own: a node that cannot reach etcd or does not trust its certificate, and etcd
 * restarted mid-run under continuous fenced writes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseStoreUnavailableError, StaleFenceTokenError, writeDevPki } from 'omnirelay';
import { freePort } from '../support/etcd.js';
import { eventually, EtcdBackend, LeadershipCluster, type LeaderNode } from './support/leadership.js';
import { describeLeaderElection, IDS, SCOPES } from './support/leadership-scenarios.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describeLeaderElection('leader election among 5 nodes in one process on etcd 3.4 (mTLS, default timings)', () => new EtcdBackend());

describe('on etcd: a node that cannot reach etcd, or does not trust its certificate, never leads', () => {
  const backend = new EtcdBackend();
  const cluster = new LeadershipCluster({ scopes: ['global'] }, backend);
  let otherDir = '';

  beforeAll(async () => {
    otherDir = await mkdtemp(join(tmpdir(), 'omnirelay-other-ca-'));
    const other = await writeDevPki(otherDir, ['unused']);
    backend.overrides.set('unreachable', { endpoints: [`https://127.0.0.1:${await freePort()}`] });
    backend.overrides.set('untrusting', { caFile: other.caFile });
    await cluster.init(['unreachable', 'untrusting', 'healthy']);
  });

  afterAll(async () => {
    await cluster.close();
    if (otherDir !== '') await rm(otherDir, { recursive: true, force: true });
  });

  it('typed errors (the EtcdError as cause), no leadership without a lease; the healthy node leads', async () => {
    const unreachable = await cluster.start('unreachable');
    const untrusting = await cluster.start('untrusting');
    let claimed = false;
    const failedWatch = (node: LeaderNode): boolean => node.logs.some((l) => l.event === 'leadership.watch.failed');
    expect(
      await eventually(() => {
        claimed ||= unreachable.agent.isLeader('global') || untrusting.agent.isLeader('global');
        return failedWatch(unreachable) && failedWatch(untrusting);
      }),
    ).toBe(true);
    const unreachableError = await unreachable.store.grant(1_000).then(() => undefined, (e: unknown) => e);
    expect(unreachableError).toBeInstanceOf(LeaseStoreUnavailableError);
    expect((unreachableError as Error).cause).toMatchObject({ code: 'ETCD_UNAVAILABLE' });
    const untrustedError = await untrusting.store.grant(1_000).then(() => undefined, (e: unknown) => e);
    expect(untrustedError).toBeInstanceOf(LeaseStoreUnavailableError);
    expect((untrustedError as Error).cause).toMatchObject({ code: 'ETCD_TLS_FAILED', tlsCode: 'TLS_PEER_UNTRUSTED' });
    const watchFailure = untrusting.logs.find((l) => l.event === 'leadership.watch.failed')!;
    expect(String(watchFailure.fields['error'])).toContain('ETCD_TLS_FAILED');

    const healthy = await cluster.start('healthy');
    expect(
      await eventually(() => {
        claimed ||= unreachable.agent.isLeader('global') || untrusting.agent.isLeader('global');
        return healthy.agent.isLeader('global');
      }),
    ).toBe(true);
    expect(claimed).toBe(false);
    expect((await cluster.store.get('global'))?.leaderId).toBe('healthy');
    // The broken nodes never see a leader either: they have no view of etcd at all.
    expect(unreachable.agent.leader('global')).toBeUndefined();
    expect(untrusting.agent.leader('global')).toBeUndefined();
  });
});

interface Write {
  readonly scope: string;
  readonly node: string;
  readonly token: bigint;
  readonly revision: bigint;
}

describe('on etcd: etcd restarted mid-run, under continuous fenced writes', () => {
  const backend = new EtcdBackend();
  const cluster = new LeadershipCluster({ scopes: SCOPES }, backend);
  const accepted: Write[] = [];
  const rejected: unknown[] = [];
  const inFlight = new Set<Promise<void>>();
  let most = 0;
  let writing = false;
  let loop: Promise<void> = Promise.resolve();

  /** Every 20 ms: each node that leads a scope (by its own account) writes through its fence; the leaders per scope are sampled. */
  async function writeLoop(): Promise<void> {
    while (writing) {
      for (const scope of SCOPES) {
        const leaders = cluster.leadersOf(scope);
        most = Math.max(most, leaders.length);
        for (const node of leaders) {
          let writer;
          try {
            writer = node.agent.fence(scope);
          } catch {
            continue;
          }
          const put = writer.put(`${scope}/log`, `${node.id}@${writer.fenceToken}`).then(
            (revision) => void accepted.push({ scope, node: node.id, token: writer.fenceToken, revision }),
            (error: unknown) => void rejected.push(error),
          );
          inFlight.add(put);
          void put.finally(() => inFlight.delete(put));
        }
      }
      await pause(20);
    }
  }

  const oneLeaderEach = (): boolean => SCOPES.every((scope) => cluster.leadersOf(scope).length === 1);
  const writesAfter = (revision: bigint, scope: string): number => accepted.filter((w) => w.scope === scope && w.revision > revision).length;
  const lastRevision = (): bigint => accepted.reduce((max, w) => (w.revision > max ? w.revision : max), 0n);

  beforeAll(async () => {
    await cluster.init(IDS);
    for (const id of IDS) await cluster.start(id);
  });

  afterAll(async () => {
    writing = false;
    await loop;
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    await cluster.close();
  });

  it('leadership resumes after a quick restart and after an outage longer than the lease, never two leaders at once: accepted fence tokens only grow', async () => {
    expect(await eventually(oneLeaderEach)).toBe(true);
    writing = true;
    loop = writeLoop();
    expect(await eventually(() => SCOPES.every((scope) => writesAfter(0n, scope) >= 5))).toBe(true);

    // A quick restart (stop, start again at once: shorter than the lease).
    let before = lastRevision();
    await backend.etcd.restart();
    expect(await eventually(() => oneLeaderEach() && SCOPES.every((scope) => writesAfter(before, scope) >= 5))).toBe(true);

    // An outage longer than the lease: every leader steps down (its renewals fail), then etcd comes back.
    before = lastRevision();
    await backend.etcd.stop();
    expect(await eventually(() => SCOPES.every((scope) => cluster.leadersOf(scope).length === 0))).toBe(true);
    await pause(500);
    await backend.etcd.start();
    expect(await eventually(() => oneLeaderEach() && SCOPES.every((scope) => writesAfter(before, scope) >= 5))).toBe(true);

    writing = false;
    await loop;
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);

    expect(most).toBe(1);
    for (const scope of SCOPES) {
      const writes = accepted.filter((w) => w.scope === scope).sort((a, b) => (a.revision < b.revision ? -1 : 1));
      // In etcd's order, the fence tokens of accepted writes never go back: once a newer term wrote, no older one did.
      for (let i = 1; i < writes.length; i++) expect(writes[i]!.token >= writes[i - 1]!.token).toBe(true);
      // Each token belongs to one node: one term, one leader.
      const owners = new Map<bigint, string>();
      for (const w of writes) {
        expect(owners.get(w.token) ?? w.node).toBe(w.node);
        owners.set(w.token, w.node);
      }
      // The last accepted write is what etcd holds.
      const last = writes.at(-1)!;
      expect(await cluster.store.read(`${scope}/log`)).toEqual({ value: `${last.node}@${last.token}`, modRevision: last.revision });
    }
    // Rejections are typed: a stale token, or etcd unavailable.
    for (const error of rejected) expect(error instanceof StaleFenceTokenError || error instanceof LeaseStoreUnavailableError).toBe(true);
  });
});
