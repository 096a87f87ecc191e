/**
 * The leader-election scenarios of the feature tier, for any lease store (a StoreBackend): 5
 * nodes in one process, each with its own GrpcHost on 127.0.0.1 (mTLS) serving
 * LeadershipControl and its own container (`grpcControlPlaneModule` + `leadershipModule`),
 * against the built package, with the default timings. What every node sees is read through
 * the LeadershipControl service (Get and Watch), through the nodes' factories. Run by
 * leadership.test.ts (embedded store) and leadership-etcd.test.ts (a real etcd).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Subscription } from 'rxjs';
import { StaleFenceTokenError, type LeadershipClient, type RemoteLeadershipTransition } from 'omnirelay';
import { eventually, LeadershipCluster, type LeaderNode, type StoreBackend } from './leadership.js';

export const IDS = ['l1', 'l2', 'l3', 'l4', 'l5'];
export const SCOPES = ['global', 'shard-7'];

/**
 * Every node's LeadershipControl Watch, read over mTLS through that node's own factory (so a
 * killed node takes only its own stream down); the last transition per node and scope.
 */
export class Watchers {
  readonly latest = new Map<string, RemoteLeadershipTransition>();
  readonly #subscriptions: Subscription[] = [];
  readonly #clients: LeadershipClient[] = [];
  readonly errors: unknown[] = [];

  constructor(nodes: readonly LeaderNode[]) {
    for (const node of nodes) {
      const client = node.agent.client({ endpoint: node.host.url });
      this.#clients.push(client);
      this.#subscriptions.push(
        client.watch$(SCOPES).subscribe({
          next: (transition) => this.latest.set(`${node.id}/${transition.current.scope}`, transition),
          error: (error: unknown) => this.errors.push(error),
        }),
      );
    }
  }

  /** The leader node `id` reports for `scope` through its Watch ('' for none, undefined before its first message). */
  leaderSeenBy(id: string, scope: string): string | undefined {
    return this.latest.get(`${id}/${scope}`)?.current.leaderId;
  }

  async close(): Promise<void> {
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    await Promise.all(this.#clients.map((client) => client.dispose()));
  }
}

export function describeLeaderElection(title: string, backend: () => StoreBackend): void {
  describe(title, () => {
    const cluster = new LeadershipCluster({ scopes: SCOPES }, backend());
    let watchers: Watchers;

    beforeAll(async () => {
      await cluster.init(IDS);
      for (const id of IDS) await cluster.start(id);
      watchers = new Watchers(cluster.running());
    });

    afterAll(async () => {
      await watchers.close();
      await cluster.close();
    });

    it('elects exactly one leader per scope, and every node reports it through LeadershipControl Get and Watch', async () => {
      expect(await eventually(() => SCOPES.every((scope) => cluster.leadersOf(scope).length === 1))).toBe(true);
      for (const scope of SCOPES) {
        const leader = cluster.leadersOf(scope)[0]!;
        expect(await eventually(() => IDS.every((id) => watchers.leaderSeenBy(id, scope) === leader.id))).toBe(true);
      }
      // Get through a peer's factory: the same leader, term and fence token on every node, with an expiry.
      const asker = cluster.node('l1');
      const answers = await Promise.all(cluster.running().map((node) => asker.agent.client({ endpoint: node.host.url }).get(SCOPES)));
      for (const [i, scope] of SCOPES.entries()) {
        const leader = cluster.leadersOf(scope)[0]!;
        const own = leader.agent.leader(scope)!;
        for (const answer of answers) {
          expect(answer[i]).toMatchObject({ scope, leaderId: leader.id, term: own.term, fenceToken: own.fenceToken });
          expect(answer[i]!.expiresAt).toBeGreaterThan(0);
        }
      }
      // Never two at once: sampled every 10 ms over a second (several renewals).
      let most = 0;
      for (let i = 0; i < 100; i++) {
        for (const scope of SCOPES) most = Math.max(most, cluster.leadersOf(scope).length);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(most).toBe(1);
      expect(watchers.errors).toEqual([]);
    });

    it('kill the leader of `global`: a new one is elected and observed by every surviving node through Watch', async () => {
      expect(await eventually(() => cluster.leadersOf('global').length === 1)).toBe(true);
      const old = cluster.leadersOf('global')[0]!;
      const oldToken = old.agent.leader('global')!.fenceToken;
      await cluster.kill(old);
      const survivors = cluster.running().map((n) => n.id);
      expect(await eventually(() => cluster.leadersOf('global').length === 1)).toBe(true);
      const next = cluster.leadersOf('global')[0]!;
      expect(next.id).not.toBe(old.id);
      expect(next.agent.leader('global')!.fenceToken > oldToken).toBe(true);
      expect(await eventually(() => survivors.every((id) => watchers.leaderSeenBy(id, 'global') === next.id))).toBe(true);
      for (const id of survivors) expect(watchers.latest.get(`${id}/global`)?.current.fenceToken).toBe(next.agent.leader('global')!.fenceToken);
      const elected = next.logs.filter((l) => l.event === 'leadership.elected' && l.fields['scope'] === 'global');
      expect(elected).toHaveLength(1);
    });

    it("pause the leader of `shard-7` (its store calls hang): it steps down before anyone else is elected, and its later fenced write is rejected", async () => {
      // The previous test killed the `global` leader, which may have led `shard-7` too: wait for its successor.
      expect(await eventually(() => cluster.leadersOf('shard-7').length === 1)).toBe(true);
      const paused = cluster.leadersOf('shard-7')[0]!;
      const writer = paused.agent.fence('shard-7');
      await writer.put('shard-7/owner', paused.id);
      paused.store.paused = true;
      expect(await eventually(() => paused.logs.some((l) => l.event === 'leadership.stepped_down' && l.fields['scope'] === 'shard-7'))).toBe(true);
      expect(await eventually(() => cluster.leadersOf('shard-7').some((n) => n.id !== paused.id))).toBe(true);
      const next = cluster.leadersOf('shard-7').find((n) => n.id !== paused.id)!;
      expect(cluster.leadersOf('shard-7').map((n) => n.id)).toEqual([next.id]);
      // Ordering, not timing: the paused leader's step-down was logged before the successor's election.
      const steppedDown = paused.logs.find((l) => l.event === 'leadership.stepped_down' && l.fields['scope'] === 'shard-7')!;
      const elected = next.logs.find((l) => l.event === 'leadership.elected' && l.fields['scope'] === 'shard-7')!;
      expect(steppedDown.fields['reason']).toBe('renew_deadline');
      expect(steppedDown.at).toBeLessThanOrEqual(elected.at);
      await next.agent.fence('shard-7').put('shard-7/owner', next.id);
      paused.store.paused = false;
      const error = await writer.put('shard-7/owner', paused.id).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StaleFenceTokenError);
      expect(error).toMatchObject({ scope: 'shard-7', presented: writer.fenceToken, current: next.agent.leader('shard-7')!.fenceToken });
      expect((await cluster.store.read('shard-7/owner'))?.value).toBe(next.id);
      expect(await eventually(() => cluster.running().every((n) => watchers.leaderSeenBy(n.id, 'shard-7') === next.id))).toBe(true);
    });
  });
}
