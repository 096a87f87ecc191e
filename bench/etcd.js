// A real etcd (Debian's etcd-server) for bench scripts: one member on 127.0.0.1 with free
// ports, a temporary data directory and client-certificate authentication. The same start-up
// as test/support/etcd.ts (TypeScript, not compiled into dist/, so the bench cannot import it).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const READY = '"msg":"serving client traffic securely"';

async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts etcd with `{ certFile, keyFile, caFile }` (client certificates required) and any
 * `extraArgs` (e.g. `--election-timeout 500`); resolves to
 * `{ url, port, close() }` once it serves clients, or to `{ skip: reason }` when `etcd` is not
 * installed (apt-get install etcd-server).
 */
export async function startEtcd(tls, extraArgs = []) {
  const dataDir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-etcd-'));
  const port = await freePort();
  const peerPort = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawn('etcd', [
    '--name', 'bench', '--data-dir', dataDir,
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `bench=${peerUrl}`,
    '--cert-file', tls.certFile, '--key-file', tls.keyFile, '--client-cert-auth', '--trusted-ca-file', tls.caFile,
    '--logger', 'zap', '--log-outputs', 'stderr',
    ...extraArgs,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => child.once('close', resolve));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dataDir, { recursive: true, force: true });
  };
  let log = '';
  const started = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: `etcd was not ready within 30 s:\n${log}` }), 30_000);
    child.stderr.on('data', (chunk) => {
      log += chunk.toString();
      if (log.includes(READY)) {
        clearTimeout(timer);
        resolve({});
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ skip: error.code === 'ENOENT' ? '`etcd` is not on the PATH (apt-get install etcd-server)' : error.message });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ error: `etcd exited (${code}) before it was ready:\n${log}` });
    });
  });
  if (started.skip !== undefined || started.error !== undefined) {
    await close();
    if (started.error !== undefined) throw new Error(started.error);
    return { skip: started.skip };
  }
  return { url, port, close };
}
