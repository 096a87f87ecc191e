import { afterEach, describe, expect, it } from '@jest/globals';
import { NEVER } from 'rxjs';
import { discoveryPeerLists } from '../../../../src/controlplane/discovery/peer-lists.js';
import { ServiceRegistry } from '../../../../src/controlplane/discovery/service-registry.js';
import { MembershipSource } from '../../../../src/controlplane/membership.js';
import { ConfigError, PeerUnavailableError } from '../../../../src/errors.js';
import { ControlPlaneDefinition } from '../../../../src/gen/omnirelay/controlplane/v1/gossip.js';
import { harness, PEERS, type Harness } from '../../resilience/factory-harness.js';
import { member, record } from './members.js';

const SVC = ControlPlaneDefinition.fullName;
const ping = (sequence: number) => ({ fromNode: 'test', sequence, payload: new Uint8Array() });
const [P1, P2, P3] = PEERS;
/** Members on the harness's scripted peers (10.0.0.1-3:7001). */
const node = (n: 1 | 2 | 3, services: readonly string[] = [SVC], status: 'alive' | 'suspect' | 'dead' = 'alive') => member(`n${n}`, services, { status });

let h: Harness | undefined;
let registry: ServiceRegistry | undefined;
afterEach(async () => {
  await h?.dispose();
  registry?.dispose();
  h = undefined;
  registry = undefined;
});

async function calls(count: number): Promise<string[]> {
  const answered: string[] = [];
  for (let i = 0; i < count; i++) answered.push((await h!.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: SVC, profile: 'test' })).endpoint);
  return answered;
}

describe('discoveryPeerLists', () => {
  it('gives one live list per service, named by the service, emitting the registry\'s sorted URLs', () => {
    const membership = new MembershipSource();
    registry = new ServiceRegistry(membership);
    const lists = discoveryPeerLists(registry, [SVC, 'acme.Other']);
    expect(Object.keys(lists)).toEqual([SVC, 'acme.Other']);
    const svc = record(lists[SVC]!);
    membership.publish([node(2), node(1), node(3, ['acme.Other'])]);
    expect(svc.values).toEqual([[], [`https://${P1}`, `https://${P2}`]]);
  });

  it('refuses empty and repeated service names with every problem named', () => {
    registry = new ServiceRegistry(new MembershipSource());
    expect(() => discoveryPeerLists(registry!, ['', SVC, SVC])).toThrow(ConfigError);
    expect(() => discoveryPeerLists(registry!, ['', SVC, SVC])).toThrow(/services\[0\].*\n.*services\[2\]: "omnirelay.controlplane.v1.ControlPlane" is listed twice/);
  });

  it('feeds the factory: calls follow scale-up and scale-down without a restart', async () => {
    const membership = new MembershipSource();
    registry = new ServiceRegistry(membership);
    membership.publish([node(1)]);
    h = harness({ http3: 'disable' }, { peerLists: discoveryPeerLists(registry, [SVC]) });
    expect(new Set(await calls(3))).toEqual(new Set([P1]));

    membership.publish([node(1), node(2), node(3)]);
    expect(new Set(await calls(9))).toEqual(new Set([P1, P2, P3]));

    membership.publish([node(1, [SVC], 'dead'), node(2, [SVC], 'suspect'), node(3, ['acme.Other'])]);
    expect(new Set(await calls(3))).toEqual(new Set([P2]));
  });

  it('while no member serves the service calls fail fast with PEER_UNAVAILABLE "has no members" (the list emitted, empty); a call to a list that never emitted queues until its deadline', async () => {
    const membership = new MembershipSource();
    registry = new ServiceRegistry(membership);
    h = harness({ http3: 'disable' }, { peerLists: { ...discoveryPeerLists(registry, [SVC]), silent: NEVER } });
    const empty = h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: SVC, profile: 'test' });
    await expect(empty).rejects.toBeInstanceOf(PeerUnavailableError);
    await expect(empty).rejects.toThrow(`Peer list "${SVC}" has no members.`);
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'silent', profile: 'test', deadlineMs: 30 })).rejects.toThrow(/deadline exceeded while waiting for the first members of peer list "silent"/);
    expect(h.seen).toEqual([]);

    membership.publish([node(3)]);
    expect(await calls(1)).toEqual([P3]);
  });
});
