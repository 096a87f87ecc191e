/**
 * Feature tier: the control-plane agents as an application runs them — N nodes in one
 * process, each with its own GrpcHost on 127.0.0.1 (mTLS, HTTP/2 + HTTP/3) and its own
 * container (`grpcControlPlaneModule` + `gossipModule` + `discoveryModule`), against the built
 * package. Gossip finds the members, discovery turns them into the factory's peer lists.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { firstValueFrom, filter } from 'rxjs';
import { Container } from 'inversify';
import {
  CONTROL_PLANE_TOKENS,
  controlPlaneV1,
  discoveryModule,
  discoveryPeerLists,
  grpcControlPlaneModule,
  ProfilePeerChooser,
  TOKENS,
  type ICircuitBreaker,
  type IGrpcControlPlaneClientFactory,
  type IPeerChooser,
  type MembershipSource,
  type OptionsMonitor,
  type PeerCandidate,
  type PeerChoiceContext,
  type ServiceRegistry,
} from 'omnirelay';
import { APP_SERVICE, eventually, Mesh, type MeshNode } from './support/mesh.js';

const { ControlPlaneDefinition } = controlPlaneV1;
const ping = (sequence: number): controlPlaneV1.PingRequest => ({ fromNode: 'feature', sequence, payload: new Uint8Array() });

/** Calls the discovered application service from `client` until stopped; records every outcome. */
function callContinuously(client: MeshNode): { stop(): Promise<void>; readonly answeredBy: string[]; readonly startedAt: number[]; readonly failures: unknown[] } {
  const answeredBy: string[] = [];
  /** When the call behind each answer started (a call placed before a peer left may still be answered by it, during its drain). */
  const startedAt: number[] = [];
  const failures: unknown[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      try {
        const started = Date.now();
        const result = await client.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: APP_SERVICE, deadlineMs: 2_000 });
        answeredBy.push(result.message.node);
        startedAt.push(started);
      } catch (error) {
        failures.push(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    answeredBy,
    startedAt,
    failures,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'h2only'];

describe('a mesh of five: join, crash, restart', () => {
  const mesh = new Mesh();
  const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const allSee = (ids: readonly string[], subject: string, status: string): boolean => ids.every((viewer) => mesh.statusOf(viewer, subject) === status);

  beforeAll(async () => {
    await mesh.init(IDS);
  });

  afterAll(async () => {
    await mesh.close();
  });

  it('5 nodes join from one seed and all see 5 alive members', async () => {
    for (const id of five) await mesh.start(id);
    await eventually(() => five.every((subject) => allSee(five, subject, 'alive')));
    for (const viewer of five) {
      expect(mesh.node(viewer).agent.members.filter((m) => m.status === 'alive').map((m) => m.metadata.nodeId).sort()).toEqual(five);
    }
    // Discovery on every node lists the five endpoints of the application service.
    await eventually(() => five.every((viewer) => mesh.node(viewer).registry.resolve(APP_SERVICE).length === 5));
    for (const viewer of five) expect(mesh.node(viewer).registry.resolve(APP_SERVICE)).toEqual(five.map((id) => mesh.node(id).host.url).sort());
  });

  it('a killed node: suspect then dead everywhere, its breaker opens, discovery drops it, and calls that had another peer never fail', async () => {
    const client = mesh.node('n1');
    const victim = mesh.node('n5');
    const victimAuthority = new URL(victim.host.url).host;
    const calls = callContinuously(client);
    await eventually(() => calls.answeredBy.includes('n5'));
    await mesh.kill(victim);
    const others = ['n1', 'n2', 'n3', 'n4'];
    expect(await eventually(() => allSee(others, 'n5', 'dead'))).toBe(true);
    const suspected = others.filter((viewer) => mesh.node(viewer).logs.some((l) => l.event === 'gossip.member.suspect' && l.fields['peer'] === 'n5'));
    expect(suspected.length).toBeGreaterThan(0);
    expect(await eventually(() => others.every((viewer) => mesh.node(viewer).registry.resolve(APP_SERVICE).length === 4))).toBe(true);
    const answeredAfter = calls.answeredBy.length;
    await eventually(() => calls.answeredBy.length >= answeredAfter + 20);
    await calls.stop();
    expect(calls.failures).toEqual([]);
    // The client's breaker for the dead peer opened (its attempts failed before discovery dropped it).
    const breaker = client.container.get<ICircuitBreaker>(TOKENS.CircuitBreaker);
    const deaths = client.logs.filter((l) => l.event === 'gossip.member.dead' && l.fields['peer'] === 'n5');
    expect(deaths).toHaveLength(1);
    expect(breaker.state(victimAuthority, 'control-plane')).not.toBe('closed');
  });

  it('restarted with the same id, it refutes its death and is alive again everywhere', async () => {
    await mesh.start('n5');
    expect(await eventually(() => allSee(five, 'n5', 'alive'))).toBe(true);
    for (const viewer of five) expect(mesh.statusOf(viewer, 'n5')).toBe('alive');
    const before = mesh.node('n1').agent.member('n5')?.incarnation ?? 0;
    expect(before).toBeGreaterThan(0);
  });
});

describe('scale 3 → 8 → 3 while a client calls a discovered service', () => {
  const mesh = new Mesh();

  beforeAll(async () => {
    await mesh.init(IDS);
  });

  afterAll(async () => {
    await mesh.close();
  });

  it('the peer list converges each time and no call fails', async () => {
    for (const id of ['n1', 'n2', 'n3']) await mesh.start(id);
    const client = mesh.node('n1');
    await firstValueFrom(client.registry.endpoints$(APP_SERVICE).pipe(filter((list) => list.length === 3)));
    const calls = callContinuously(client);

    for (const id of ['n4', 'n5', 'n6', 'n7', 'n8']) await mesh.start(id);
    expect(await eventually(() => client.registry.resolve(APP_SERVICE).length === 8)).toBe(true);
    const grown = calls.answeredBy.length;
    expect(await eventually(() => new Set(calls.answeredBy.slice(grown)).size === 8)).toBe(true);

    for (const id of ['n8', 'n7', 'n6', 'n5', 'n4']) await mesh.leave(mesh.node(id));
    expect(await eventually(() => client.registry.resolve(APP_SERVICE).length === 3)).toBe(true);
    const shrunkAt = Date.now();
    const shrunk = calls.answeredBy.length;
    await eventually(() => calls.answeredBy.length >= shrunk + 30);
    await calls.stop();

    expect(calls.failures).toEqual([]);
    // Calls placed after the list shrank go to the three that stayed (one placed just before may
    // still have been answered by a leaving node while it drained).
    const placedAfter = calls.answeredBy.filter((_, i) => (calls.startedAt[i] ?? 0) >= shrunkAt);
    expect(placedAfter.length).toBeGreaterThanOrEqual(25);
    expect(new Set(placedAfter)).toEqual(new Set(['n1', 'n2', 'n3']));
    expect(client.registry.resolve(APP_SERVICE)).toEqual(['n1', 'n2', 'n3'].map((id) => mesh.node(id).host.url).sort());
  });
});

describe('a node that serves HTTP/2 only', () => {
  const mesh = new Mesh();

  beforeAll(async () => {
    await mesh.init(IDS);
  });

  afterAll(async () => {
    await mesh.close();
  });

  it('is dialled over HTTP/2 from the first call: gossip announces it, the factory never tries HTTP/3', async () => {
    await mesh.start('n1');
    const plain = await mesh.start('h2only', { http3: false });
    const client = mesh.node('n1');
    expect(await eventually(() => mesh.statusOf('n1', 'h2only') === 'alive')).toBe(true);
    // Gossip carried the node's "no HTTP/3" to n1, which uses HTTP/2 for it from the first
    // call: no HTTP/3 connection to it was ever made (nor raced, nor fallen back from).
    const authority = new URL(plain.host.url).host;
    const first = await client.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: plain.host.url });
    expect(first.protocol).toBe('h2');
    expect(client.factory.connections().filter((c) => c.authority === authority).map((c) => c.protocol)).toEqual(['h2']);
    // And the other way: h2only dials n1 over HTTP/3 (n1 serves it).
    const back = await plain.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: mesh.node('n1').host.url });
    expect(back.protocol).toBe('h3');
  });
});

describe('overriding bindings with snapshot / rebind / restore', () => {
  const mesh = new Mesh();

  beforeAll(async () => {
    await mesh.init(IDS);
  });

  afterAll(async () => {
    await mesh.close();
  });

  it('a client container: snapshot, rebind the peer chooser and the clock, restore', async () => {
    await mesh.start('n1');
    await mesh.start('n2');
    const seed = mesh.node('n1');
    await eventually(() => seed.registry.resolve(APP_SERVICE).length === 2);
    // A client that does not gossip: it reads n1's member list and calls the discovered service.
    const container = new Container();
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue(mesh.clientOptions('n3'));
    container.bind(CONTROL_PLANE_TOKENS.Membership).toConstantValue(seed.container.get<MembershipSource>(CONTROL_PLANE_TOKENS.Membership));
    container.bind(TOKENS.PeerLists).toDynamicValue((context) => discoveryPeerLists(context.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry), [APP_SERVICE])).inSingletonScope();
    container.load(grpcControlPlaneModule, discoveryModule);
    container.snapshot();

    const now = { ms: 1_000_000 };
    const choices: string[][] = [];
    container.bind(TOKENS.Clock).toConstantValue({ now: () => now.ms });
    container.rebind(TOKENS.PeerChooser).toDynamicValue((context) => {
      const inner: IPeerChooser = new ProfilePeerChooser(context.get<OptionsMonitor>(TOKENS.OptionsMonitor), () => 0.5);
      return {
        choose: (peers: readonly PeerCandidate[], choice: PeerChoiceContext) => {
          choices.push(peers.map((p) => p.authority).sort());
          return inner.choose(peers, choice);
        },
      } satisfies IPeerChooser;
    });
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    for (let i = 0; i < 4; i++) await factory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: APP_SERVICE });
    // The recording chooser saw every pick, over the discovered peers.
    const discovered = ['n1', 'n2'].map((id) => new URL(mesh.node(id).host.url).host).sort();
    expect(choices).toEqual([discovered, discovered, discovered, discovered]);
    // The manual clock drives the breaker: an open circuit stays open until the clock moves.
    const breaker = container.get<ICircuitBreaker>(TOKENS.CircuitBreaker);
    for (let i = 0; i < 5; i++) await factory.unary(ControlPlaneDefinition, 'ping', ping(i), { endpoint: 'https://127.0.0.1:1' }).catch(() => undefined);
    expect(breaker.state('127.0.0.1:1', 'control-plane')).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(breaker.state('127.0.0.1:1', 'control-plane')).toBe('open');
    now.ms += 5_000;
    expect(breaker.state('127.0.0.1:1', 'control-plane')).toBe('half-open');

    // Dispose what was built on the overrides, then restore the bindings of the snapshot.
    await container.unbindAllAsync();
    container.restore();
    expect(container.isBound(TOKENS.Clock)).toBe(false);
    const restored = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    expect(restored).not.toBe(factory);
    expect(container.get<IPeerChooser>(TOKENS.PeerChooser)).toBeInstanceOf(ProfilePeerChooser);
    const calls = choices.length;
    await expect(restored.unary(ControlPlaneDefinition, 'ping', ping(9), { peerList: APP_SERVICE })).resolves.toMatchObject({ attempts: 1 });
    expect(choices).toHaveLength(calls);
    await container.unbindAllAsync();
  });
});
