/**
 * Our patch of @matrixai/quic (patches/@matrixai+quic+2.0.9.patch, applied by
 * `patch-package` at install): an HTTP/3 peer that sends its control stream together with
 * its last handshake packets must not crash the process with `InvalidStreamState`, and
 * neither must a peer unidirectional stream that arrives while a connection is stopping.
 *
 * The scenario runs in a child process (test/support/quic-control-stream-race.mjs),
 * because the unpatched library fails with an uncaught exception. It runs twice: against
 * the installed (patched) library, where every connection must exchange both control
 * streams, and against a copy with the patch reversed, which must crash with
 * `InvalidStreamState`: proof that the scenario really reaches the bug.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createDevCertificateAuthority } from 'omnirelay';

const execFileAsync = promisify(execFile);

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const script = fileURLToPath(new URL('../support/quic-control-stream-race.mjs', import.meta.url));
const patchFile = join(repoRoot, 'patches', '@matrixai+quic+2.0.9.patch');
const CONNECTIONS = 20;
const CHILD_TIMEOUT_MS = 20_000;

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runScenario(env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('@matrixai/quic patch: peer streams that arrive while a connection is starting or stopping', () => {
  let dir: string;
  let pkiFile: string;
  let unpatchedLibrary: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-quic-race-'));
    const ca = await createDevCertificateAuthority({ commonName: 'QUIC race CA' });
    const leaf = await ca.issue({
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    pkiFile = join(dir, 'pki.json');
    await writeFile(pkiFile, JSON.stringify({ caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem }));

    // A copy of the installed library with our patch reversed. Its own node_modules
    // links to ours, so its dependencies and the native binding resolve as installed.
    const copy = join(dir, 'node_modules', '@matrixai', 'quic');
    await cp(join(repoRoot, 'node_modules', '@matrixai', 'quic'), copy, { recursive: true });
    await symlink(join(repoRoot, 'node_modules'), join(copy, 'node_modules'), 'dir');
    await execFileAsync('git', ['apply', '-R', patchFile], { cwd: dir });
    unpatchedLibrary = join(copy, 'dist', 'index.js');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('with the patch, every connection exchanges both control streams and refuses a stream while stopping', async () => {
    const result = await runScenario({ RACE_PKI: pkiFile, RACE_CONNECTIONS: String(CONNECTIONS) });

    expect(result.stderr).not.toContain('InvalidStreamState');
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
    expect(JSON.parse(result.stdout)).toEqual({
      connections: CONNECTIONS,
      exchanged: CONNECTIONS,
      refusedWhileStopping: CONNECTIONS,
    });
  });

  it('without the patch, the same scenario crashes the process with InvalidStreamState', async () => {
    const result = await runScenario({
      RACE_PKI: pkiFile,
      RACE_CONNECTIONS: String(CONNECTIONS),
      RACE_QUIC_LIBRARY: unpatchedLibrary,
    });

    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    // The client's control stream is uni stream 2, rejected by `processStreams`.
    expect(result.stderr).toMatch(/Error: InvalidStreamState\(2\)/);
    expect(result.stderr).toContain('processStreams');
  });
});
