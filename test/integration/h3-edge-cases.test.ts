/**
 * gRPC over HTTP/3 at its edges, on real UDP sockets on 127.0.0.1:
 * 1. a GrpcH3Host that refuses our client certificate (typed TlsError as over HTTP/2, no
 *    handler reached, no fall back to HTTP/2);
 * 2. graceful shutdown (GOAWAY, grace period, then UNAVAILABLE rather than a hang);
 * 3. misbehaving raw HTTP/3 peers built directly on `@matrixai/quic`, against our client and
 *    our server: each must end with the RFC 9114 / RFC 9204 error code, a typed call error,
 *    and nothing left open.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { controlPlaneV1, GrpcH3Host, GrpcH3Transport, GrpcHost, RpcError, TlsError, TOKENS, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;
type Ping = controlPlaneV1.PingRequest;

/** Every handler invocation a host saw. */
interface Served {
  readonly method: 'ping' | 'watch';
  readonly identity: string;
}

/** `ping`: a payload of N bytes waits N × 10 ms. `watch`: `count` events, `intervalMs` apart. */
function service(name: string, served: Served[]): Parameters<typeof GrpcH3Host.start<typeof ControlPlaneDefinition>>[1][number] {
  return [
    ControlPlaneDefinition,
    {
      ping: async (request: Ping, call: ServerCallInfo): Promise<controlPlaneV1.PingResponse> => {
        served.push({ method: 'ping', identity: call.clientIdentity });
        if (request.payload.length > 0) await new Promise((resolve) => setTimeout(resolve, request.payload.length * 10));
        return { node: name, sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
      },
      watch: async function* (request: controlPlaneV1.WatchRequest, call: ServerCallInfo): AsyncIterable<controlPlaneV1.MembershipEvent> {
        served.push({ method: 'watch', identity: call.clientIdentity });
        for (let i = 1; i <= request.count && !call.signal.aborted; i++) {
          yield { node: name, sequence: i };
          await new Promise((resolve) => setTimeout(resolve, request.intervalMs));
        }
      },
    },
  ] as const;
}

function ping(sequence: number, waitTicks = 0): Ping {
  return { fromNode: 'edge', sequence, payload: new Uint8Array(waitTicks) };
}

/** The error `run` rejects with; fails the test if it succeeds. */
async function failureOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure, but the call succeeded');
}

let pki: TestPki;
const containers: Container[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  pki = await createTestPki();
});

afterAll(async () => {
  for (const container of containers) await container.unbindAllAsync();
  for (const close of closers.reverse()) await close();
  await pki.cleanup();
});

async function startH3(options: { port?: number; requireClientCertificate?: boolean } = {}): Promise<{ host: GrpcH3Host; served: Served[] }> {
  const served: Served[] = [];
  const host = await GrpcH3Host.start(
    {
      host: '127.0.0.1',
      port: options.port ?? 0,
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile], requireClientCertificate: options.requireClientCertificate },
    },
    [service('h3-node', served)],
  );
  closers.push(() => host.close(100));
  return { host, served };
}

/** An HTTP/2 host that accepts any client (no CA): a call that fell back would be served here. */
async function startOpenH2(): Promise<{ host: GrpcHost; served: Served[] }> {
  const served: Served[] = [];
  const host = await GrpcHost.start({ host: '127.0.0.1', port: 0, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile } }, [service('h2-node', served)]);
  closers.push(() => host.close(100));
  return { host, served };
}

/** A factory preferring HTTP/3, one attempt per call, presenting `client` (or no certificate). */
function factoryFor(client: Files | undefined, profile: Record<string, unknown> = {}): IGrpcControlPlaneClientFactory {
  const base = mtlsOptions(pki, client ?? pki.client, {
    profiles: { 'control-plane': { http3: 'prefer', deadlineMs: 5_000, connectTimeoutMs: 2_000, retry: { maxAttempts: 1 }, ...profile } },
  });
  const options =
    client === undefined
      ? { ...base, profiles: { 'control-plane': { ...base.profiles?.['control-plane'], tls: { mode: 'tls', caFile: pki.caFile, crlFiles: [pki.crlFile], checkRevocation: true } } } }
      : base;
  const { container, factory } = containerWith(options, (c) => c.bind(TOKENS.Http3Transport).toConstantValue(new GrpcH3Transport()));
  containers.push(container);
  return factory();
}

describe('a GrpcH3Host that refuses our client certificate', () => {
  let h2: { host: GrpcHost; served: Served[] };
  let h3: { host: GrpcH3Host; served: Served[] };

  beforeAll(async () => {
    // The HTTP/2 host on the same port number takes any client: a fall back would succeed there.
    h2 = await startOpenH2();
    h3 = await startH3({ port: h2.host.port });
  });

  async function refusal(client: Files | undefined): Promise<TlsError> {
    const factory = factoryFor(client);
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: h2.host.url }));
    if (!(error instanceof TlsError)) throw new Error(`expected a TlsError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    expect(h3.served).toEqual([]);
    expect(h2.served).toEqual([]);
    expect(error.peer).toBe(`127.0.0.1:${h2.host.port}`);
    expect(error.profile).toBe('control-plane');
    return error;
  }

  it('(control) a trusted client certificate is served over HTTP/3, so the empty logs below mean something', async () => {
    const factory = factoryFor(pki.client);
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: h2.host.url });
    expect(result).toMatchObject({ protocol: 'h3', message: { node: 'h3-node', clientIdentity: 'client' } });
    h3.served.length = 0;
  });

  it('a client certificate from another CA -> TLS_CLIENT_CERT_REJECTED (alert unknown_ca), as over HTTP/2; no handler ran, no fall back', async () => {
    const error = await refusal(pki.untrustedClient);
    expect(error.code).toBe('TLS_CLIENT_CERT_REJECTED');
    expect(error.message).toContain('TLS alert 48');
  });

  it('a revoked client certificate (host loaded the CRL) -> TLS_REVOKED (alert certificate_revoked), as over HTTP/2; no handler ran, no fall back', async () => {
    const error = await refusal(pki.revokedClient);
    expect(error.code).toBe('TLS_REVOKED');
    expect(error.message).toContain('our client certificate is revoked');
  });

  it('no client certificate against a host that requires one -> TLS_CLIENT_CERT_REQUIRED; no handler ran, no fall back', async () => {
    const error = await refusal(undefined);
    expect(error.code).toBe('TLS_CLIENT_CERT_REQUIRED');
  });
});
