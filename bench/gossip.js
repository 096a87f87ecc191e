// `node bench/gossip.js` (after `npm run build`; part of `npm run bench`): the SWIM gossip agent
// with its DEFAULT timings (GOSSIP_DEFAULTS, nothing tuned here) over real sockets, N nodes in
// this one process. Prints figures and ratios; asserts nothing about time.
//
// Each node is what docs/gossip.md wires: its own GrpcHost on 127.0.0.1 (mTLS with dev-PKI
// certificates, CN = node id, HTTP/2 + HTTP/3 on one port) serving the gossip service, its own
// container (grpcControlPlaneModule + gossipModule, the `control-plane` profile: HTTP/3
// preferred), an in-process MeterProvider bound to TOKENS.Telemetry (so the factory's RPC
// metrics cost what they cost in production) and a quiet, counting logger.
//
// One run at size N:
//   1. N-1 nodes start (node 0 without seeds, the others seeded with node 0) and converge (each
//      sees all alive, no broadcasts queued); then a settle of one probe pass (N rounds) so the
//      connections a running cluster has are open.
//   2. Join seen by all: one more node starts, seeded with one random existing node; the time
//      from its `start()` until every node's member list has it `alive` (the agents' member
//      transitions, checked against `agent.member(id)?.status`). Also printed: when the seed
//      knew, how many gossip hops the news took, and the event-loop figures meanwhile.
//   3. Steady state: after the join drained and another probe pass, messages per node per
//      second over GOSSIP_BENCH_WINDOW_MS (mesh_gossip_messages_total by direction and RPC),
//      CPU per node (process.cpuUsage over the window / N) and event-loop utilisation.
//   4. Dead everywhere: one node (not the seed) is killed — `host.close(0)` then
//      `agent.stop({ leave: false })` — and the time until every other node has it `dead`, and
//      to the first `suspect`, next to the suspicion timeout the formula gives for N.
// Between runs every agent is stopped, every container unbound and every host closed; the
// process's active handles are compared with the ones before the first run.
//
// Env: GOSSIP_BENCH_SIZES (default 10,50), GOSSIP_BENCH_RUNS (default 3 per size),
// GOSSIP_BENCH_WINDOW_MS (default 10000), GOSSIP_BENCH_SETTLE_MS (default: N × probeIntervalMs),
// GOSSIP_BENCH_CONVERGE_LIMIT_MS (default 60000; a run whose N-1 nodes do not converge by then is
// reported with what the nodes saw, the message rates, CPU and event-loop delay), and, as
// diagnostics, GOSSIP_BENCH_HTTP3=0 (every node HTTP/2-only) and GOSSIP_BENCH_TRACE=1 (the
// convergence second by second: views, health scores, transitions, failed calls, CPU, delay).
//
// GOSSIP_BENCH_PROCESSES=P (default 1: all nodes in this process, as above) spreads the nodes over
// P child processes (bench/gossip-worker.js, node i in child i mod P, the same wiring), as real
// deployments run one node per process: this process writes the dev PKI, starts node 0's host
// first and passes its URL as everyone's seed, and measures the same figures from the member
// transitions the children push (epoch-millisecond timestamps) and their answers to polls (views
// every 100 ms, message counters, process.cpuUsage and event-loop meters per child). CPU is then
// summed over the children; ELU is their mean and the event-loop delay the worst child's. Children
// close their nodes and exit when told, exit when this process goes away, and are SIGKILLed if
// they do not exit or this process exits first.
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fork } from 'node:child_process';
import { clearInterval, setInterval } from 'node:timers';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { Container } from 'inversify';
import { atMost, record } from './summary.js';
import { CONTROL_PLANE_TOKENS, GOSSIP_DEFAULTS, gossipModule, gossipServiceImplementation, gossipV1, GrpcHost, grpcControlPlaneModule, METRIC_GOSSIP_MESSAGES, suspicionTimeoutMs, TOKENS, writeDevPki } from '../dist/index.js';

const SIZES = (process.env.GOSSIP_BENCH_SIZES ?? '10,50').split(',').map(Number).filter((n) => n >= 2);
const RUNS = Number(process.env.GOSSIP_BENCH_RUNS ?? 3);
const WINDOW_MS = Number(process.env.GOSSIP_BENCH_WINDOW_MS ?? 10_000);
/** Diagnostic only: GOSSIP_BENCH_HTTP3=0 runs every node HTTP/2-only (host http3: false, option http3: false → peers get a deny hint). */
const HTTP3 = process.env.GOSSIP_BENCH_HTTP3 !== '0';
/** GOSSIP_BENCH_PROCESSES=P (> 1): the nodes spread over P child processes (node i in worker i mod P). */
const PROCESSES = Math.max(1, Number(process.env.GOSSIP_BENCH_PROCESSES ?? 1));
/** Diagnostic: GOSSIP_BENCH_TRACE=1 prints the convergence second by second (one process only). */
const TRACE = process.env.GOSSIP_BENCH_TRACE === '1';
const SETTLE_MS = process.env.GOSSIP_BENCH_SETTLE_MS === undefined ? undefined : Number(process.env.GOSSIP_BENCH_SETTLE_MS);
/** Hang guards (not speed targets). */
const CONVERGE_LIMIT_MS = Number(process.env.GOSSIP_BENCH_CONVERGE_LIMIT_MS ?? 60_000);
const EVENT_LIMIT_MS = 30_000;
const ROUND_MS = GOSSIP_DEFAULTS.probeIntervalMs;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class CollectingReader extends MetricReader {
  onShutdown() {
    return Promise.resolve();
  }
  onForceFlush() {
    return Promise.resolve();
  }
}

/** Polls `done` every 10 ms; false after `limitMs`. */
/**
 * Steady-state figures over one measuring window: message rates per node per second from the
 * counter totals before and after (`before(key)`, `after(key)`), CPU per node and the loop meter's.
 */
function steadyFigures(before, after, n, w) {
  const rate = (key) => (after(key) - before(key)) / n / w.seconds;
  return {
    outOk: rate('outbound ok'),
    inOk: rate('inbound ok'),
    outFailed: rate('outbound failed'),
    outRejected: rate('outbound rejected'),
    inRejected: rate('inbound rejected'),
    byMessage: Object.fromEntries(['ping', 'pingReq', 'sync', 'leave'].map((m) => [m, rate(`outbound ok ${m}`)])),
    cpuPerNodeMs: w.cpuMs / n / w.seconds,
    elu: w.elu,
    delayP99: w.delayP99,
  };
}

async function waitFor(done, limitMs) {
  const until = performance.now() + limitMs;
  while (!done()) {
    if (performance.now() > until) return false;
    await pause(10);
  }
  return true;
}

function median(xs) {
  const s = xs.filter((x) => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'n/a');
const list = (xs, f = (x) => x.toFixed(0)) => xs.map((x) => (x === undefined || !Number.isFinite(x) ? 'n/a' : f(x))).join(', ');

/** Counts every log event; keeps member transitions (timestamps in performance.now()). */
function recorder() {
  const counts = new Map();
  const transitions = [];
  return {
    counts,
    transitions,
    logger(nodeId) {
      const log = (event, fields) => {
        counts.set(event, (counts.get(event) ?? 0) + 1);
        if (event.startsWith('gossip.member.')) transitions.push({ at: performance.now(), node: nodeId, event: event.slice('gossip.member.'.length), peer: fields.peer, via: fields.via, protocol: fields.protocol });
      };
      return { info: log, warn: log };
    },
  };
}

export async function startNode(pki, id, seeds, rec) {
  const files = pki.files[id];
  const holder = {};
  const host = await GrpcHost.start({ host: '127.0.0.1', tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile }, http3: HTTP3 }, [
    [gossipV1.GossipDefinition, gossipServiceImplementation(() => holder.agent)],
  ]);
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({ profiles: { 'control-plane': { tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile } } } });
  container.bind(TOKENS.Telemetry).toConstantValue({ meterProvider });
  container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(rec.logger(id));
  container.bind(CONTROL_PLANE_TOKENS.GossipOptions).toConstantValue({ nodeId: id, advertiseEndpoint: host.url, seeds, cluster: 'bench', ...(HTTP3 ? {} : { http3: false }) });
  container.load(grpcControlPlaneModule, gossipModule);
  const agent = container.get(CONTROL_PLANE_TOKENS.Gossip);
  holder.agent = agent;
  return { id, host, container, agent, reader, meterProvider, closed: false };
}

export async function closeNode(node) {
  if (node.closed) return;
  node.closed = true;
  await node.agent.stop({ leave: false });
  await node.container.unbindAllAsync();
  await node.host.close(0);
  await node.meterProvider.shutdown();
}

/** mesh_gossip_messages_total summed by `direction/message` (outcome ok only) and `direction/outcome`. */
export async function messageCounts(node) {
  const { resourceMetrics } = await node.reader.collect();
  const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === METRIC_GOSSIP_MESSAGES);
  const out = new Map();
  for (const p of metric?.dataPoints ?? []) {
    const { direction, outcome, message } = p.attributes;
    for (const key of [`${direction} ${outcome}`, `${direction} ${outcome} ${message}`]) out.set(key, (out.get(key) ?? 0) + p.value);
  }
  return out;
}

function activeHandles() {
  const counts = {};
  for (const r of process.getActiveResourcesInfo()) if (r !== 'Timeout' && r !== 'Immediate') counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

export function loopMeter() {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    h.disable();
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, cpuMs: (cpu.user + cpu.system) / 1000, elu: performance.eventLoopUtilization(elu0).utilization, delayP99: h.percentile(99) / 1e6, delayMax: h.max / 1e6 };
  };
}

/**
 * GOSSIP_BENCH_TRACE=1: one line per second while the first N-1 nodes converge — views by status
 * (of N² pairs), Lifeguard health scores (mean, max), member transitions and refutations in that
 * second, failed outbound gossip calls, CPU and event-loop delay of the process.
 */
function traceConvergence(nodes, rec) {
  const t0 = performance.now();
  let meter = loopMeter();
  let seenTransitions = 0;
  let seenRefutations = 0;
  let failed0 = 0;
  const timer = setInterval(() => {
    void (async () => {
      const l = meter();
      meter = loopMeter();
      const views = { alive: 0, suspect: 0, dead: 0, unknown: 0 };
      for (const a of nodes) for (const b of nodes) views[a.agent.member(b.id)?.status ?? 'unknown']++;
      const scores = nodes.map((x) => x.agent.healthScore);
      const transitions = rec.transitions.length - seenTransitions;
      seenTransitions = rec.transitions.length;
      const refutations = (rec.counts.get('gossip.refuted') ?? 0) - seenRefutations;
      seenRefutations = rec.counts.get('gossip.refuted') ?? 0;
      const counts = await Promise.all(nodes.map(messageCounts));
      const failed = counts.reduce((t, m) => t + (m.get('outbound failed') ?? 0), 0);
      console.log(
        `    t=${((performance.now() - t0) / 1000).toFixed(0)} s: views ${JSON.stringify(views)}; health mean ${(scores.reduce((a, b) => a + b, 0) / scores.length).toFixed(1)} max ${Math.max(...scores)}; ` +
          `transitions ${transitions}, refutations ${refutations}, failed calls ${failed - failed0}; CPU ${(l.cpuMs / l.seconds / 10).toFixed(0)} %, delay p99 ${l.delayP99.toFixed(0)} ms`,
      );
      failed0 = failed;
    })();
  }, 1_000);
  return () => {
    clearInterval(timer);
    meter();
  };
}

/** Hops of the news about `subject`: the node itself 0, each node one more than who told it. */
function hopsOf(subject, transitions, seedId) {
  const hops = new Map([[subject, 0]]);
  for (const t of transitions) {
    if (hops.has(t.node)) continue;
    const from = hops.get(t.via);
    hops.set(t.node, from === undefined ? NaN : from + 1);
  }
  hops.delete(subject);
  return { max: Math.max(...hops.values()), seedHop: hops.get(seedId), unknown: [...hops.values()].filter((h) => Number.isNaN(h)).length };
}

async function oneRun(pki, n, run) {
  const rec = recorder();
  const nodes = [];
  const ids = Array.from({ length: n }, (_, i) => `g${i}`);
  const result = { n };
  const settleMs = SETTLE_MS ?? n * ROUND_MS;
  try {
    // 1. N-1 nodes converge.
    const t0 = performance.now();
    for (let i = 0; i < n - 1; i++) nodes.push(await startNode(pki, ids[i], i === 0 ? [] : [nodes[0].host.url], rec));
    const hostsUp = performance.now();
    const convergeLoop = loopMeter();
    const joins = await Promise.all(nodes.map((x) => x.agent.start()));
    if (!joins.every(Boolean)) throw new Error('a node did not join');
    const everyoneAlive = (group) => group.every((a) => group.every((b) => a.agent.member(b.id)?.status === 'alive'));
    const stopTrace = TRACE ? traceConvergence(nodes, rec) : () => undefined;
    const converged = await waitFor(() => everyoneAlive(nodes) && nodes.every((x) => x.agent.pendingUpdates === 0), CONVERGE_LIMIT_MS);
    stopTrace();
    result.startHostsMs = hostsUp - t0;
    result.convergeMs = performance.now() - hostsUp;
    if (!converged) {
      const l = convergeLoop();
      const views = { alive: 0, suspect: 0, dead: 0, left: 0, unknown: 0 };
      for (const a of nodes) for (const b of nodes) views[a.agent.member(b.id)?.status ?? 'unknown']++;
      const counts = await Promise.all(nodes.map(messageCounts));
      const total = (key) => counts.reduce((s, m) => s + (m.get(key) ?? 0), 0) / nodes.length / l.seconds;
      const kinds = {};
      for (const t of rec.transitions) kinds[t.event] = (kinds[t.event] ?? 0) + 1;
      throw new Error(
        `${n - 1} nodes did not converge within ${CONVERGE_LIMIT_MS} ms: views ${JSON.stringify(views)} of ${nodes.length ** 2}; transitions ${JSON.stringify(kinds)}, refutations ${rec.counts.get('gossip.refuted') ?? 0}; ` +
          `per node per second: outbound ok ${total('outbound ok').toFixed(1)}, failed ${total('outbound failed').toFixed(1)}, inbound ok ${total('inbound ok').toFixed(1)}; ` +
          `process CPU ${(l.cpuMs / l.seconds / 10).toFixed(0)} % of one core, ELU ${(l.elu * 100).toFixed(0)} %, event-loop delay p99 ${l.delayP99.toFixed(0)} ms, max ${l.delayMax.toFixed(0)} ms; RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB; handles ${JSON.stringify(activeHandles())}`,
      );
    }
    convergeLoop();
    await pause(settleMs);
    result.rssMiB = process.memoryUsage().rss / 2 ** 20;
    const suspectsBefore = rec.transitions.filter((t) => t.event === 'suspect').length;

    // 2. Join seen by all.
    const seed = nodes[1 + Math.floor(Math.random() * (nodes.length - 1))] ?? nodes[0];
    const joiner = await startNode(pki, ids[n - 1], [seed.host.url], rec);
    nodes.push(joiner);
    const others = nodes.filter((x) => x !== joiner);
    const meter = loopMeter();
    const startedAt = performance.now();
    const joined = joiner.agent.start().then((ok) => ({ ok, at: performance.now() }));
    const seen = await waitFor(() => others.every((x) => x.agent.member(joiner.id)?.status === 'alive'), EVENT_LIMIT_MS);
    const seenAt = performance.now();
    const loop = meter();
    const joinedLines = rec.transitions.filter((t) => t.event === 'joined' && t.peer === joiner.id && t.at >= startedAt);
    const syncDone = await joined;
    result.joinMs = seen ? Math.max(...joinedLines.map((t) => t.at)) - startedAt : NaN;
    result.joinPolledMs = seen ? seenAt - startedAt : NaN;
    result.joinSeedMs = (joinedLines.find((t) => t.node === seed.id)?.at ?? NaN) - startedAt;
    result.joinSyncMs = syncDone.at - startedAt;
    const hops = hopsOf(joiner.id, joinedLines, seed.id);
    result.joinHops = hops.max;
    result.joinProtocols = [...new Set(joinedLines.map((t) => t.protocol))].join('+');
    result.joinLoop = loop;
    // Suspicions of the joiner while the news spread (its first probes need new connections).
    const aboutJoiner = rec.transitions.filter((t) => t.peer === joiner.id && t.at >= startedAt && t.at <= seenAt);
    result.joinerSuspected = aboutJoiner.filter((t) => t.event === 'suspect').length;
    result.joinerDead = aboutJoiner.filter((t) => t.event === 'dead').length;
    // Every node's view of the others (the joiner's own view comes through its sync).
    const joinerKnowsAll = others.every((x) => joiner.agent.member(x.id)?.status === 'alive');
    result.joinerKnowsAll = joinerKnowsAll;

    // 3. Steady state over the window.
    await waitFor(() => everyoneAlive(nodes) && nodes.every((x) => x.agent.pendingUpdates === 0), CONVERGE_LIMIT_MS);
    await pause(settleMs);
    const before = await Promise.all(nodes.map(messageCounts));
    const window = loopMeter();
    await pause(WINDOW_MS);
    const w = window();
    const after = await Promise.all(nodes.map(messageCounts));
    result.steady = steadyFigures((key) => before.reduce((t, m) => t + (m.get(key) ?? 0), 0), (key) => after.reduce((t, m) => t + (m.get(key) ?? 0), 0), n, w);
    result.suspicionsBeforeKill = rec.transitions.filter((t) => t.event === 'suspect').length - suspectsBefore;

    // 4. Dead everywhere.
    const victim = nodes.filter((x) => x !== seed && x !== joiner && x !== nodes[0])[Math.floor(Math.random() * (n - 3))] ?? nodes[n - 2];
    const survivors = nodes.filter((x) => x !== victim);
    result.suspicionTimeoutMs = survivors[0].agent.suspicionTimeoutMs;
    result.formulaMs = suspicionTimeoutMs(n, GOSSIP_DEFAULTS.suspicionMult, GOSSIP_DEFAULTS.probeIntervalMs);
    const killedAt = performance.now();
    await victim.host.close(0);
    await closeNode(victim);
    const dead = await waitFor(() => survivors.every((x) => x.agent.member(victim.id)?.status === 'dead'), EVENT_LIMIT_MS);
    const about = rec.transitions.filter((t) => t.peer === victim.id && t.at >= killedAt && t.node !== victim.id);
    const firstSuspect = Math.min(...about.filter((t) => t.event === 'suspect').map((t) => t.at));
    result.firstSuspectMs = firstSuspect - killedAt;
    result.deadMs = dead ? Math.max(...about.filter((t) => t.event === 'dead').map((t) => t.at)) - killedAt : NaN;
    result.firstDeadMs = Math.min(...about.filter((t) => t.event === 'dead').map((t) => t.at)) - killedAt;
    result.falseSuspicions = rec.transitions.filter((t) => t.event === 'suspect' && t.peer !== victim.id).length;
    result.rejected = rec.counts.get('gossip.message.rejected') ?? 0;
    result.refuted = rec.counts.get('gossip.refuted') ?? 0;
    result.joinRetries = rec.counts.get('gossip.join.retry') ?? 0;
    console.log(
      `  run ${run + 1}: join seen by all ${ms(result.joinMs)} (seed knew at ${ms(result.joinSeedMs)}, join sync resolved ${ms(result.joinSyncMs)}, ${result.joinHops} hops, via ${result.joinProtocols}, joiner suspected ${result.joinerSuspected}× and declared dead ${result.joinerDead}× meanwhile; loop ELU ${(loop.elu * 100).toFixed(0)} %, delay p99 ${loop.delayP99.toFixed(0)} ms); ` +
        `first suspect ${ms(result.firstSuspectMs)}, first dead ${ms(result.firstDeadMs)}, dead everywhere ${ms(result.deadMs)}; ` +
        `steady ${result.steady.outOk.toFixed(1)} out + ${result.steady.inOk.toFixed(1)} in msg/node/s, CPU ${result.steady.cpuPerNodeMs.toFixed(1)} ms/node/s; ` +
        `${n - 1} nodes: hosts ${ms(result.startHostsMs)}, converged ${ms(result.convergeMs)}, RSS ${result.rssMiB.toFixed(0)} MiB; false suspicions ${result.falseSuspicions}, rejected ${result.rejected}`,
    );
    return result;
  } finally {
    await Promise.all(nodes.map((x) => x.agent.stop({ leave: false })));
    for (const x of nodes) await closeNode(x);
  }
}

// ---- GOSSIP_BENCH_PROCESSES=P > 1: the N nodes spread over P child processes (bench/gossip-worker.js).
// Node i lives in worker i mod P; the parent holds no node, only the clock (epoch milliseconds,
// performance.timeOrigin + performance.now(), in every process), the workers' pushed member
// transitions and their answers to polls (views every 100 ms, message counters, loop meters).

const epochNow = () => performance.timeOrigin + performance.now();
const WORKER_URL = new URL('./gossip-worker.js', import.meta.url);
const CALL_LIMIT_MS = 120_000;
/** Every child ever forked, killed on the parent's exit if still running (no orphans). */
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function spawnWorker(index, rec) {
  const child = fork(WORKER_URL, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const pending = new Map();
  let nextId = 0;
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    for (const p of pending.values()) p.reject(new Error(`worker ${index} exited (${signal ?? code}) during ${p.type}`));
    pending.clear();
    resolve();
  }));
  child.on('message', (msg) => {
    if (msg.type === 'transition') {
      rec.transitions.push(msg);
      return;
    }
    const p = pending.get(msg.reqId);
    if (!p) return;
    pending.delete(msg.reqId);
    clearTimeout(p.timer);
    if (msg.error !== undefined) p.reject(new Error(`worker ${index} ${p.type}: ${msg.error}`));
    else p.resolve(msg.result);
  });
  const call = (type, extra = {}, limitMs = CALL_LIMIT_MS) =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null || !child.connected) return reject(new Error(`worker ${index} is gone (${type})`));
      const reqId = nextId++;
      const timer = setTimeout(() => {
        pending.delete(reqId);
        reject(new Error(`worker ${index} did not answer ${type} within ${limitMs} ms`));
      }, limitMs);
      pending.set(reqId, { resolve, reject, timer, type });
      child.send({ ...extra, type, reqId });
    });
  return { index, child, call, exited };
}

/** Asks every worker to close its nodes and exit; SIGKILLs the ones that do not within 15 s. */
async function stopWorkers(workers) {
  await Promise.all(
    workers.map(async (w) => {
      const gone = w.exited.then(() => true);
      await w.call('exit', {}, 15_000).catch(() => undefined);
      const ok = await Promise.race([gone, pause(15_000).then(() => false)]);
      if (!ok) {
        console.log(`  worker ${w.index} (pid ${w.child.pid}) did not exit; killing it`);
        w.child.kill('SIGKILL');
        await w.exited;
      }
    }),
  );
}

/** Polls `done` (async) every `everyMs`; false after `limitMs`. */
async function waitForAsync(done, limitMs, everyMs = 100) {
  const until = performance.now() + limitMs;
  while (!(await done())) {
    if (performance.now() > until) return false;
    await pause(everyMs);
  }
  return true;
}

/** Per-worker loop meters → one figure: CPU summed, ELU mean, delay p99/max the worst worker. */
function combineLoops(loops) {
  const xs = loops.filter(Boolean);
  return {
    seconds: Math.max(...xs.map((l) => l.seconds)),
    cpuMs: xs.reduce((s, l) => s + l.cpuMs, 0),
    elu: xs.reduce((s, l) => s + l.elu, 0) / xs.length,
    delayP99: Math.max(...xs.map((l) => l.delayP99)),
    delayMax: Math.max(...xs.map((l) => l.delayMax)),
    rssMiB: xs.reduce((s, l) => s + l.rssMiB, 0),
    perWorker: xs,
  };
}

const perWorker = (loop) => loop.perWorker.map((l, i) => `w${i} CPU ${(l.cpuMs / l.seconds / 10).toFixed(0)} %, ELU ${(l.elu * 100).toFixed(0)} %, delay p99 ${l.delayP99.toFixed(0)} ms max ${l.delayMax.toFixed(0)} ms`).join('; ');

async function oneRunMulti(pki, n, run, p) {
  const rec = { transitions: [] };
  const ids = Array.from({ length: n }, (_, i) => `g${i}`);
  const result = { n };
  const settleMs = SETTLE_MS ?? n * ROUND_MS;
  const workers = Array.from({ length: p }, (_, i) => spawnWorker(i, rec));
  const workerOf = (id) => workers[Number(id.slice(1)) % p];
  const live = new Set();
  const all = (type, extra) => Promise.all(workers.map((w) => w.call(type, extra)));
  const meterStart = (name) => all('meterStart', { name });
  const meterEnd = async (name) => combineLoops(await all('meterEnd', { name }));
  const views = async (extra = []) => Object.assign({}, ...(await all('views', { subjects: [...live, ...extra] })));
  const everyoneAlive = async () => {
    const v = await views();
    return [...live].every((a) => v[a] && v[a].pending === 0 && [...live].every((b) => v[a].view[b] === 'alive'));
  };
  try {
    await all('init', { pki });
    // 1. N-1 nodes converge: node 0's host first (its URL is everyone's seed), then the others' hosts, then all agents together.
    const t0 = performance.now();
    const urls = await workers[0].call('hosts', { ids: [ids[0]], seeds: [] });
    const seeds = [urls[ids[0]]];
    const rest = await Promise.all(workers.map((w) => w.call('hosts', { ids: ids.slice(1, n - 1).filter((id) => workerOf(id) === w), seeds })));
    Object.assign(urls, ...rest);
    for (const id of ids.slice(0, n - 1)) live.add(id);
    const hostsUp = performance.now();
    await meterStart('converge');
    const joins = await all('agents', {});
    if (!joins.every(Boolean)) throw new Error('a node did not join');
    const converged = await waitForAsync(everyoneAlive, CONVERGE_LIMIT_MS);
    result.startHostsMs = hostsUp - t0;
    result.convergeMs = performance.now() - hostsUp;
    const convergeLoop = await meterEnd('converge');
    if (!converged) {
      const v = await views();
      const seen = { alive: 0, suspect: 0, dead: 0, left: 0, unknown: 0 };
      for (const a of live) for (const b of live) seen[v[a]?.view[b] ?? 'unknown']++;
      const msgs = await all('messages', {});
      const total = (key) => msgs.reduce((s, m) => s + (m.counts[key] ?? 0), 0) / live.size / convergeLoop.seconds;
      const kinds = {};
      for (const t of rec.transitions) kinds[t.event] = (kinds[t.event] ?? 0) + 1;
      const logs = await all('logCounts', {});
      throw new Error(
        `${n - 1} nodes in ${p} processes did not converge within ${CONVERGE_LIMIT_MS} ms: views ${JSON.stringify(seen)} of ${live.size ** 2}; transitions ${JSON.stringify(kinds)}, refutations ${logs.reduce((s, c) => s + (c['gossip.refuted'] ?? 0), 0)}; ` +
          `per node per second: outbound ok ${total('outbound ok').toFixed(1)}, failed ${total('outbound failed').toFixed(1)}, inbound ok ${total('inbound ok').toFixed(1)}; ` +
          `all processes CPU ${(convergeLoop.cpuMs / convergeLoop.seconds / 10).toFixed(0)} % of one core, RSS ${convergeLoop.rssMiB.toFixed(0)} MiB; per worker: ${perWorker(convergeLoop)}`,
      );
    }
    result.convergeLoop = convergeLoop;
    await pause(settleMs);
    await meterStart('rss');
    result.rssMiB = (await meterEnd('rss')).rssMiB;
    const suspectsBefore = rec.transitions.filter((t) => t.event === 'suspect').length;

    // 2. Join seen by all.
    const seedId = ids[1 + Math.floor(Math.random() * (n - 2))] ?? ids[0];
    const joinerId = ids[n - 1];
    const joinerWorker = workerOf(joinerId);
    Object.assign(urls, await joinerWorker.call('hosts', { ids: [joinerId], seeds: [urls[seedId]] }));
    const others = [...live];
    await meterStart('join');
    const startedAt = epochNow();
    const joined = joinerWorker.call('agents', { ids: [joinerId] }).then((ok) => ({ ok, at: epochNow() }));
    live.add(joinerId);
    const seen = await waitForAsync(async () => {
      const v = await views();
      return others.every((x) => v[x]?.view[joinerId] === 'alive');
    }, EVENT_LIMIT_MS);
    const seenAt = epochNow();
    const loop = await meterEnd('join');
    const joinedLines = rec.transitions.filter((t) => t.event === 'joined' && t.peer === joinerId && t.at >= startedAt).sort((a, b) => a.at - b.at);
    const syncDone = await joined;
    result.joinMs = seen ? Math.max(...joinedLines.map((t) => t.at)) - startedAt : NaN;
    result.joinPolledMs = seen ? seenAt - startedAt : NaN;
    result.joinSeedMs = (joinedLines.find((t) => t.node === seedId)?.at ?? NaN) - startedAt;
    result.joinSyncMs = syncDone.at - startedAt;
    const hops = hopsOf(joinerId, joinedLines, seedId);
    result.joinHops = hops.max;
    result.joinProtocols = [...new Set(joinedLines.map((t) => t.protocol))].join('+');
    result.joinLoop = loop;

    // 3. Steady state over the window.
    await waitForAsync(everyoneAlive, CONVERGE_LIMIT_MS);
    await pause(settleMs);
    const before = await all('messages', {});
    await meterStart('window');
    await pause(WINDOW_MS);
    const w = await meterEnd('window');
    const after = await all('messages', {});
    result.steady = steadyFigures((key) => before.reduce((t, m) => t + (m.counts[key] ?? 0), 0), (key) => after.reduce((t, m) => t + (m.counts[key] ?? 0), 0), n, w);
    result.steadyLoop = w;
    result.suspicionsBeforeKill = rec.transitions.filter((t) => t.event === 'suspect').length - suspectsBefore;

    // 4. Dead everywhere.
    const candidates = ids.filter((id) => id !== seedId && id !== joinerId && id !== ids[0]);
    const victimId = candidates[Math.floor(Math.random() * candidates.length)] ?? ids[n - 2];
    live.delete(victimId);
    const survivors = [...live];
    result.suspicionTimeoutMs = await workerOf(ids[0]).call('suspicionTimeoutMs');
    result.formulaMs = suspicionTimeoutMs(n, GOSSIP_DEFAULTS.suspicionMult, GOSSIP_DEFAULTS.probeIntervalMs);
    const killedAt = epochNow();
    await workerOf(victimId).call('kill', { id: victimId });
    const dead = await waitForAsync(async () => {
      const v = await views([victimId]);
      return survivors.every((x) => v[x]?.view[victimId] === 'dead');
    }, EVENT_LIMIT_MS);
    if (!dead) {
      const v = await views([victimId]);
      console.log(`  run ${run + 1}: ${victimId} not dead everywhere after ${EVENT_LIMIT_MS} ms: ${survivors.map((x) => `${x} sees ${v[x]?.view[victimId] ?? 'n/a'}`).join(', ')}`);
    }
    const about = rec.transitions.filter((t) => t.peer === victimId && t.at >= killedAt && t.node !== victimId);
    result.firstSuspectMs = Math.min(...about.filter((t) => t.event === 'suspect').map((t) => t.at)) - killedAt;
    result.deadMs = dead ? Math.max(...about.filter((t) => t.event === 'dead').map((t) => t.at)) - killedAt : NaN;
    result.firstDeadMs = Math.min(...about.filter((t) => t.event === 'dead').map((t) => t.at)) - killedAt;
    result.falseSuspicions = rec.transitions.filter((t) => t.event === 'suspect' && t.peer !== victimId).length;
    const logs = await all('logCounts', {});
    const logSum = (event) => logs.reduce((s, c) => s + (c[event] ?? 0), 0);
    result.rejected = logSum('gossip.message.rejected');
    result.refuted = logSum('gossip.refuted');
    result.joinRetries = logSum('gossip.join.retry');
    console.log(
      `  run ${run + 1}: join seen by all ${ms(result.joinMs)} (polled ${ms(result.joinPolledMs)}; seed knew at ${ms(result.joinSeedMs)}, join sync resolved ${ms(result.joinSyncMs)}, ${result.joinHops} hops, via ${result.joinProtocols}; worst worker delay p99 ${loop.delayP99.toFixed(0)} ms); ` +
        `first suspect ${ms(result.firstSuspectMs)}, first dead ${ms(result.firstDeadMs)}, dead everywhere ${ms(result.deadMs)}; ` +
        `steady ${result.steady.outOk.toFixed(1)} out + ${result.steady.inOk.toFixed(1)} in msg/node/s, CPU ${result.steady.cpuPerNodeMs.toFixed(1)} ms/node/s; ` +
        `${n - 1} nodes: hosts ${ms(result.startHostsMs)}, converged ${ms(result.convergeMs)} (all processes ${(convergeLoop.cpuMs / convergeLoop.seconds / 10).toFixed(0)} % of one core, worst delay p99 ${convergeLoop.delayP99.toFixed(0)} ms), RSS ${result.rssMiB.toFixed(0)} MiB (all workers); false suspicions ${result.falseSuspicions}, rejected ${result.rejected}`,
    );
    console.log(`    per worker in the steady window: ${perWorker(w)}`);
    return result;
  } finally {
    await stopWorkers(workers);
  }
}

function report(n, results) {
  const r = (f) => results.map(f);
  const m = (f) => median(r(f));
  console.log(`N = ${n}, ${results.length} runs (medians; per-run values in brackets):`);
  console.log(`  join seen by all (from start() until every node has it alive): ${ms(m((x) => x.joinMs))} [${list(r((x) => x.joinMs))}]  goal <= 1000 ms at 50 nodes (OmniRelay's target 2000 ms); ratio to 1 s ${(m((x) => x.joinMs) / 1000).toFixed(2)}`);
  console.log(`    of which: join sync answered ${ms(m((x) => x.joinSyncMs))} [${list(r((x) => x.joinSyncMs))}], seed knew ${ms(m((x) => x.joinSeedMs))}, gossip hops to the last node ${m((x) => x.joinHops)} [${list(r((x) => x.joinHops))}] (${ROUND_MS} ms rounds)`);
  console.log(`    event loop during the join: ELU ${(m((x) => x.joinLoop.elu) * 100).toFixed(0)} %, delay p99 ${m((x) => x.joinLoop.delayP99).toFixed(0)} ms, CPU ${m((x) => x.joinLoop.cpuMs / x.joinLoop.seconds / 10).toFixed(0)} % of one core`);
  console.log(`  killed node: first suspect ${ms(m((x) => x.firstSuspectMs))} [${list(r((x) => x.firstSuspectMs))}], first dead ${ms(m((x) => x.firstDeadMs))}, dead everywhere ${ms(m((x) => x.deadMs))} [${list(r((x) => x.deadMs))}]; suspicion timeout for n=${n}: ${results[0].formulaMs} ms once confirmed by ${GOSSIP_DEFAULTS.suspicionMult - 2} other suspectors, up to ${GOSSIP_DEFAULTS.suspicionMaxTimeoutMult * results[0].formulaMs} ms unconfirmed (agent: ${results[0].suspicionTimeoutMs} ms), ratio dead-everywhere / confirmed timeout ${(m((x) => x.deadMs) / results[0].formulaMs).toFixed(2)}`);
  const area = `gossip (${n} nodes${PROCESSES > 1 ? `, ${PROCESSES} processes` : ', one process'})`;
  record({ area, figure: `join seen by all nodes (median of ${results.length} runs)`, value: `${ms(m((x) => x.joinMs))} [${list(r((x) => x.joinMs))}]`, goal: '<= 1000 ms (OmniRelay: 2000 ms)', met: atMost(m((x) => x.joinMs), 1000) });
  record({ area, figure: 'killed node dead everywhere (median)', value: `${ms(m((x) => x.deadMs))} (confirmed suspicion timeout ${results[0].formulaMs} ms)`, goal: 'reported' });
  record({ area, figure: 'steady state: messages out per node per second; CPU per node', value: `${m((x) => x.steady.outOk).toFixed(1)} msg/s; ${m((x) => x.steady.cpuPerNodeMs).toFixed(1)} ms/s`, goal: 'reported' });
  const s = (f) => m((x) => f(x.steady));
  console.log(
    `  steady state (${(WINDOW_MS / 1000).toFixed(0)} s window), per node per second: outbound ${s((y) => y.outOk).toFixed(1)} ok (ping ${s((y) => y.byMessage.ping).toFixed(1)}, pingReq ${s((y) => y.byMessage.pingReq).toFixed(2)}, sync ${s((y) => y.byMessage.sync).toFixed(2)}), ${s((y) => y.outFailed).toFixed(2)} failed, ${s((y) => y.outRejected).toFixed(2)} rejected; inbound ${s((y) => y.inOk).toFixed(1)} ok, ${s((y) => y.inRejected).toFixed(2)} rejected`,
  );
  console.log(`    CPU ${s((y) => y.cpuPerNodeMs).toFixed(1)} ms per node per second (${(s((y) => y.cpuPerNodeMs) / 10).toFixed(2)} % of a core each; ${((s((y) => y.cpuPerNodeMs) * n) / 10).toFixed(0)} % of one core for all ${n}); event loop ELU ${(s((y) => y.elu) * 100).toFixed(0)} %, delay p99 ${s((y) => y.delayP99).toFixed(0)} ms`);
  console.log(`  setup of ${n - 1} nodes: hosts ${ms(m((x) => x.startHostsMs))}, converged ${ms(m((x) => x.convergeMs))}; RSS ${m((x) => x.rssMiB).toFixed(0)} MiB; false suspicions per run ${list(r((x) => x.falseSuspicions))}, refutations ${list(r((x) => x.refuted))}, rejected messages ${list(r((x) => x.rejected))}`);
}

async function main() {
  const maxN = Math.max(...SIZES);
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-gossip-bench-'));
  try {
    const pki = await writeDevPki(
      dir,
      Array.from({ length: maxN }, (_, i) => `g${i}`),
    );
    console.log(`Gossip (SWIM) with GOSSIP_DEFAULTS (probe ${GOSSIP_DEFAULTS.probeIntervalMs} ms, timeout ${GOSSIP_DEFAULTS.probeTimeoutMs} ms, fanout ${GOSSIP_DEFAULTS.fanout}, suspicionMult ${GOSSIP_DEFAULTS.suspicionMult}, sync ${GOSSIP_DEFAULTS.syncIntervalMs} ms), ${PROCESSES > 1 ? `N nodes over ${PROCESSES} processes (node i in child i mod ${PROCESSES})` : 'N nodes in one process'} on 127.0.0.1 (mTLS, ${HTTP3 ? 'HTTP/3 preferred' : 'HTTP/2 only (GOSSIP_BENCH_HTTP3=0)'}), node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
    const baseline = activeHandles();
    for (const n of SIZES) {
      console.log(`N = ${n}:`);
      const results = [];
      for (let run = 0; run < RUNS; run++) {
        try {
          results.push(PROCESSES > 1 ? await oneRunMulti(pki, n, run, PROCESSES) : await oneRun(pki, n, run));
        } catch (error) {
          console.log(`  run ${run + 1} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        await pause(500);
        const now = activeHandles();
        const stray = Object.entries(now).filter(([k, v]) => v > (baseline[k] ?? 0));
        if (stray.length > 0) console.log(`  after run ${run + 1}: active handles beyond the baseline: ${stray.map(([k, v]) => `${k} ${v - (baseline[k] ?? 0)}`).join(', ')}`);
      }
      if (results.length > 0) report(n, results);
      else record({ area: `gossip (${n} nodes)`, figure: 'join seen by all nodes', value: `no run succeeded (${RUNS} tried)`, goal: '<= 1000 ms', met: false });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// The worker script (bench/gossip-worker.js) imports the node wiring from here; only run as the entry point.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
