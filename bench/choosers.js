// `node bench/choosers.js` (after `npm run build`): cost of one peer pick for each chooser,
// at 3 and at 1,000 peers, in nanoseconds. Prints figures; asserts nothing about time.
//
// Each case is warmed up, then timed in ROUNDS rounds of PICKS picks; the median round is
// reported (and the fastest, to show the spread on this shared machine). The picks are
// first attempts (nothing tried yet) unless the case says "retry", where the call already
// tried one peer. The factory offers the chooser the same array while the set of offered
// peers (not draining, circuit not open) is unchanged; the cases do the same. Fewest-pending keeps a realistic in-flight count: every pick starts a
// call and the call that started 16 picks earlier ends (onCallStart / onCallEnd are timed
// with the pick, as the factory makes them on every call).
import { performance } from 'node:perf_hooks';
import { record } from './summary.js';
import { FewestPendingPeerChooser, PreferredPeerChooser, RoundRobinPeerChooser } from '../dist/index.js';

const PICKS = Number(process.env.BENCH_PICKS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);

/** mulberry32: a fast deterministic source in [0, 1). */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function peers(count) {
  return Array.from({ length: count }, (_, i) => {
    const host = `10.0.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`;
    const authority = `${host}:7001`;
    return { authority, endpoint: { url: `https://${authority}`, host, port: 7001, authority, secure: true } };
  });
}

function time(run) {
  const rounds = [];
  for (let r = 0; r < ROUNDS + 2; r++) {
    const start = performance.now();
    run(PICKS);
    const ns = ((performance.now() - start) * 1e6) / PICKS;
    if (r >= 2) rounds.push(ns); // two warm-up rounds
  }
  rounds.sort((a, b) => a - b);
  return { median: rounds[Math.floor(rounds.length / 2)], best: rounds[0] };
}

const cases = [];
for (const count of [3, 1000]) {
  const list = peers(count);
  const first = { profile: 'control-plane', attempt: 1, tried: new Set(), peerSet: `bench-${count}` };
  const retry = { profile: 'control-plane', attempt: 2, tried: new Set([list[0].authority]), peerSet: `bench-${count}` };
  let sink = 0;
  const pickLoop = (chooser, context) => (n) => {
    for (let i = 0; i < n; i++) sink += chooser.choose(list, context).endpoint.port;
  };

  cases.push([`round-robin`, count, pickLoop(new RoundRobinPeerChooser(), first)]);
  cases.push([`round-robin, retry`, count, pickLoop(new RoundRobinPeerChooser(), retry)]);
  const middle = list[Math.floor(count / 2)].authority;
  cases.push([`preferred (offered)`, count, pickLoop(new PreferredPeerChooser(middle), first)]);
  // The preferred peer is not offered (its circuit is open): the round-robin fallback. The
  // factory hands the same offered array over while the same peers are left out, so the
  // chooser scans for the preferred peer once per change of that list ...
  cases.push([`preferred (failed over)`, count, pickLoop(new PreferredPeerChooser('192.0.2.1:7001'), first)]);
  // ... and scans on every pick only when the offered list changes every time (worst case).
  {
    const chooser = new PreferredPeerChooser('192.0.2.1:7001');
    const copies = [list.slice(), list.slice()];
    cases.push([
      `preferred (failed over, new list)`,
      count,
      (n) => {
        for (let i = 0; i < n; i++) sink += chooser.choose(copies[i & 1], first).endpoint.port;
      },
    ]);
  }
  {
    const chooser = new FewestPendingPeerChooser(seeded(1));
    const open = new Array(16).fill(undefined);
    cases.push([
      `fewest-pending (+ start/end)`,
      count,
      (n) => {
        for (let i = 0; i < n; i++) {
          const peer = chooser.choose(list, first).authority;
          chooser.onCallStart(peer);
          const slot = i & 15;
          if (open[slot] !== undefined) chooser.onCallEnd(open[slot], true);
          open[slot] = peer;
        }
      },
    ]);
  }
  cases.push([`fewest-pending, retry`, count, pickLoop(new FewestPendingPeerChooser(seeded(2)), retry)]);
  if (sink === -1) console.log(sink);
}

console.log(`peer chooser cost per pick (ns; median of ${ROUNDS} rounds of ${PICKS} picks, best in brackets), node ${process.version}`);
console.log(`${'chooser'.padEnd(36)} ${'3 peers'.padStart(16)} ${'1,000 peers'.padStart(16)}`);
const rows = new Map();
for (const [name, count, run] of cases) {
  const { median, best } = time(run);
  const row = rows.get(name) ?? {};
  row[count] = `${median.toFixed(1)} [${best.toFixed(1)}]`;
  rows.set(name, row);
}
for (const [name, row] of rows) {
  console.log(`${name.padEnd(36)} ${String(row[3]).padStart(16)} ${String(row[1000]).padStart(16)}`);
  record({ area: 'peer choosers', figure: `${name}: ns per pick at 3 / 1,000 peers (median [best])`, value: `${row[3]} / ${row[1000]}`, goal: 'reported' });
}
