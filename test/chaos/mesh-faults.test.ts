/**
 * Chaos tier: four node processes, each in its own network namespace, gossiping through the
 * factory over veth links; faults are real nftables drops in a node's namespace (see
 * support/chaos-net.ts and the README's chaos tier section).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { allSee, ChaosNet, chaosUnavailable, cleanStale, describeViews, waitFor, type ChaosNode, type NodeTuning, type PingReply } from './support/chaos-net.js';

const unavailable = chaosUnavailable();
if (unavailable !== undefined) console.warn(`chaos tier SKIPPED (mesh-faults): ${unavailable}`);
const suite = unavailable === undefined ? describe : describe.skip;

const IDS = ['n1', 'n2', 'n3', 'n4'];

/**
 * Short timings so the tier runs in seconds: gossip probes every 250 ms, and HTTP/3 failures are
 * remembered for 1–2 s only (`http3Health`; the default is 1 s doubling up to 5 min), so a link
 * whose UDP returns is back on HTTP/3 within seconds.
 */
const TUNING: NodeTuning = {
  gossip: { probeIntervalMs: 250, probeTimeoutMs: 200, syncIntervalMs: 1_000, joinRetryInitialMs: 100, joinRetryMaxMs: 500, leaveTimeoutMs: 500 },
  profile: { connectTimeoutMs: 1_000, http3Health: { initialBackoffMs: 1_000, maxBackoffMs: 2_000 } },
};

suite(`mesh under real network faults${unavailable === undefined ? '' : ` (skipped: ${unavailable})`}`, () => {
  const net = new ChaosNet('mesh');
  const byId = new Map<string, ChaosNode>();
  const node = (id: string): ChaosNode => {
    const found = byId.get(id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  };
  const converged = async (ids = IDS): Promise<boolean> => allSee(await net.views(), ids, ids, 'alive');

  beforeAll(async () => {
    const stale = cleanStale();
    if (stale.length > 0) console.warn(`removed namespaces of an earlier crashed run: ${stale.join(', ')}`);
    await net.init(IDS);
    const first = await net.start('n1', [], TUNING);
    byId.set('n1', first);
    for (const id of IDS.slice(1)) byId.set(id, await net.start(id, [first.url], TUNING));
    if (!(await waitFor(() => converged()))) throw new Error(`the mesh did not converge:\n${describeViews(await net.views())}`);
  }, 120_000);

  afterAll(async () => {
    await net.close();
  }, 60_000);

  test('UDP dropped on one link: that peer\'s calls move to HTTP/2, others stay on HTTP/3, and HTTP/3 returns with UDP', async () => {
    const n1 = node('n1');
    const n2 = node('n2');
    const n3 = node('n3');
    // Before the fault: n1 → n2 reaches HTTP/3 (the first call may be won by HTTP/2 while QUIC handshakes).
    let last: PingReply | undefined;
    expect(await waitFor(async () => (last = await n1.ping(n2.url)).protocol === 'h3', 30_000, 200)).toBe(true);

    // Drop UDP between n1 and n2 only, in n2's namespace, both directions.
    const fault = net.fault('n2', `ip saddr ${n1.address} meta l4proto udp`, `ip daddr ${n1.address} meta l4proto udp`);
    try {
      const failures: PingReply[] = [];
      const onH2 = await waitFor(async () => {
        last = await n1.ping(n2.url);
        if (!last.ok) failures.push(last);
        return last.ok && last.protocol === 'h2';
      }, 60_000, 200);
      expect({ onH2, last }).toEqual({ onH2: true, last: expect.objectContaining({ ok: true, protocol: 'h2', node: 'n2' }) });
      // Once on HTTP/2 it stays there while UDP is dropped: ten calls in a row succeed over HTTP/2.
      const next: PingReply[] = [];
      for (let i = 0; i < 10; i++) next.push(await n1.ping(n2.url));
      expect(next.map((r) => `${String(r.ok)}/${String(r.protocol)}`)).toEqual(Array<string>(10).fill('true/h2'));
      // A call that failed during the switch failed with a typed error (a code), never untyped.
      for (const failure of failures) expect(failure.code).toEqual(expect.any(String));
      // The other links still carry UDP: n3 → n2 reaches HTTP/3.
      expect(await waitFor(async () => (await n3.ping(n2.url)).protocol === 'h3', 30_000, 200)).toBe(true);
      // Gossip over the HTTP/2 fallback keeps n2 alive in n1's view (only UDP is gone).
      expect(await waitFor(() => converged())).toBe(true);
    } finally {
      fault.heal();
    }

    // UDP back: once the http3Health backoff (1–2 s here) ends, n1 → n2 returns to HTTP/3.
    expect(await waitFor(async () => (last = await n1.ping(n2.url)).ok && last.protocol === 'h3', 60_000, 250)).toBe(true);
  }, 180_000);

  test('a blackholed node becomes suspect, then dead, everywhere; the rest of the mesh stays alive', async () => {
    expect(await waitFor(() => converged())).toBe(true);
    const n4 = node('n4');
    const others = IDS.filter((id) => id !== 'n4');
    // Everything on n4's link dropped, both directions (TCP and UDP).
    const fault = net.fault('n4', 'meta nfproto ipv4', 'meta nfproto ipv4');
    try {
      const seenSuspect = new Set<string>();
      const dead = await waitFor(async () => {
        const views = await net.views();
        for (const viewer of others) {
          const status = views.get(viewer)?.find((m) => m.id === 'n4')?.status;
          if (status === 'suspect' || status === 'dead') seenSuspect.add(viewer);
        }
        return allSee(views, others, ['n4'], 'dead');
      }, 60_000, 100);
      const views = await net.views();
      expect({ dead, views: describeViews(views) }).toEqual({ dead: true, views: expect.any(String) });
      // Suspicion came first (SWIM never goes alive → dead directly) and nobody else was hurt.
      expect(seenSuspect.size).toBeGreaterThan(0);
      expect(allSee(views, others, others, 'alive')).toBe(true);
      // Calls to the blackholed node fail (typed), nothing hangs past the deadline.
      const reply = await node('n1').ping(n4.url, 1_500);
      expect(reply.ok).toBe(false);
      expect(reply.code).toEqual(expect.any(String));
    } finally {
      fault.heal();
    }

    // The link restored: n4 is alive everywhere again, and sees everyone alive.
    const healed = await waitFor(() => converged(), 60_000, 200);
    expect({ healed, views: describeViews(await net.views()) }).toEqual({ healed: true, views: expect.any(String) });
  }, 120_000);

  test('a peer killed under load and restarted is readmitted: alive everywhere, calls succeed again', async () => {
    expect(await waitFor(() => converged())).toBe(true);
    const n3 = node('n3');
    const url = n3.url;
    const port = Number(new URL(url).port);
    const callers = [node('n1'), node('n2')];
    // Load: n1 and n2 call n3 back to back for the whole test.
    const replies: { at: number; reply: PingReply }[] = [];
    let loading = true;
    const loops = callers.map(async (caller) => {
      while (loading) replies.push({ at: Date.now(), reply: await caller.ping(url, 1_000) });
    });
    try {
      expect(await waitFor(async () => Promise.resolve(replies.filter((r) => r.reply.ok).length >= 10))).toBe(true);
      const before = (await node('n1').view()).find((m) => m.id === 'n3')?.incarnation ?? -1;

      await n3.kill(); // SIGKILL: no leave
      const killedAt = Date.now();
      const others = IDS.filter((id) => id !== 'n3');
      expect(await waitFor(async () => allSee(await net.views(), others, ['n3'], 'dead'), 60_000, 100)).toBe(true);
      // Calls to the dead peer fail with a typed error while it is down.
      expect(await waitFor(async () => Promise.resolve(replies.some((r) => r.at > killedAt && !r.reply.ok)))).toBe(true);
      for (const { reply } of replies.filter((r) => r.at > killedAt && !r.reply.ok)) expect(reply.code).toEqual(expect.any(String));

      // Restarted on the same address and port (the endpoint callers use), joining through n1.
      const restarted = await net.start('n3', [node('n1').url], TUNING, port);
      byId.set('n3', restarted);
      const restartedAt = Date.now();
      const readmitted = await waitFor(() => converged(), 60_000, 200);
      expect({ readmitted, views: describeViews(await net.views()) }).toEqual({ readmitted: true, views: expect.any(String) });
      // It came back above the incarnation it died with (refuted the death it learned of).
      expect((await node('n1').view()).find((m) => m.id === 'n3')?.incarnation).toBeGreaterThan(before);
      // The load's calls succeed again: ten in a row after the restart, from both callers.
      const okInARow = (): boolean => {
        const after = replies.filter((r) => r.at > restartedAt).slice(-10);
        return after.length === 10 && after.every((r) => r.reply.ok && r.reply.node === 'n3');
      };
      expect(await waitFor(() => Promise.resolve(okInARow()), 60_000, 100)).toBe(true);
    } finally {
      loading = false;
      await Promise.all(loops);
    }
  }, 180_000);
});
