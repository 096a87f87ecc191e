/**
 * The bundled CLI is one deployable directory: `dist-cli/` copied somewhere with no
 * node_modules of ours around it still runs every command, HTTP/3 included (the native QUIC
 * binding travels beside the bundle), and prints no warning.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode, show, warnings } from './cli-run.js';

describe('dist-cli/ (the bundled CLI) copied away from the repository', () => {
  let dir: string;
  let cli: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-cli-bundle-'));
    await cp(fileURLToPath(new URL('../../dist-cli/', import.meta.url)), join(dir, 'cli'), { recursive: true });
    cli = join(dir, 'cli', 'omnirelay.mjs');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('benchmarks a local host over HTTP/3 and HTTP/2 and reports the time to its first RPC', async () => {
    const run = await runNode([cli, 'bench', '--self', '--calls', '50', '--concurrency', '4']);
    if (run.code !== 0) throw new Error(show(run));
    expect(run.stdout).toMatch(/^h3\s+50\s+0\s/m);
    expect(run.stdout).toMatch(/^h2\s+50\s+0\s/m);
    expect(run.stdout).toMatch(/first successful RPC \d+ ms after process start/);
    expect(warnings(run)).toEqual([]);
  });

  it('writes development certificates and answers --version from its own manifest', async () => {
    const certs = await runNode([cli, 'certs', 'dev', join(dir, 'pki'), '--nodes', 'a,b']);
    expect(certs.code).toBe(0);
    const version = await runNode([cli, '--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
