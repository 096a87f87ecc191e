/**
 * The `ILeaseStore` contract (src/controlplane/leadership/lease-store.ts), as one suite run
 * against every store (test/integration/lease-store-contract.test.ts: the embedded store and
 * the etcd store on a real etcd). Real time only where a lease must run out, and then as a
 * wait for a condition with a generous limit, never a timed assertion. Each test uses scopes
 * of its own, so stores that keep state across tests (etcd) need no cleanup between them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Subscription } from 'rxjs';
import { LeaseLostError, LeaseStoreUnavailableError, StaleFenceTokenError, type ILeaseStore, type LeaderRecord } from 'omnirelay';

export interface ContractStore {
  readonly store: ILeaseStore;
  /** Disposes the store (and whatever it runs on). */
  close(): Promise<void>;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 20 ms until it holds or `limitMs` passed (a hang guard); returns whether it held. */
async function eventually(done: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<boolean> {
  for (let waited = 0; waited < limitMs; waited += 20) {
    if (await done()) return true;
    await pause(20);
  }
  return done();
}

function acquired(result: Awaited<ReturnType<ILeaseStore['createLeader']>>): LeaderRecord {
  if (!result.acquired) throw new Error(`expected to acquire; ${result.current.leaderId} leads`);
  return result.record;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

let counter = 0;
/** A scope name no other test (or earlier run on the same etcd) uses. */
function freshScope(name: string): string {
  counter++;
  return `${name}-${process.pid}-${counter}`;
}

export function describeLeaseStoreContract(title: string, open: () => Promise<ContractStore>): void {
  describe(`ILeaseStore contract: ${title}`, () => {
    let opened: ContractStore;
    let store: ILeaseStore;
    beforeAll(async () => {
      opened = await open();
      store = opened.store;
    });
    afterAll(async () => {
      await opened?.close();
    });

    it('grants a lease (TTL at least the one asked for), renews it, reports its TTL, and revokes it', async () => {
      const lease = await store.grant(1_000);
      expect(typeof lease.leaseId).toBe('string');
      expect(lease.ttlMs).toBeGreaterThanOrEqual(1_000);
      const renewed = await store.keepAlive(lease.leaseId);
      expect(renewed).toEqual({ leaseId: lease.leaseId, ttlMs: lease.ttlMs });
      const ttl = await store.timeToLive(lease.leaseId);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(lease.ttlMs);
      await store.revoke(lease.leaseId);
      expect(await store.timeToLive(lease.leaseId)).toBeUndefined();
      const lost = await rejection(store.keepAlive(lease.leaseId));
      expect(lost).toBeInstanceOf(LeaseLostError);
      expect(lost).toMatchObject({ code: 'LEADERSHIP_LEASE_LOST', leaseId: lease.leaseId });
      // Revoking a lease that is gone is not an error.
      await store.revoke(lease.leaseId);
    });

    it('creates a leader key only if absent; the loser gets the holder; get reads it; the token is a bigint', async () => {
      const scope = freshScope('create');
      const a = await store.grant(5_000);
      const b = await store.grant(5_000);
      const first = acquired(await store.createLeader(scope, 'node-a', a.leaseId));
      expect(first).toMatchObject({ scope, leaderId: 'node-a', leaseId: a.leaseId, term: 1 });
      expect(typeof first.fenceToken).toBe('bigint');
      expect(first.fenceToken > 0n).toBe(true);
      expect(await store.createLeader(scope, 'node-b', b.leaseId)).toEqual({ acquired: false, current: first });
      expect(await store.get(scope)).toEqual(first);
      expect(await store.get(freshScope('nobody'))).toBeUndefined();
      await store.revoke(a.leaseId);
      await store.revoke(b.leaseId);
    });

    it('revoking the lease deletes the leader key; the next leader has term + 1 and a larger fence token; terms are per scope', async () => {
      const scope = freshScope('terms');
      const other = freshScope('terms-other');
      const a = await store.grant(5_000);
      const first = acquired(await store.createLeader(scope, 'node-a', a.leaseId));
      const elsewhere = acquired(await store.createLeader(other, 'node-a', a.leaseId));
      expect(elsewhere.term).toBe(1);
      expect(elsewhere.fenceToken > first.fenceToken).toBe(true);
      await store.revoke(a.leaseId);
      expect(await store.get(scope)).toBeUndefined();
      expect(await store.get(other)).toBeUndefined();
      const b = await store.grant(5_000);
      const second = acquired(await store.createLeader(scope, 'node-b', b.leaseId));
      expect(second.term).toBe(2);
      expect(second.fenceToken > elsewhere.fenceToken).toBe(true);
      await store.revoke(b.leaseId);
      const c = await store.grant(5_000);
      expect(acquired(await store.createLeader(scope, 'node-c', c.leaseId)).term).toBe(3);
      await store.revoke(c.leaseId);
    });

    it('refuses to create a leader key on a lease that is gone (LeaseLostError naming lease and scope)', async () => {
      const scope = freshScope('lost');
      const lease = await store.grant(1_000);
      await store.revoke(lease.leaseId);
      const error = await rejection(store.createLeader(scope, 'node-a', lease.leaseId));
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(error).toMatchObject({ leaseId: lease.leaseId, scope });
      expect(await store.get(scope)).toBeUndefined();
    });

    it('applies a fenced write only with the current token; a stale one is rejected naming scope, presented and current tokens', async () => {
      const scope = freshScope('fence');
      const key = `${scope}/owner`;
      const a = await store.grant(5_000);
      const first = acquired(await store.createLeader(scope, 'node-a', a.leaseId));
      const revision = await store.fencedPut(scope, first.fenceToken, key, 'a');
      expect(await store.read(key)).toEqual({ value: 'a', modRevision: revision });
      await store.revoke(a.leaseId);
      const noLeader = await rejection(store.fencedPut(scope, first.fenceToken, key, 'a-late'));
      expect(noLeader).toBeInstanceOf(StaleFenceTokenError);
      expect(noLeader).toMatchObject({ scope, presented: first.fenceToken, current: undefined });
      const b = await store.grant(5_000);
      const second = acquired(await store.createLeader(scope, 'node-b', b.leaseId));
      const stale = await rejection(store.fencedPut(scope, first.fenceToken, key, 'a-later'));
      expect(stale).toBeInstanceOf(StaleFenceTokenError);
      expect(stale).toMatchObject({ code: 'LEADERSHIP_STALE_FENCE_TOKEN', scope, presented: first.fenceToken, current: second.fenceToken });
      expect((stale as Error).message).toContain(scope);
      const later = await store.fencedPut(scope, second.fenceToken, key, 'b');
      expect(later > revision).toBe(true);
      expect(await store.read(key)).toEqual({ value: 'b', modRevision: later });
      expect(await store.read(`${key}/absent`)).toBeUndefined();
      await store.revoke(b.leaseId);
    });

    it('watch: the current record first, then every election and deletion, until unsubscribed', async () => {
      const scope = freshScope('watch');
      const seen: (string | undefined)[] = [];
      const errors: unknown[] = [];
      const subscription: Subscription = store.watch(scope).subscribe({ next: (record) => seen.push(record?.leaderId), error: (e: unknown) => errors.push(e) });
      try {
        expect(await eventually(() => seen.length === 1)).toBe(true);
        expect(seen).toEqual([undefined]);
        const a = await store.grant(5_000);
        acquired(await store.createLeader(scope, 'node-a', a.leaseId));
        expect(await eventually(() => seen.length === 2)).toBe(true);
        await store.revoke(a.leaseId);
        expect(await eventually(() => seen.length === 3)).toBe(true);
        const b = await store.grant(5_000);
        acquired(await store.createLeader(scope, 'node-b', b.leaseId));
        expect(await eventually(() => seen.length === 4)).toBe(true);
        expect(seen).toEqual([undefined, 'node-a', undefined, 'node-b']);
        // Another subscription starts from the record now.
        const late: (string | undefined)[] = [];
        const second = store.watch(scope).subscribe((record) => late.push(record?.leaderId));
        expect(await eventually(() => late.length === 1)).toBe(true);
        second.unsubscribe();
        expect(late).toEqual(['node-b']);
        await store.revoke(b.leaseId);
        expect(await eventually(() => seen.length === 5)).toBe(true);
        expect(errors).toEqual([]);
      } finally {
        subscription.unsubscribe();
      }
    });

    it('a lease not renewed runs out: its leader key goes and watchers hear it', async () => {
      const scope = freshScope('expiry');
      const seen: (string | undefined)[] = [];
      const subscription = store.watch(scope).subscribe((record) => seen.push(record?.leaderId));
      try {
        const lease = await store.grant(1_000);
        acquired(await store.createLeader(scope, 'node-a', lease.leaseId));
        expect(await eventually(async () => (await store.get(scope)) === undefined)).toBe(true);
        expect(await eventually(() => seen.at(-1) === undefined && seen.includes('node-a'))).toBe(true);
        expect(await rejection(store.keepAlive(lease.leaseId))).toBeInstanceOf(LeaseLostError);
      } finally {
        subscription.unsubscribe();
      }
    });

    it('an aborted call rejects with its signal\'s reason', async () => {
      const controller = new AbortController();
      const reason = new LeaseStoreUnavailableError(store.name, 'test', 'aborted by the test');
      controller.abort(reason);
      expect(await rejection(store.grant(1_000, { signal: controller.signal }))).toBe(reason);
      expect(await rejection(store.get(freshScope('abort'), { signal: controller.signal }))).toBe(reason);
    });
  });
}
