import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BehaviorSubject } from 'rxjs';
import { controlPlaneV1, TOKENS, type ConfigError, type ControlPlaneOptionsInput, type IGrpcControlPlaneClientFactory, type OptionsMonitor } from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

describe('options as a live Observable', () => {
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

  it('applies a new snapshot to the next call, rebuilds connections whose settings changed, and keeps the last good one when a snapshot is bad', async () => {
    const base = (deadlineMs: number, keepaliveMs: number): ControlPlaneOptionsInput =>
      // connectTimeoutMs written, so the deadline changes alone (a deadline below the preset's
      // connect timeout would lower it too, and that is a connection setting). 1 s, not less: a
      // loaded machine may take a few hundred ms for the QUIC handshake, and the test wants HTTP/3.
      mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { deadlineMs, connectTimeoutMs: 1_000, keepalive: { timeMs: keepaliveMs, timeoutMs: 1_000 } } }, endpoints: { a: { url: node.url } } });
    const source = new BehaviorSubject<ControlPlaneOptionsInput>(base(2_000, 10_000));
    const { container } = containerWith(source);
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    const rejections: ConfigError[] = [];
    container.get<OptionsMonitor>(TOKENS.OptionsMonitor).rejections$.subscribe((e) => rejections.push(e));

    await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'a' });
    const [first] = factory.connections();
    expect(first).toMatchObject({ state: 'active', protocol: 'h3' });

    // A per-call setting (the deadline) changes: same connection, new deadline.
    source.next(base(1_000, 10_000));
    expect(factory.options.profiles['control-plane']?.deadlineMs).toBe(1_000);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(2, 300), { endpoint: 'a' })).rejects.toMatchObject({ statusName: 'DEADLINE_EXCEEDED' });
    expect(factory.connections().map((c) => c.generation)).toEqual([first!.generation]);

    // A connection setting (keepalive) changes: the idle connection is retired at once, the next call gets a new one.
    source.next(base(2_000, 20_000));
    expect(factory.connections()).toEqual([]);
    await factory.unary(ControlPlaneDefinition, 'ping', ping(3), { endpoint: 'a' });
    expect(factory.connections().map((c) => c.generation)).not.toContain(first!.generation);

    // A bad snapshot is rejected naming the key; the last good one stays live and calls go on.
    source.next({ ...base(2_000, 20_000), profiles: { 'control-plane': { keepalive: { timeMs: -1 } } } });
    expect(rejections).toHaveLength(1);
    expect(rejections[0]!.issues.map((i) => i.key)).toContain('profiles.control-plane.keepalive.timeMs');
    expect(factory.options.profiles['control-plane']?.keepalive.timeMs).toBe(20_000);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(4), { endpoint: 'a' })).resolves.toMatchObject({ protocol: 'h3' });

    await container.unbindAllAsync();
  });
});
