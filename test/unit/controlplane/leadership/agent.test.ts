import { afterEach, describe, expect, it } from '@jest/globals';
import { NotLeaderError, StaleFenceTokenError } from '../../../../src/controlplane/leadership/errors.js';
import { METRIC_LEADERSHIP_ELECTION_DURATION, METRIC_LEADERSHIP_STALE_FENCE_REJECTIONS, METRIC_LEADERSHIP_TRANSITIONS } from '../../../../src/controlplane/leadership/telemetry.js';
import type { LeadershipChange } from '../../../../src/controlplane/leadership/agent.js';
import { createHarness, numberValue, pointsMatching } from '../../telemetry/harness.js';
import { FakeElection } from './harness.js';

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];
const SCOPES = ['global', 'shard-7'];
// Defaults: TTL 1 000 ms, renew every 250 ms, safety margin 200 ms.
const TTL = 1_000;
const MARGIN = 200;

async function electAll(election: FakeElection): Promise<void> {
  for (const id of IDS) election.add(id, { scopes: SCOPES });
  for (const node of election.nodes) node.agent.start();
  expect(await election.until(() => SCOPES.every((scope) => election.leadersOf(scope).length === 1), 2_000)).toBe(true);
}

function leaderOf(election: FakeElection, scope: string): ReturnType<FakeElection['node']> {
  const [id] = election.leadersOf(scope);
  if (id === undefined) throw new Error(`nobody leads ${scope}`);
  return election.node(id);
}

describe('LeadershipAgent on the embedded store (fake clock, seeded randomness)', () => {
  let election: FakeElection;
  afterEach(async () => {
    await election.stopAll();
    expect(election.time.pendingTimers).toBe(0);
  });

  it('elects exactly one leader per scope, seen by every candidate, and keeps it while it renews', async () => {
    election = new FakeElection(1);
    await electAll(election);
    for (const scope of SCOPES) {
      const leader = leaderOf(election, scope);
      const token = leader.agent.leader(scope)?.fenceToken;
      expect(typeof token).toBe('bigint');
      for (const node of election.nodes) expect(node.agent.leader(scope)?.leaderId).toBe(leader.id);
    }
    const before = SCOPES.map((scope) => leaderOf(election, scope).id);
    // Ten lease lifetimes later the same leaders still lead: renewals keep their leases.
    await election.time.advance(10 * TTL);
    expect(SCOPES.map((scope) => election.leadersOf(scope))).toEqual(before.map((id) => [id]));
    expect(election.nodes.flatMap((n) => n.logger.events('leadership.elected'))).toHaveLength(2);
  });

  it('a leader whose renewals hang steps down before its lease can expire in the store; the next term has a larger fence token', async () => {
    election = new FakeElection(2);
    await electAll(election);
    const old = leaderOf(election, 'global');
    const oldToken = old.agent.leader('global')!.fenceToken;
    const renewSentAt: number[] = [];
    const original = old.store.keepAlive.bind(old.store);
    old.store.keepAlive = (leaseId, options) => {
      renewSentAt.push(election.time.now());
      return original(leaseId, options);
    };
    await election.time.advance(300);
    old.store.mode = 'hang';
    const pausedAt = election.time.now();
    // The last renewal the store applied was sent at most one renew interval before the pause.
    const lastApplied = Math.max(...renewSentAt.filter((at) => at < pausedAt));
    expect(await election.until(() => old.logger.events('leadership.stepped_down').length > 0, 2_000)).toBe(true);
    const steppedDownAt = Date.parse(String(old.logger.events('leadership.stepped_down')[0]?.fields['at']));
    expect(steppedDownAt).toBeLessThanOrEqual(lastApplied + TTL - MARGIN);
    expect(old.logger.events('leadership.stepped_down')).toEqual([expect.objectContaining({ fields: expect.objectContaining({ scope: 'global', reason: 'renew_deadline' }) as unknown })]);
    // Nobody else leads until the lease runs out in the store (not before lastApplied + TTL).
    expect(await election.until(() => election.leadersOf('global').length === 1, 3_000)).toBe(true);
    expect(election.time.now()).toBeGreaterThanOrEqual(lastApplied + TTL);
    const next = leaderOf(election, 'global');
    expect(next.id).not.toBe(old.id);
    expect(next.agent.leader('global')!.fenceToken > oldToken).toBe(true);
    expect(next.agent.leader('global')!.term).toBe(2);
  });

  it("measures the deadline from when a renewal was SENT: answers slower than the renew interval keep the term, each counting from its send time", async () => {
    election = new FakeElection(9);
    await electAll(election);
    const leader = leaderOf(election, 'global');
    leader.store.answerDelayMs = 400;
    for (let i = 0; i < 20; i++) {
      await election.time.advance(250);
      expect(leader.agent.isLeader('global')).toBe(true);
    }
    // The newest answered renewal was sent >= 400 ms ago, so the deadline is at most now + (TTL − margin − 400).
    const expiresAt = leader.agent.leader('global')!.expiresAt!;
    expect(expiresAt).toBeLessThanOrEqual(election.time.now() + TTL - MARGIN - 400);
    expect(expiresAt).toBeGreaterThan(election.time.now());
    expect(leader.logger.events('leadership.stepped_down')).toEqual([]);
    expect(election.leadersOf('global')).toEqual([leader.id]);
    leader.store.answerDelayMs = 0;
  });

  it('a leader whose renewals fail (store unreachable) steps down at its deadline, not at the first failure', async () => {
    election = new FakeElection(3);
    await electAll(election);
    const old = leaderOf(election, 'shard-7');
    old.store.mode = 'fail';
    await election.time.advance(260);
    // One renewal failed; the leader still leads (its deadline has not come).
    expect(old.agent.isLeader('shard-7')).toBe(true);
    expect(old.logger.events('leadership.renew.failed')).toHaveLength(1);
    expect(await election.until(() => !old.agent.isLeader('shard-7'), 2_000)).toBe(true);
    expect(old.logger.events('leadership.stepped_down')[0]?.fields['reason']).toBe('renew_deadline');
    expect(await election.until(() => election.leadersOf('shard-7').length === 1, 3_000)).toBe(true);
    expect(leaderOf(election, 'shard-7').id).not.toBe(old.id);
  });

  it("rejects a deposed leader's fenced write (StaleFenceTokenError naming scope and both tokens) and counts it", async () => {
    const telemetry = createHarness();
    election = new FakeElection(4);
    for (const id of IDS) election.add(id, { scopes: SCOPES }, { meterProvider: telemetry.meterProvider });
    for (const node of election.nodes) node.agent.start();
    expect(await election.until(() => election.leadersOf('global').length === 1, 2_000)).toBe(true);
    const old = leaderOf(election, 'global');
    const writer = old.agent.fence('global');
    await expect(writer.put('config/owner', old.id)).resolves.toBeGreaterThan(0n);
    old.store.mode = 'hang';
    expect(await election.until(() => election.leadersOf('global').some((id) => id !== old.id), 3_000)).toBe(true);
    const next = leaderOf(election, 'global');
    await next.agent.fence('global').put('config/owner', next.id);
    old.store.mode = 'ok';
    const error = await writer.put('config/owner', old.id).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StaleFenceTokenError);
    const stale = error as StaleFenceTokenError;
    expect(stale.scope).toBe('global');
    expect(stale.presented).toBe(writer.fenceToken);
    expect(stale.current).toBe(next.agent.leader('global')!.fenceToken);
    expect(stale.message).toContain(writer.fenceToken.toString());
    expect((await election.store.read('config/owner'))?.value).toBe(next.id);
    expect(() => old.agent.fence('global')).toThrow(NotLeaderError);

    const rejections = await telemetry.metric(METRIC_LEADERSHIP_STALE_FENCE_REJECTIONS);
    expect(numberValue(pointsMatching(rejections, { scope: 'global' })[0])).toBe(1);
    const transitions = await telemetry.metric(METRIC_LEADERSHIP_TRANSITIONS);
    expect(numberValue(pointsMatching(transitions, { scope: 'global', transition: 'elected' })[0])).toBe(2);
    expect(numberValue(pointsMatching(transitions, { scope: 'global', transition: 'stepped_down', reason: 'renew_deadline' })[0])).toBe(1);
    const durations = await telemetry.metric(METRIC_LEADERSHIP_ELECTION_DURATION);
    expect(pointsMatching(durations, { scope: 'global' })).toHaveLength(1);
    await election.stopAll();
    await telemetry.shutdown();
  });

  it('a leader whose lease was revoked steps down at its next renewal (lease_lost)', async () => {
    election = new FakeElection(5);
    await electAll(election);
    const old = leaderOf(election, 'global');
    await election.store.revoke(old.agent.leader('global')!.leaseId);
    expect(await election.until(() => !old.agent.isLeader('global'), 1_000)).toBe(true);
    expect(old.logger.events('leadership.stepped_down')[0]?.fields['reason']).toBe('lease_lost');
    expect(await election.until(() => election.leadersOf('global').length === 1, 1_000)).toBe(true);
  });

  it('publishes the current leader, then every change, to changes$', async () => {
    election = new FakeElection(6);
    await electAll(election);
    const watcher = election.nodes.find((n) => !n.agent.isLeader('global'))!;
    const seen: LeadershipChange[] = [];
    const subscription = watcher.agent.changes$(['global']).subscribe((change) => seen.push(change));
    const first = leaderOf(election, 'global');
    expect(seen).toEqual([expect.objectContaining({ scope: 'global', previous: undefined, current: expect.objectContaining({ leaderId: first.id }) as unknown })]);
    await first.agent.stop();
    expect(await election.until(() => election.leadersOf('global').length === 1, 1_000)).toBe(true);
    const second = leaderOf(election, 'global');
    expect(seen.map((c) => c.current?.leaderId)).toEqual([first.id, undefined, second.id]);
    subscription.unsubscribe();
  });

  it('a resigning leader revokes its lease so a successor is elected within the candidate jitter, not after a TTL', async () => {
    election = new FakeElection(7);
    await electAll(election);
    const old = leaderOf(election, 'global');
    const stoppedAt = election.time.now();
    await old.agent.stop();
    expect(await election.until(() => election.leadersOf('global').length === 1, 1_000)).toBe(true);
    expect(election.time.now() - stoppedAt).toBeLessThan(TTL);
    expect(old.logger.events('leadership.stepped_down')[0]?.fields['reason']).toBe('resigned');
  });

  it('leaves no timer and no store call behind after stop, even with a hanging store', async () => {
    election = new FakeElection(8);
    await electAll(election);
    for (const node of election.nodes) node.store.mode = 'hang';
    await election.time.advance(100);
    // Resigning revokes through the hanging store: each revoke is abandoned after campaignTimeoutMs (fake time).
    const stopping = Promise.all(election.nodes.map((node) => node.agent.stop()));
    await election.time.advance(1_000);
    await stopping;
    election.store.dispose();
    expect(election.time.pendingTimers).toBe(0);
    await election.time.advance(5 * TTL);
    expect(election.time.pendingTimers).toBe(0);
    for (const node of election.nodes) expect(node.agent.state).toBe('stopped');
  });
});
