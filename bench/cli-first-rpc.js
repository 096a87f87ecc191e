// `node bench/cli-first-rpc.js` (after `npm run build`; part of `npm run bench`): the bundled CLI's
// time from process start to its first successful RPC, next to the unbundled CLI, side by side —
// and the single-executable CLI's (`dist-sea/omnirelay`, run directly) when `npm run build:sea`
// has made it, with its size.
//
// One GrpcHost on 127.0.0.1 (HTTP/2 + HTTP/3 on one port, mTLS, dev PKI) stays up; each sample is
// a fresh `node <cli> bench <endpoint> --calls 20 --protocols h3 --cert … --key … --ca …` process,
// which prints "first successful RPC N ms after process start" (measured inside the process from
// `performance.timeOrigin`, so Node's own start-up is included). The CLIs alternate, so the
// machine's load hits both alike. Prints the figures, the goal and the ratio; asserts nothing.
//
// Env: CLI_BENCH_SAMPLES (default 11 per CLI).
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GrpcHost, writeDevPki } from '../dist/index.js';
import { pingService } from './h3-setup.js';
import { record } from './summary.js';
import { percentile } from './measure.js';

const p50 = (xs) => percentile([...xs].sort((a, b) => a - b), 50);

const SAMPLES = Number(process.env.CLI_BENCH_SAMPLES ?? 11);
const GOAL_MS = 300;
const run = promisify(execFile);
// name -> [file to execute, leading arguments]
const CLIS = {
  bundle: [process.execPath, [fileURLToPath(new URL('../dist-cli/omnirelay.mjs', import.meta.url))]],
  unbundled: [process.execPath, [fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))]],
};
const SEA = fileURLToPath(new URL('../dist-sea/omnirelay', import.meta.url));
if (existsSync(SEA)) CLIS.sea = [SEA, []];
const NAMES = Object.keys(CLIS);

async function firstRpcMs([file, lead], args) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const { stdout } = await run(file, [...lead, ...args], { env, timeout: 60_000 });
  const match = /first successful RPC (\d+) ms after process start/.exec(stdout);
  if (match === null) throw new Error(`${file} ${lead.join(' ')} printed no first-RPC line:\n${stdout}`);
  return Number(match[1]);
}

const dir = await mkdtemp(join(tmpdir(), 'omnirelay-cli-bench-'));
try {
  const pki = await writeDevPki(dir, ['server', 'client']);
  const { server, client } = pki.files;
  const host = await GrpcHost.start({ host: '127.0.0.1', tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile } }, [pingService]);
  try {
    const args = ['bench', host.url, '--calls', '20', '--concurrency', '1', '--protocols', 'h3', '--cert', client.certFile, '--key', client.keyFile, '--ca', pki.caFile];
    const samples = Object.fromEntries(NAMES.map((name) => [name, []]));
    for (const name of NAMES) await firstRpcMs(CLIS[name], args); // warm the OS file cache for each
    for (let i = 0; i < SAMPLES; i++) for (const name of NAMES) samples[name].push(await firstRpcMs(CLIS[name], args));
    console.log(`CLI: time from process start to the first successful RPC (omnirelay bench <GrpcHost on 127.0.0.1> over HTTP/3, mTLS), ${SAMPLES} fresh processes each, interleaved; node ${process.version}`);
    for (const name of NAMES) {
      const xs = samples[name];
      console.log(`  ${name.padEnd(9)} p50 ${p50(xs).toFixed(0)} ms, min ${Math.min(...xs)} ms, max ${Math.max(...xs)} ms  [${xs.join(', ')}]`);
    }
    const ratio = p50(samples.bundle) / p50(samples.unbundled);
    if (CLIS.sea !== undefined) {
      console.log(`  sea / bundle p50 ×${(p50(samples.sea) / p50(samples.bundle)).toFixed(2)}; dist-sea/omnirelay ${(statSync(SEA).size / 2 ** 20).toFixed(1)} MiB (+ the QUIC binding beside it); the bundle runs on node ${process.version}, the SEA on the node it was built from`);
      record({ area: 'CLI', figure: `single executable (dist-sea/omnirelay): process start → first successful RPC, p50 of ${SAMPLES}`, value: `${p50(samples.sea).toFixed(0)} ms (×${(p50(samples.sea) / p50(samples.bundle)).toFixed(2)} of the bundle; ${(statSync(SEA).size / 2 ** 20).toFixed(1)} MiB)`, goal: `< ${GOAL_MS} ms`, met: p50(samples.sea) < GOAL_MS });
    } else {
      console.log('  (no dist-sea/omnirelay: `npm run build:sea` adds the single-executable CLI to this comparison)');
    }
    console.log(`  goal: bundle < ${GOAL_MS} ms — p50 ${p50(samples.bundle).toFixed(0)} ms (${p50(samples.bundle) < GOAL_MS ? 'met' : 'not met'}); bundle / unbundled p50 ×${ratio.toFixed(2)}`);
    record({ area: 'CLI', figure: `bundled CLI: process start → first successful RPC over HTTP/3, p50 of ${SAMPLES}`, value: `${p50(samples.bundle).toFixed(0)} ms (unbundled ${p50(samples.unbundled).toFixed(0)} ms, ×${ratio.toFixed(2)})`, goal: `< ${GOAL_MS} ms`, met: p50(samples.bundle) < GOAL_MS });
  } finally {
    await host.close(0);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
