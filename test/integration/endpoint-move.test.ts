import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BehaviorSubject } from 'rxjs';
import { controlPlaneV1, type ControlPlaneOptionsInput } from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

/**
 * Issue 13, defect 5: when an endpoint's URL changes through the options Observable, new calls
 * go to the new URL and the old address's connection drains: it closes once its in-flight
 * calls end, and an open server stream keeps it alive until the stream ends.
 */
describe('an endpoint whose URL changes live', () => {
  let pki: TestPki;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    pki = await createTestPki();
    a = await startNode('node-a', pki);
    b = await startNode('node-b', pki);
  });

  afterAll(async () => {
    await a.host.close();
    await b.host.close();
    await pki.cleanup();
  });

  it.each(['prefer', 'disable'] as const)('sends new calls to the new URL and drains the old connection once its server stream ends (http3 %s)', async (http3) => {
    const options = (url: string): ControlPlaneOptionsInput => mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3 } }, endpoints: { peer: { url } } });
    const source = new BehaviorSubject<ControlPlaneOptionsInput>(options(a.url));
    const { container, factory: get } = containerWith(source);
    const factory = get();
    const oldAuthority = new URL(a.url).host;
    const newAuthority = new URL(b.url).host;
    const toOld = (): ReturnType<typeof factory.connections> => factory.connections().filter((c) => c.authority === oldAuthority);

    expect((await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer' })).endpoint).toBe(oldAuthority);
    const stream = factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 12, intervalMs: 100 }, { endpoint: 'peer', deadlineMs: 20_000 })[Symbol.asyncIterator]();
    const received: number[] = [];
    const first = await stream.next();
    if (!first.done) received.push(first.value.sequence);
    expect(received).toEqual([1]);

    const servedByB = b.seen.length;
    source.next(options(b.url));

    // The old address takes no new calls: its connections drain; the stream's stays while it runs.
    expect(toOld().length).toBeGreaterThan(0);
    expect(toOld().every((c) => c.state === 'draining')).toBe(true);
    expect(toOld().reduce((n, c) => n + c.inFlight, 0)).toBe(1);
    const moved = await factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer' });
    expect(moved.endpoint).toBe(newAuthority);
    expect(b.seen).toHaveLength(servedByB + 1);
    expect(toOld().every((c) => c.state === 'draining')).toBe(true);

    // The stream runs to its end on the old connection, then that connection closes.
    for (let step = await stream.next(); !step.done; step = await stream.next()) received.push(step.value.sequence);
    expect(received).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(toOld()).toEqual([]);
    expect(factory.connections().every((c) => c.authority === newAuthority && c.state === 'active')).toBe(true);

    await container.unbindAllAsync();
  });

  it('keeps the connection to an address another configured endpoint still uses', async () => {
    const options = (url: string): ControlPlaneOptionsInput => mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3: 'disable' } }, endpoints: { peer: { url }, other: { url: a.url } } });
    const source = new BehaviorSubject<ControlPlaneOptionsInput>(options(a.url));
    const { container, factory: get } = containerWith(source);
    const factory = get();
    await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer' });
    const [before] = factory.connections();
    source.next(options(b.url));
    expect(factory.connections()).toEqual([before]);
    await container.unbindAllAsync();
  });
});
