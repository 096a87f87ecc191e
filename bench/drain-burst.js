// `node bench/drain-burst.js [dist] [runs]`: what a replica draining under load costs the
// calls, as JSON lines (asserts nothing). Two mTLS GrpcHosts on 127.0.0.1 ("drainer",
// "stayer") behind one factory; three 200 ms calls run on the drainer when it starts
// `close(3000)` (GOAWAY, new requests refused, running calls finish); then a burst of 20
// calls, over HTTP/3 ('prefer') and HTTP/2 ('disable'), in these shapes:
//   - 4 waves of 5 calls 15 ms apart, or 1 wave of 20, over both replicas, with the presets'
//     retry policy (3 attempts) or with maxAttempts 1;
//   - 4 waves of 5 to the drainer alone (no other replica to go to).
// Each line: how the 20 calls ended (`ok`, a status name or an error code), how many needed a
// counted retry, the drainer's circuit changes, whether its breaker recorded a failure, and
// whether the three running calls finished.
//
// `dist` (default ../dist) is the built library to measure: point it at another build to
// compare. DRAIN_DEBUG=1 also prints every failed call's error; DRAIN_SHAPE=<text> runs only
// the shapes whose name contains it, DRAIN_HTTP3=prefer|disable only that protocol setting.
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Container } from 'inversify';

const dist = process.argv[2] ?? new URL('../dist', import.meta.url).pathname;
const runs = Number(process.argv[3] ?? 3);
const lib = await import(pathToFileURL(join(isAbsolute(dist) ? dist : resolve(dist), 'index.js')).href);
const { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS, writeDevPki, RpcError } = lib;
const { ControlPlaneDefinition } = controlPlaneV1;

const dir = await mkdtemp(join(tmpdir(), 'omnirelay-drain-'));
const pki = await writeDevPki(dir, ['server', 'client']);
const pause = (ms) => new Promise((done) => setTimeout(done, ms));
const ping = (sequence, waitTicks = 0) => ({ fromNode: 'bench', sequence, payload: new Uint8Array(waitTicks) });

/** A ControlPlane host whose ping waits payload.length × 10 ms; `inFlight` counts running pings. */
async function startNode(name) {
  const files = pki.files.server;
  const node = { inFlight: 0, host: undefined };
  node.host = await GrpcHost.start({ tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile } }, [
    [
      ControlPlaneDefinition,
      {
        ping: async (request) => {
          node.inFlight++;
          try {
            if (request.payload.length > 0) await pause(request.payload.length * 10);
            return { node: name, sequence: request.sequence, clientIdentity: '', payload: new Uint8Array() };
          } finally {
            node.inFlight--;
          }
        },
        watch: async function* () {},
      },
    ],
  ]);
  return node;
}

/** Settles without ever leaving a rejection unhandled while later waves are sent. */
const settle = (promise) => promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));

async function scenario(http3, profile, waves, perWave, gapMs, burstTarget) {
  const drainer = await startNode('drainer');
  const stayer = await startNode('stayer');
  const client = pki.files.client;
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
    profiles: { 'control-plane': { tls: { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile }, http3, http3RaceDelayMs: 2_000, deadlineMs: 5_000, ...profile } },
    endpoints: { drainer: { url: drainer.host.url }, stayer: { url: stayer.host.url } },
  });
  container.load(grpcControlPlaneModule);
  const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
  const breaker = container.get(TOKENS.CircuitBreaker);
  const drainerAuthority = new URL(drainer.host.url).host;
  const transitions = [];
  breaker.changes$.subscribe((change) => {
    if (change.peer === drainerAuthority) transitions.push(change.state);
  });
  const peers = ['drainer', 'stayer'];
  for (let n = 0; n < 4; n++) await factory.unary(ControlPlaneDefinition, 'ping', ping(n), { peers });
  const running = [0, 1, 2].map((n) => settle(factory.unary(ControlPlaneDefinition, 'ping', ping(100 + n, 20), { endpoint: 'drainer' })));
  while (drainer.inFlight < 3) await pause(2);

  const closing = drainer.host.close(3_000);
  const burst = [];
  for (let wave = 0; wave < waves; wave++) {
    if (wave > 0) await pause(gapMs);
    for (let n = 0; n < perWave; n++) burst.push(settle(factory.unary(ControlPlaneDefinition, 'ping', ping(1_000 + n), burstTarget)));
  }
  const outcomes = {};
  let retried = 0;
  for (const result of await Promise.all(burst)) {
    const key = result.ok ? 'ok' : result.error instanceof RpcError ? result.error.statusName : result.error.code;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    if (result.ok && result.value.attempts > 1) retried++;
    if (!result.ok && process.env.DRAIN_DEBUG) console.log(`   ${result.error.message} (failure: ${String(result.error.failure)})`);
  }
  const runningOk = (await Promise.all(running)).filter((r) => r.ok).length;
  await closing;
  const result = {
    outcomes,
    retriedCalls: retried,
    drainerCircuit: transitions.join(' > ') || 'no change',
    drainerFailureRecorded: breaker.lastFailureAt?.(drainerAuthority) !== undefined,
    runningCallsFinished: `${runningOk}/3`,
  };
  await container.unbindAllAsync();
  await stayer.host.close(0);
  return result;
}

const both = { peers: ['drainer', 'stayer'] };
const shapes = [
  ['4 waves x 5, 15 ms apart, both replicas, presets', {}, 4, 5, 15, both],
  ['1 wave x 20, both replicas, presets', {}, 1, 20, 0, both],
  ['4 waves x 5, both replicas, maxAttempts 1', { retry: { maxAttempts: 1 } }, 4, 5, 15, both],
  ['1 wave x 20, both replicas, maxAttempts 1', { retry: { maxAttempts: 1 } }, 1, 20, 0, both],
  ['4 waves x 5, the drainer alone, presets', {}, 4, 5, 15, { endpoint: 'drainer' }],
];
try {
  for (const http3 of ['prefer', 'disable'].filter((value) => (process.env.DRAIN_HTTP3 ?? value) === value)) {
    for (const [shape, profile, waves, perWave, gapMs, target] of shapes.filter(([name]) => name.includes(process.env.DRAIN_SHAPE ?? ''))) {
      for (let run = 1; run <= runs; run++) {
        console.log(JSON.stringify({ http3, shape, run, ...(await scenario(http3, profile, waves, perWave, gapMs, target)) }));
      }
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
