import { describe, expect, it } from '@jest/globals';
import { BroadcastQueue } from '../../../../src/controlplane/gossip/broadcast-queue.js';
import { retransmitLimit, suspicionTimeoutAfterConfirmations, suspicionTimeoutMs } from '../../../../src/controlplane/gossip/formulas.js';
import { LocalHealth } from '../../../../src/controlplane/gossip/local-health.js';
import { Suspicion } from '../../../../src/controlplane/gossip/suspicion.js';
import { MemberList, type MemberUpdate } from '../../../../src/controlplane/gossip/member-list.js';
import { GOSSIP_DEFAULTS, resolveGossipOptions } from '../../../../src/controlplane/gossip/options.js';
import { ConfigError } from '../../../../src/errors.js';
import type { MemberMetadata, MemberStatus } from '../../../../src/controlplane/membership.js';

const meta = (nodeId: string, extra: Partial<MemberMetadata> = {}): MemberMetadata => ({
  nodeId, role: 'r', cluster: 'c', region: 'eu', version: '1', endpoint: `https://${nodeId}.test:1`, http3: true, services: [], ...extra,
});
const update = (nodeId: string, status: MemberStatus, incarnation: number, extra: Partial<MemberMetadata> = {}): MemberUpdate => ({ metadata: meta(nodeId, extra), status, incarnation });

describe('memberlist formulas', () => {
  it('suspicion timeout is suspicionMult × max(1, log10(n)) × probeInterval', () => {
    expect(suspicionTimeoutMs(1, 4, 200)).toBe(800);
    expect(suspicionTimeoutMs(5, 4, 200)).toBe(800); // log10(5) < 1
    expect(suspicionTimeoutMs(10, 4, 200)).toBe(800);
    expect(suspicionTimeoutMs(100, 4, 200)).toBe(1600);
    expect(suspicionTimeoutMs(50, 4, 1000)).toBe(Math.round(4 * Math.log10(50) * 1000)); // 6796 ms
    expect(suspicionTimeoutMs(1000, 5, 1000)).toBe(15_000);
  });

  it('retransmit limit is retransmitMult × ceil(log10(n + 1))', () => {
    expect(retransmitLimit(1, 4)).toBe(4);
    expect(retransmitLimit(9, 4)).toBe(4);
    expect(retransmitLimit(10, 4)).toBe(8);
    expect(retransmitLimit(99, 4)).toBe(8);
    expect(retransmitLimit(100, 4)).toBe(12);
    expect(retransmitLimit(50, 3)).toBe(6);
  });
});

describe('Lifeguard', () => {
  it('a suspicion starts at the maximum and reaches the minimum after k confirmations: max − (max − min) × log(c + 1) / log(k + 1)', () => {
    // memberlist suspicion_test.go's table: k = 3, min 2 s, max 30 s.
    expect(suspicionTimeoutAfterConfirmations(0, 3, 2_000, 30_000)).toBe(30_000);
    expect(suspicionTimeoutAfterConfirmations(1, 3, 2_000, 30_000)).toBe(16_000);
    expect(suspicionTimeoutAfterConfirmations(2, 3, 2_000, 30_000)).toBe(Math.floor(30_000 - (Math.log(3) / Math.log(4)) * 28_000)); // 7,809 ms
    expect(suspicionTimeoutAfterConfirmations(3, 3, 2_000, 30_000)).toBe(2_000);
    expect(suspicionTimeoutAfterConfirmations(9, 3, 2_000, 30_000)).toBe(2_000);
    // No confirmations wanted (a cluster too small to give them): the minimum at once.
    expect(suspicionTimeoutAfterConfirmations(0, 0, 2_000, 30_000)).toBe(2_000);
  });

  it('a suspicion counts each other suspector once, never the one that started it, and no more than it wants', () => {
    const s = new Suspicion(1_000, 'a', 2, 800, 4_800);
    expect(s.timeoutMs).toBe(4_800);
    expect(s.confirm('a')).toBe(false);
    expect(s.confirm('b')).toBe(true);
    expect(s.confirm('b')).toBe(false);
    expect(s.confirmations).toBe(1);
    expect(s.timeoutMs).toBe(Math.floor(4_800 - (Math.log(2) / Math.log(3)) * 4_000)); // 2,276 ms
    expect(s.expired(1_000 + s.timeoutMs - 1)).toBe(false);
    expect(s.expired(1_000 + s.timeoutMs)).toBe(true);
    expect(s.confirm('c')).toBe(true);
    expect(s.confirm('d')).toBe(false);
    expect(s.timeoutMs).toBe(800);
  });

  it('the local health score stays within [0, max − 1] and scales timeouts by score + 1', () => {
    const h = new LocalHealth(8);
    expect(h.scale(200)).toBe(200);
    expect(h.apply(-1)).toBe(false);
    expect(h.apply(3)).toBe(true);
    expect(h.scale(200)).toBe(800);
    h.apply(100);
    expect(h.score).toBe(7);
    expect(h.scale(100)).toBe(800);
    h.apply(-2);
    expect(h.score).toBe(5);
    const off = new LocalHealth(1);
    expect(off.apply(5)).toBe(false);
    expect(off.scale(200)).toBe(200);
  });
});

describe('MemberList: SWIM precedence', () => {
  const list = (): MemberList => new MemberList(meta('self'));

  it('an unknown member joins when alive; suspect or dead about an unknown member is ignored', () => {
    const l = list();
    expect(l.apply(update('a', 'suspect', 3)).outcome).toBe('ignored');
    expect(l.apply(update('a', 'dead', 3)).outcome).toBe('ignored');
    const joined = l.apply(update('a', 'alive', 0));
    expect(joined).toMatchObject({ outcome: 'accepted', transition: { kind: 'joined' } });
    expect(l.get('a')?.status).toBe('alive');
  });

  it('alive → suspect → dead at the same incarnation; suspect → alive only with a higher incarnation (recovered)', () => {
    const l = list();
    l.apply(update('a', 'alive', 2));
    expect(l.apply(update('a', 'suspect', 2))).toMatchObject({ outcome: 'accepted', transition: { kind: 'suspect' } });
    expect(l.apply(update('a', 'alive', 2)).outcome).toBe('ignored');
    expect(l.apply(update('a', 'alive', 3))).toMatchObject({ outcome: 'accepted', transition: { kind: 'recovered' } });
    expect(l.apply(update('a', 'suspect', 3)).outcome).toBe('accepted');
    expect(l.apply(update('a', 'dead', 3))).toMatchObject({ outcome: 'accepted', transition: { kind: 'dead' } });
    expect(l.apply(update('a', 'suspect', 3)).outcome).toBe('ignored');
    expect(l.apply(update('a', 'alive', 4))).toMatchObject({ outcome: 'accepted', transition: { kind: 'joined' } });
  });

  it('stale incarnations are ignored whatever they say', () => {
    const l = list();
    l.apply(update('a', 'alive', 5));
    for (const status of ['alive', 'suspect', 'dead', 'left'] as const) expect(l.apply(update('a', status, 4)).outcome).toBe('ignored');
    expect(l.get('a')).toMatchObject({ status: 'alive', incarnation: 5 });
  });

  it('left is final for its incarnation: no suspicion, death or alive at that incarnation; a rejoin needs a higher one', () => {
    const l = list();
    l.apply(update('a', 'alive', 1));
    expect(l.apply(update('a', 'left', 1))).toMatchObject({ outcome: 'accepted', transition: { kind: 'left' } });
    for (const status of ['alive', 'suspect', 'dead', 'left'] as const) expect(l.apply(update('a', status, 1)).outcome).toBe('ignored');
    expect(l.get('a')?.status).toBe('left');
    expect(l.apply(update('a', 'alive', 2))).toMatchObject({ outcome: 'accepted', transition: { kind: 'joined' } });
  });

  it('a dead member that left is recorded as left', () => {
    const l = list();
    l.apply(update('a', 'alive', 1));
    l.apply(update('a', 'dead', 1));
    expect(l.apply(update('a', 'left', 1)).outcome).toBe('accepted');
    expect(l.get('a')?.status).toBe('left');
  });

  it('new metadata comes with a higher incarnation (updated, not a transition)', () => {
    const l = list();
    l.apply(update('a', 'alive', 1));
    expect(l.apply(update('a', 'alive', 1, { http3: false })).outcome).toBe('ignored');
    expect(l.apply(update('a', 'alive', 2, { http3: false }))).toMatchObject({ outcome: 'accepted', transition: { kind: 'updated' } });
    expect(l.get('a')?.metadata.http3).toBe(false);
  });

  it('suspicion or death of the local node asks for a refutation, and so does an alive it never announced', () => {
    const l = list();
    expect(l.apply(update('self', 'suspect', 0))).toEqual({ outcome: 'refute', claimed: 0 });
    expect(l.apply(update('self', 'dead', 3))).toEqual({ outcome: 'refute', claimed: 3 });
    expect(l.apply(update('self', 'alive', 7))).toEqual({ outcome: 'refute', claimed: 7 });
    expect(l.apply(update('self', 'alive', 0)).outcome).toBe('ignored');
    expect(l.apply(update('self', 'suspect', 0), true).outcome).toBe('ignored'); // leaving: nothing to refute
    expect(l.local.status).toBe('alive');
  });

  it('counts alive and suspect members (self included) for the formulas', () => {
    const l = list();
    l.apply(update('a', 'alive', 0));
    l.apply(update('b', 'alive', 0));
    l.apply(update('c', 'alive', 0));
    l.apply(update('b', 'suspect', 0));
    l.apply(update('c', 'dead', 0));
    expect(l.liveCount).toBe(3);
  });
});

describe('BroadcastQueue', () => {
  const size = (): number => 10;

  it('keeps one entry per member: a newer update replaces the queued one', () => {
    const q = new BroadcastQueue();
    q.enqueue(update('a', 'alive', 1));
    q.enqueue(update('a', 'suspect', 1));
    expect(q.size).toBe(1);
    expect(q.take(1_000, 4, size)).toEqual([update('a', 'suspect', 1)]);
  });

  it('sends each update at most `limit` times', () => {
    const q = new BroadcastQueue();
    q.enqueue(update('a', 'alive', 1));
    const sent = [1, 2, 3, 4, 5].map(() => q.take(1_000, 3, size).length);
    expect(sent).toEqual([1, 1, 1, 0, 0]);
    expect(q.size).toBe(0);
  });

  it('hands out the least-sent first, newest first among equals, within the byte budget', () => {
    const q = new BroadcastQueue();
    q.enqueue(update('a', 'alive', 1));
    q.enqueue(update('b', 'alive', 1));
    expect(q.take(10, 5, size).map((u) => u.metadata.nodeId)).toEqual(['b']); // budget for one: the newest
    q.enqueue(update('c', 'alive', 1));
    // a and c were sent 0 times, b once: c (newer) then a, then b
    expect(q.take(30, 5, size).map((u) => u.metadata.nodeId)).toEqual(['c', 'a', 'b']);
    expect(q.pending().map((p) => [p.update.metadata.nodeId, p.transmits])).toEqual([['c', 1], ['a', 1], ['b', 2]]);
  });

  it('leaves out what the recipient already knows, without counting it as sent', () => {
    const q = new BroadcastQueue();
    q.enqueue(update('a', 'alive', 1));
    q.enqueue(update('b', 'alive', 1));
    expect(q.take(1_000, 1, size, (u) => u.metadata.nodeId === 'a').map((u) => u.metadata.nodeId)).toEqual(['b']);
    expect(q.pending().map((p) => [p.update.metadata.nodeId, p.transmits])).toEqual([['a', 0]]);
    expect(q.take(1_000, 1, size).map((u) => u.metadata.nodeId)).toEqual(['a']);
    expect(q.size).toBe(0);
  });

  it('skips an update larger than the budget and still fills it with smaller ones', () => {
    const q = new BroadcastQueue();
    q.enqueue(update('small', 'alive', 1));
    q.enqueue(update('big', 'alive', 1));
    const sizes = (u: MemberUpdate): number => (u.metadata.nodeId === 'big' ? 100 : 10);
    expect(q.take(50, 5, sizes).map((u) => u.metadata.nodeId)).toEqual(['small']);
  });
});

describe('resolveGossipOptions', () => {
  const base = { nodeId: 'n1', advertiseEndpoint: 'https://127.0.0.1:7000' };

  it('applies the defaults', () => {
    const o = resolveGossipOptions(base);
    expect(o).toMatchObject({ cluster: 'default', probeIntervalMs: GOSSIP_DEFAULTS.probeIntervalMs, fanout: 3, indirectChecks: 3, suspicionMult: 4, suspicionMaxTimeoutMult: 6, awarenessMaxMultiplier: 8, retransmitMult: 4, profile: 'control-plane', seeds: [], http3: true });
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('names every bad key, unknown keys included', () => {
    let error: unknown;
    try {
      resolveGossipOptions({ advertiseEndpoint: 'http://x:1', probeIntervalMs: -5, fanout: 1.5, seeds: ['nope'], probeIntervalMS: 100, awarenessMaxMultiplier: 0, suspicionMaxTimeoutMult: 'six' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const keys = (error as ConfigError).issues.map((i) => i.key).sort();
    expect(keys).toEqual(['advertiseEndpoint', 'awarenessMaxMultiplier', 'fanout', 'nodeId', 'probeIntervalMS', 'probeIntervalMs', 'seeds.0', 'suspicionMaxTimeoutMult']);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
  });

  it('checks cross-field rules', () => {
    let error: unknown;
    try {
      resolveGossipOptions({ ...base, probeIntervalMs: 100, probeTimeoutMs: 100, syncIntervalMs: 50, joinRetryInitialMs: 500, joinRetryMaxMs: 100, seeds: [base.advertiseEndpoint] });
    } catch (e) {
      error = e;
    }
    expect((error as ConfigError).issues.map((i) => i.key).sort()).toEqual(['joinRetryMaxMs', 'probeTimeoutMs', 'seeds', 'syncIntervalMs']);
  });
});
