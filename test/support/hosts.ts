/**
 * Shared helpers for integration/feature tests: start `GrpcHost`s serving the control-plane
 * service on 127.0.0.1 (recording every call they serve), and build Inversify containers
 * around `grpcControlPlaneModule`.
 *
 * Imports the library only as `omnirelay` (the built `dist/`), like every tier above `unit`.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS } from 'omnirelay';
import type {
  ControlPlaneOptionsInput,
  DevCertificateAuthority,
  GrpcHostTls,
  IGrpcControlPlaneClientFactory,
  IssueOptions,
  ProfileOptionsInput,
  ServerCallInfo,
} from 'omnirelay';
import type { Files } from './pki-files.js';

/** One call a test host served. */
export interface ServedCall {
  readonly method: 'ping' | 'watch';
  readonly fromNode: string;
  /** The client certificate CN the host saw ('' without one). */
  readonly clientIdentity: string;
}

export interface TestHost {
  /** The node name the host answers with. */
  readonly name: string;
  readonly host: GrpcHost;
  /** `https://127.0.0.1:port` (or `http://` for an insecure host). */
  readonly url: string;
  readonly port: number;
  /** Every call the handlers ran, in order. */
  readonly calls: ServedCall[];
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a GrpcHost on 127.0.0.1 (ephemeral port) serving `ControlPlane`: `ping` echoes the
 * sequence and the client identity, `watch` yields `count` events. Every handler invocation
 * is recorded in `calls`, so a test can prove a call never reached the server.
 */
export async function startTestHost(name: string, tls: GrpcHostTls | 'insecure'): Promise<TestHost> {
  const calls: ServedCall[] = [];
  const host = await GrpcHost.start({ host: '127.0.0.1', port: 0, tls }, [
    [
      controlPlaneV1.ControlPlaneDefinition,
      {
        ping: (request: controlPlaneV1.PingRequest, call: ServerCallInfo): controlPlaneV1.PingResponse => {
          calls.push({ method: 'ping', fromNode: request.fromNode, clientIdentity: call.clientIdentity });
          return { node: name, sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
        },
        watch: async function* (request: controlPlaneV1.WatchRequest, call: ServerCallInfo): AsyncIterable<controlPlaneV1.MembershipEvent> {
          calls.push({ method: 'watch', fromNode: request.fromNode, clientIdentity: call.clientIdentity });
          for (let i = 1; i <= request.count; i++) {
            yield { node: name, sequence: i };
            await Promise.resolve();
          }
        },
      },
    ],
  ]);
  return { name, host, url: host.url, port: host.port, calls, close: (graceMs = 500) => host.close(graceMs) };
}

/** GrpcHost TLS settings from a leaf of the test PKI, requiring client certificates of `caFile`. */
export function hostTls(leaf: Pick<Files, 'certFile' | 'keyFile'>, caFile: string, extra: Partial<GrpcHostTls> = {}): GrpcHostTls {
  return { certFile: leaf.certFile, keyFile: leaf.keyFile, caFile, requireClientCertificate: true, ...extra };
}

/** Issues a certificate from `ca` and writes `<name>.pem` / `<name>.key` into `dir`. */
export async function issueToFiles(ca: DevCertificateAuthority, dir: string, name: string, options: IssueOptions): Promise<Files> {
  const issued = await ca.issue(options);
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, issued.certPem);
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  return { certFile, keyFile, certPem: issued.certPem, keyPem: issued.keyPem, serialHex: issued.serialHex };
}

/**
 * Profile settings that make failures fast and deterministic in tests: HTTP/2 only, one
 * attempt, short deadline and connect timeout. Spread the TLS settings over it.
 */
export const FAST_PROFILE: ProfileOptionsInput = {
  http3: 'disable',
  deadlineMs: 3_000,
  connectTimeoutMs: 2_000,
  retry: { maxAttempts: 1 },
};

/** A fast profile with the given TLS settings. */
export function fastProfile(tls: NonNullable<ProfileOptionsInput['tls']>, extra: ProfileOptionsInput = {}): ProfileOptionsInput {
  return { ...FAST_PROFILE, ...extra, tls };
}

/**
 * A container with `options` bound to `TOKENS.ControlPlaneOptions` and the module loaded.
 * `configure` may bind optional tokens (validator, telemetry, clock...) before loading.
 * Dispose with `await container.unbindAllAsync()`.
 */
export function createContainer(options: ControlPlaneOptionsInput, configure?: (container: Container) => void): Container {
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue(options);
  configure?.(container);
  container.load(grpcControlPlaneModule);
  return container;
}

/** Resolves the factory (this is where configuration-time TLS failures are thrown). */
export function factoryOf(container: Container): IGrpcControlPlaneClientFactory {
  return container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
}

/** A ping request. */
export function ping(fromNode = 'test-client', sequence = 1): controlPlaneV1.PingRequest {
  return { fromNode, sequence, payload: new Uint8Array() };
}

/** An `openssl s_server` on 127.0.0.1 that verifies client certificates inside the handshake. */
export interface OpenSslServer {
  readonly port: number;
  readonly url: string;
  /** Everything s_server printed (stdout + stderr): its own verification verdicts. */
  output(): string;
  close(): Promise<void>;
}

/**
 * Starts `openssl s_server` requiring a client certificate of `caFile` (and, with `crlFile`,
 * checking it against that CRL), offering ALPN h2. Unlike Node's TLS server (and so
 * GrpcHost), which finishes the handshake and then just closes the socket of a client it
 * rejects, OpenSSL fails the handshake with the TLS alert (unknown_ca, certificate_revoked,
 * certificate_required): this is what most non-Node servers (and proxies) send.
 */
export async function startOpenSslServer(options: { certFile: string; keyFile: string; caFile: string; crlFile?: string | undefined }): Promise<OpenSslServer> {
  const args = ['s_server', '-accept', '127.0.0.1:0', '-cert', options.certFile, '-key', options.keyFile, '-CAfile', options.caFile, '-Verify', '1', '-verify_return_error', '-alpn', 'h2'];
  if (options.crlFile !== undefined) args.push('-crl_check', '-CRLform', 'PEM', '-CRL', options.crlFile);
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`openssl s_server did not start: ${output}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /ACCEPT\s+\S*:(\d+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl s_server exited (${String(code)}): ${output}`));
    });
  });
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    output: () => output,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** EADDRINUSE anywhere in an error's cause chain. */
function addressInUse(error: unknown): boolean {
  for (let e = error; typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === 'EADDRINUSE') return true;
  }
  return false;
}

/**
 * A TCP server on an ephemeral port and a UDP server on the same port number (HTTP/2 and HTTP/3
 * of one `https://127.0.0.1:P`). The kernel hands out the TCP port only; the UDP port of that
 * number may be held by any other socket on the machine, so on EADDRINUSE both are given up
 * (`closeTcp`) and it starts again, up to 5 times.
 */
export async function onOnePortNumber<T, U>(startTcp: () => Promise<T>, portOf: (tcp: T) => number, closeTcp: (tcp: T) => Promise<void>, startUdp: (port: number) => Promise<U>): Promise<[T, U]> {
  for (let attempt = 1; ; attempt++) {
    const tcp = await startTcp();
    try {
      return [tcp, await startUdp(portOf(tcp))];
    } catch (error) {
      await closeTcp(tcp);
      if (attempt >= 5 || !addressInUse(error)) throw error;
    }
  }
}
