import { describe, expect, it } from '@jest/globals';
import { resolveOptions } from '../../../src/config/schema.js';
import type { ControlPlaneOptionsInput } from '../../../src/config/types.js';
import { FewestPendingPeerChooser } from '../../../src/peers/fewest-pending.js';
import { InFlightCounter } from '../../../src/peers/in-flight.js';
import { PreferredPeerChooser } from '../../../src/peers/preferred-peer.js';
import { ProfilePeerChooser } from '../../../src/peers/profile-peer-chooser.js';
import { RoundRobinPeerChooser } from '../../../src/peers/round-robin.js';
import { context, peerList, seeded, sequence, tally } from './peers.js';

const [a, b, c] = peerList(3) as [ReturnType<typeof peerList>[number], ReturnType<typeof peerList>[number], ReturnType<typeof peerList>[number]];

describe('RoundRobinPeerChooser', () => {
  it('rotates through the peers in order and spreads calls exactly evenly', () => {
    const chooser = new RoundRobinPeerChooser();
    const peers = [a, b, c];
    const picks = Array.from({ length: 300 }, () => chooser.choose(peers, context()));
    expect(picks.slice(0, 4).map((p) => p?.authority)).toEqual([a.authority, b.authority, c.authority, a.authority]);
    expect(tally(picks)).toEqual({ [a.authority]: 100, [b.authority]: 100, [c.authority]: 100 });
  });

  it('keeps one rotation per peer set', () => {
    const chooser = new RoundRobinPeerChooser();
    expect(chooser.choose([a, b, c], context({ peerSet: 'one' }))).toBe(a);
    expect(chooser.choose([a, b, c], context({ peerSet: 'two' }))).toBe(a);
    expect(chooser.choose([a, b, c], context({ peerSet: 'one' }))).toBe(b);
  });

  it('sends a retry to a peer the call has not tried, and to a tried one only when nothing else is offered', () => {
    const chooser = new RoundRobinPeerChooser();
    expect(chooser.choose([a, b, c], context({ attempt: 2, tried: new Set([a.authority, b.authority]) }))).toBe(c);
    expect(chooser.choose([a], context({ attempt: 2, tried: new Set([a.authority]) }))).toBe(a);
    expect(chooser.choose([], context())).toBeUndefined();
  });

  it('lets peers that join take their share and stops picking peers that left', () => {
    const chooser = new RoundRobinPeerChooser();
    const four = peerList(4);
    const picks = Array.from({ length: 400 }, () => chooser.choose(four, context()));
    expect(Object.values(tally(picks))).toEqual([100, 100, 100, 100]);
    const two = four.slice(0, 2);
    const after = tally(Array.from({ length: 100 }, () => chooser.choose(two, context())));
    expect(after).toEqual({ [two[0]!.authority]: 50, [two[1]!.authority]: 50 });
  });
});

describe('PreferredPeerChooser', () => {
  it('sticks to the preferred peer while it is offered', () => {
    const chooser = new PreferredPeerChooser(b.authority);
    expect(tally(Array.from({ length: 50 }, () => chooser.choose([a, b, c], context())))).toEqual({ [b.authority]: 50 });
  });

  it('fails over to the others in turn while the preferred peer is not offered, and comes back when it is', () => {
    const chooser = new PreferredPeerChooser(b.authority);
    // The factory leaves b out while its circuit is open.
    const failover = Array.from({ length: 10 }, () => chooser.choose([a, c], context()));
    expect(tally(failover)).toEqual({ [a.authority]: 5, [c.authority]: 5 });
    // Its circuit lets a probe through (or closed): offered again, and chosen again.
    expect(chooser.choose([a, b, c], context())).toBe(b);
    expect(chooser.choose([a, b, c], context())).toBe(b);
  });

  it('sends a retry elsewhere once the preferred peer failed this call', () => {
    const chooser = new PreferredPeerChooser(b.authority);
    const retry = chooser.choose([a, b, c], context({ attempt: 2, tried: new Set([b.authority]) }));
    expect(retry).toBeDefined();
    expect(retry).not.toBe(b);
  });
});

describe('FewestPendingPeerChooser (power of two choices)', () => {
  it('draws two distinct peers and takes the one with fewer calls in flight', () => {
    const counter = new InFlightCounter();
    // 0.0 → index 0 (a); 0.99 → index 1 of the remaining two → c.
    const chooser = new FewestPendingPeerChooser(sequence(0, 0.99), counter);
    counter.start(a.authority);
    expect(chooser.choose([a, b, c], context())).toBe(c);
    counter.start(c.authority);
    counter.start(c.authority);
    expect(chooser.choose([a, b, c], context())).toBe(a);
  });

  it('never picks the single busiest peer when there are two or more', () => {
    const chooser = new FewestPendingPeerChooser(seeded(7));
    for (let i = 0; i < 5; i++) chooser.onCallStart(c.authority);
    const picks = Array.from({ length: 1_000 }, () => chooser.choose([a, b, c], context()));
    expect(tally(picks)[c.authority]).toBeUndefined();
  });

  it('spreads idle load about evenly (seeded randomness)', () => {
    const chooser = new FewestPendingPeerChooser(seeded(42));
    const counts = tally(Array.from({ length: 3_000 }, () => chooser.choose([a, b, c], context())));
    for (const peer of [a, b, c]) {
      expect(counts[peer.authority]).toBeGreaterThan(850);
      expect(counts[peer.authority]).toBeLessThan(1_150);
    }
  });

  it('steers load away from a slow peer: calls that finish late keep its count high', () => {
    const chooser = new FewestPendingPeerChooser(seeded(3));
    const peers = peerList(4);
    const slow = peers[0]!.authority;
    const open: string[] = [];
    const picks: string[] = [];
    for (let i = 0; i < 2_000; i++) {
      const peer = chooser.choose(peers, context())!.authority;
      picks.push(peer);
      chooser.onCallStart(peer);
      open.push(peer);
      // Fast peers finish their call at once; the slow one keeps its calls until 8 are open.
      for (let j = open.length - 1; j >= 0; j--) {
        if (open[j] !== slow || open.filter((p) => p === slow).length > 8) {
          chooser.onCallEnd(open[j]!);
          open.splice(j, 1);
        }
      }
    }
    const share = picks.filter((p) => p === slow).length / picks.length;
    expect(share).toBeLessThan(0.05);
  });

  it('prefers an untried peer on a retry', () => {
    const chooser = new FewestPendingPeerChooser(sequence(0, 0));
    // Draws a and b; a was tried.
    expect(chooser.choose([a, b, c], context({ attempt: 2, tried: new Set([a.authority]) }))).toBe(b);
    // Both draws tried: the least busy untried peer.
    expect(chooser.choose([a, b, c], context({ attempt: 3, tried: new Set([a.authority, b.authority]) }))).toBe(c);
    expect(chooser.choose([a], context())).toBe(a);
    expect(chooser.choose([], context())).toBeUndefined();
  });
});

describe('ProfilePeerChooser (the default TOKENS.PeerChooser)', () => {
  function monitor(input: ControlPlaneOptionsInput): { current: ReturnType<typeof resolveOptions> } {
    return { current: resolveOptions(input) };
  }

  it("uses each profile's peerChooser option", () => {
    const options = monitor({
      endpoints: { second: { url: `https://${b.authority}`, profile: 'sticky' } },
      profiles: {
        sticky: { tls: { mode: 'tls' }, peerChooser: { kind: 'preferred', preferred: 'second' } },
        rr: { tls: { mode: 'tls' }, peerChooser: { kind: 'round-robin' } },
      },
    });
    const chooser = new ProfilePeerChooser(options, seeded(1));
    expect(tally(Array.from({ length: 6 }, () => chooser.choose([a, b, c], context({ profile: 'sticky' }))))).toEqual({ [b.authority]: 6 });
    expect(tally(Array.from({ length: 6 }, () => chooser.choose([a, b, c], context({ profile: 'rr' }))))).toEqual({ [a.authority]: 2, [b.authority]: 2, [c.authority]: 2 });
  });

  it('counts in-flight calls once for fewest-pending profiles and follows a changed option', () => {
    const options = monitor({ profiles: { bulk: { preset: 'data-plane', tls: { mode: 'tls' } } } });
    const chooser = new ProfilePeerChooser(options, sequence(0, 0.99));
    chooser.onCallStart(a.authority);
    expect(chooser.pending(a.authority)).toBe(1);
    expect(chooser.choose([a, b, c], context({ profile: 'bulk' }))).toBe(c);
    chooser.onCallEnd(a.authority);
    expect(chooser.pending(a.authority)).toBe(0);
    options.current = resolveOptions({ profiles: { bulk: { preset: 'data-plane', tls: { mode: 'tls' }, peerChooser: { kind: 'preferred', preferred: c.authority } } } });
    expect(chooser.choose([a, b, c], context({ profile: 'bulk' }))).toBe(c);
    expect(chooser.choose([a, b], context({ profile: 'bulk' }))).toBe(a);
  });
});
