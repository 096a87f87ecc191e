// Child process of `GOSSIP_BENCH_PROCESSES=P node bench/gossip.js`: hosts some of the N gossip
// nodes, wired exactly as bench/gossip.js wires them (startNode), and answers the parent over IPC.
// Requests are `{ reqId, type, ... }`, answers `{ reqId, result }` or `{ reqId, error }`; member
// transitions are pushed as `{ type: 'transition', ... }` with `at` in epoch milliseconds
// (performance.timeOrigin + performance.now(), comparable across processes on one machine).
// Exits when told (`exit`) or when the parent goes away (IPC disconnect).
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { closeNode, loopMeter, messageCounts, startNode } from './gossip.js';

const now = () => performance.timeOrigin + performance.now();
const nodes = new Map();
const counts = new Map();
const meters = new Map();
let pki;

const rec = {
  logger(nodeId) {
    const log = (event, fields) => {
      counts.set(event, (counts.get(event) ?? 0) + 1);
      if (event.startsWith('gossip.member.')) process.send?.({ type: 'transition', at: now(), node: nodeId, event: event.slice('gossip.member.'.length), peer: fields.peer, via: fields.via, protocol: fields.protocol });
    };
    return { info: log, warn: log };
  },
};

async function closeAll() {
  await Promise.all([...nodes.values()].map((x) => x.agent.stop({ leave: false })));
  for (const x of nodes.values()) await closeNode(x);
  nodes.clear();
}

const handlers = {
  init(msg) {
    pki = msg.pki;
    return process.pid;
  },
  /** Starts the hosts (not the agents) of `ids`, one after another; answers id → URL. */
  async hosts({ ids, seeds }) {
    const urls = {};
    for (const id of ids) {
      const node = await startNode(pki, id, seeds, rec);
      nodes.set(id, node);
      urls[id] = node.host.url;
    }
    return urls;
  },
  /** Starts the agents of `ids` (default: all here) together; true when every join sync succeeded. */
  async agents({ ids }) {
    const joins = await Promise.all((ids ?? [...nodes.keys()]).map((id) => nodes.get(id).agent.start()));
    return joins.every(Boolean);
  },
  /** Each local node's view of `subjects` (id → status or null) and its queued broadcasts. */
  views({ subjects }) {
    const out = {};
    for (const [id, x] of nodes) if (!x.closed) out[id] = { pending: x.agent.pendingUpdates, view: Object.fromEntries(subjects.map((s) => [s, x.agent.member(s)?.status ?? null])) };
    return out;
  },
  /** mesh_gossip_messages_total of the live local nodes, summed by key. */
  async messages() {
    const out = {};
    for (const x of nodes.values()) {
      if (x.closed) continue;
      for (const [k, v] of await messageCounts(x)) out[k] = (out[k] ?? 0) + v;
    }
    return { nodes: [...nodes.values()].filter((x) => !x.closed).length, counts: out };
  },
  meterStart({ name }) {
    meters.set(name, loopMeter());
    return true;
  },
  meterEnd({ name }) {
    const stop = meters.get(name);
    meters.delete(name);
    return stop ? { ...stop(), rssMiB: process.memoryUsage().rss / 2 ** 20 } : null;
  },
  suspicionTimeoutMs() {
    return [...nodes.values()].find((x) => !x.closed)?.agent.suspicionTimeoutMs;
  },
  /** The bench's kill: host closed abruptly, then the agent stopped without leave. */
  async kill({ id }) {
    const x = nodes.get(id);
    await x.host.close(0);
    await closeNode(x);
    return true;
  },
  logCounts() {
    return Object.fromEntries(counts);
  },
  async closeAll() {
    await closeAll();
    return true;
  },
  async exit() {
    await closeAll();
    setTimeout(() => process.exit(0), 0);
    return true;
  },
};

process.on('message', (msg) => {
  const handler = handlers[msg.type];
  Promise.resolve()
    .then(() => (handler ? handler(msg) : Promise.reject(new Error(`unknown request ${msg.type}`))))
    .then(
      (result) => process.send?.({ reqId: msg.reqId, result }),
      (error) => process.send?.({ reqId: msg.reqId, error: error instanceof Error ? error.stack ?? error.message : String(error) }),
    );
});
// The parent went away (crash, kill): no orphans.
process.on('disconnect', () => process.exit(0));
