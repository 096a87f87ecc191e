import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { controlPlaneV1, TOKENS, type IGrpcControlPlaneClientFactory } from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { establishedTo } from '../support/sockets.js';

describe('connection ownership', () => {
  let pki: TestPki;
  let node: TestNode;

  beforeAll(async () => {
    pki = await createTestPki();
    node = await startNode('node-a', pki);
  });

  afterAll(async () => {
    await node.host.close();
    await pki.cleanup();
  });

  // Counts TCP sockets, so HTTP/2 only; the one-QUIC-connection-per-endpoint rule is pinned in
  // h3-grpc.test.ts, and --detectOpenHandles fails the run if a QUIC client socket outlives unload.
  it('keeps the socket count bounded under 1,000 calls and closes everything when the module is unloaded', async () => {
    const { container } = containerWith(mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3: 'disable', deadlineMs: 20_000 } } }));
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    const port = node.host.port;
    let peak = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 1_000) {
          next++;
          await factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', ping(next), { endpoint: node.url });
          if (next % 50 === 0) peak = Math.max(peak, establishedTo(port));
        }
      }),
    );
    expect(node.seen).toHaveLength(1_000);
    expect(peak).toBe(1);
    expect(establishedTo(port)).toBe(1);
    await container.unbindAllAsync();
    for (let i = 0; i < 50 && establishedTo(port) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(establishedTo(port)).toBe(0);
  });
});
