import { afterEach, describe, expect, it } from '@jest/globals';
import { EmbeddedLeaseStore } from '../../../../src/controlplane/leadership/embedded-store.js';
import { LeaseLostError, LeaseStoreUnavailableError, StaleFenceTokenError } from '../../../../src/controlplane/leadership/errors.js';
import type { LeaderRecord } from '../../../../src/controlplane/leadership/lease-store.js';
import { FakeTime } from './harness.js';

describe('EmbeddedLeaseStore (etcd semantics in one process, fake clock)', () => {
  let time: FakeTime;
  let store: EmbeddedLeaseStore;
  afterEach(() => {
    store.dispose();
    expect(time.pendingTimers).toBe(0);
  });

  it('creates a leader key only if absent; its create revision is the fence token, increasing across scopes and terms', async () => {
    time = new FakeTime();
    store = new EmbeddedLeaseStore({ clock: time, timers: time });
    const a = await store.grant(1_000);
    const b = await store.grant(1_000);
    const first = await store.createLeader('global', 'a', a.leaseId);
    expect(first.acquired).toBe(true);
    const lost = await store.createLeader('global', 'b', b.leaseId);
    expect(lost).toEqual({ acquired: false, current: first.acquired ? first.record : undefined });
    const shard = await store.createLeader('shard-7', 'b', b.leaseId);
    const tokens: bigint[] = [];
    if (first.acquired) tokens.push(first.record.fenceToken);
    if (shard.acquired) tokens.push(shard.record.fenceToken);
    await store.revoke(a.leaseId);
    expect(await store.get('global')).toBeUndefined();
    const again = await store.createLeader('global', 'b', b.leaseId);
    if (!again.acquired) throw new Error('expected to acquire');
    tokens.push(again.record.fenceToken);
    expect(again.record.term).toBe(2);
    expect(tokens).toEqual([...tokens].sort((x, y) => (x < y ? -1 : 1)));
    expect(new Set(tokens).size).toBe(3);
    await expect(store.createLeader('x', 'a', a.leaseId)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('expires a lease not renewed within its TTL (its keys go, watchers hear it); renewals keep it', async () => {
    time = new FakeTime();
    store = new EmbeddedLeaseStore({ clock: time, timers: time });
    const lease = await store.grant(1_000);
    await store.createLeader('global', 'a', lease.leaseId);
    const seen: (string | undefined)[] = [];
    const subscription = store.watch('global').subscribe((record: LeaderRecord | undefined) => seen.push(record?.leaderId));
    await time.advance(900);
    await store.keepAlive(lease.leaseId);
    await time.advance(900);
    expect(await store.timeToLive(lease.leaseId)).toBe(100);
    await time.advance(100);
    expect(seen).toEqual(['a', undefined]);
    await expect(store.keepAlive(lease.leaseId)).rejects.toBeInstanceOf(LeaseLostError);
    subscription.unsubscribe();
  });

  it('applies a fenced write only with the current token', async () => {
    time = new FakeTime();
    store = new EmbeddedLeaseStore({ clock: time, timers: time });
    const lease = await store.grant(1_000);
    const created = await store.createLeader('global', 'a', lease.leaseId);
    if (!created.acquired) throw new Error('expected to acquire');
    const revision = await store.fencedPut('global', created.record.fenceToken, 'k', 'v1');
    expect(await store.read('k')).toEqual({ value: 'v1', modRevision: revision });
    await expect(store.fencedPut('global', created.record.fenceToken - 1n, 'k', 'v2')).rejects.toBeInstanceOf(StaleFenceTokenError);
    await time.advance(1_000);
    await expect(store.fencedPut('global', created.record.fenceToken, 'k', 'v3')).rejects.toMatchObject({ scope: 'global', presented: created.record.fenceToken, current: undefined });
    expect((await store.read('k'))?.value).toBe('v1');
  });

  it('refuses calls after dispose and ends watches with LeaseStoreUnavailableError', async () => {
    time = new FakeTime();
    store = new EmbeddedLeaseStore({ clock: time, timers: time });
    await store.grant(1_000);
    const errors: unknown[] = [];
    store.watch('global').subscribe({ error: (error: unknown) => errors.push(error) });
    store.dispose();
    expect(errors[0]).toBeInstanceOf(LeaseStoreUnavailableError);
    await expect(store.grant(1_000)).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
  });
});
