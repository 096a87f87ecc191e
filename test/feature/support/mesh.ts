/**
 * A mesh of OmniRelay nodes in one test process, each as an application would run one: its
 * own GrpcHost on 127.0.0.1 (mTLS, HTTP/2 + HTTP/3 unless told otherwise) serving gossip,
 * discovery and an application service, and its own container with `grpcControlPlaneModule`,
 * `gossipModule` and `discoveryModule`, the discovered application service bound as a peer list.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import {
  CONTROL_PLANE_TOKENS,
  controlPlaneV1,
  discoveryModule,
  discoveryPeerLists,
  discoveryServiceImplementation,
  discoveryV1,
  gossipModule,
  gossipServiceImplementation,
  gossipV1,
  GrpcHost,
  grpcControlPlaneModule,
  TOKENS,
  writeDevPki,
  type ControlPlaneLogger,
  type DevPkiFiles,
  type GossipAgent,
  type GossipOptionsInput,
  type IGrpcControlPlaneClientFactory,
  type MemberStatus,
  type ServerCallInfo,
  type ServiceRegistry,
} from 'omnirelay';

/** The application service the nodes host and discover. */
export const APP_SERVICE = controlPlaneV1.ControlPlaneDefinition.fullName;

/** Short gossip timings so the tier runs in seconds on a busy 2-core machine. */
export const FAST_GOSSIP: Partial<GossipOptionsInput> = {
  probeIntervalMs: 200,
  probeTimeoutMs: 150,
  suspicionMult: 2,
  syncIntervalMs: 1_000,
  joinRetryInitialMs: 100,
  joinRetryMaxMs: 500,
  leaveTimeoutMs: 500,
};

export interface LogLine {
  readonly at: number;
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

export interface MeshNode {
  readonly id: string;
  readonly host: GrpcHost;
  readonly container: Container;
  readonly agent: GossipAgent;
  readonly factory: IGrpcControlPlaneClientFactory;
  readonly registry: ServiceRegistry;
  readonly logs: LogLine[];
  /** Application calls this node served. */
  served: number;
  stopped: boolean;
}

export interface NodeOptions {
  /** Serve HTTP/3 too (and announce it). Default true. */
  readonly http3?: boolean;
  /** Bindings made before the modules load (a fake clock, a recording chooser, ...). */
  readonly bind?: (container: Container) => void;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 20 ms until it holds or `limitMs` passed (a hang guard, not a speed target); returns whether it held. */
export async function eventually(done: () => boolean, limitMs = 30_000): Promise<boolean> {
  for (let waited = 0; !done() && waited < limitMs; waited += 20) await pause(20);
  return done();
}

export class Mesh {
  readonly nodes: MeshNode[] = [];
  #dir = '';
  #pki: DevPkiFiles | undefined;

  /** Certificates for every id the test will use (CN = node id). */
  async init(ids: readonly string[]): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'omnirelay-mesh-'));
    this.#pki = await writeDevPki(this.#dir, ids);
  }

  get caFile(): string {
    return this.pki.caFile;
  }

  get pki(): DevPkiFiles {
    if (this.#pki === undefined) throw new Error('Mesh.init() first');
    return this.#pki;
  }

  node(id: string): MeshNode {
    const found = [...this.nodes].reverse().find((n) => n.id === id && !n.stopped);
    if (found === undefined) throw new Error(`no running node ${id}`);
    return found;
  }

  running(): MeshNode[] {
    return this.nodes.filter((n) => !n.stopped);
  }

  /** How `viewer` sees `subject` now. */
  statusOf(viewer: string, subject: string): MemberStatus | undefined {
    return this.node(viewer).agent.member(subject)?.status;
  }

  /** Mutual TLS options for `id` (the container's `TOKENS.ControlPlaneOptions`). */
  clientOptions(id: string): unknown {
    const files = this.pki.files[id];
    if (files === undefined) throw new Error(`no certificate for ${id}`);
    return {
      profiles: {
        'control-plane': {
          tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: this.pki.caFile },
          connectTimeoutMs: 1_000,
          retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 },
        },
      },
    };
  }

  /** Starts node `id` (host, container, agent) and its gossip; seeded with the first running node. */
  async start(id: string, options: NodeOptions = {}): Promise<MeshNode> {
    const files = this.pki.files[id];
    if (files === undefined) throw new Error(`no certificate for ${id}`);
    const http3 = options.http3 ?? true;
    const seed = this.running()[0]?.host.url;
    const logs: LogLine[] = [];
    const logger: ControlPlaneLogger = {
      info: (event, fields) => logs.push({ at: Date.now(), event, fields }),
      warn: (event, fields) => logs.push({ at: Date.now(), event, fields }),
    };
    // The container first: the registry depends only on the member list, so the host can serve
    // discovery from it; the agent (which needs the host's URL) is resolved once the host runs.
    const late: { url?: string; agent?: GossipAgent; node?: MeshNode } = {};
    const container = new Container();
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue(this.clientOptions(id));
    container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(logger);
    container.bind(CONTROL_PLANE_TOKENS.GossipOptions).toDynamicValue(
      (): GossipOptionsInput => ({
        nodeId: id,
        advertiseEndpoint: late.url ?? '',
        seeds: seed === undefined ? [] : [seed],
        cluster: 'feature',
        role: 'app',
        http3,
        services: [APP_SERVICE, discoveryV1.DiscoveryDefinition.fullName],
        ...FAST_GOSSIP,
      }),
    );
    // The discovered application service as a live peer list of this node's factory.
    container
      .bind(TOKENS.PeerLists)
      .toDynamicValue((context) => discoveryPeerLists(context.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry), [APP_SERVICE]))
      .inSingletonScope();
    options.bind?.(container);
    container.load(grpcControlPlaneModule, gossipModule, discoveryModule);
    const registry = container.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry);
    const host = await GrpcHost.start({ tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: this.pki.caFile }, http3 }, [
      [gossipV1.GossipDefinition, gossipServiceImplementation(() => late.agent)],
      [
        controlPlaneV1.ControlPlaneDefinition,
        {
          ping: (request: controlPlaneV1.PingRequest, info: ServerCallInfo): controlPlaneV1.PingResponse => {
            if (late.node !== undefined) late.node.served++;
            return { node: id, sequence: request.sequence, clientIdentity: info.clientIdentity, payload: new Uint8Array() };
          },
          watch: async function* (): AsyncIterable<controlPlaneV1.MembershipEvent> {
            await Promise.resolve();
            yield* [];
          },
        },
      ],
      [discoveryV1.DiscoveryDefinition, discoveryServiceImplementation(registry)],
    ]);
    late.url = host.url;
    const agent = container.get<GossipAgent>(CONTROL_PLANE_TOKENS.Gossip);
    late.agent = agent;
    const node: MeshNode = { id, host, container, agent, registry, factory: container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory), logs, served: 0, stopped: false };
    late.node = node;
    this.nodes.push(node);
    await agent.start();
    return node;
  }

  /** Graceful: leave, then close (the host drains for `graceMs`). */
  async leave(node: MeshNode, graceMs = 1_000): Promise<void> {
    if (node.stopped) return;
    node.stopped = true;
    await node.agent.stop({ leave: true });
    await node.container.unbindAllAsync();
    await node.host.close(graceMs);
  }

  /** A crash: the servers close at once, no leave is announced. */
  async kill(node: MeshNode): Promise<void> {
    if (node.stopped) return;
    node.stopped = true;
    await node.host.close(0);
    await node.agent.stop({ leave: false });
    await node.container.unbindAllAsync();
  }

  async close(): Promise<void> {
    for (const node of this.running()) await this.kill(node);
    if (this.#dir !== '') await rm(this.#dir, { recursive: true, force: true });
  }
}
