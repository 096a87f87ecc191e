// `node bench/first-call.js` (after `npm run build`; part of `npm run bench`): the first call
// and the next 10 calls against an HTTP/2-only server, with the default profile vs plain
// HTTP/2. Prints figures and ratios; asserts nothing about time.
//
// Default profile: the `control-plane` preset (http3 'prefer', http3RaceDelayMs 250, mTLS),
// only the TLS files given. Plain HTTP/2: the same with http3 'disable'. Servers, each
// listening on TCP only, so the UDP port is closed: the kernel answers our QUIC Initial with
// ICMP port unreachable and the HTTP/3 dial fails with ECONNREFUSED within a millisecond or so:
//   (a) our GrpcHost with `http3: false`;
//   (b) grpc-go (test/support/grpc-go/server.go, built offline from Debian's
//       golang-google-grpc-dev like the integration tests do; skipped with a note when Go or
//       the package is missing).
// Not measured: (c) a path where UDP is silently dropped (a firewall without ICMP). A UDP
// socket that swallows datagrams (test/support/grpc-go.ts `swallowUdp`) is not the same
// thing here: the first call would then wait the race delay and go over HTTP/2, which the
// integration tests check; a real drop of our datagrams (iptables DROP) needs root.
//
// Each sample is a fresh container and factory (fresh TLS material, fresh connections, empty
// HTTP/3 health memory); only the calls are timed (not container creation or disposal). The
// two variants alternate per sample (rotating order); one untimed sample of each warms up the
// JIT and loads the QUIC binding first. Sizes: BENCH_FIRST_SAMPLES (default 40 per variant
// per server). BENCH_FIRST_SERVER=ours|grpc-go runs one server only.
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS, writeDevPki } from '../dist/index.js';
import { buildGrpcGoServer, startGrpcGoServer } from './grpc-go.js';
import { pingService } from './h3-setup.js';
import { atMost, record } from './summary.js';
import { percentile } from './measure.js';

const { ControlPlaneDefinition } = controlPlaneV1;
const SAMPLES = Number(process.env.BENCH_FIRST_SAMPLES ?? 40);
const NEXT = 10;
const RACE_DELAY_MS = 250; // the control-plane preset's http3RaceDelayMs
const ONLY_SERVER = process.env.BENCH_FIRST_SERVER;

const request = (i) => ({ fromNode: 'bench', sequence: i, payload: new Uint8Array() });

/** One sample: a fresh factory, one timed first call, then NEXT timed sequential calls. */
async function sample(profile, url) {
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({ profiles: { 'control-plane': profile } });
  container.load(grpcControlPlaneModule);
  const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
  const health = container.get(TOKENS.Http3Health);
  let marked;
  let t0 = 0;
  const sub = health.changes$.subscribe((s) => {
    if (s.broken && marked === undefined) marked = { reason: s.reason, ms: performance.now() - t0 };
  });
  try {
    t0 = performance.now();
    const first = await factory.unary(ControlPlaneDefinition, 'ping', request(0), { endpoint: url });
    const firstMs = performance.now() - t0;
    const next = [];
    const protocols = new Set([first.protocol]);
    for (let i = 1; i <= NEXT; i++) {
      const t = performance.now();
      const r = await factory.unary(ControlPlaneDefinition, 'ping', request(i), { endpoint: url });
      next.push(performance.now() - t);
      protocols.add(r.protocol);
    }
    return { firstMs, next, protocols: [...protocols].join('+'), attempts: first.attempts, marked };
  } finally {
    sub.unsubscribe();
    await container.unbindAllAsync();
  }
}

function stats(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  return { mean: xs.reduce((s, x) => s + x, 0) / xs.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), max: sorted[sorted.length - 1] };
}

const f = (x) => x.toFixed(2).padStart(7);

async function measureServer(label, url, tls) {
  const variants = [
    { name: 'default (h3 prefer)', profile: { tls } },
    { name: "h2-only (h3 'disable')", profile: { tls, http3: 'disable' } },
  ];
  for (const v of variants) await sample(v.profile, url); // warm-up, untimed
  const results = variants.map(() => []);
  for (let s = 0; s < SAMPLES; s++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (s + k) % variants.length;
      results[v].push(await sample(variants[v].profile, url));
    }
  }
  const [dflt, h2] = results.map((rs) => ({
    first: stats(rs.map((r) => r.firstMs)),
    next: stats(rs.flatMap((r) => r.next)),
    protocols: [...new Set(rs.map((r) => r.protocols))].join(', '),
    attempts: Math.max(...rs.map((r) => r.attempts)),
    marked: rs.filter((r) => r.marked !== undefined),
  }));
  console.log(`${label}: ${url}, ${SAMPLES} samples per variant (fresh container each), interleaved`);
  console.log(`  ${''.padEnd(24)} first call ms: mean    p50     p90     max  | next ${NEXT} calls ms: mean    p50     p90  | protocol, max attempts`);
  for (const [i, r] of [dflt, h2].entries()) {
    console.log(`  ${variants[i].name.padEnd(24)}              ${f(r.first.mean)} ${f(r.first.p50)} ${f(r.first.p90)} ${f(r.first.max)} |                ${f(r.next.mean)} ${f(r.next.p50)} ${f(r.next.p90)} | ${r.protocols}, ${r.attempts}`);
  }
  const goal = RACE_DELAY_MS + h2.first.p50;
  const extra = dflt.first.p50 - h2.first.p50;
  const reasons = [...new Set(dflt.marked.map((r) => r.marked.reason))].join(', ') || 'none';
  const markedAt = dflt.marked.length > 0 ? stats(dflt.marked.map((r) => r.marked.ms)) : undefined;
  console.log(
    `  first call: default p50 ${dflt.first.p50.toFixed(2)} ms vs h2-only p50 ${h2.first.p50.toFixed(2)} ms (+${extra.toFixed(2)} ms for the HTTP/3 attempt, ×${(dflt.first.p50 / h2.first.p50).toFixed(2)}); goal: first <= race delay ${RACE_DELAY_MS} + one HTTP/2 handshake (h2-only first, ${h2.first.p50.toFixed(2)}) = ${goal.toFixed(2)} ms: p50 ${dflt.first.p50 <= goal ? 'met' : 'NOT met'}, max ${dflt.first.max.toFixed(2)} ${dflt.first.max <= goal ? 'met' : 'NOT met'}`,
  );
  console.log(`  HTTP/3 marked broken in ${dflt.marked.length}/${SAMPLES} default samples (reason: ${reasons}${markedAt !== undefined ? `; p50 ${markedAt.p50.toFixed(2)} ms, max ${markedAt.max.toFixed(2)} ms after the call started` : ''})`);
  console.log(`  next ${NEXT} calls: ratio default/h2-only mean ×${(dflt.next.mean / h2.next.mean).toFixed(3)}, p50 ×${(dflt.next.p50 / h2.next.p50).toFixed(3)} (goal ≈ 1)`);
  const server = label.startsWith('(b)') ? 'grpc-go' : 'our GrpcHost, http3: false';
  record({ area: 'first call (HTTP/2-only server)', figure: `${server}: default profile first call p50 (max)`, value: `${dflt.first.p50.toFixed(1)} ms (${dflt.first.max.toFixed(1)}); h2-only ${h2.first.p50.toFixed(1)} ms`, goal: `<= race delay + one HTTP/2 handshake = ${goal.toFixed(1)} ms`, met: atMost(dflt.first.max, goal) });
  const next = dflt.next.p50 / h2.next.p50;
  // "≈ 1" read as within 10 %: the next calls must not pay for HTTP/3 again.
  record({ area: 'first call (HTTP/2-only server)', figure: `${server}: next ${NEXT} calls p50 ratio default / h2-only`, value: `×${next.toFixed(3)}`, goal: '≈ 1 (<= 1.1)', met: atMost(next, 1.1) });
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-first-'));
  const pki = await writeDevPki(dir, ['server', 'client']);
  const { server, client } = pki.files;
  const tls = { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile };
  const closers = [];
  console.log(`First call and next ${NEXT} calls against HTTP/2-only servers (UDP port closed: ICMP port unreachable), default control-plane profile vs http3 'disable', mTLS, unary Ping (node ${process.version})`);
  try {
    if (ONLY_SERVER === undefined || ONLY_SERVER === 'ours') {
      const host = await GrpcHost.start({ tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile }, http3: false }, [pingService]);
      closers.push(() => host.close(1000));
      await measureServer('(a) GrpcHost, http3: false', host.url, tls);
    }
    if (ONLY_SERVER === undefined || ONLY_SERVER === 'grpc-go') {
      const built = await buildGrpcGoServer();
      if (built.skip !== undefined) {
        console.log(`(b) grpc-go: skipped: ${built.skip}`);
        record({ area: 'first call (HTTP/2-only server)', figure: 'grpc-go', value: `skipped: ${built.skip}`, goal: '' });
      } else {
        const go = await startGrpcGoServer(built.binary, { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile });
        closers.push(() => go.close());
        await measureServer('(b) grpc-go (Debian golang-google-grpc-dev), HTTP/2 only', go.url, tls);
      }
    }
    console.log('(c) UDP silently dropped (no ICMP): not measured; needs root (iptables DROP). See the comment at the top of bench/first-call.js.');
  } finally {
    for (const close of closers) await close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
