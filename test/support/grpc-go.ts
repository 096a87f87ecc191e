/**
 * An independent HTTP/2-only gRPC server for integration tests: grpc-go (Debian's
 * `golang-google-grpc-dev`, built offline in GOPATH mode) serving
 * `omnirelay.controlplane.v1.ControlPlane/Ping`, `ControlPlaneStreams/Collect` and `/Chat`
 * (client and bidi streaming) and `grpc.health.v1.Health/Check`
 * (test/support/grpc-go/server.go). The binary is built once per source hash into the
 * system's temp directory (about 12 s cold, instant afterwards) and started per suite.
 *
 * Also: a UDP socket that swallows every datagram (a firewall that drops instead of
 * answering with ICMP port unreachable), and a TCP listener that accepts and never answers.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./grpc-go/server.go', import.meta.url));
/** Where Debian's Go library packages put their sources. */
const GOPATH = '/usr/share/gocode';

let built: Promise<string> | undefined;

/** Builds the server (once per source hash and Go version); resolves to the binary's path. */
export function buildGrpcGoServer(): Promise<string> {
  built ??= (async () => {
    const source = await readFile(SOURCE);
    let goVersion: string;
    try {
      goVersion = (await execFileAsync('go', ['version'])).stdout.trim();
    } catch (error) {
      throw new Error(`grpc-go tests need Go and Debian's golang-google-grpc-dev (apt-get install golang-go golang-google-grpc-dev; .ci/run does it): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const hash = createHash('sha256').update(source).update(goVersion).digest('hex').slice(0, 16);
    const root = join(tmpdir(), 'omnirelay-grpc-go');
    const binary = join(root, hash, 'grpc-go-server');
    if (existsSync(binary)) return binary;
    await mkdir(join(root, hash), { recursive: true });
    const partial = `${binary}.${process.pid}.${Date.now()}.tmp`;
    try {
      await execFileAsync('go', ['build', '-o', partial, SOURCE], {
        cwd: join(root, hash),
        env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(root, 'gocache'), GOFLAGS: '', CGO_ENABLED: '0' },
        timeout: 300_000,
      });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`building ${SOURCE} with grpc-go from ${GOPATH} failed (is golang-google-grpc-dev installed?): ${stderr || String(error)}`, { cause: error });
    }
    // Atomic: parallel jest workers may build at the same time; either result is the same binary.
    await rename(partial, binary);
    return binary;
  })();
  return built;
}

export interface GrpcGoServer {
  readonly port: number;
  readonly url: string;
  /** Everything the server printed on stderr (grpc-go logs handshake failures there). */
  output(): string;
  close(): Promise<void>;
}

export interface GrpcGoOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** Client CA bundle: client certificates are verified when given. */
  readonly caFile?: string;
  readonly requireClientCert?: boolean;
  /** The node name Ping answers with (default `grpc-go`). */
  readonly node?: string;
}

/** Starts the grpc-go server on 127.0.0.1 (ephemeral port). */
export async function startGrpcGoServer(options: GrpcGoOptions): Promise<GrpcGoServer> {
  const binary = await buildGrpcGoServer();
  const args = ['-cert', options.certFile, '-key', options.keyFile];
  if (options.caFile !== undefined) args.push('-ca', options.caFile);
  if (options.requireClientCert === true) args.push('-require-client-cert');
  if (options.node !== undefined) args.push('-node', options.node);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRPC_GO_LOG_SEVERITY_LEVEL: 'info', GRPC_GO_LOG_VERBOSITY_LEVEL: '2' } });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`grpc-go server did not start: ${stdout}${stderr}`)), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /port (\d+)/.exec(stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`grpc-go server exited (${String(code)}): ${stderr}`));
    });
  });
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    output: () => stderr,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A UDP socket on 127.0.0.1:`port` that reads and drops every datagram (no ICMP, no answer). */
export interface UdpSink {
  readonly port: number;
  /** Datagrams received so far. */
  readonly received: () => number;
  close(): Promise<void>;
}

export async function swallowUdp(port = 0): Promise<UdpSink> {
  const socket: UdpSocket = createSocket('udp4');
  let count = 0;
  socket.on('message', () => {
    count++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    received: () => count,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A TCP listener on 127.0.0.1 that accepts connections and never sends a byte (a hung TLS server). */
export interface SilentTcp {
  readonly port: number;
  close(): Promise<void>;
}

export async function silentTcp(port = 0): Promise<SilentTcp> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('silent TCP listener has no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
