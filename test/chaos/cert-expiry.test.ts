/**
 * Chaos tier: certificates that expire while the process runs (real certificates valid for a few
 * seconds, real clocks, real handshakes on loopback; no namespaces needed).
 *
 * - Our client certificate expires: new handshakes are refused by the server and fail with
 *   `TlsError` TLS_CLIENT_CERT_EXPIRED over both protocols (HTTP/3 reads the server's alert;
 *   over HTTP/2 TLS 1.3 gives no alert, so the transport checks our own certificate's dates;
 *   see the test), never a plaintext retry;
 *   writing fresh files (the FileTlsProvider's live rotation) heals them without a restart.
 * - The server's certificate expires: new handshakes fail with TLS_PEER_EXPIRED; the server
 *   restarted on the same port with a fresh certificate (GrpcHost has no live rotation) heals them.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import {
  controlPlaneV1,
  createDevCertificateAuthority,
  GrpcHost,
  grpcControlPlaneModule,
  TOKENS,
  type DevCertificateAuthority,
  type IGrpcControlPlaneClientFactory,
} from 'omnirelay';
import { waitFor } from './support/chaos-net.js';

/** How long the short-lived certificates live after the test starts. */
const LIFETIME_MS = 6_000;

interface Served {
  count: number;
}

async function startHost(dir: string, name: string, caFile: string, served: Served, port = 0): Promise<GrpcHost> {
  return GrpcHost.start({ port, tls: { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`), caFile } }, [
    [
      controlPlaneV1.ControlPlaneDefinition,
      {
        ping: (request: controlPlaneV1.PingRequest): controlPlaneV1.PingResponse => {
          served.count++;
          return { node: name, sequence: request.sequence, clientIdentity: '', payload: new Uint8Array() };
        },
        watch: async function* (): AsyncIterable<controlPlaneV1.MembershipEvent> {
          await Promise.resolve();
          yield* [];
        },
      },
    ],
  ]);
}

describe('certificates that expire mid-run', () => {
  let dir = '';
  let ca: DevCertificateAuthority;
  let caFile = '';
  let expiresAt = 0;
  const hosts: GrpcHost[] = [];
  const containers: Container[] = [];

  const writeLeaf = async (name: string, usage: 'client' | 'server', notAfter?: Date): Promise<void> => {
    const issued = await ca.issue({ commonName: name, usage, ipAddresses: ['127.0.0.1'], notBefore: new Date(Date.now() - 60_000), ...(notAfter === undefined ? {} : { notAfter }) });
    // Rename into place, key first (the provider loads a changed set whole).
    await writeFile(join(dir, `${name}.key.tmp`), issued.keyPem, { mode: 0o600 });
    await writeFile(join(dir, `${name}.pem.tmp`), issued.certPem);
    await rename(join(dir, `${name}.key.tmp`), join(dir, `${name}.key`));
    await rename(join(dir, `${name}.pem.tmp`), join(dir, `${name}.pem`));
  };

  const factoryFor = (http3: 'disable' | 'require'): IGrpcControlPlaneClientFactory => {
    const container = new Container();
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
      profiles: {
        'control-plane': {
          http3,
          tls: { mode: 'mtls', certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key'), caFile, reloadPollMs: 200 },
          connectTimeoutMs: 2_000,
          retry: { maxAttempts: 1 },
        },
      },
    });
    container.load(grpcControlPlaneModule);
    containers.push(container);
    return container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
  };

  const ping = async (factory: IGrpcControlPlaneClientFactory, host: GrpcHost): Promise<{ ok: boolean; protocol?: string; name?: string; code?: string; message?: string }> => {
    try {
      const result = await factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', { fromNode: 'client', sequence: 1, payload: new Uint8Array() }, { endpoint: host.url, deadlineMs: 3_000 });
      return { ok: true, protocol: result.protocol };
    } catch (error) {
      const e = error as { name?: string; code?: string; message?: string };
      return { ok: false, name: e.name, code: e.code, message: e.message };
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-chaos-certs-'));
    ca = await createDevCertificateAuthority({ commonName: 'OmniRelay Chaos CA' });
    caFile = join(dir, 'ca.pem');
    await writeFile(caFile, ca.certPem);
    expiresAt = Date.now() + LIFETIME_MS;
    await writeLeaf('client', 'client', new Date(expiresAt));
    await writeLeaf('long-server', 'server');
    await writeLeaf('short-server', 'server', new Date(expiresAt));
  });

  afterAll(async () => {
    for (const container of containers) await container.unbindAllAsync();
    for (const host of hosts) await host.close(0);
    await rm(dir, { recursive: true, force: true });
  });

  test('our client certificate expires: typed TlsError TLS_CLIENT_CERT_EXPIRED over both protocols, healed by live rotation', async () => {
    const served: Served = { count: 0 };
    const h2 = factoryFor('disable');
    const h3 = factoryFor('require');
    // Valid now: both protocols reach the first host.
    const first = await startHost(dir, 'long-server', caFile, served);
    hosts.push(first);
    expect(await ping(h2, first)).toEqual({ ok: true, protocol: 'h2' });
    expect(await ping(h3, first)).toEqual({ ok: true, protocol: 'h3' });

    // Past the certificate's notAfter, a host the factories never dialled needs new handshakes.
    expect(await waitFor(() => Promise.resolve(Date.now() > expiresAt + 1_000), LIFETIME_MS + 5_000)).toBe(true);
    const fresh: Served = { count: 0 };
    const second = await startHost(dir, 'long-server', caFile, fresh);
    hosts.push(second);
    // HTTP/3 (our QUIC stack) reads the server's certificate_expired alert. Over HTTP/2 (Node's
    // TLS 1.3) the client's handshake is over before the server checks our certificate and Node's
    // server closes without an alert the client can read; the transport sees the rejection and
    // that our own certificate is past its notAfter, and says so.
    expect(await ping(h3, second)).toEqual({ ok: false, name: 'TlsError', code: 'TLS_CLIENT_CERT_EXPIRED', message: expect.any(String) });
    expect(await ping(h2, second)).toEqual({ ok: false, name: 'TlsError', code: 'TLS_CLIENT_CERT_EXPIRED', message: expect.stringContaining('expired on') });
    expect(fresh.count).toBe(0); // nothing reached the service: no plaintext or unauthenticated path

    // Fresh files written in place: the provider's next generation heals both, no restart.
    await writeLeaf('client', 'client');
    expect(await waitFor(async () => (await ping(h2, second)).ok, 30_000, 200)).toBe(true);
    expect(await waitFor(async () => (await ping(h3, second)).ok, 30_000, 200)).toBe(true);
    expect(await ping(h2, second)).toEqual({ ok: true, protocol: 'h2' });
    expect(await ping(h3, second)).toEqual({ ok: true, protocol: 'h3' });
    expect(fresh.count).toBeGreaterThan(0);
  }, 90_000);

  test('the server certificate expires: typed TLS_PEER_EXPIRED on both protocols, healed by a fresh certificate', async () => {
    // The client certificate was rotated by the first test (or is fresh if it runs alone).
    if (Date.now() > expiresAt) await writeLeaf('client', 'client');
    const served: Served = { count: 0 };
    expect(await waitFor(() => Promise.resolve(Date.now() > expiresAt + 1_000), LIFETIME_MS + 5_000)).toBe(true);
    const short = await startHost(dir, 'short-server', caFile, served);
    hosts.push(short);
    const h2 = factoryFor('disable');
    const h3 = factoryFor('require');
    const expired = { ok: false, name: 'TlsError', code: 'TLS_PEER_EXPIRED', message: expect.any(String) };
    expect(await ping(h2, short)).toEqual(expired);
    expect(await ping(h3, short)).toEqual(expired);
    expect(served.count).toBe(0);

    // The server gets a fresh certificate: restarted on the same port (same endpoint for callers).
    const port = Number(new URL(short.url).port);
    hosts.splice(hosts.indexOf(short), 1);
    await short.close(0);
    await writeLeaf('short-server', 'server');
    const renewed = await startHost(dir, 'short-server', caFile, served, port);
    hosts.push(renewed);
    expect(await waitFor(async () => (await ping(h2, renewed)).ok, 30_000, 200)).toBe(true);
    expect(await waitFor(async () => (await ping(h3, renewed)).ok, 30_000, 200)).toBe(true);
    expect(served.count).toBeGreaterThan(0);
  }, 90_000);
});
