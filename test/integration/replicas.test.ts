import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { BehaviorSubject } from 'rxjs';
import { controlPlaneV1, createDispatcher, TOKENS, type BreakerChange, type ICircuitBreaker, type IGrpcControlPlaneClientFactory } from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Target = { readonly peers?: readonly string[]; readonly peerList?: string; readonly profile?: string };
/** Places one Ping on `target` and returns the replica that answered. */
type Caller = (factory: IGrpcControlPlaneClientFactory, target: Target, request: controlPlaneV1.PingRequest) => Promise<string>;

/** Through the factory's lightweight unary call. */
const viaFactory: Caller = async (factory, target, request) => (await factory.unary(ControlPlaneDefinition, 'ping', request, target)).message.node;

/** Through the dispatcher: a GrpcOutbound per target, over the same factory. */
function viaDispatcher(): Caller {
  const dispatchers = new Map<string, ReturnType<typeof createDispatcher>>();
  return async (factory, target, request) => {
    const key = JSON.stringify(target);
    let dispatcher = dispatchers.get(key);
    if (dispatcher === undefined) {
      dispatcher = createDispatcher(factory, { name: 'replicas-test', outbounds: { [ControlPlaneDefinition.fullName]: target } });
      dispatchers.set(key, dispatcher);
    }
    return (await dispatcher.call(ControlPlaneDefinition, 'ping', request)).node;
  };
}

/**
 * Three mTLS replicas on 127.0.0.1 behind one factory, called through the factory and through
 * the dispatcher's GrpcOutbound. Breakers open after two failures in a row and probe after
 * 300 ms; retries go to another replica.
 */
describe.each([
  ['the factory', () => viaFactory],
  ['dispatcher outbound (GrpcOutbound)', viaDispatcher],
] as const)('three replicas: breakers, failover and peer lists through %s (HTTP/2)', (_, makeCaller) => {
  const call = makeCaller();
  let pki: TestPki;
  const nodes: TestNode[] = [];
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  let breaker: ICircuitBreaker;
  const changes: BreakerChange[] = [];
  const replicas = new BehaviorSubject<readonly string[]>([]);
  const authority = (i: number): string => new URL(nodes[i]!.url).host;
  const ALL = ['r1', 'r2', 'r3'];

  beforeAll(async () => {
    pki = await createTestPki();
    for (const name of ['r1', 'r2', 'r3']) nodes.push(await startNode(name, pki));
    const resilience = {
      http3: 'disable',
      connectTimeoutMs: 1_000,
      retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 },
      breaker: { consecutiveFailures: 2, halfOpenAfterMs: 300 },
    } as const;
    const tls = { mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile], checkRevocation: true } as const;
    ({ container } = containerWith(
      mtlsOptions(pki, pki.client, {
        profiles: {
          'control-plane': resilience,
          sticky: { ...resilience, tls, peerChooser: { kind: 'preferred', preferred: 'r1' } },
        },
        endpoints: Object.fromEntries(nodes.map((n) => [n.name, { url: n.url }])),
      }),
      (c) => c.bind(TOKENS.PeerLists).toConstantValue({ replicas }),
    ));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    breaker = container.get<ICircuitBreaker>(TOKENS.CircuitBreaker);
    breaker.changes$.subscribe((c) => changes.push(c));
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await Promise.all(nodes.map((n) => n.host.close()));
    await pki.cleanup();
  });

  /**
   * Stops replica `i` (a graceful close with no grace: GOAWAY, then its listeners close);
   * calls to its port are refused until it restarts.
   */
  async function stop(i: number): Promise<number> {
    const port = Number(new URL(nodes[i]!.url).port);
    await nodes[i]!.host.close(0);
    return port;
  }

  async function restart(i: number, port: number): Promise<void> {
    nodes[i] = await startNode(nodes[i]!.name, pki, pki.server, port);
  }

  /** Calls until replica `i` serves one (its half-open probe), at most `limit` calls. */
  async function callUntilServedBy(i: number, target: Target, limit = 200): Promise<void> {
    for (let n = 0; n < limit && nodes[i]!.seen.length === 0; n++) {
      await call(factory, target, ping(n));
      if (nodes[i]!.seen.length === 0) await pause(20);
    }
    expect(nodes[i]!.seen.length).toBeGreaterThan(0);
  }

  function statesOf(i: number, profile = 'control-plane'): string[] {
    return changes.filter((c) => c.peer === authority(i) && c.profile === profile).map((c) => c.state);
  }

  /**
   * Calls (each must succeed on another replica) until the stopped replica `i`'s circuit has
   * opened. A request its GOAWAY refused marks it draining: it is left out and its failures
   * are not counted for the profile's halfOpenAfterMs (300 ms here); after that, connecting
   * to it fails and counts like for any replica that is down.
   */
  async function callUntilOpen(i: number, target: Target, profile = 'control-plane'): Promise<string[]> {
    const served: string[] = [];
    const until = performance.now() + 3_000;
    while (!statesOf(i, profile).includes('open') && performance.now() < until) {
      served.push(await call(factory, target, ping(served.length)));
      await pause(10);
    }
    expect(served).not.toContain(nodes[i]!.name);
    return served;
  }

  it('spreads calls over the three replicas', async () => {
    for (let n = 0; n < 9; n++) await call(factory, { peers: ALL }, ping(n));
    expect(nodes.map((node) => node.seen.length)).toEqual([3, 3, 3]);
  });

  it('a stopped replica: its circuit opens, traffic moves, and no call fails while another replica is up', async () => {
    const port = await stop(1);
    const served: string[] = [];
    for (let n = 0; n < 20; n++) {
      served.push(await call(factory, { peers: ALL }, ping(n)));
    }
    served.push(...(await callUntilOpen(1, { peers: ALL })));
    expect(served).not.toContain('r2');
    expect(new Set(served)).toEqual(new Set(['r1', 'r3']));
    expect(breaker.state(authority(1))).not.toBe('closed');
    // Open; while it stays down, a probe (if the open period passed) only opens it again.
    expect(statesOf(1)[0]).toBe('open');
    expect(statesOf(1)).not.toContain('closed');

    // Restarted on the same port: after the open period a half-open probe reaches it, the
    // circuit closes, and it takes its share again.
    await restart(1, port);
    await callUntilServedBy(1, { peers: ALL });
    expect(breaker.state(authority(1))).toBe('closed');
    expect(statesOf(1).slice(-2)).toEqual(['half-open', 'closed']);
    for (const node of nodes) node.seen.length = 0;
    for (let n = 0; n < 9; n++) await call(factory, { peers: ALL }, ping(n));
    expect(nodes.map((node) => node.seen.length)).toEqual([3, 3, 3]);
  });

  it('a preferred replica: every call goes to it, fails over while it is down, and comes back when it recovers', async () => {
    for (const node of nodes) node.seen.length = 0;
    for (let n = 0; n < 5; n++) await call(factory, { peers: ALL, profile: 'sticky' }, ping(n));
    expect(nodes.map((node) => node.seen.length)).toEqual([5, 0, 0]);

    const port = await stop(0);
    const served: string[] = [];
    for (let n = 0; n < 6; n++) served.push(await call(factory, { peers: ALL, profile: 'sticky' }, ping(n)));
    served.push(...(await callUntilOpen(0, { peers: ALL, profile: 'sticky' }, 'sticky')));
    expect(new Set(served)).toEqual(new Set(['r2', 'r3']));
    expect(statesOf(0, 'sticky')[0]).toBe('open');
    expect(statesOf(0, 'sticky')).not.toContain('closed');

    await restart(0, port);
    await callUntilServedBy(0, { peers: ALL, profile: 'sticky' });
    expect(breaker.state(authority(0), 'sticky')).toBe('closed');
    for (const node of nodes) node.seen.length = 0;
    for (let n = 0; n < 5; n++) await call(factory, { peers: ALL, profile: 'sticky' }, ping(n));
    expect(nodes.map((node) => node.seen.length)).toEqual([5, 0, 0]);
  });

  it('a replica removed from the peer list takes no new calls, and its running call finishes', async () => {
    replicas.next(['r3']);
    // A slow call (300 ms on the server) lands on r3, the only member.
    const slow = call(factory, { peerList: 'replicas' }, ping(1, 30));
    while (nodes[2]!.inFlight === 0) await pause(5);

    replicas.next(['r1', 'r2']);
    const r3 = authority(2);
    const r3Connections = (): string[] => factory.connections().filter((c) => c.authority === r3 && c.profile === 'control-plane').map((c) => c.state);
    expect(r3Connections()).toEqual(['draining']);
    for (const node of nodes) node.seen.length = 0;
    const served: string[] = [];
    for (let n = 0; n < 6; n++) served.push(await call(factory, { peerList: 'replicas' }, ping(n)));
    expect(new Set(served)).toEqual(new Set(['r1', 'r2']));
    expect(nodes[2]!.seen).toHaveLength(0);

    await expect(slow).resolves.toBe('r3');
    // Drained: the connection closed once its call finished.
    expect(r3Connections()).toEqual([]);

    // Added back: it takes traffic again.
    replicas.next(['r1', 'r2', 'r3']);
    for (let n = 0; n < 6; n++) await call(factory, { peerList: 'replicas' }, ping(n));
    expect(nodes[2]!.seen.length).toBeGreaterThan(0);
  });
});
