import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFile, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { controlPlaneV1, TOKENS, type IGrpcControlPlaneClientFactory, type ITlsProvider } from 'omnirelay';
import type { Container } from 'inversify';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

describe('client certificate rotation mid-run', () => {
  let pki: TestPki;
  let node: TestNode;
  let dir: string;
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;

  beforeAll(async () => {
    pki = await createTestPki();
    node = await startNode('node-a', pki);
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-rotation-'));
    await copyFile(pki.client.certFile, join(dir, 'client.pem'));
    await copyFile(pki.client.keyFile, join(dir, 'client.key'));
    ({ container } = containerWith(mtlsOptions(pki, { ...pki.client, certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key') })));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await node.host.close();
    await rm(dir, { recursive: true, force: true });
    await pki.cleanup();
  });

  // How fast rotation takes effect is measured by `npm run bench` (section 3), not asserted here.
  it('presents the new certificate on new handshakes, with no call failing and no host restarted', async () => {
    const tls = container.get<ITlsProvider>(TOKENS.TlsProvider);
    const generations: number[] = [];
    tls.changes$.subscribe((m) => generations.push(m.generation));
    const failures: string[] = [];
    let calls = 0;
    let rotated = false;
    let afterNewIdentity = 0;
    // Each worker calls until 20 calls after the rotation carried the new identity (or 20 s pass).
    const workers = Array.from({ length: 4 }, async (_, w) => {
      const until = performance.now() + 20_000;
      while (performance.now() < until && afterNewIdentity < 20) {
        try {
          const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(w, 1), { endpoint: node.url });
          calls++;
          if (result.message.clientIdentity === 'client-2') afterNewIdentity++;
        } catch (error) {
          failures.push(error instanceof Error ? error.message : String(error));
        }
        if (!rotated) await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    while (calls < 20) await new Promise((resolve) => setTimeout(resolve, 20));
    // Atomic replacement, as cert-manager and friends do: write aside, then rename over (key first).
    await copyFile(pki.client2.keyFile, join(dir, 'client.key.tmp'));
    await copyFile(pki.client2.certFile, join(dir, 'client.pem.tmp'));
    await rename(join(dir, 'client.key.tmp'), join(dir, 'client.key'));
    await rename(join(dir, 'client.pem.tmp'), join(dir, 'client.pem'));
    rotated = true;
    await Promise.all(workers);

    expect(failures).toEqual([]);
    expect(afterNewIdentity).toBeGreaterThanOrEqual(20);
    expect(node.seen).toContain('client');
    expect(node.seen).toContain('client-2');
    // Once the new identity shows up, the old one never comes back.
    expect(node.seen.slice(node.seen.indexOf('client-2'))).not.toContain('client');
    expect(generations.length).toBeGreaterThanOrEqual(1);
    // The old generation's connection is closed once its calls finished (an HTTP/3 connection
    // closes asynchronously, so give it a moment): one active connection remains.
    const held = (): string[] => factory.connections().filter((c) => c.authority === new URL(node.url).host).map((c) => `${c.protocol}/${c.state}/${c.generation}`);
    for (let i = 0; i < 100 && held().length > 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(held()).toHaveLength(1);
    expect(held()[0]).toMatch(/\/active\//);
  });
});
