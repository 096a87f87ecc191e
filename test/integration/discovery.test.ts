import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { ReplaySubject } from 'rxjs';
import {
  controlPlaneV1,
  DiscoveryClient,
  discoveryModule,
  discoveryPeerLists,
  discoveryServiceImplementation,
  discoveryV1,
  GrpcHost,
  TOKENS,
  type IGrpcControlPlaneClientFactory,
  type ServerCallInfo,
  type ServiceRegistry,
} from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;
const SVC = ControlPlaneDefinition.fullName;
/** The control-plane agents' tokens (CONTROL_PLANE_TOKENS; Symbol.for keys, the same in every copy of the library). */
const MEMBERSHIP = Symbol.for('omnirelay.controlplane.Membership');
const SERVICE_REGISTRY = Symbol.for('omnirelay.controlplane.ServiceRegistry');

/** The member list as the gossip agent would publish it (MembershipSource, fed by hand here). */
interface Membership {
  publish(members: readonly unknown[]): void;
}

/** Resolves once `check` holds, looking again after each turn of the event loop (no timers). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Three mTLS GrpcHosts serving ControlPlane, registered in a hand-fed member list (the gossip
 * agent is not there yet). A "gossiping" container loads discoveryModule and binds
 * TOKENS.PeerLists to discoveryPeerLists(registry); a fourth host serves the Discovery service
 * over that registry for a process that does not gossip (DiscoveryClient).
 */
describe('service discovery over real sockets (HTTP/3 preferred, HTTP/2 fallback, mTLS)', () => {
  let pki: TestPki;
  const nodes: TestNode[] = [];
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  let membership: Membership;
  let registry: ServiceRegistry;
  let discoveryHost: GrpcHost;
  /** Watch handlers running on the discovery hosts. */
  let watching = 0;

  const memberOf = (node: TestNode, services: readonly string[] = [SVC], status = 'alive') => ({
    metadata: { nodeId: node.name, role: 'worker', cluster: 'it', region: 'local', version: '1', endpoint: node.url, http3: true, services },
    status,
    incarnation: 1,
  });

  /** The Discovery implementation, counting the Watch handlers that have not finished. */
  function countedDiscovery(): ReturnType<typeof discoveryServiceImplementation> {
    const impl = discoveryServiceImplementation(registry);
    return {
      resolve: impl.resolve,
      watch: async function* (request: discoveryV1.WatchRequest, info: ServerCallInfo) {
        watching++;
        try {
          yield* impl.watch(request, info);
        } finally {
          watching--;
        }
      },
    };
  }

  beforeAll(async () => {
    pki = await createTestPki();
    for (const name of ['n1', 'n2', 'n3']) nodes.push(await startNode(name, pki));
    ({ container } = containerWith(mtlsOptions(pki, pki.client), (c) => {
      c.load(discoveryModule);
      // The factory needs its peer lists when it is built; the registry needs only the member list.
      c.bind(TOKENS.PeerLists).toDynamicValue((context) => discoveryPeerLists(context.get<ServiceRegistry>(SERVICE_REGISTRY), [SVC])).inSingletonScope();
    }));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    membership = container.get<Membership>(MEMBERSHIP);
    registry = container.get<ServiceRegistry>(SERVICE_REGISTRY);
    discoveryHost = await GrpcHost.start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile } }, [[discoveryV1.DiscoveryDefinition, countedDiscovery()]]);
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await discoveryHost.close(500);
    await Promise.all(nodes.map((n) => n.host.close(500)));
    await pki.cleanup();
  });

  it('peerList calls follow scale 1 → 3 → 1 while they run: spread over the current members, none fails for lack of peers', async () => {
    const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
    const epochs: (readonly TestNode[])[] = [[n1], [n1, n2, n3], [n3]];
    const hostOf = (node: TestNode): string => new URL(node.url).host;
    let epoch = 0;
    membership.publish(epochs[0]!.map((n) => memberOf(n)));
    const answered: { epoch: number; endpoint: string; node: string }[][] = [[], [], []];
    const failures: unknown[] = [];
    let stop = false;
    let sequence = 0;

    const worker = async (): Promise<void> => {
      while (!stop) {
        const at = epoch; // the target is resolved synchronously when the call starts
        try {
          const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(++sequence), { peerList: SVC });
          answered[at]!.push({ epoch: at, endpoint: result.endpoint, node: result.message.node });
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    /** Each member of the current epoch answered at least 5 calls started in it. */
    const spread = (at: number): boolean => epochs[at]!.every((n) => answered[at]!.filter((a) => a.node === n.name).length >= 5);

    await until(() => spread(0) || failures.length > 0);
    epoch = 1;
    membership.publish(epochs[1]!.map((n) => memberOf(n)));
    await until(() => spread(1) || failures.length > 0);
    epoch = 2;
    // n1 leaves, n2 is declared dead: n3 alone serves the service.
    membership.publish([memberOf(n3), memberOf(n2, [SVC], 'dead')]);
    await until(() => spread(2) || failures.length > 0);
    stop = true;
    await Promise.all(workers);

    expect(failures).toEqual([]);
    answered.forEach((calls, at) => {
      const allowed = new Set(epochs[at]!.map(hostOf));
      expect(calls.filter((c) => !allowed.has(c.endpoint))).toEqual([]);
      expect(new Set(calls.map((c) => c.node))).toEqual(new Set(epochs[at]!.map((n) => n.name)));
    });
  });

  it('an empty service fails fast with PEER_UNAVAILABLE naming the list, and serves as soon as a member lists it', async () => {
    membership.publish([memberOf(nodes[0]!, ['acme.Other'])]);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: SVC })).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE', message: `Peer list "${SVC}" has no members.` });
    membership.publish([memberOf(nodes[1]!)]);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(2), { peerList: SVC })).resolves.toMatchObject({ message: { node: 'n2' } });
  });

  it('serves Resolve, and Watch sends the current state, a snapshot per change, and ends when the client breaks out', async () => {
    const [n1, n2] = nodes as [TestNode, TestNode];
    membership.publish([memberOf(n1), memberOf(n2, [SVC, 'acme.Other'])]);
    const resolved = await factory.unary(discoveryV1.DiscoveryDefinition, 'resolve', { service: SVC }, { endpoint: discoveryHost.url });
    expect(resolved.message.endpoints).toEqual(
      [n1, n2].map((n) => ({ endpoint: n.url, nodeId: n.name, http3: true, region: 'local' })).sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1)),
    );

    const snapshots: string[][] = [];
    for await (const snapshot of factory.serverStream(discoveryV1.DiscoveryDefinition, 'watch', { service: 'acme.Other' }, { endpoint: discoveryHost.url })) {
      snapshots.push(snapshot.endpoints.map((e) => e.nodeId));
      if (snapshots.length === 1) membership.publish([memberOf(n1), memberOf(n2, [SVC, 'acme.Other']), memberOf(nodes[2]!, [SVC])]); // not acme.Other: nothing to send
      if (snapshots.length === 1) membership.publish([memberOf(n1, ['acme.Other']), memberOf(n2, [SVC, 'acme.Other'])]);
      if (snapshots.length === 2) break;
    }
    expect(snapshots.map((nodeIds) => [...nodeIds].sort())).toEqual([['n2'], ['n1', 'n2']]);
    await until(() => watching === 0);
  });

  it('a Watch ends when its host closes, and the handler holds nothing after', async () => {
    const host = await GrpcHost.start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile } }, [[discoveryV1.DiscoveryDefinition, countedDiscovery()]]);
    const seen: number[] = [];
    let closing: Promise<void> | undefined;
    const outcome = (async () => {
      for await (const snapshot of factory.serverStream(discoveryV1.DiscoveryDefinition, 'watch', { service: SVC }, { endpoint: host.url })) {
        seen.push(snapshot.endpoints.length);
        closing ??= host.close(200);
      }
      return 'ended';
    })().catch((error: unknown) => error);
    const result = await outcome;
    await closing;
    expect(seen).toHaveLength(1);
    // Ended by the server: cleanly, or with the status of a call the closing host cancelled.
    if (result !== 'ended') expect(result).toMatchObject({ code: 'RPC_FAILED', statusName: expect.stringMatching(/^(UNAVAILABLE|CANCELLED)$/) });
    await until(() => watching === 0);
  });

  it('a process that does not gossip follows the remote registry with DiscoveryClient, and calls follow it', async () => {
    const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
    membership.publish([memberOf(n1)]);
    // Its own container: the factory takes its peer list from a subject the DiscoveryClient feeds
    // (the client needs a factory, the factory needs its peer lists when it is built).
    const list = new ReplaySubject<readonly string[]>(1);
    const { container: remote } = containerWith(mtlsOptions(pki, pki.client), (c) => c.bind(TOKENS.PeerLists).toConstantValue({ [SVC]: list }));
    const remoteFactory = remote.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    const client = new DiscoveryClient(remoteFactory, { target: { endpoint: discoveryHost.url } });
    const lists: (readonly string[])[] = [];
    const subscription = client.endpoints$(SVC).subscribe((urls) => {
      lists.push(urls);
      list.next(urls);
    });
    try {
      await expect(client.resolve(SVC)).resolves.toEqual([n1.url]);
      await until(() => lists.length === 1);
      await expect(remoteFactory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: SVC })).resolves.toMatchObject({ message: { node: 'n1' } });

      membership.publish([memberOf(n1, [], 'left'), memberOf(n2), memberOf(n3, [SVC], 'suspect')]);
      await until(() => lists.length === 2);
      expect(lists[1]).toEqual([n2.url, n3.url].sort());
      const nodesAnswering = new Set<string>();
      for (let i = 0; i < 12; i++) nodesAnswering.add((await remoteFactory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: SVC })).message.node);
      expect(nodesAnswering).toEqual(new Set(['n2', 'n3']));
    } finally {
      subscription.unsubscribe();
      await client.dispose();
      await remote.unbindAllAsync();
    }
    await until(() => watching === 0);
  });
});
