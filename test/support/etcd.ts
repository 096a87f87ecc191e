/**
 * A real etcd (Debian's `etcd-server`, 3.4.23; `.ci/run` installs it) for integration tests:
 * one member on 127.0.0.1 with a free client port and a free peer port, a fresh data
 * directory, and client-certificate authentication (`--client-cert-auth`, clients must present
 * a certificate issued by `caFile`). The certificates come from the test's PKI
 * (test/support/pki-files.ts: ECDSA P-256, the server's with serverAuth and SANs
 * localhost/127.0.0.1/::1, the clients' with clientAuth).
 *
 * `start()` resolves once etcd logs "serving client traffic securely" (it is the leader of its
 * one-member cluster by then); `stop()` sends SIGTERM and waits for the process to exit;
 * `restart()` is stop + start with the same data directory and ports (the keys and leases
 * survive, connections do not); `close()` stops it and removes the data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdTls {
  /** The server's certificate and key (PEM files). */
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA that client certificates must chain to. */
  readonly caFile: string;
}

export interface EtcdServer {
  /** `https://127.0.0.1:<client port>` */
  readonly url: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** True between a successful start and the next stop. */
  readonly running: boolean;
  /** What etcd printed (zap JSON lines on stderr), across restarts. */
  output(): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops etcd and removes its data directory. */
  close(): Promise<void>;
}

const READY = '"msg":"serving client traffic securely"';
const START_TIMEOUT_MS = 30_000;

/** A TCP port nobody listens on now (bound on 127.0.0.1 port 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from a loopback listener');
  return address.port;
}

/**
 * Starts etcd with `tls` (client certificates required) and waits until it serves clients.
 * The ports are free when picked but released before etcd binds them; if another process
 * takes one meanwhile, etcd exits ("address already in use") and it is started again on new
 * ports (up to 3 times).
 */
export async function startEtcd(tls: EtcdTls): Promise<EtcdServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(tls);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof Error) || !error.message.includes('address already in use')) throw error;
    }
  }
}

async function startOnFreePorts(tls: EtcdTls): Promise<EtcdServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'omnirelay-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `https://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'omnirelay-test',
    '--data-dir', dataDir,
    '--listen-client-urls', url,
    '--advertise-client-urls', url,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `omnirelay-test=${peerUrl}`,
    '--cert-file', tls.certFile,
    '--key-file', tls.keyFile,
    '--client-cert-auth',
    '--trusted-ca-file', tls.caFile,
    '--logger', 'zap',
    '--log-outputs', 'stderr',
  ];
  let log = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined) return;
    if (running.exitCode === null && running.signalCode === null) running.kill('SIGTERM');
    await exited;
  };

  const start = async (): Promise<void> => {
    if (child !== undefined) throw new Error(`etcd on ${url} is already running`);
    const proc = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    let sinceStart = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`etcd on ${url} was not ready within ${START_TIMEOUT_MS} ms:\n${sinceStart}`)), START_TIMEOUT_MS);
        const settle = (error?: Error): void => {
          clearTimeout(timer);
          proc.off('error', onError);
          proc.off('exit', onExit);
          if (error === undefined) resolve();
          else reject(error);
        };
        const onError = (error: Error): void =>
          settle(new Error(`etcd could not be started (apt-get install etcd-server; .ci/run does it): ${error.message}`, { cause: error }));
        const onExit = (code: number | null): void => settle(new Error(`etcd on ${url} exited (${String(code)}) before it was ready:\n${sinceStart}`));
        proc.stderr?.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          log += text;
          const wasReady = sinceStart.includes(READY);
          sinceStart += text;
          if (!wasReady && sinceStart.includes(READY)) settle();
        });
        proc.once('error', onError);
        proc.once('exit', onExit);
      });
    } catch (error) {
      await stop();
      throw error;
    }
  };

  try {
    await start();
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  return {
    url,
    clientPort,
    peerPort,
    dataDir,
    get running() {
      return child !== undefined;
    },
    output: () => log,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
