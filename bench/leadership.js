// `node bench/leadership.js` (after `npm run build`; part of `npm run bench`): leader election
// with its DEFAULT timings (LEADERSHIP_DEFAULTS, nothing tuned here), N nodes in this one
// process, on each store side by side: the embedded lease store, and etcd (Debian's
// etcd-server 3.4, its default server timings, on 127.0.0.1 with client certificates; skipped,
// saying so, when `etcd` is not installed). Prints figures; asserts nothing about time.
//
// Each node is what docs/leadership.md wires: its own GrpcHost on 127.0.0.1 (mTLS with dev-PKI
// certificates, CN = node id) serving LeadershipControl, its own container
// (grpcControlPlaneModule + leadershipModule; embedded: one EmbeddedLeaseStore shared by all
// nodes; etcd: etcdLeaseStoreModule, each node its own EtcdLeaseStore over its own factory's
// `etcd` profile, a fresh key prefix per run), a quiet logger, and a LeadershipControl Watch of
// the node read through its own factory.
//
// One run: N nodes start and elect a leader of `global`; once every node's Watch reports it, the
// leader is killed (`host.close(0)`, then `agent.stop({ resign: false })`: no resignation, as a
// crash) and the failover time is measured from the kill until every surviving node's Watch
// reports the new leader. Then the new leader resigns (`agent.stop()`, which revokes its lease)
// and the same is measured for a graceful handover. Every node is closed between runs.
//
// Env: LEADERSHIP_BENCH_NODES (default 5), LEADERSHIP_BENCH_RUNS (default 10).
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Container } from 'inversify';
import { startEtcd } from './etcd.js';
import { atMost, record } from './summary.js';
import { CONTROL_PLANE_TOKENS, EmbeddedLeaseStore, etcdLeaseStoreModule, GrpcHost, grpcControlPlaneModule, LEADERSHIP_DEFAULTS, leadershipModule, leadershipServiceImplementation, leadershipV1, TOKENS, writeDevPki } from '../dist/index.js';

const NODES = Math.max(2, Number(process.env.LEADERSHIP_BENCH_NODES ?? 5));
const RUNS = Math.max(1, Number(process.env.LEADERSHIP_BENCH_RUNS ?? 10));
const SCOPE = 'global';
const LIMIT_MS = 30_000;

const quiet = { info: () => {}, warn: () => {} };
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(done, limitMs = LIMIT_MS) {
  const started = performance.now();
  while (!done()) {
    if (performance.now() - started > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await pause(2);
  }
  return performance.now();
}

function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `store`: { embedded: EmbeddedLeaseStore } or { etcd: { url, prefix } }. */
async function startNode(id, pki, store) {
  const files = pki.files[id];
  const tls = { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile };
  const container = new Container();
  const profiles = { 'control-plane': { tls } };
  if (store.etcd !== undefined) {
    profiles.etcd = { http3: 'disable', tls };
    container.bind(CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions).toConstantValue({ endpoints: [store.etcd.url], prefix: store.etcd.prefix });
    container.load(etcdLeaseStoreModule);
  } else {
    container.bind(CONTROL_PLANE_TOKENS.LeaseStore).toConstantValue(store.embedded);
  }
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({ profiles });
  container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(quiet);
  container.bind(CONTROL_PLANE_TOKENS.LeadershipOptions).toConstantValue({ nodeId: id, scopes: [SCOPE] });
  container.load(grpcControlPlaneModule, leadershipModule);
  const agent = container.get(CONTROL_PLANE_TOKENS.Leadership);
  const host = await GrpcHost.start({ tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile } }, [[leadershipV1.LeadershipControlDefinition, leadershipServiceImplementation(agent)]]);
  agent.start();
  const node = { id, agent, host, container, seen: '', stopped: false, client: undefined, subscription: undefined };
  node.client = agent.client({ endpoint: host.url });
  node.subscription = node.client.watch$([SCOPE]).subscribe({ next: (t) => (node.seen = t.current.leaderId), error: () => {} });
  return node;
}

async function stopNode(node, resign) {
  if (node.stopped) return;
  node.stopped = true;
  node.subscription.unsubscribe();
  await node.client.dispose();
  await node.host.close(0);
  await node.agent.stop({ resign });
  await node.container.unbindAllAsync();
}

async function oneRun(pki, ids, etcd, run) {
  const embedded = etcd === undefined ? new EmbeddedLeaseStore() : undefined;
  const store = etcd === undefined ? { embedded } : { etcd: { url: etcd.url, prefix: `/omnirelay-bench/leadership/run-${run}/` } };
  const nodes = [];
  try {
    for (const id of ids) nodes.push(await startNode(id, pki, store));
    const running = () => nodes.filter((n) => !n.stopped);
    const leader = () => running().find((n) => n.agent.isLeader(SCOPE));
    await until(() => leader() !== undefined && running().every((n) => n.seen === leader().id));
    const first = leader();
    const killedAt = performance.now();
    await stopNode(first, false);
    await until(() => leader() !== undefined && running().every((n) => n.seen === leader().id));
    const crashMs = performance.now() - killedAt;
    const second = leader();
    const resignedAt = performance.now();
    await stopNode(second, true);
    await until(() => leader() !== undefined && running().every((n) => n.seen === leader().id));
    const resignMs = performance.now() - resignedAt;
    return { crashMs, resignMs };
  } finally {
    for (const node of nodes) await stopNode(node, false);
    embedded?.dispose();
  }
}

async function runAll(pki, ids, etcd) {
  const results = [];
  for (let run = 0; run < RUNS; run++) {
    try {
      results.push(await oneRun(pki, ids, etcd, run));
    } catch (error) {
      console.log(`  run ${run + 1} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return results;
}

const dir = await mkdtemp(join(tmpdir(), 'omnirelay-leadership-bench-'));
try {
  const ids = Array.from({ length: NODES }, (_, i) => `n${i + 1}`);
  const pki = await writeDevPki(dir, [...ids, 'etcd-server']);
  const d = LEADERSHIP_DEFAULTS;
  console.log(`Leader election with LEADERSHIP_DEFAULTS (lease TTL ${d.leaseTtlMs} ms, renew every ${d.renewIntervalMs} ms, safety margin ${d.safetyMarginMs} ms, candidate jitter 0..${d.candidateJitterMs} ms), ${NODES} nodes in one process on 127.0.0.1 (mTLS), node ${process.version}, ${(await import('node:os')).cpus().length} CPUs, ${RUNS} runs per store`);
  const embedded = await runAll(pki, ids, undefined);
  const server = pki.files['etcd-server'];
  const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
  const row = (name, results, pick, kind) => {
    const figure = kind === 'crash' ? `${name}: failover after the leader crashed (median)` : `${name}: handover after the leader resigned (median)`;
    const goal = kind === 'crash' ? '< 2000 ms' : 'reported';
    if (results.length === 0) {
      record({ area: 'leader election (5 nodes, defaults)', figure, value: 'no run succeeded', goal, met: kind === 'crash' ? false : undefined });
      return `  ${name.padEnd(14)} (no run)`;
    }
    const xs = results.map(pick);
    record({ area: 'leader election (5 nodes, defaults)', figure, value: `${median(xs).toFixed(0)} ms (${results.length} runs)`, goal, met: kind === 'crash' ? atMost(median(xs), 1999) : undefined });
    return `  ${name.padEnd(14)} median ${median(xs).toFixed(0).padStart(5)} ms over ${String(results.length).padStart(2)} runs  ratio to the 2000 ms goal ${(median(xs) / 2000).toFixed(2)}  [${fmt(xs)}]`;
  };
  // etcd with its default server timings, then with a 500 ms election timeout (heartbeat 50 ms):
  // etcd raises every lease to its minimum TTL, 1.5 × the election timeout rounded up to whole
  // seconds (2 s by default, 1 s with 500 ms), and deletes expired leases on a 500 ms tick.
  const variants = [
    { name: 'etcd', args: [], note: 'etcd 3.4, default server timings (election timeout 1000 ms): minimum lease TTL 2 s' },
    { name: 'etcd (500 ms)', args: ['--heartbeat-interval', '50', '--election-timeout', '500'], note: 'etcd 3.4 with --election-timeout 500 --heartbeat-interval 50: minimum lease TTL 1 s' },
  ];
  const rows = { crash: [row('embedded', embedded, (r) => r.crashMs, 'crash')], resign: [row('embedded', embedded, (r) => r.resignMs, 'resign')] };
  const notes = [];
  for (const variant of variants) {
    const etcd = await startEtcd({ certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile }, variant.args);
    if (etcd.skip !== undefined) {
      record({ area: 'leader election (5 nodes, defaults)', figure: `${variant.name}: failover after the leader crashed`, value: `skipped: ${etcd.skip}`, goal: '< 2000 ms' });
      rows.crash.push(`  ${variant.name.padEnd(14)} skipped: ${etcd.skip}`);
      rows.resign.push(`  ${variant.name.padEnd(14)} skipped: ${etcd.skip}`);
      continue;
    }
    try {
      const results = await runAll(pki, ids, etcd);
      rows.crash.push(row(variant.name, results, (r) => r.crashMs, 'crash'));
      rows.resign.push(row(variant.name, results, (r) => r.resignMs, 'resign'));
      notes.push(`  ${variant.name}: ${variant.note}`);
    } finally {
      await etcd.close();
    }
  }
  console.log("failover after a crash (leader killed → new leader reported by every surviving node's LeadershipControl Watch); goal < 2000 ms:");
  for (const line of rows.crash) console.log(line);
  console.log('handover after a resignation (leader stops and revokes its lease → new leader reported by all):');
  for (const line of rows.resign) console.log(line);
  console.log(`bound after a crash: the lease's remaining life at the kill (its TTL minus 0..${d.renewIntervalMs} ms since its last renewal; embedded: ${d.leaseTtlMs} ms; etcd: its minimum TTL when larger, then up to 500 ms more until etcd's expiry tick) + candidate jitter 0..${d.candidateJitterMs} ms + the Watch`);
  for (const line of notes) console.log(line);
} finally {
  await rm(dir, { recursive: true, force: true });
}
