// `npm run bench` (after `npm run build`): every bench script in turn, each in its own process
// with its full output, then one table of the project's headline figures with their goals.
// Each script adds its rows through bench/summary.js `record` (to the file named by
// BENCH_SUMMARY, which this sets). A script that fails is a row too, and the exit code is 1.
// Asserts nothing about time: "not met" is a finding to report, not a failure.
//
// BENCH_SCRIPTS=run.js,gossip.js runs a subset (file names in bench/).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPTS = [
  'run.js', // factory vs raw grpc-js, sockets for 10,000 calls, certificate and hint swaps, HTTP/3 vs HTTP/2 tiny
  'h3-payloads.js', // HTTP/3 vs HTTP/2 large messages
  'dispatcher.js',
  'choosers.js',
  'first-call.js',
  'bidi.js',
  'gossip.js',
  'leadership.js',
  'etcd-first-call.js',
  'cli-first-rpc.js',
];

const here = dirname(fileURLToPath(import.meta.url));
const chosen = process.env.BENCH_SCRIPTS === undefined ? SCRIPTS : process.env.BENCH_SCRIPTS.split(',').map((s) => s.trim());
for (const script of chosen) {
  if (!SCRIPTS.includes(script)) {
    console.error(`BENCH_SCRIPTS: unknown script "${script}" (known: ${SCRIPTS.join(', ')})`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'omnirelay-bench-summary-'));
const summaryFile = join(dir, 'rows.jsonl');
writeFileSync(summaryFile, '');
const started = Date.now();
let failed = 0;
try {
  for (const script of chosen) {
    console.log(`\n=== node bench/${script}`);
    const t0 = Date.now();
    const result = spawnSync(process.execPath, [join(here, script)], { stdio: 'inherit', env: { ...process.env, BENCH_SUMMARY: summaryFile } });
    const seconds = ((Date.now() - t0) / 1000).toFixed(0);
    if (result.status !== 0) {
      failed++;
      const how = result.signal !== null ? `signal ${result.signal}` : `exit ${String(result.status)}`;
      writeFileSync(summaryFile, `${JSON.stringify({ area: script, figure: 'the script', value: `FAILED (${how}) after ${seconds} s`, goal: 'runs to the end', met: false, script })}\n`, { flag: 'a' });
    }
  }
  const rows = readFileSync(summaryFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
  printTable(rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\n${chosen.length} scripts in ${((Date.now() - started) / 60_000).toFixed(1)} min, node ${process.version}; a shared machine: compare ratios (taken side by side in one run), not absolute figures across runs`);
if (failed > 0) process.exitCode = 1;

function printTable(rows) {
  const met = (row) => (row.met === true ? 'met' : row.met === false ? 'NOT MET' : '');
  const columns = [
    ['area', (row) => row.area],
    ['figure', (row) => row.figure],
    ['value', (row) => row.value],
    ['goal', (row) => row.goal],
    ['', met],
  ];
  const widths = columns.map(([title, get]) => Math.max(title.length, ...rows.map((row) => String(get(row)).length)));
  const line = (cells) => cells.map((cell, i) => String(cell).padEnd(widths[i])).join(' │ ').trimEnd();
  console.log(`\n=== every figure with its goal (${rows.length} rows; the details are above, under each script's name)`);
  console.log(line(columns.map(([title]) => title)));
  console.log(widths.map((w) => '─'.repeat(w)).join('─┼─'));
  let area;
  for (const row of rows) {
    console.log(line(columns.map(([, get], i) => (i === 0 && row.area === area ? '' : get(row)))));
    area = row.area;
  }
  const goals = rows.filter((row) => row.met !== undefined);
  console.log(`goals met: ${goals.filter((row) => row.met).length} of ${goals.length}`);
}
