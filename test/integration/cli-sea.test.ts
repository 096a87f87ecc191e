/**
 * The single-executable CLI (scripts/build-sea.mjs, `npm run build:sea`): built here into a
 * temporary directory outside the repository — the executable `omnirelay` with the native QUIC
 * binding beside it in node_modules/, nothing else — it runs without Node or our node_modules,
 * HTTP/3 included, prints no warning (not even Node's experimental SEA one), and a mesh stops
 * cleanly on SIGINT. The build takes about 4 s. Skipped, saying why, only when this Node binary
 * has no single-executable fuse (a Node built without SEA support).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, runProgram, show, warnings, type CliRun } from './cli-run.js';

const BUILD = fileURLToPath(new URL('../../scripts/build-sea.mjs', import.meta.url));

function seaUnavailable(): string | undefined {
  try {
    execFileSync(process.execPath, [BUILD, '--check'], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    const { status, stderr } = error as { status: number | null; stderr: Buffer };
    if (status === 2) return stderr.toString('utf8').trim();
    throw error;
  }
}

const unavailable = seaUnavailable();
if (unavailable !== undefined) console.warn(`single-executable CLI test SKIPPED: ${unavailable}`);
const suite = unavailable === undefined ? describe : describe.skip;

suite(`the single-executable CLI built outside the repository${unavailable === undefined ? '' : ` (skipped: ${unavailable})`}`, () => {
  let dir: string;
  let exe: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-cli-sea-'));
    execFileSync(process.execPath, [BUILD, '--out', join(dir, 'sea')], { stdio: 'pipe', env: childEnv() });
    exe = join(dir, 'sea', 'omnirelay');
  }, 120_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is the executable with the QUIC binding beside it, and nothing else', async () => {
    expect((await readdir(join(dir, 'sea'))).sort()).toEqual(['node_modules', 'omnirelay']);
    expect(await readdir(join(dir, 'sea', 'node_modules', '@matrixai'))).toEqual(['quic-linux-x64']);
  });

  it('benchmarks a local host over HTTP/3 and HTTP/2 without printing a warning', async () => {
    const run = await runProgram(exe, ['bench', '--self', '--calls', '50', '--concurrency', '4']);
    if (run.code !== 0) throw new Error(show(run));
    expect(run.stdout).toMatch(/^h3\s+50\s+0\s/m);
    expect(run.stdout).toMatch(/^h2\s+50\s+0\s/m);
    expect(run.stdout).toMatch(/first successful RPC \d+ ms after process start/);
    expect(warnings(run)).toEqual([]);
    expect(run.stderr).not.toMatch(/single.executable|SEA/i);
  });

  it('writes development certificates and answers --version', async () => {
    const certs = await runProgram(exe, ['certs', 'dev', join(dir, 'pki'), '--nodes', 'a,b']);
    if (certs.code !== 0) throw new Error(show(certs));
    expect(await readdir(join(dir, 'pki'))).toContain('a.pem');
    const version = await runProgram(exe, ['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(version.stderr).toBe('');
  });

  it('runs a 3-node mesh and leaves gracefully on SIGINT, exit 0, no warning', async () => {
    const run = await new Promise<CliRun>((resolve, reject) => {
      const child = spawn(exe, ['mesh', '--nodes', '3'], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let interrupted = false;
      let timedOut = false;
      const killer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, 45_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        // Once every node agrees on the leaders, interrupt as Ctrl-C would.
        if (!interrupted && /^\[[\d.]+s\] leaders global=\S+ .*\(3\/3 agree/m.test(stdout)) {
          interrupted = true;
          child.kill('SIGINT');
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.once('error', (error) => {
        clearTimeout(killer);
        reject(error);
      });
      child.once('close', (code) => {
        clearTimeout(killer);
        resolve({ code, stdout, stderr, timedOut });
      });
    });
    if (run.code !== 0 || run.timedOut) throw new Error(show(run));
    expect(run.stdout).toMatch(/^omnirelay mesh: stopped/m);
    expect(warnings(run)).toEqual([]);
    expect(run.stdout).not.toMatch(/Warning/);
  }, 60_000);
});
