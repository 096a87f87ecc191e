// `node bench/bidi.js` (after `npm run build`; part of `npm run bench`): messages per second of
// one bidi echo stream (ControlPlaneStreams/Chat: one response per request, payload echoed)
// through the factory over HTTP/2 (profile http3 'disable') and HTTP/3 (profile http3
// 'require') vs a hand-made grpc-js client (`Client.makeBidiStreamRequest`, HTTP/2) on the
// same GrpcHost. Prints figures and ratios; asserts nothing about time.
//
// The host (a GrpcHost serving TCP and UDP on the same port, mTLS) runs in a child process, so
// the CPU figures are the client's. Telemetry off: TOKENS.Telemetry bound to OpenTelemetry's
// no-op providers. Each block is one stream of N requests, written as fast as the call takes
// them (the factory pulls the request iterable with back-pressure; the raw client writes while
// `write()` returns true, then waits for 'drain'), read to the end; the time is from the call
// to the last response. Variants run in interleaved blocks, rotating order; one untimed
// stream of each warms up connections and the JIT first.
//
// Sizes: BENCH_BIDI_SMALL (messages per small-message stream, default 20000, payload
// BENCH_BIDI_SMALL_BYTES 64), BENCH_BIDI_LARGE (messages per large-message stream, default 200,
// 64 KiB each), BENCH_BIDI_ROUNDS (blocks per variant, default 6).
// BENCH_BIDI_ONLY=raw|factory-h2|factory-h3 runs one variant only (for `node --cpu-prof`).
import 'reflect-metadata';
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { createNoopMeter, ProxyTracerProvider } from '@opentelemetry/api';
import { Container } from 'inversify';
import { record } from './summary.js';
import { RAW_CLIENT_OPTIONS } from './measure.js';
import { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS, writeDevPki } from '../dist/index.js';

const { ControlPlaneStreamsDefinition, PingRequest, PingResponse } = controlPlaneV1;
const SMALL = Number(process.env.BENCH_BIDI_SMALL ?? 20000);
const SMALL_BYTES = Number(process.env.BENCH_BIDI_SMALL_BYTES ?? 64);
const LARGE = Number(process.env.BENCH_BIDI_LARGE ?? 200);
const LARGE_BYTES = 64 * 1024;
const ROUNDS = Number(process.env.BENCH_BIDI_ROUNDS ?? 6);
const ONLY = process.env.BENCH_BIDI_ONLY;
const CHAT = '/omnirelay.controlplane.v1.ControlPlaneStreams/Chat';

/** The Chat handler of test/integration/factory-streaming.test.ts: one response per request, payload echoed. */
const streamsService = [
  ControlPlaneStreamsDefinition,
  {
    collect: async (incoming, info) => {
      let sum = 0;
      for await (const request of incoming) sum += request.sequence;
      return { node: 'collect', sequence: sum, clientIdentity: info.clientIdentity, payload: new Uint8Array() };
    },
    chat: async function* (incoming, info) {
      for await (const request of incoming) yield { node: 'chat', sequence: request.sequence, clientIdentity: info.clientIdentity, payload: request.payload };
    },
  },
];

if (process.argv[2] === '--server') {
  // Child: serve ControlPlaneStreams over HTTP/2 and HTTP/3 until the parent disconnects.
  const [certFile, keyFile, caFile] = process.argv.slice(3);
  const host = await GrpcHost.start({ host: '127.0.0.1', tls: { certFile, keyFile, caFile } }, [streamsService]);
  process.send({ port: host.port, url: host.url });
  process.on('disconnect', () => void host.close(500).then(() => process.exit(0)));
} else {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}

function startServer(files, pki) {
  const child = fork(new URL(import.meta.url).pathname, ['--server', files.certFile, files.keyFile, pki.caFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (address) => resolve({ ...address, child }));
    child.once('exit', (code) => reject(new Error(`the bench server exited (${code})`)));
  });
}

async function* requests(count, payload) {
  for (let i = 1; i <= count; i++) yield { fromNode: 'bench', sequence: i, payload };
}

/** One factory stream: resolves to the number of responses. */
async function factoryChat(factory, endpoint, count, payload) {
  const stream = factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', requests(count, payload), { endpoint });
  let received = 0;
  for await (const response of stream) {
    if (response.sequence !== received + 1) throw new Error(`response ${received + 1} carried sequence ${response.sequence}`);
    received++;
  }
  return received;
}

/** One raw grpc-js stream: write while write() returns true, then wait for 'drain'. */
function rawChat(raw, count, payload) {
  return new Promise((resolve, reject) => {
    const call = raw.makeBidiStreamRequest(
      CHAT,
      (m) => Buffer.from(PingRequest.encode(m).finish()),
      (b) => PingResponse.decode(b),
      new Metadata(),
      { deadline: Date.now() + 600_000 },
    );
    let received = 0;
    let sent = 0;
    call.on('data', (response) => {
      if (response.sequence !== received + 1) reject(new Error(`response ${received + 1} carried sequence ${response.sequence}`));
      received++;
    });
    call.on('error', reject);
    call.on('end', () => resolve(received));
    const pump = () => {
      while (sent < count) {
        sent++;
        if (!call.write({ fromNode: 'bench', sequence: sent, payload })) {
          call.once('drain', pump);
          return;
        }
      }
      call.end();
    };
    pump();
  });
}

async function timed(stream, count) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const received = await stream();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (received !== count) throw new Error(`expected ${count} responses, got ${received}`);
  return { seconds, cpuMicros: cpu.user + cpu.system, messages: count };
}

/** Interleaved blocks, rotating order; figures pooled per variant. */
async function compareStreams(variants, count) {
  const results = variants.map(() => ({ seconds: 0, cpuMicros: 0, messages: 0, blocks: [] }));
  for (let b = 0; b < ROUNDS; b++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (b + k) % variants.length;
      const r = await timed(variants[v].run, count);
      results[v].seconds += r.seconds;
      results[v].cpuMicros += r.cpuMicros;
      results[v].messages += r.messages;
      results[v].blocks.push(r.messages / r.seconds);
    }
  }
  return results.map((r) => ({ rate: r.messages / r.seconds, cpuPerMessage: r.cpuMicros / r.messages, blocks: r.blocks.sort((a, b) => a - b) }));
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-bidi-'));
  const pki = await writeDevPki(dir, ['server', 'client']);
  const server = await startServer(pki.files.server, pki);
  const client = pki.files.client;
  const tls = { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile };
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
    profiles: {
      h2: { http3: 'disable', tls, deadlineMs: 600_000 },
      h3: { http3: 'require', tls, deadlineMs: 600_000 },
    },
    endpoints: { 'bench-h2': { url: server.url, profile: 'h2' }, 'bench-h3': { url: server.url, profile: 'h3' } },
  });
  // Telemetry off: OpenTelemetry's own no-op providers, bound explicitly (as bench/run.js does).
  container.bind(TOKENS.Telemetry).toConstantValue({ meterProvider: { getMeter: () => createNoopMeter() }, tracerProvider: new ProxyTracerProvider().getDelegate() });
  container.load(grpcControlPlaneModule);
  const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
  const [ca, key, cert] = await Promise.all([readFile(pki.caFile), readFile(client.keyFile), readFile(client.certFile)]);
  const raw = new Client(`127.0.0.1:${server.port}`, credentials.createSsl(ca, key, cert), RAW_CLIENT_OPTIONS);
  try {
    // Each factory variant must really use its protocol ('require' cannot fall back; checked anyway).
    for (const [endpoint, profile] of [
      ['bench-h2', 'h2'],
      ['bench-h3', 'h3'],
    ]) {
      await factoryChat(factory, endpoint, 2, new Uint8Array(1));
      const used = factory.connections().filter((c) => c.profile === profile);
      if (!used.every((c) => c.protocol === profile) || used.length === 0) throw new Error(`${endpoint}: expected ${profile} connections only, got ${JSON.stringify(used)}; aborting`);
    }
    const small = new Uint8Array(SMALL_BYTES).fill(7);
    const large = new Uint8Array(LARGE_BYTES).fill(7);
    const all = (count, payload) => [
      { name: 'raw grpc-js client (h2)', key: 'raw', run: () => rawChat(raw, count, payload) },
      { name: 'factory, HTTP/2', key: 'factory-h2', run: () => factoryChat(factory, 'bench-h2', count, payload) },
      { name: 'factory, HTTP/3', key: 'factory-h3', run: () => factoryChat(factory, 'bench-h3', count, payload) },
    ];
    const pick = (variants) => variants.filter((v) => ONLY === undefined || v.key === ONLY);
    console.log(
      `Bidi echo stream (ControlPlaneStreams/Chat), mTLS, server GrpcHost (TCP + UDP, same port) in a child process, telemetry off, ${ROUNDS} interleaved blocks per variant in rotating order; one stream per block (node ${process.version})`,
    );
    for (const [title, count, payload] of [
      [`${SMALL} × ${SMALL_BYTES} B per stream`, SMALL, small],
      [`${LARGE} × ${LARGE_BYTES / 1024} KiB per stream`, LARGE, large],
    ]) {
      const variants = pick(all(count, payload));
      for (const v of variants) await timed(v.run, count); // warm-up
      const results = await compareStreams(variants, count);
      console.log(`${title}:`);
      for (const [i, r] of results.entries()) {
        const mbps = (r.rate * payload.byteLength) / 1e6;
        console.log(
          `  ${variants[i].name.padEnd(24)} ${r.rate.toFixed(0).padStart(8)} msgs/s (${mbps.toFixed(1).padStart(6)} MB/s payload)   blocks min ${r.blocks[0].toFixed(0)} median ${r.blocks[Math.floor(r.blocks.length / 2)].toFixed(0)} max ${r.blocks[r.blocks.length - 1].toFixed(0)}   client CPU ${r.cpuPerMessage.toFixed(1).padStart(6)} µs/msg`,
        );
      }
      const rawIndex = variants.findIndex((v) => v.key === 'raw');
      if (rawIndex >= 0) {
        const base = results[rawIndex];
        for (const [i, r] of results.entries()) {
          if (i === rawIndex) continue;
          console.log(`  ratio ${`${variants[i].key}/raw:`.padEnd(16)} msgs/s ${(r.rate / base.rate).toFixed(3)}, client CPU/msg ${(r.cpuPerMessage / base.cpuPerMessage).toFixed(3)}`);
          record({ area: 'bidi streams', figure: `${title}: msgs/s ratio ${variants[i].name} / raw grpc-js`, value: `×${(r.rate / base.rate).toFixed(3)} (${r.rate.toFixed(0)} vs ${base.rate.toFixed(0)} msgs/s)`, goal: 'reported' });
        }
      }
    }
  } finally {
    raw.close();
    await container.unbindAllAsync();
    server.child.disconnect();
    await new Promise((resolve) => server.child.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}
