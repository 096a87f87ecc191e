// `node bench/etcd-first-call.js` (after `npm run build`; part of `npm run bench`): the first
// call and the next 10 calls to a real etcd (Debian's etcd-server, mTLS with client
// certificates, HTTP/2 only: etcd has no HTTP/3) through the control-plane client factory, one
// etcd `KV/Range` per call. Prints figures; asserts nothing about time.
//
// Variants (each sample is a fresh factory: fresh TLS material, connections, HTTP/3 memory;
// only the calls are timed; the variants alternate per sample, after one untimed warm-up each):
//   (1) the `etcd` profile with http3 'disable' — what EtcdClient requires (docs/etcd.md);
//   (2) the same through EtcdClient.get (the typed client's own cost on top of (1));
//   (3) the default control-plane profile (http3 'prefer', race delay 250 ms), etcd's UDP port
//       closed (the kernel answers QUIC with ICMP port unreachable): the usual loopback/LAN case;
//   (4) (3) plus an endpoint hint `http3: 'deny'` (the other way to keep etcd on HTTP/2);
//   (5) the default profile with etcd's UDP port silently dropping datagrams (a UDP socket on
//       the same port number that reads and discards, like a firewall without ICMP): what (1)
//       avoids — the HTTP/3 dial hears nothing, so the first call waits out the race delay.
// Sizes: BENCH_ETCD_SAMPLES (default 30 per variant).
import 'reflect-metadata';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createControlPlaneClientFactory, writeDevPki } from '../dist/index.js';
import { EtcdClient } from '../dist/controlplane/leadership/etcd/index.js';
import { KVDefinition, RangeRequest } from '../dist/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { startEtcd } from './etcd.js';
import { atMost, record } from './summary.js';
import { percentile } from './measure.js';

const SAMPLES = Number(process.env.BENCH_ETCD_SAMPLES ?? 30);
const NEXT = 10;
const KEY = '/omnirelay-bench/first-call';
const range = RangeRequest.create({ key: new Uint8Array(Buffer.from(KEY)) });

/** One sample: a fresh factory, one timed first call, then NEXT timed sequential calls. */
async function sample(variant, url, tls) {
  const factory = createControlPlaneClientFactory({ options: variant.options(url, tls) });
  const etcd = variant.viaClient ? new EtcdClient(factory, { endpoints: [url] }) : undefined;
  const call = async () => {
    if (etcd !== undefined) {
      await etcd.get(KEY);
      return 'h2';
    }
    const result = await factory.unary(KVDefinition, 'range', range, variant.target(url));
    return result.protocol;
  };
  try {
    const protocols = new Set();
    let t0 = performance.now();
    protocols.add(await call());
    const firstMs = performance.now() - t0;
    const next = [];
    for (let i = 0; i < NEXT; i++) {
      t0 = performance.now();
      protocols.add(await call());
      next.push(performance.now() - t0);
    }
    return { firstMs, next, protocols: [...protocols].sort().join('+') };
  } finally {
    await etcd?.dispose();
    await factory.dispose();
  }
}

function stats(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  return { mean: xs.reduce((s, x) => s + x, 0) / xs.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90), max: sorted[sorted.length - 1] };
}

const f = (x) => x.toFixed(2).padStart(7);

const etcdProfile = (url, tls) => ({ profiles: { etcd: { http3: 'disable', tls } }, endpoints: { etcd: { url, profile: 'etcd' } } });
const VARIANTS = [
  { name: "(1) etcd profile, h3 'disable'", options: etcdProfile, target: () => ({ endpoint: 'etcd' }) },
  { name: '(2) EtcdClient.get on (1)', options: etcdProfile, viaClient: true },
  { name: '(3) default, UDP closed', options: (url, tls) => ({ profiles: { 'control-plane': { tls } } }), target: (url) => ({ endpoint: url }) },
  { name: "(4) default + hint 'deny'", options: (url, tls) => ({ profiles: { 'control-plane': { tls } }, endpoints: { etcd: { url, hints: { http3: 'deny' } } } }), target: () => ({ endpoint: 'etcd' }) },
];
const DROPPED = { name: '(5) default, UDP dropped', options: (url, tls) => ({ profiles: { 'control-plane': { tls } } }), target: (url) => ({ endpoint: url }) };

function print(name, rs) {
  const first = stats(rs.map((r) => r.firstMs));
  const next = stats(rs.flatMap((r) => r.next));
  const protocols = [...new Set(rs.map((r) => r.protocols))].join(', ');
  console.log(`  ${name.padEnd(40)} ${f(first.mean)} ${f(first.p50)} ${f(first.p90)} ${f(first.max)} | ${f(next.mean)} ${f(next.p50)} ${f(next.p90)} ${f(next.max)} | ${protocols}`);
  return { first, next };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-etcd-pki-'));
  const pki = await writeDevPki(dir, ['etcd-server', 'client']);
  const server = pki.files['etcd-server'];
  const client = pki.files.client;
  const tls = { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile };
  const etcd = await startEtcd({ certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile });
  if (etcd.skip !== undefined) {
    console.log(`etcd first call: skipped: ${etcd.skip}`);
    record({ area: 'etcd', figure: 'first call to etcd', value: `skipped: ${etcd.skip}`, goal: '' });
    await rm(dir, { recursive: true, force: true });
    return;
  }
  try {
    console.log(`First call and next ${NEXT} calls to etcd (${etcd.url}, Debian etcd-server, mTLS, KV/Range), ${SAMPLES} samples per variant, fresh factory each (node ${process.version})`);
    console.log(`  ${''.padEnd(40)} first call ms: mean, p50, p90, max | next ${NEXT} calls ms: mean, p50, p90, max | protocols`);
    for (const v of VARIANTS) await sample(v, etcd.url, tls); // warm-up, untimed
    const results = VARIANTS.map(() => []);
    for (let s = 0; s < SAMPLES; s++) {
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = (s + k) % VARIANTS.length;
        results[v].push(await sample(VARIANTS[v], etcd.url, tls));
      }
    }
    const figures = VARIANTS.map((v, i) => print(v.name, results[i]));

    // (5): a UDP socket on etcd's port number that swallows every datagram.
    const sink = createSocket('udp4');
    await new Promise((resolve, reject) => {
      sink.once('error', reject);
      sink.bind(etcd.port, '127.0.0.1', resolve);
    });
    sink.on('message', () => undefined);
    let dropped;
    try {
      const rs = [];
      for (let s = 0; s < Math.min(SAMPLES, 10); s++) rs.push(await sample(DROPPED, etcd.url, tls));
      dropped = print(`${DROPPED.name} (${rs.length} samples)`, rs);
    } finally {
      await new Promise((resolve) => sink.close(resolve));
    }

    const [h2, , prefer, deny] = figures;
    console.log(`  per call after the first: default/h2-only mean ×${(prefer.next.mean / h2.next.mean).toFixed(3)}, p50 ×${(prefer.next.p50 / h2.next.p50).toFixed(3)}; hint-deny/h2-only p50 ×${(deny.next.p50 / h2.next.p50).toFixed(3)} (no race delay per call: ≈ 1)`);
    console.log(`  first call: default (UDP closed) p50 +${(prefer.first.p50 - h2.first.p50).toFixed(2)} ms over h2-only; default (UDP dropped) p50 +${(dropped.first.p50 - h2.first.p50).toFixed(2)} ms (the 250 ms race delay that http3 'disable' never pays)`);
    record({ area: 'etcd', figure: "first KV/Range through the etcd profile (http3 'disable'), p50", value: `${h2.first.p50.toFixed(1)} ms; next calls p50 ${h2.next.p50.toFixed(2)} ms`, goal: 'reported' });
    const after = prefer.next.p50 / h2.next.p50;
    record({ area: 'etcd', figure: 'calls after the first: default profile / etcd profile p50', value: `×${after.toFixed(3)}`, goal: '≈ 1 (<= 1.1): no race delay per call', met: atMost(after, 1.1) });
  } finally {
    await etcd.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
