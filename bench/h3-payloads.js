// `node bench/h3-payloads.js` (after `npm run build`): real payloads over HTTP/3 and HTTP/2 on
// one GrpcHost (UDP and TCP on one port), mTLS, one factory with two profiles. Prints wall
// time, failures, UDP datagrams and UDP receive-buffer drops (`RcvbufErrors` in
// /proc/net/snmp, which counts every socket of the machine: run it on a quiet machine) per
// batch, and h3/h2 ratios. Asserts nothing about time.
//   - 50 concurrent unary calls with 64 KiB requests (the server echoes nothing back)
//   - one unary call with a 1 MiB request
//   - one server stream of 8 MiB (128 messages of 64 KiB; a raw-bytes bench service): MB/s
// BENCH_PAYLOAD_ROUNDS (default 5) batches per protocol, interleaved.
import 'reflect-metadata';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlPlaneV1, GrpcHost, writeDevPki } from '../dist/index.js';
import { atLeast, atMost, record } from './summary.js';
import { expectProtocol, pingService, pingVia, twoProtocolFactory } from './h3-setup.js';

const ROUNDS = Number(process.env.BENCH_PAYLOAD_ROUNDS ?? 5);

async function udpCounters() {
  const text = await readFile('/proc/net/snmp', 'utf8').catch(() => '');
  const lines = text.split('\n').filter((line) => line.startsWith('Udp:'));
  if (lines.length < 2) return undefined;
  const names = lines[0].split(/\s+/).slice(1);
  const values = lines[1].split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((name, i) => [name, values[i]]));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function batch(factory, endpoint, count, bytes) {
  const payload = new Uint8Array(bytes).fill(7);
  const before = await udpCounters();
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', { fromNode: 'bench', sequence: i, payload }, { endpoint, deadlineMs: 30_000 })),
  );
  const ms = performance.now() - started;
  const after = await udpCounters();
  const failed = outcomes.filter((o) => o.status === 'rejected');
  const protocols = new Set(outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value.protocol));
  const delta = (name) => (before !== undefined && after !== undefined ? after[name] - before[name] : NaN);
  return { ms, failed: failed.length, firstFailure: failed[0]?.reason?.message, protocols: [...protocols].join(','), datagramsIn: delta('InDatagrams'), datagramsOut: delta('OutDatagrams'), drops: delta('RcvbufErrors') };
}

/** Raw bytes as a message: the bench measures transport, not protobuf. */
const bytesCodec = { encode: (message) => ({ finish: () => message }), decode: (input) => input };
const STREAM_CHUNK = 64 * 1024;
const STREAM_CHUNKS = 128;
const BulkDefinition = {
  name: 'Bulk',
  fullName: 'omnirelay.bench.v1.Bulk',
  methods: { download: { name: 'Download', requestType: bytesCodec, requestStream: false, responseType: bytesCodec, responseStream: true } },
};
const chunk = new Uint8Array(STREAM_CHUNK).fill(5);
const bulkService = [
  BulkDefinition,
  {
    download: async function* () {
      for (let i = 0; i < STREAM_CHUNKS; i++) yield chunk;
    },
  },
];

async function download(factory, endpoint) {
  const started = performance.now();
  let bytes = 0;
  for await (const message of factory.serverStream(BulkDefinition, 'download', new Uint8Array(0), { endpoint, deadlineMs: 60_000 })) bytes += message.byteLength;
  if (bytes !== STREAM_CHUNK * STREAM_CHUNKS) throw new Error(`the stream carried ${bytes} bytes, expected ${STREAM_CHUNK * STREAM_CHUNKS}`);
  return performance.now() - started;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-payloads-'));
  const pki = await writeDevPki(dir, ['server', 'client']);
  const files = pki.files.server;
  const grpcHost = await GrpcHost.start({ host: '127.0.0.1', tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile } }, [pingService, bulkService]);
  const host = { url: grpcHost.url, close: () => grpcHost.close(1000) };
  const { container, factory } = twoProtocolFactory({ pki, client: pki.files.client, url: host.url });
  try {
    await expectProtocol(pingVia(factory, 'bench-h3'), 'h3', 'HTTP/3 profile');
    await expectProtocol(pingVia(factory, 'bench-h2'), 'h2', 'HTTP/2 profile');
    for (const [label, count, bytes] of [
      ['50 concurrent x 64 KiB', 50, 64 * 1024],
      ['1 x 1 MiB', 1, 1024 * 1024],
    ]) {
      const results = { h3: [], h2: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const protocol of round % 2 === 0 ? ['h3', 'h2'] : ['h2', 'h3']) results[protocol].push(await batch(factory, `bench-${protocol}`, count, bytes));
      }
      console.log(`${label} (${ROUNDS} batches each, interleaved):`);
      for (const protocol of ['h2', 'h3']) {
        const r = results[protocol];
        console.log(
          `  ${protocol === 'h3' ? 'HTTP/3' : 'HTTP/2'}  median ${median(r.map((x) => x.ms)).toFixed(1)} ms  (${r.map((x) => x.ms.toFixed(0)).join(', ')})  failed ${r.reduce((s, x) => s + x.failed, 0)}` +
            `  protocols ${[...new Set(r.map((x) => x.protocols))].join('/')}  UDP datagrams in/out per batch ${median(r.map((x) => x.datagramsIn))}/${median(r.map((x) => x.datagramsOut))}  RcvbufErrors ${r.reduce((s, x) => s + x.drops, 0)}` +
            (r.some((x) => x.failed > 0) ? `  first failure: ${r.find((x) => x.failed > 0).firstFailure}` : ''),
        );
      }
      const wall = median(results.h3.map((x) => x.ms)) / median(results.h2.map((x) => x.ms));
      const failures = [...results.h3, ...results.h2].reduce((sum, x) => sum + x.failed, 0);
      console.log(`  ratio h3/h2 (median wall time): ${wall.toFixed(2)} (goal <= 2)`);
      record({ area: 'HTTP/3 vs HTTP/2', figure: `${label} unary: wall time ratio h3/h2`, value: `×${wall.toFixed(2)}${failures > 0 ? ` (${failures} calls failed)` : ''}`, goal: '<= 2', met: failures > 0 ? false : atMost(wall, 2) });
    }
    const streams = { h3: [], h2: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const protocol of round % 2 === 0 ? ['h3', 'h2'] : ['h2', 'h3']) streams[protocol].push(await download(factory, `bench-${protocol}`));
    }
    const mbps = (ms) => (STREAM_CHUNK * STREAM_CHUNKS) / 1e6 / (ms / 1000);
    console.log(`server stream of 8 MiB (${STREAM_CHUNKS} x 64 KiB messages, ${ROUNDS} runs each, interleaved):`);
    for (const protocol of ['h2', 'h3']) {
      console.log(`  ${protocol === 'h3' ? 'HTTP/3' : 'HTTP/2'}  median ${mbps(median(streams[protocol])).toFixed(0)} MB/s  (${streams[protocol].map((ms) => mbps(ms).toFixed(0)).join(', ')})`);
    }
    const streamRatio = mbps(median(streams.h3)) / mbps(median(streams.h2));
    console.log(`  ratio h3/h2 (throughput): ${streamRatio.toFixed(2)} (goal >= 0.5)`);
    record({ area: 'HTTP/3 vs HTTP/2', figure: '8 MiB server stream: throughput ratio h3/h2', value: `×${streamRatio.toFixed(2)} (${mbps(median(streams.h3)).toFixed(0)} vs ${mbps(median(streams.h2)).toFixed(0)} MB/s)`, goal: '>= 0.5', met: atLeast(streamRatio, 0.5) });
  } finally {
    await container.unbindAllAsync();
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
