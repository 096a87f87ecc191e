// Where the factory's per-call overhead goes, telemetry off: CPU profiles of the same unary
// Ping through a hand-made grpc-js client and through the factory, compared per call.
//
// Run (after `npm run build`; not part of `npm run bench`):
//   node bench/profile-factory.js                    # 3,000 warm-up, 6,000 profiled calls per variant
//   PROFILE_CALLS=10000 node bench/profile-factory.js
//   PROFILE_CONCURRENCY=8 node bench/profile-factory.js   # 8 callers instead of 1
//   PROFILE_TELEMETRY=on node bench/profile-factory.js    # SDK meter + tracer instead of no-op
//   PROFILE_OUT=prefix node bench/profile-factory.js      # also write prefix-<variant>-<block>.cpuprofile
//
// The server (a GrpcHost, HTTP/2 only, mTLS) runs in a child process, so the profiles hold
// the client side only. Telemetry off: TOKENS.Telemetry bound to OpenTelemetry's no-op
// providers; profile http3 'disable' (same transport as the raw client). First the two
// variants are timed without the profiler in interleaved blocks (client process CPU per
// call); then each is profiled, again in interleaved blocks (node:inspector, sampling every
// PROFILE_SAMPLING_US, default 100 µs), and the report gives self time per call by package, by omnirelay file, and the
// functions whose self time per call grew most from raw to factory.
import 'reflect-metadata';
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { createNoopMeter, ProxyTracerProvider } from '@opentelemetry/api';
import { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS, writeDevPki } from '../dist/index.js';
import { pingService, sdkTelemetry } from './h3-setup.js';
import { compare } from './measure.js';

const { ControlPlaneDefinition, PingRequest, PingResponse } = controlPlaneV1;
const CALLS = Number(process.env.PROFILE_CALLS ?? 6000);
const WARMUP = 3000;
const CONCURRENCY = Number(process.env.PROFILE_CONCURRENCY ?? 1);
const SAMPLING_MICROS = Number(process.env.PROFILE_SAMPLING_US ?? 100);
const TOP = 25;
const PROFILE_BLOCKS = 6;

if (process.argv[2] === '--server') {
  // Child: serve Ping over HTTP/2 only until the parent disconnects.
  const [certFile, keyFile, caFile] = process.argv.slice(3);
  const host = await GrpcHost.start({ tls: { certFile, keyFile, caFile }, http3: false }, [pingService]);
  process.send({ port: host.port, url: host.url });
  process.on('disconnect', () => void host.close(500).then(() => process.exit(0)));
} else {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}

/** Bucket of a profile frame: an omnirelay dist/ file, a package, node internals, GC, (program). */
function bucketOf(frame, parentBucket) {
  const { functionName, url } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8 (program)';
  if (functionName === '(idle)' || functionName === '(root)') return functionName;
  if (url === '') return parentBucket === undefined || parentBucket.startsWith('(') ? 'native' : `${parentBucket.replace(/ \[native\]$/, '')} [native]`;
  if (url.startsWith('node:') || !url.includes('/')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return `omnirelay ${url.slice(dist + 1)}`;
  if (url.includes('/bench/')) return 'bench/';
  return 'other';
}

/** Self time (µs) by function and by bucket; also by "owner" (node internals charged to the nearest package frame). */
function analyse(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const bucket = new Map();
  const bucketFor = (id) => {
    if (!bucket.has(id)) {
      const parent = parentOf.get(id);
      bucket.set(id, bucketOf(byId.get(id).callFrame, parent === undefined ? undefined : bucketFor(parent)));
    }
    return bucket.get(id);
  };
  const owner = new Map();
  const ownerFor = (id) => {
    if (!owner.has(id)) {
      const b = bucketFor(id).replace(/ \[native\]$/, '');
      const parent = parentOf.get(id);
      owner.set(id, (b === 'node internals' || b === 'native') && parent !== undefined && !ownerFor(parent).startsWith('(') ? ownerFor(parent) : b);
    }
    return owner.get(id);
  };
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const functions = new Map();
  const buckets = new Map();
  const owners = new Map();
  let busy = 0;
  for (const [id, micros] of self) {
    const b = bucketFor(id);
    if (b === '(idle)' || b === '(root)') continue;
    busy += micros;
    buckets.set(b, (buckets.get(b) ?? 0) + micros);
    owners.set(ownerFor(id), (owners.get(ownerFor(id)) ?? 0) + micros);
    const frame = byId.get(id).callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${bucketOf(frame, bucketFor(parentOf.get(id) ?? id)).replace(/^omnirelay /, '')}:${frame.lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + micros);
  }
  return { busy, functions, buckets, owners };
}

/** Sums two analyses (the first may be undefined). */
function add(a, b) {
  if (a === undefined) return b;
  const merge = (x, y) => {
    const out = new Map(x);
    for (const [k, v] of y) out.set(k, (out.get(k) ?? 0) + v);
    return out;
  };
  return { busy: a.busy + b.busy, functions: merge(a.functions, b.functions), buckets: merge(a.buckets, b.buckets), owners: merge(a.owners, b.owners) };
}

function group(name) {
  const n = name.replace(/ \[native\]$/, '');
  if (n.startsWith('omnirelay dist/factory/')) return 'omnirelay factory/';
  if (n.startsWith('omnirelay dist/transport/http2/')) return 'omnirelay transport/http2 (grpc-js transport)';
  if (n.startsWith('omnirelay dist/')) return `omnirelay ${n.slice('omnirelay dist/'.length).split('/')[0]}/`;
  return n;
}

function report(raw, factory, calls) {
  const per = (micros) => (micros / calls).toFixed(2).padStart(8);
  console.log(`busy CPU per call under the profiler: raw ${per(raw.busy)} µs, factory ${per(factory.busy)} µs, difference ${per(factory.busy - raw.busy)} µs`);
  const table = (title, a, b, limit = 30) => {
    console.log(title);
    console.log(`  ${'raw µs/call'.padStart(12)} ${'factory'.padStart(8)} ${'diff'.padStart(8)}`);
    const keys = new Set([...a.keys(), ...b.keys()]);
    const rows = [...keys].map((k) => [k, a.get(k) ?? 0, b.get(k) ?? 0]).sort((x, y) => y[2] - y[1] - (x[2] - x[1]));
    for (const [k, ra, fa] of rows.slice(0, limit)) {
      if (Math.abs(fa - ra) / calls < 0.05 && fa / calls < 0.5) continue;
      console.log(`  ${per(ra).padStart(12)} ${per(fa)} ${per(fa - ra)}  ${k}`);
    }
  };
  const grouped = (m) => {
    const out = new Map();
    for (const [k, v] of m) out.set(group(k), (out.get(group(k)) ?? 0) + v);
    return out;
  };
  table('self time by group (node internals and native code charged to the nearest package frame that called them):', grouped(raw.owners), grouped(factory.owners), 20);
  table('self time by package / omnirelay file (node internals on their own):', raw.buckets, factory.buckets, 24);
  table(`functions whose self time per call grew most (top ${TOP}):`, raw.functions, factory.functions, TOP);
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-profile-factory-'));
  const pki = await writeDevPki(dir, ['server', 'client']);
  const { server, client } = pki.files;
  const child = fork(new URL(import.meta.url).pathname, ['--server', server.certFile, server.keyFile, pki.caFile], { stdio: 'inherit' });
  const { port, url } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  const telemetryOn = process.env.PROFILE_TELEMETRY === 'on';
  const sdk = telemetryOn ? sdkTelemetry() : undefined;
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
    profiles: { 'control-plane': { http3: 'disable', tls: { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile }, deadlineMs: 10_000 } },
    endpoints: { bench: { url } },
  });
  container.bind(TOKENS.Telemetry).toConstantValue(sdk?.telemetry ?? { meterProvider: { getMeter: () => createNoopMeter() }, tracerProvider: new ProxyTracerProvider().getDelegate() });
  container.load(grpcControlPlaneModule);
  const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
  const [ca, key, cert] = await Promise.all([readFile(pki.caFile), readFile(client.keyFile), readFile(client.certFile)]);
  const rawClient = new Client(`127.0.0.1:${port}`, credentials.createSsl(ca, key, cert), {});
  const request = (i) => ({ fromNode: 'bench', sequence: i, payload: new Uint8Array() });
  const rawPing = (i) =>
    new Promise((resolve, reject) => {
      rawClient.makeUnaryRequest(
        '/omnirelay.controlplane.v1.ControlPlane/Ping',
        (m) => Buffer.from(PingRequest.encode(m).finish()),
        (b) => PingResponse.decode(b),
        request(i),
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (error, response) => (error ? reject(error) : resolve(response)),
      );
    });
  const factoryPing = (i) => factory.unary(ControlPlaneDefinition, 'ping', request(i), { endpoint: 'bench' });
  const session = new Session();
  try {
    const loop = async (call, n) => {
      let next = 0;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) await call(next++);
      }));
    };
    await loop(rawPing, WARMUP);
    await loop(factoryPing, WARMUP);
    console.log(`Client-side CPU of unary Ping, HTTP/2 + mTLS, server in a child process, ${CONCURRENCY} caller(s), telemetry ${telemetryOn ? 'on (SDK)' : 'off (no-op providers)'} (node ${process.version})`);
    const [r, f] = await compare([rawPing, factoryPing], { blocks: 10, total: CALLS, concurrency: CONCURRENCY });
    console.log(`without the profiler, ${CALLS} calls each in 10 interleaved blocks: raw ${r.cpuPerCall.toFixed(1)} µs/call CPU, p50 ${r.p50.toFixed(3)} ms; factory ${f.cpuPerCall.toFixed(1)} µs/call CPU, p50 ${f.p50.toFixed(3)} ms; factory overhead ${(f.cpuPerCall - r.cpuPerCall).toFixed(1)} µs/call (×${(f.cpuPerCall / r.cpuPerCall).toFixed(3)} CPU, p50 ×${(f.p50 / r.p50).toFixed(3)}, throughput ×${(f.throughput / r.throughput).toFixed(3)})`);

    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_MICROS });
    // Profiled in interleaved blocks too (rotating order), one profile per block, summed.
    const variants = [['raw', rawPing], ['factory', factoryPing]];
    const sums = { raw: undefined, factory: undefined };
    const perBlock = Math.ceil(CALLS / PROFILE_BLOCKS);
    for (let b = 0; b < PROFILE_BLOCKS; b++) {
      for (let k = 0; k < variants.length; k++) {
        const [name, call] = variants[(b + k) % variants.length];
        await session.post('Profiler.start');
        await loop(call, perBlock);
        const { profile } = await session.post('Profiler.stop');
        if (process.env.PROFILE_OUT !== undefined) await writeFile(`${process.env.PROFILE_OUT}-${name}-${b}.cpuprofile`, JSON.stringify(profile));
        sums[name] = add(sums[name], analyse(profile));
      }
    }
    console.log(`profiled ${perBlock * PROFILE_BLOCKS} calls per variant in ${PROFILE_BLOCKS} interleaved blocks, sampling every ${SAMPLING_MICROS} µs`);
    report(sums.raw, sums.factory, perBlock * PROFILE_BLOCKS);
  } finally {
    session.disconnect();
    rawClient.close();
    await container.unbindAllAsync();
    await sdk?.shutdown();
    child.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}
