// `node bench/dispatcher.js` (after `npm run build`): the same unary Ping against the same
// mTLS GrpcHost on 127.0.0.1, three ways, in one run:
//   - dispatcher outbound: Dispatcher.call → outbound middleware chain (empty) → GrpcOutbound → factory
//   - factory unary:       factory.unary (the lightweight control-plane call)
//   - raw grpc-js:         a hand-made @grpc/grpc-js Client (no factory, no telemetry)
// The dispatcher and the factory share one container, one factory instance and telemetry on
// (OpenTelemetry SDK meter + tracer with a batch span processor). Sequential and with 64
// concurrent callers; variants run in small interleaved blocks (rotating order) so drift on a
// shared machine hits all of them alike. Prints throughput, p50, p99 and the ratios; asserts
// nothing about time. Sizes: BENCH_DISPATCH_SEQUENTIAL, BENCH_DISPATCH_CONCURRENT, BENCH_DISPATCH_ROUNDS.
import 'reflect-metadata';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { Container } from 'inversify';
import { controlPlaneV1, dispatcherModule, GrpcHost, grpcControlPlaneModule, TOKENS, writeDevPki } from '../dist/index.js';
import { pingService, sdkTelemetry } from './h3-setup.js';
import { record } from './summary.js';
import { compare, RAW_CLIENT_OPTIONS } from './measure.js';

const { ControlPlaneDefinition, PingRequest, PingResponse } = controlPlaneV1;
const SEQUENTIAL_CALLS = Number(process.env.BENCH_DISPATCH_SEQUENTIAL ?? 3000);
const CONCURRENT_CALLS = Number(process.env.BENCH_DISPATCH_CONCURRENT ?? 30000);
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.BENCH_DISPATCH_ROUNDS ?? 12);

function row(name, r) {
  return `  ${name.padEnd(22)} ${r.throughput.toFixed(0).padStart(8)} calls/s   p50 ${r.p50.toFixed(3).padStart(7)} ms   p99 ${r.p99.toFixed(3).padStart(7)} ms`;
}

function ratios(label, a, b) {
  return `  ${label.padEnd(34)} throughput ×${(a.throughput / b.throughput).toFixed(2)}   p99 ×${(a.p99 / b.p99).toFixed(2)}`;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-dispatcher-'));
  const pki = await writeDevPki(dir, ['server', 'client']);
  const { server, client } = pki.files;
  const host = await GrpcHost.start({ tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile }, http3: false }, [pingService]);
  const { telemetry, shutdown } = sdkTelemetry();
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
    profiles: { 'control-plane': { http3: 'disable', tls: { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile }, deadlineMs: 10_000 } },
    endpoints: { bench: { url: host.url } },
  });
  container.bind(TOKENS.Telemetry).toConstantValue(telemetry);
  container.bind(TOKENS.DispatcherConfig).toConstantValue({ name: 'bench', outbounds: { [ControlPlaneDefinition.fullName]: { endpoint: 'bench' } } });
  container.load(grpcControlPlaneModule, dispatcherModule);
  const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
  const dispatcher = container.get(TOKENS.Dispatcher);

  const [ca, key, cert] = await Promise.all([readFile(pki.caFile), readFile(client.keyFile), readFile(client.certFile)]);
  const raw = new Client(`127.0.0.1:${host.port}`, credentials.createSsl(ca, key, cert), RAW_CLIENT_OPTIONS);
  const request = (i) => ({ fromNode: 'bench', sequence: i, payload: new Uint8Array() });
  const variants = [
    { name: 'dispatcher outbound', call: (i) => dispatcher.call(ControlPlaneDefinition, 'ping', request(i)) },
    { name: 'factory unary', call: (i) => factory.unary(ControlPlaneDefinition, 'ping', request(i), { endpoint: 'bench' }) },
    {
      name: 'raw grpc-js',
      call: (i) =>
        new Promise((resolve, reject) => {
          raw.makeUnaryRequest(
            '/omnirelay.controlplane.v1.ControlPlane/Ping',
            (m) => Buffer.from(PingRequest.encode(m).finish()),
            (b) => PingResponse.decode(b),
            request(i),
            new Metadata(),
            { deadline: Date.now() + 10_000 },
            (error, response) => (error ? reject(error) : resolve(response)),
          );
        }),
    },
  ];
  try {
    // Warm up every path (connections, JIT) before measuring.
    for (const v of variants) for (let i = 0; i < 300; i++) await v.call(i);
    console.log(`Dispatcher outbound vs factory unary vs raw grpc-js: unary Ping, mTLS, one GrpcHost on 127.0.0.1, HTTP/2`);
    console.log(`(dispatcher and factory: one factory instance, telemetry on; ${ROUNDS} interleaved blocks per variant)`);
    for (const [label, total, concurrency] of [
      ['sequential', SEQUENTIAL_CALLS, 1],
      [`${CONCURRENCY} concurrent callers`, CONCURRENT_CALLS, CONCURRENCY],
    ]) {
      const [viaDispatcher, viaFactory, viaRaw] = await compare(variants.map((v) => v.call), { blocks: ROUNDS, total, concurrency });
      console.log(`\n${label}, ${total} calls per variant:`);
      console.log(row('dispatcher outbound', viaDispatcher));
      console.log(row('factory unary', viaFactory));
      console.log(row('raw grpc-js', viaRaw));
      console.log(ratios('dispatcher / factory', viaDispatcher, viaFactory));
      console.log(ratios('dispatcher / raw grpc-js', viaDispatcher, viaRaw));
      console.log(ratios('factory / raw grpc-js', viaFactory, viaRaw));
      record({ area: 'dispatcher', figure: `dispatcher outbound / factory unary, ${label}: throughput, p99`, value: `×${(viaDispatcher.throughput / viaFactory.throughput).toFixed(2)}, ×${(viaDispatcher.p99 / viaFactory.p99).toFixed(2)}`, goal: 'reported' });
    }
  } finally {
    raw.close();
    await container.unbindAllAsync();
    await shutdown();
    await host.close(1000);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
