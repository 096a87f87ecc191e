import { afterEach, describe, expect, it } from '@jest/globals';
import { leadershipServiceImplementation } from '../../../../src/controlplane/leadership/service.js';
import { RpcError } from '../../../../src/errors.js';
import type { LeadershipTransition } from '../../../../src/gen/omnirelay/controlplane/leadership/v1/leadership.js';
import { GRPC_STATUS } from '../../../../src/grpc/status.js';
import type { ServerCallInfo } from '../../../../src/server/service-handlers.js';
import { FakeElection } from './harness.js';

function callInfo(signal: AbortSignal = new AbortController().signal): ServerCallInfo {
  return { clientCertificate: undefined, clientIdentity: 'client', metadata: {}, protocol: 'h2', signal, setTrailer: () => undefined };
}

const SCOPES = ['global', 'shard-7'];

async function statusOf(work: Promise<unknown>): Promise<number | undefined> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  return error instanceof RpcError ? error.status : undefined;
}

describe('LeadershipControl service handlers', () => {
  let election: FakeElection;
  afterEach(async () => {
    await election.stopAll();
    expect(election.time.pendingTimers).toBe(0);
  });

  it('Get answers leader, term, fence token and expiry per scope (own deadline on the leader, the lease TTL elsewhere); refuses unknown scopes and a stopped agent', async () => {
    election = new FakeElection(11);
    const a = election.add('a', { scopes: SCOPES });
    const b = election.add('b', { scopes: SCOPES });
    const c = election.add('c', { scopes: ['global'] });
    // Before start: UNAVAILABLE.
    expect(await statusOf(Promise.resolve(leadershipServiceImplementation(a.agent).get({ scopes: [] }, callInfo())))).toBe(GRPC_STATUS.UNAVAILABLE);
    for (const node of election.nodes) node.agent.start();
    expect(await election.until(() => SCOPES.every((scope) => election.leadersOf(scope).length === 1), 2_000)).toBe(true);
    const answers = await Promise.all([a, b].map((node) => Promise.resolve(leadershipServiceImplementation(node.agent).get({ scopes: [] }, callInfo()))));
    for (const [i, scope] of SCOPES.entries()) {
      const leader = election.node(election.leadersOf(scope)[0]!);
      const view = leader.agent.leader(scope)!;
      for (const answer of answers) {
        const info = answer.leaders[i]!;
        expect(info).toMatchObject({ scope, leaderId: leader.id, term: view.term, fenceToken: view.fenceToken.toString() });
        expect(info.expiresAtUnixMs).toBeGreaterThan(election.time.now());
        expect(info.expiresAtUnixMs).toBeLessThanOrEqual(election.time.now() + 1_000);
      }
    }
    expect(await statusOf(Promise.resolve(leadershipServiceImplementation(c.agent).get({ scopes: ['shard-7'] }, callInfo())))).toBe(GRPC_STATUS.INVALID_ARGUMENT);
    await c.agent.stop();
    expect(await statusOf(Promise.resolve(leadershipServiceImplementation(() => c.agent).get({ scopes: [] }, callInfo())))).toBe(GRPC_STATUS.UNAVAILABLE);
    expect(await statusOf(Promise.resolve(leadershipServiceImplementation(() => undefined).get({ scopes: [] }, callInfo())))).toBe(GRPC_STATUS.UNAVAILABLE);
  });

  it('Watch sends the leader now, then every transition in order; ends when the client cancels and when the agent stops', async () => {
    election = new FakeElection(12);
    for (const id of ['a', 'b', 'c']) election.add(id);
    for (const node of election.nodes) node.agent.start();
    expect(await election.until(() => election.leadersOf('global').length === 1, 2_000)).toBe(true);
    const first = election.node(election.leadersOf('global')[0]!);
    const watcher = election.nodes.find((n) => n !== first)!;
    const cancel = new AbortController();
    const stream = leadershipServiceImplementation(watcher.agent).watch({ scopes: [] }, callInfo(cancel.signal))[Symbol.asyncIterator]();
    const seen: LeadershipTransition[] = [];
    const reading = (async () => {
      for (;;) {
        const next = await stream.next();
        if (next.done === true) return;
        seen.push(next.value);
      }
    })();
    await election.time.advance(0);
    expect(seen.map((t) => t.current?.leaderId)).toEqual([first.id]);
    expect(seen[0]).toMatchObject({ previousLeaderId: '', observedBy: watcher.id });
    await first.agent.stop();
    expect(await election.until(() => election.leadersOf('global').length === 1, 2_000)).toBe(true);
    const second = election.leadersOf('global')[0]!;
    expect(await election.until(() => seen.length === 3, 1_000)).toBe(true);
    expect(seen.map((t) => [t.previousLeaderId, t.current?.leaderId])).toEqual([
      ['', first.id],
      [first.id, ''],
      ['', second],
    ]);
    expect(BigInt(seen[2]!.current!.fenceToken) > BigInt(seen[0]!.current!.fenceToken)).toBe(true);
    cancel.abort();
    await reading;
    // A second stream ends with OK when the agent stops.
    const other = leadershipServiceImplementation(watcher.agent).watch({ scopes: ['global'] }, callInfo())[Symbol.asyncIterator]();
    expect((await other.next()).done).toBe(false);
    const ended = other.next();
    await watcher.agent.stop();
    expect((await ended).done).toBe(true);
  });
});
