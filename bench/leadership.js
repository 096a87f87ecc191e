// `node bench/leadership.js` (after `npm run build`; part of `npm run bench`): leader election
// with its DEFAULT timings (LEADERSHIP_DEFAULTS, nothing tuned here) on the embedded lease store,
// N nodes in this one process. Prints figures; asserts nothing about time.
//
// Each node is what docs/leadership.md wires: its own GrpcHost on 127.0.0.1 (mTLS with dev-PKI
// certificates, CN = node id) serving LeadershipControl, its own container
// (grpcControlPlaneModule + leadershipModule, one EmbeddedLeaseStore shared by all nodes), a
// quiet logger, and a LeadershipControl Watch of the node read through its own factory.
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
import { CONTROL_PLANE_TOKENS, EmbeddedLeaseStore, GrpcHost, grpcControlPlaneModule, LEADERSHIP_DEFAULTS, leadershipModule, leadershipServiceImplementation, leadershipV1, TOKENS, writeDevPki } from '../dist/index.js';

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

async function startNode(id, pki, store) {
  const files = pki.files[id];
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
    profiles: { 'control-plane': { tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile } } },
  });
  container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(quiet);
  container.bind(CONTROL_PLANE_TOKENS.LeaseStore).toConstantValue(store);
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

async function oneRun(pki, ids) {
  const store = new EmbeddedLeaseStore();
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
    store.dispose();
  }
}

const dir = await mkdtemp(join(tmpdir(), 'omnirelay-leadership-bench-'));
try {
  const ids = Array.from({ length: NODES }, (_, i) => `n${i + 1}`);
  const pki = await writeDevPki(dir, ids);
  const d = LEADERSHIP_DEFAULTS;
  console.log(`Leader election with LEADERSHIP_DEFAULTS (lease TTL ${d.leaseTtlMs} ms, renew every ${d.renewIntervalMs} ms, safety margin ${d.safetyMarginMs} ms, candidate jitter 0..${d.candidateJitterMs} ms) on the embedded store, ${NODES} nodes in one process on 127.0.0.1 (mTLS), node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
  const results = [];
  for (let run = 0; run < RUNS; run++) {
    try {
      results.push(await oneRun(pki, ids));
    } catch (error) {
      console.log(`  run ${run + 1} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(', ');
  if (results.length > 0) {
    const crash = results.map((r) => r.crashMs);
    const resign = results.map((r) => r.resignMs);
    console.log(`  failover after a crash (leader killed → new leader reported by every surviving node's LeadershipControl Watch): median ${median(crash).toFixed(0)} ms over ${results.length} runs [${fmt(crash)}]  goal < 2000 ms; ratio to the goal ${(median(crash) / 2000).toFixed(2)}; bound: the lease's remaining life at the kill (TTL ${d.leaseTtlMs} ms minus 0..${d.renewIntervalMs} ms since its last renewal) + candidate jitter + the Watch`);
    console.log(`  handover after a resignation (leader stops and revokes its lease → new leader reported by all): median ${median(resign).toFixed(0)} ms [${fmt(resign)}]`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
