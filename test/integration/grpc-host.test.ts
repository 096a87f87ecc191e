import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createSocket, type Socket } from 'node:dgram';
import type { Container } from 'inversify';
import { ConfigError, controlPlaneV1, GrpcHost, TOKENS, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

describe('GrpcHost: one registration served over HTTP/2 (TCP) and HTTP/3 (UDP) on the same port number', () => {
  let pki: TestPki;
  const containers: Container[] = [];
  const hosts: GrpcHost[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
  });

  afterAll(async () => {
    for (const container of containers) await container.unbindAllAsync();
    for (const host of hosts) await host.close(200);
    await pki.cleanup();
  });

  async function start(extra: { http3?: boolean; port?: number } = {}): Promise<{ host: GrpcHost; seen: string[] }> {
    const seen: string[] = [];
    const host = await GrpcHost.start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile] }, ...extra }, [
      [
        ControlPlaneDefinition,
        {
          ping: (request: controlPlaneV1.PingRequest, call: ServerCallInfo) => {
            seen.push(`${call.protocol}:${call.clientIdentity}`);
            return { node: 'one', sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
          },
          watch: async function* () {
            await Promise.resolve();
            yield* [];
          },
        },
      ],
    ]);
    hosts.push(host);
    return { host, seen };
  }

  function factory(): IGrpcControlPlaneClientFactory {
    const { container, factory: get } = containerWith(
      mtlsOptions(pki, pki.client, {
        profiles: {
          'control-plane': { http3: 'prefer', connectTimeoutMs: 1_000, http3RaceDelayMs: 100, retry: { maxAttempts: 1 } },
          tcp: { http3: 'disable', tls: { mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile }, retry: { maxAttempts: 1 } },
        },
      }),
    );
    containers.push(container);
    return get();
  }

  it('serves both protocols by default: the same handler answers an HTTP/3 and an HTTP/2 call to the same URL, mTLS on both', async () => {
    const { host, seen } = await start();
    expect(host.protocols).toEqual(['h2', 'h3']);
    const client = factory();
    const overH3 = await client.unary(ControlPlaneDefinition, 'ping', { fromNode: 't', sequence: 1, payload: new Uint8Array() }, { endpoint: host.url });
    const overH2 = await client.unary(ControlPlaneDefinition, 'ping', { fromNode: 't', sequence: 2, payload: new Uint8Array() }, { endpoint: host.url, profile: 'tcp' });
    expect([overH3.protocol, overH2.protocol]).toEqual(['h3', 'h2']);
    expect(seen).toEqual(['h3:client', 'h2:client']);
    // The built-in grpc.health.v1 Check: SERVING for the host and its services, NOT_FOUND otherwise.
    await expect(client.probeHttp3({ endpoint: host.url })).resolves.toMatchObject({ ok: true });
    await expect(client.probeHttp3({ endpoint: host.url, service: ControlPlaneDefinition.fullName })).resolves.toMatchObject({ ok: true });
    await expect(client.probeHttp3({ endpoint: host.url, service: 'no.such.Service' })).resolves.toMatchObject({ ok: false, reason: expect.stringContaining('NOT_FOUND') });
  });

  it('serves HTTP/2 only with http3: false (an HTTP/3 probe gets no answer)', async () => {
    const { host } = await start({ http3: false });
    expect(host.protocols).toEqual(['h2']);
    const client = factory();
    await expect(client.probeHttp3({ endpoint: host.url })).resolves.toMatchObject({ ok: false });
    await expect(client.unary(ControlPlaneDefinition, 'ping', { fromNode: 't', sequence: 1, payload: new Uint8Array() }, { endpoint: host.url })).resolves.toMatchObject({ protocol: 'h2' });
  });

  it('names the port when the UDP side of a fixed port is taken, and leaves the TCP side closed', async () => {
    const udp: Socket = createSocket('udp4');
    const port = await new Promise<number>((resolve) => udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)));
    try {
      const error = await start({ port }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(`UDP port ${port}`);
      // The TCP listener opened first was closed again: the port number can be served over HTTP/2 alone.
      const { host } = await start({ port, http3: false });
      expect(host.port).toBe(port);
    } finally {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
  });

  it('refuses HTTP/3 on an insecure host with a ConfigError naming the key', async () => {
    const error = await GrpcHost.start({ tls: 'insecure', http3: true }, []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key)).toEqual(['http3']);
  });

  it('serves optional client certificates over HTTP/2 only (HTTP/3 could not ask without demanding): default off, explicit http3 a ConfigError', async () => {
    const tls = { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, requireClientCertificate: false };
    const host = await GrpcHost.start({ tls }, []);
    hosts.push(host);
    expect(host.protocols).toEqual(['h2']);
    const error = await GrpcHost.start({ tls, http3: true }, []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('optional client certificates');
  });

  it('lets a container send every call over HTTP/2 by binding TOKENS.Http3Transport to null', async () => {
    const { host, seen } = await start();
    const { container, factory: get } = containerWith(mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3: 'prefer', retry: { maxAttempts: 1 } } } }), (c) =>
      c.bind(TOKENS.Http3Transport).toConstantValue(null),
    );
    containers.push(container);
    await expect(get().unary(ControlPlaneDefinition, 'ping', { fromNode: 't', sequence: 1, payload: new Uint8Array() }, { endpoint: host.url })).resolves.toMatchObject({ protocol: 'h2' });
    expect(seen).toEqual(['h2:client']);
  });
});
