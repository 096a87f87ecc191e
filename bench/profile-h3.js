// Where HTTP/3 unary time goes: a CPU profile of sequential gRPC-over-HTTP/3 Ping calls.
//
// Run (after `npm run build`; there is no npm script for it):
//   node bench/profile-h3.js                      # 300 warm-up calls, then 3,000 profiled calls
//   PROFILE_CALLS=5000 node bench/profile-h3.js   # another number of profiled calls
//   PROFILE_OUT=h3.cpuprofile node bench/profile-h3.js   # also save the profile (open it in
//                                                        # Chrome DevTools > Performance)
//   node bench/profile-h3.js some.cpuprofile      # only analyse a saved profile, e.g. one
//                                                 # from `node --cpu-prof bench/profile-h3.js`
//
// Same setup as the HTTP/3 section of bench/run.js: one GrpcHost serving UDP and TCP on
// one port, mTLS, one factory with telemetry on, the `h3` profile (http3 'prefer'). Client and
// server run in this one process, so the profile holds both sides. The profiler
// (node:inspector, Profiler.start/stop) samples every 1000 µs (PROFILE_SAMPLING_US; 250 µs
// added visibly more overhead on this machine; the script prints per-call figures
// with and without it). The report gives self time by package, by group (once more with node
// internals charged to the package that called them), inclusive time by package, and the top
// functions by self time. Packages: quiche's N-API binding (@matrixai/quic-linux-x64,
// "[native]": V8 labels the N-API trampoline that all addon functions share with one name),
// omnirelay dist/ (our QUIC driver, HTTP/3, transport, host, factory), other packages, node
// internals, GC, and V8's own "(program)" time. Shares
// are of busy time (idle excluded).
import 'reflect-metadata';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDevPki } from '../dist/index.js';
import { expectProtocol, pingVia, sdkTelemetry, startSamePortHosts, twoProtocolFactory } from './h3-setup.js';

const CALLS = Number(process.env.PROFILE_CALLS ?? 3000);
const WARMUP = 300;
const BASELINE = 1000;
const UNDER_CPU_PROF = process.execArgv.some((a) => a.startsWith('--cpu-prof'));
const SAMPLING_MICROS = Number(process.env.PROFILE_SAMPLING_US ?? 1000);
const TOP = 30;

/** The bucket a profile node's own (self) time goes to. `parent` is the caller's bucket. */
function categoryOf(frame, parent) {
  const { functionName, url } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(program)') return 'V8/native (program)';
  if (functionName === '(root)') return '(root)';
  if (url === '') {
    // Native code (addon functions, V8 builtins, C++ bindings) has no script: charge the caller.
    if (parent === undefined || parent.startsWith('(')) return 'native (no JS caller)';
    return parent.endsWith(' [native]') ? parent : `${parent} [native]`;
  }
  if (url.startsWith('node:') || !url.includes('/')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.includes('/dist/')) return 'omnirelay dist/';
  if (url.includes('/bench/')) return 'bench/';
  return 'other';
}

function location(frame) {
  const { url, lineNumber } = frame;
  if (url === '') return '';
  const nm = url.lastIndexOf('/node_modules/');
  const short = nm >= 0 ? url.slice(nm + '/node_modules/'.length) : url.includes('/dist/') ? url.slice(url.lastIndexOf('/dist/') + 1) : url.replace(/^file:\/\//, '');
  return `${short}:${lineNumber + 1}`;
}

/** Self time per function and per package from a V8 CPU profile (`Profiler.Profile`). */
export function analyse(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const category = new Map();
  const categorise = (id) => {
    if (category.has(id)) return category.get(id);
    const parent = parentOf.get(id);
    const c = categoryOf(byId.get(id).callFrame, parent === undefined ? undefined : categorise(parent));
    category.set(id, c);
    return c;
  };
  // Self time: the time until the next sample belongs to this sample's node.
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  // Packages anywhere on a node's stack (for inclusive time); native frames count as their caller's.
  const onStack = new Map();
  const stackOf = (id) => {
    if (onStack.has(id)) return onStack.get(id);
    const parent = parentOf.get(id);
    const set = new Set(parent === undefined ? [] : stackOf(parent));
    const c = categorise(id).replace(/ \[native\]$/, '');
    if (!c.startsWith('(') && c !== 'GC' && !c.startsWith('V8/')) set.add(c);
    onStack.set(id, set);
    return set;
  };
  // Node internals (and native code) charged to the nearest package frame up the stack.
  const owner = new Map();
  const ownerOf = (id) => {
    if (owner.has(id)) return owner.get(id);
    const c = categorise(id).replace(/ \[native\]$/, '');
    const parent = parentOf.get(id);
    let o = c;
    if (c === 'node internals' || c === 'native (no JS caller)') {
      const up = parent === undefined ? '(root)' : ownerOf(parent);
      o = up.startsWith('(') ? 'node internals (no package caller)' : up;
    }
    owner.set(id, o);
    return o;
  };
  const functions = new Map();
  const packages = new Map();
  const owners = new Map();
  const inclusive = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of self) {
    const frame = byId.get(id).callFrame;
    const c = categorise(id);
    total += micros;
    if (c === '(idle)') {
      idle += micros;
      continue;
    }
    if (c === '(root)') continue;
    packages.set(c, (packages.get(c) ?? 0) + micros);
    owners.set(ownerOf(id), (owners.get(ownerOf(id)) ?? 0) + micros);
    for (const p of stackOf(id)) inclusive.set(p, (inclusive.get(p) ?? 0) + micros);
    const key = `${frame.functionName || '(anonymous)'}\u0000${location(frame)}\u0000${c}`;
    functions.set(key, (functions.get(key) ?? 0) + micros);
  }
  return { total, idle, busy: total - idle, functions, packages, owners, inclusive };
}

export function report({ total, idle, busy, functions, packages, owners, inclusive }, calls) {
  const ms = (micros) => (micros / 1000).toFixed(1);
  const pct = (micros) => `${((100 * micros) / busy).toFixed(1).padStart(5)}%`;
  const perCall = calls > 0 ? `, ${((busy / calls) | 0).toString()} µs busy per call` : '';
  console.log(`sampled ${ms(total)} ms: busy ${ms(busy)} ms, idle ${ms(idle)} ms${perCall}; shares below are of busy time (client+server, one process)`);
  console.log('self time by package:');
  for (const [name, micros] of [...packages].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${pct(micros)} ${ms(micros).padStart(9)} ms  ${name}`);
  }
  // Grouped: the QUIC library with the helper packages it alone brings in.
  const groupOf = (name) => {
    const c = name.replace(/ \[native\]$/, '');
    if (c.startsWith('@matrixai/')) return 'quiche addon (@matrixai/quic-linux-x64)';
    if (c === 'omnirelay dist/') return 'omnirelay dist/ (QUIC driver, H3 framing, QPACK, transport, host, factory)';
    if (c.startsWith('@opentelemetry/')) return 'telemetry: @opentelemetry/*';
    if (c.startsWith('node internals')) return 'node internals (streams, events, AbortSignal, timers, dgram)';
    if (c === 'GC' || c.startsWith('V8/')) return 'V8: GC and (program)';
    return 'other packages, bench/';
  };
  const grouped = (from) => {
    const groups = new Map();
    for (const [name, micros] of from) groups.set(groupOf(name), (groups.get(groupOf(name)) ?? 0) + micros);
    for (const [name, micros] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(micros)} ${ms(micros).padStart(9)} ms  ${name}`);
  };
  console.log('self time by group:');
  grouped(packages);
  console.log('self time by group, node internals charged to the nearest package frame up the stack (the caller that asked for them):');
  grouped(owners);
  console.log('inclusive time by package (busy samples with at least one frame of it on the stack; GC and (program) have no stack):');
  for (const [name, micros] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${pct(micros)} ${ms(micros).padStart(9)} ms  ${name}`);
  }
  console.log(`top ${TOP} functions by self time:`);
  for (const [key, micros] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    const [name, where, c] = key.split('\u0000');
    console.log(`  ${pct(micros)} ${ms(micros).padStart(9)} ms  ${name.slice(0, 48).padEnd(48)} ${c.padEnd(26)} ${where}`);
  }
}

/** `calls` sequential calls: wall and process CPU per call; throws if any call was not HTTP/3. */
async function timed(ping, calls) {
  let notH3 = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    if ((await ping(i)).protocol !== 'h3') notH3++;
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (notH3 > 0) throw new Error(`${notH3} of ${calls} calls went over HTTP/2 (fallback): the profile would not be of HTTP/3`);
  const us = (x) => (x / calls).toFixed(0);
  return { perCall: `${(wall / calls).toFixed(3)} ms/call wall, ${us(cpu.user + cpu.system)} µs/call process CPU (user ${us(cpu.user)}, system ${us(cpu.system)})` };
}

async function profileCalls() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-profile-h3-'));
  const pki = await writeDevPki(dir, ['server', 'client']);
  const hosts = await startSamePortHosts(pki.files.server, pki);
  const { telemetry, shutdown } = sdkTelemetry();
  const { container, factory } = twoProtocolFactory({ pki, client: pki.files.client, url: hosts.url, telemetry });
  const session = new Session();
  try {
    const ping = pingVia(factory, 'bench-h3');
    await expectProtocol(ping, 'h3', "profile http3: 'prefer' with GrpcH3Transport");
    for (let i = 0; i < WARMUP; i++) await ping(i);
    console.log(
      `CPU profile of ${CALLS} sequential unary Ping calls over HTTP/3 (mTLS, telemetry on, client and server in one process, sampling every ${SAMPLING_MICROS} µs, node ${process.version})`,
    );

    // The same calls without the profiler first: what the profiler's own overhead inflates.
    const base = await timed(ping, BASELINE);
    console.log(`without the profiler: ${BASELINE} calls, ${base.perCall}`);
    if (UNDER_CPU_PROF) {
      const run = await timed(ping, CALLS);
      console.log(`under --cpu-prof: ${CALLS} calls, ${run.perCall}; analyse the .cpuprofile node writes at exit with: node bench/profile-h3.js <file>`);
      return;
    }

    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_MICROS });
    await session.post('Profiler.start');
    const run = await timed(ping, CALLS);
    const { profile } = await session.post('Profiler.stop');
    if (process.env.PROFILE_OUT !== undefined) await writeFile(process.env.PROFILE_OUT, JSON.stringify(profile));
    console.log(`under the profiler: ${CALLS} calls, ${run.perCall}`);
    report(analyse(profile), CALLS);
  } finally {
    session.disconnect();
    await container.unbindAllAsync();
    await shutdown();
    await hosts.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  const file = process.argv[2];
  if (file !== undefined) {
    console.log(`CPU profile ${file}`);
    report(analyse(JSON.parse(await readFile(file, 'utf8'))), 0);
    return;
  }
  await profileCalls();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
