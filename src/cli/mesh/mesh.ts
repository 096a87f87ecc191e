/**
 * `startMesh(options)`: N OmniRelay nodes in this process, each as an application runs one —
 * its own GrpcHost on 127.0.0.1 (HTTP/2 + HTTP/3, mTLS from a generated development CA) and
 * its own container with the control-plane client factory, gossip, discovery and leadership
 * (one EmbeddedLeaseStore shared by the nodes). Light application traffic through each
 * node's factory keeps RPC rates above zero. The returned `Mesh` kills, restarts and flips
 * HTTP/3 hints of nodes, and publishes a snapshot of what every node sees once per interval.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import { concat, defer, from, merge, Subject, type Observable } from 'rxjs';
import type { ControlPlaneOptionsInput } from '../../config/types.js';
import { ConfigError, type ConfigIssue } from '../../errors.js';
import type { IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import type { EndpointHintUpdate } from '../../hints/endpoint-hints.js';
import type { Http3Health } from '../../hints/http3-health.js';
import { grpcControlPlaneModule } from '../../module.js';
import type { BreakerState, ICircuitBreaker } from '../../resilience/circuit-breaker.js';
import { GrpcHost, type ServerCallInfo } from '../../server/grpc-host.js';
import type { TelemetryProviders } from '../../telemetry/index.js';
import { ATTR_ENDPOINT, ATTR_FALLBACK_REASON, ATTR_PROTOCOL, ATTR_RPC_GRPC_STATUS_CODE, METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS, METRIC_GRPC_OUTBOUND_REQUESTS } from '../../telemetry/names.js';
import { writeDevPki, type DevPkiFiles } from '../../tls/dev-pki.js';
import { TOKENS } from '../../tokens.js';
import { discoveryServiceImplementation } from '../../controlplane/discovery/discovery-service.js';
import { discoveryModule } from '../../controlplane/discovery/module.js';
import { discoveryPeerLists } from '../../controlplane/discovery/peer-lists.js';
import type { ServiceRegistry } from '../../controlplane/discovery/service-registry.js';
import type { GossipAgent } from '../../controlplane/gossip/agent.js';
import { membershipHints } from '../../controlplane/gossip/hints.js';
import { gossipModule } from '../../controlplane/gossip/module.js';
import type { GossipOptionsInput } from '../../controlplane/gossip/options.js';
import { gossipServiceImplementation } from '../../controlplane/gossip/service.js';
import type { LeadershipAgent } from '../../controlplane/leadership/agent.js';
import { LeadershipClient } from '../../controlplane/leadership/client.js';
import { EmbeddedLeaseStore } from '../../controlplane/leadership/embedded-store.js';
import { leadershipModule } from '../../controlplane/leadership/module.js';
import type { LeadershipOptionsInput } from '../../controlplane/leadership/options.js';
import { leadershipServiceImplementation } from '../../controlplane/leadership/service.js';
import type { ControlPlaneLogger } from '../../controlplane/logger.js';
import type { MembershipSource, MemberStatus } from '../../controlplane/membership.js';
import { CONTROL_PLANE_TOKENS } from '../../controlplane/tokens.js';
import { ControlPlaneDefinition, type MembershipEvent, type PingRequest, type PingResponse } from '../../gen/omnirelay/controlplane/v1/gossip.js';
import { DiscoveryDefinition } from '../../gen/omnirelay/controlplane/discovery/v1/discovery.js';
import { GossipDefinition } from '../../gen/omnirelay/controlplane/gossip/v1/gossip.js';
import { LeadershipControlDefinition } from '../../gen/omnirelay/controlplane/leadership/v1/leadership.js';
import { labelledMeterProvider } from './labelled-meter.js';
import { startMeshMetrics, type CollectedMetrics, type MeshMetrics, type MetricPoint } from './metrics.js';

/** What `startMesh` (and `omnirelay mesh`) runs. */
export interface MeshOptions {
  /** Local nodes, 1–9 (one digit each for the keys). Default 3. */
  readonly nodes?: number | undefined;
  /** Serve Prometheus metrics on `http://127.0.0.1:<port>/metrics`; 0 picks a free port. Default: not served. */
  readonly metricsPort?: number | undefined;
  /** Leadership scopes every node is a candidate in. Default `['global', 'shard-1']`. */
  readonly scopes?: readonly string[] | undefined;
  /** How often each node makes its application calls (a Ping and a LeadershipControl Get). Default 500 ms. */
  readonly trafficIntervalMs?: number | undefined;
  /** How often a snapshot is taken (the table's refresh and the rate window). Default 1000 ms. */
  readonly sampleIntervalMs?: number | undefined;
}

export const MESH_DEFAULTS = {
  nodes: 3,
  scopes: ['global', 'shard-1'],
  trafficIntervalMs: 500,
  sampleIntervalMs: 1_000,
} as const;

/** The services every node hosts and announces (its application service, discovery, leadership). */
export const MESH_APP_SERVICE = ControlPlaneDefinition.fullName;
export const MESH_LEADERSHIP_SERVICE = LeadershipControlDefinition.fullName;
const MESH_SERVICES = [MESH_APP_SERVICE, DiscoveryDefinition.fullName, MESH_LEADERSHIP_SERVICE];
const PROFILE = 'control-plane';
const MAX_EVENTS = 200;

/** One event of a node's control-plane logger (gossip transitions, elections, warnings), or of the mesh itself. */
export interface MeshEvent {
  readonly seq: number;
  readonly at: number;
  readonly node: string;
  readonly level: 'info' | 'warn';
  readonly event: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface MeshLeader {
  readonly leaderId: string;
  readonly term: number;
  /** Decimal (fence tokens are bigints). */
  readonly fenceToken: string;
}

/** How one node sees one other node, and how its calls to it went during the last interval. */
export interface MeshPeerSnapshot {
  readonly peer: string;
  /** `host:port`. */
  readonly endpoint: string;
  /** Calls of the last interval by protocol (every control-plane RPC: gossip, discovery, leadership, application). */
  readonly calls: { readonly h2: number; readonly h3: number };
  /** `h3`, `h2`, `h3+h2` (both during the interval) or `-` (no call). */
  readonly protocol: 'h3' | 'h2' | 'h3+h2' | '-';
  /** Protocols of the connections the factory holds to it now (active, not draining). */
  readonly connections: readonly ('h2' | 'h3')[];
  readonly breaker: BreakerState;
  /** The mesh's live HTTP/3 hint for this peer. */
  readonly hint: 'allow' | 'deny';
  /**
   * Why calls may not use HTTP/3: `hint-denied`, `http3-broken:<reason>` (the factory's
   * Http3Health memory: handshake, connect, idle-timeout, probe, forced), `fallback:<reason>×n`
   * (HTTP/3 → HTTP/2 fallbacks counted during the interval).
   */
  readonly reasons: readonly string[];
  /** HTTP/3 → HTTP/2 fallbacks to this peer since the mesh started. */
  readonly fallbacksTotal: number;
}

export interface MeshNodeSnapshot {
  readonly id: string;
  /** 1-based, as the keys name it. */
  readonly index: number;
  readonly endpoint: string;
  readonly state: 'running' | 'killed' | 'restarting';
  /** How this node sees every node of the mesh (undefined: not in its list); empty when not running. */
  readonly members: Readonly<Record<string, MemberStatus | undefined>>;
  /** The leader of each scope as this node sees it. */
  readonly leaders: Readonly<Record<string, MeshLeader | undefined>>;
  /** Scopes this node leads now. */
  readonly leads: readonly string[];
  /** Outbound RPCs per second (all outcomes) during the last interval. */
  readonly rpcPerSecond: number;
  /** Outbound RPCs per second that ended with a status other than OK. */
  readonly errorsPerSecond: number;
  readonly peers: readonly MeshPeerSnapshot[];
  /** The application calls (Ping, LeadershipControl Get) made and failed since this node started. */
  readonly traffic: { readonly ok: number; readonly failed: number; readonly lastError: string | undefined };
}

export interface MeshScopeSnapshot {
  readonly scope: string;
  /** The leader most running nodes see (undefined: none). */
  readonly leader: MeshLeader | undefined;
  /** Running nodes that see that leader. */
  readonly agreedBy: number;
  readonly running: number;
  /** Running nodes that believe they lead the scope now (one, in a healthy mesh). */
  readonly leading: readonly string[];
}

export interface MeshSnapshot {
  readonly at: number;
  readonly uptimeMs: number;
  /** The interval the rates cover. */
  readonly intervalMs: number;
  readonly nodes: readonly MeshNodeSnapshot[];
  readonly scopes: readonly MeshScopeSnapshot[];
  /** Events since the previous snapshot. */
  readonly events: readonly MeshEvent[];
  readonly metricsUrl: string | undefined;
  readonly dir: string;
}

interface RunningNode {
  readonly id: string;
  readonly host: GrpcHost;
  readonly container: Container;
  readonly gossip: GossipAgent;
  readonly leadership: LeadershipAgent;
  readonly factory: IGrpcControlPlaneClientFactory;
  readonly health: Http3Health;
  readonly breaker: ICircuitBreaker;
  readonly traffic: TrafficLoop;
  readonly joined: Promise<boolean>;
}

interface Slot {
  readonly id: string;
  readonly index: number;
  port: number;
  endpoint: string;
  state: 'running' | 'killed' | 'restarting';
  node: RunningNode | undefined;
  hint: 'allow' | 'deny';
  /** Serialises kill / restart / close of this node. */
  busy: Promise<void>;
}

function checkOptions(options: MeshOptions): Required<MeshOptions> {
  const issues: ConfigIssue[] = [];
  const integer = (key: keyof MeshOptions, value: unknown, min: number, max: number): void => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)) {
      issues.push({ key, message: `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}` });
    }
  };
  integer('nodes', options.nodes, 1, 9);
  integer('metricsPort', options.metricsPort, 0, 65_535);
  integer('trafficIntervalMs', options.trafficIntervalMs, 50, 60_000);
  integer('sampleIntervalMs', options.sampleIntervalMs, 100, 60_000);
  const scopes = options.scopes ?? MESH_DEFAULTS.scopes;
  if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => typeof s !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s)) || new Set(scopes).size !== scopes.length) {
    issues.push({ key: 'scopes', message: `must be distinct names like "global" or "shard-1", got ${JSON.stringify(scopes)}` });
  }
  if (issues.length > 0) throw new ConfigError(issues, 'mesh options');
  return {
    nodes: options.nodes ?? MESH_DEFAULTS.nodes,
    metricsPort: options.metricsPort as number,
    scopes,
    trafficIntervalMs: options.trafficIntervalMs ?? MESH_DEFAULTS.trafficIntervalMs,
    sampleIntervalMs: options.sampleIntervalMs ?? MESH_DEFAULTS.sampleIntervalMs,
  };
}

/** Waits `ms` or until `signal` aborts (then resolves at once). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function errorText(error: unknown): string {
  if (error instanceof Error) return 'code' in error && typeof error.code === 'string' ? `${error.code}: ${error.message}` : error.message;
  return String(error);
}

/** A node's application calls: a Ping to a discovered ControlPlane endpoint and a LeadershipControl Get to a discovered one, every interval. */
class TrafficLoop {
  ok = 0;
  failed = 0;
  lastError: string | undefined;
  readonly #abort = new AbortController();
  readonly #done: Promise<void>;
  readonly #client: LeadershipClient;

  constructor(
    readonly nodeId: string,
    readonly factory: IGrpcControlPlaneClientFactory,
    readonly scopes: readonly string[],
    readonly intervalMs: number,
  ) {
    this.#client = new LeadershipClient(factory, { target: { peerList: MESH_LEADERSHIP_SERVICE } });
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let sequence = 0;
    while (!signal.aborted) {
      await pause(this.intervalMs, signal);
      if (signal.aborted) break;
      const ping = this.factory.unary(ControlPlaneDefinition, 'ping', { fromNode: this.nodeId, sequence: ++sequence, payload: new Uint8Array() }, { peerList: MESH_APP_SERVICE, deadlineMs: 2_000, signal });
      const get = this.#client.get(this.scopes, { deadlineMs: 2_000, signal });
      for (const outcome of await Promise.allSettled([ping, get])) {
        if (outcome.status === 'fulfilled') this.ok++;
        else if (!signal.aborted) {
          this.failed++;
          this.lastError = errorText(outcome.reason);
        }
      }
    }
  }

  /** Stops the loop and waits for its calls to end. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
    await this.#client.dispose();
  }
}

/** Counters summed per key from cumulative points, to diff against the previous sample. */
type Totals = Map<string, number>;

function add(totals: Totals, key: string, value: number): void {
  totals.set(key, (totals.get(key) ?? 0) + value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

/** The live mesh. Every method is safe to call from a key handler; actions on one node run one at a time. */
export class Mesh {
  readonly options: Required<MeshOptions>;
  readonly #slots: Slot[] = [];
  readonly #store = new EmbeddedLeaseStore();
  readonly #hints = new Subject<EndpointHintUpdate>();
  readonly #snapshots = new Subject<MeshSnapshot>();
  readonly #events: MeshEvent[] = [];
  readonly #started = Date.now();
  #eventSeq = 0;
  #lastReportedEvent = 0;
  #sampler: NodeJS.Timeout | undefined;
  #sampling: Promise<void> | undefined;
  #previous: { at: number; totals: Totals } | undefined;
  #latest: MeshSnapshot | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    options: Required<MeshOptions>,
    readonly dir: string,
    readonly pki: DevPkiFiles,
    readonly metrics: MeshMetrics,
  ) {
    this.options = options;
  }

  /** Use {@link startMesh}. */
  static async start(input: MeshOptions = {}): Promise<Mesh> {
    const options = checkOptions(input);
    const ids = Array.from({ length: options.nodes }, (_, i) => `node-${i + 1}`);
    const dir = await mkdtemp(join(tmpdir(), 'omnirelay-mesh-'));
    let mesh: Mesh;
    try {
      const pki = await writeDevPki(dir, ids);
      mesh = new Mesh(options, dir, pki, await startMeshMetrics(options.metricsPort));
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    try {
      for (const [index, id] of ids.entries()) {
        const slot: Slot = { id, index: index + 1, port: 0, endpoint: '', state: 'restarting', node: undefined, hint: 'allow', busy: Promise.resolve() };
        mesh.#slots.push(slot);
        await mesh.#startNode(slot);
      }
    } catch (error) {
      // Closes the nodes started so far, the metrics and the temp dir.
      await mesh.close();
      throw error;
    }
    mesh.#sampler = setInterval(() => mesh.#sample(), options.sampleIntervalMs);
    return mesh;
  }

  /** `http://127.0.0.1:<port>/metrics`, when metrics are served. */
  get metricsUrl(): string | undefined {
    return this.metrics.url;
  }

  /** Node ids in key order (`node-1` is key 1). */
  get ids(): readonly string[] {
    return this.#slots.map((s) => s.id);
  }

  /** The latest snapshot (undefined before the first interval ended). */
  get snapshot(): MeshSnapshot | undefined {
    return this.#latest;
  }

  /** One snapshot per interval; completes when the mesh closes. */
  get snapshots$(): Observable<MeshSnapshot> {
    return this.#snapshots.asObservable();
  }

  /** The last events (at most 200), oldest first. */
  get events(): readonly MeshEvent[] {
    return this.#events;
  }

  /** Takes a snapshot now (also published on `snapshots$`; the rates cover the time since the previous one). */
  async sample(): Promise<MeshSnapshot> {
    if (this.#closing !== undefined) throw new Error('omnirelay mesh: closed; no more snapshots');
    await this.#sampling;
    return this.#takeSnapshot();
  }

  /** A crash: the node's servers close at once, its agents go quiet (no leave, no resignation). */
  kill(node: number | string): Promise<void> {
    const slot = this.#slot(node);
    return this.#serial(slot, async () => {
      if (slot.state !== 'running') return;
      await this.#stopNode(slot, false);
      this.#event(slot.id, 'info', 'mesh.node.killed', { endpoint: slot.endpoint });
    });
  }

  /** Starts a killed node again under its id (on its old port when free). A running node is left alone. */
  restart(node: number | string): Promise<void> {
    const slot = this.#slot(node);
    return this.#serial(slot, async () => {
      if (slot.state === 'running') return;
      await this.#startNode(slot);
      this.#event(slot.id, 'info', 'mesh.node.restarted', { endpoint: slot.endpoint });
    });
  }

  /** Flips the HTTP/3 hint every node holds for `node` (deny ↔ allow), live; returns the new hint. */
  flipHttp3(node: number | string): 'allow' | 'deny' {
    const slot = this.#slot(node);
    return this.setHttp3(slot.id, slot.hint === 'deny' ? 'allow' : 'deny');
  }

  /** Sets the HTTP/3 hint every node holds for `node`, live (`deny`: calls to it use HTTP/2). */
  setHttp3(node: number | string, hint: 'allow' | 'deny'): 'allow' | 'deny' {
    const slot = this.#slot(node);
    slot.hint = hint;
    if (slot.endpoint !== '') this.#hints.next({ endpoint: slot.endpoint, http3: hint });
    this.#event(slot.id, 'info', 'mesh.hint', { http3: hint, endpoint: slot.endpoint });
    return hint;
  }

  /**
   * Graceful shutdown: every node leaves the gossip and resigns its terms, traffic stops, every
   * container and host is disposed, the store and the metrics closed, the temp dir removed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#sampler !== undefined) clearInterval(this.#sampler);
    this.#sampler = undefined;
    await this.#sampling;
    for (const slot of this.#slots) {
      await this.#serial(slot, async () => {
        if (slot.state === 'running') await this.#stopNode(slot, true);
        slot.state = 'killed';
      });
    }
    this.#store.dispose();
    this.#hints.complete();
    this.#snapshots.complete();
    await this.metrics.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  #slot(node: number | string): Slot {
    const slot = typeof node === 'number' ? this.#slots[node - 1] : this.#slots.find((s) => s.id === node);
    if (slot === undefined) throw new ConfigError([{ key: 'node', message: `no node ${JSON.stringify(node)}; the mesh has ${this.#slots.map((s) => `${s.index} (${s.id})`).join(', ')}` }], 'mesh action');
    return slot;
  }

  #serial(slot: Slot, action: () => Promise<void>): Promise<void> {
    const run = slot.busy.then(() => {
      if (this.#closing !== undefined && slot.state !== 'running') return;
      return action();
    });
    slot.busy = run.catch(() => undefined);
    return run;
  }

  #event(node: string, level: 'info' | 'warn', event: string, fields: Record<string, unknown>): void {
    this.#events.push({ seq: ++this.#eventSeq, at: Date.now(), node, level, event, fields });
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
  }

  #logger(node: string): ControlPlaneLogger {
    return {
      info: (event, fields) => this.#event(node, 'info', event, fields),
      warn: (event, fields) => this.#event(node, 'warn', event, fields),
    };
  }

  /** The hints of one node's factory: the member list's own (`http3: false` members) and the mesh's flips, current ones first. */
  #hintsFor(membership: MembershipSource): Observable<EndpointHintUpdate> {
    const current = defer(() => from(this.#slots.filter((s) => s.hint === 'deny' && s.endpoint !== '').map((s): EndpointHintUpdate => ({ endpoint: s.endpoint, http3: 'deny' }))));
    return merge(membershipHints(membership), concat(current, this.#hints));
  }

  async #startNode(slot: Slot): Promise<void> {
    slot.state = 'restarting';
    const files = this.pki.files[slot.id];
    if (files === undefined) throw new Error(`no certificate for ${slot.id}`);
    const seeds = this.#slots.filter((s) => s !== slot && s.state === 'running').map((s) => s.endpoint);
    const late: { url?: string; agent?: GossipAgent; served?: number } = {};
    const container = new Container();
    const options: ControlPlaneOptionsInput = {
      profiles: {
        [PROFILE]: {
          tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: this.pki.caFile },
          connectTimeoutMs: 1_000,
          retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 },
        },
      },
    };
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue(options);
    container.bind<TelemetryProviders>(TOKENS.Telemetry).toConstantValue({ meterProvider: labelledMeterProvider(this.metrics.meterProvider, { node: slot.id }) });
    container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(this.#logger(slot.id));
    container.bind(CONTROL_PLANE_TOKENS.LeaseStore).toConstantValue(this.#store);
    container.bind(CONTROL_PLANE_TOKENS.LeadershipOptions).toConstantValue({ nodeId: slot.id, scopes: [...this.options.scopes] } satisfies LeadershipOptionsInput);
    container.bind(CONTROL_PLANE_TOKENS.GossipOptions).toDynamicValue(
      (): GossipOptionsInput => ({
        nodeId: slot.id,
        advertiseEndpoint: late.url ?? '',
        seeds,
        cluster: 'omnirelay-mesh',
        role: 'mesh',
        http3: true,
        services: MESH_SERVICES,
      }),
    );
    container
      .bind<Observable<EndpointHintUpdate>>(TOKENS.EndpointHints)
      .toDynamicValue((context) => this.#hintsFor(context.get<MembershipSource>(CONTROL_PLANE_TOKENS.Membership)))
      .inSingletonScope();
    container
      .bind(TOKENS.PeerLists)
      .toDynamicValue((context) => discoveryPeerLists(context.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry), [MESH_APP_SERVICE, MESH_LEADERSHIP_SERVICE]))
      .inSingletonScope();
    container.load(grpcControlPlaneModule, gossipModule, discoveryModule, leadershipModule);
    let host: GrpcHost | undefined;
    try {
      const registry = container.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry);
      const leadership = container.get<LeadershipAgent>(CONTROL_PLANE_TOKENS.Leadership);
      const id = slot.id;
      const services = [
        [GossipDefinition, gossipServiceImplementation(() => late.agent)],
        [
          ControlPlaneDefinition,
          {
            ping: (request: PingRequest, info: ServerCallInfo): PingResponse => ({ node: id, sequence: request.sequence, clientIdentity: info.clientIdentity, payload: new Uint8Array() }),
            watch: async function* (): AsyncIterable<MembershipEvent> {
              await Promise.resolve();
              yield* [];
            },
          },
        ],
        [DiscoveryDefinition, discoveryServiceImplementation(registry)],
        [LeadershipControlDefinition, leadershipServiceImplementation(leadership)],
      ] as const;
      const tls = { certFile: files.certFile, keyFile: files.keyFile, caFile: this.pki.caFile };
      // A restarted node takes its old port when it is free, so the others' view of it stays readable.
      let started: GrpcHost;
      try {
        started = await GrpcHost.start({ port: slot.port, tls }, services);
      } catch (error) {
        if (slot.port === 0) throw error;
        started = await GrpcHost.start({ port: 0, tls }, services);
      }
      host = started;
      late.url = started.url;
      const gossip = container.get<GossipAgent>(CONTROL_PLANE_TOKENS.Gossip);
      late.agent = gossip;
      const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
      const previousEndpoint = slot.endpoint;
      slot.port = started.port;
      slot.endpoint = started.url;
      if (slot.hint === 'deny' && previousEndpoint !== slot.endpoint) this.#hints.next({ endpoint: slot.endpoint, http3: 'deny' });
      const joined = gossip.start();
      leadership.start();
      slot.node = {
        id,
        host: started,
        container,
        gossip,
        leadership,
        factory,
        health: container.get<Http3Health>(TOKENS.Http3Health),
        breaker: container.get<ICircuitBreaker>(TOKENS.CircuitBreaker),
        traffic: new TrafficLoop(id, factory, this.options.scopes, this.options.trafficIntervalMs),
        joined,
      };
      slot.state = 'running';
    } catch (error) {
      slot.state = 'killed';
      await container.unbindAllAsync().catch(() => undefined);
      await host?.close(0);
      throw error;
    }
  }

  async #stopNode(slot: Slot, graceful: boolean): Promise<void> {
    const node = slot.node;
    if (node === undefined) return;
    slot.node = undefined;
    slot.state = 'killed';
    await node.traffic.stop();
    if (graceful) {
      await node.gossip.stop({ leave: true });
      await node.leadership.stop({ resign: true });
      await node.joined;
      await node.container.unbindAllAsync();
      await node.host.close(1_000);
    } else {
      await node.host.close(0);
      await node.gossip.stop({ leave: false });
      await node.leadership.stop({ resign: false });
      await node.joined;
      await node.container.unbindAllAsync();
    }
  }

  #sample(): void {
    if (this.#sampling !== undefined || this.#closing !== undefined) return;
    this.#sampling = this.#takeSnapshot()
      .then(() => undefined)
      .catch((error: unknown) => this.#event('mesh', 'warn', 'mesh.sample.failed', { error: errorText(error) }))
      .finally(() => {
        this.#sampling = undefined;
      });
  }

  async #takeSnapshot(): Promise<MeshSnapshot> {
    const collected = await this.metrics.collect();
    const at = Date.now();
    const totals = totalsOf(collected);
    const previous = this.#previous ?? { at: this.#started, totals: new Map<string, number>() };
    this.#previous = { at, totals };
    const intervalMs = Math.max(1, at - previous.at);
    const delta = (key: string): number => Math.max(0, (totals.get(key) ?? 0) - (previous.totals.get(key) ?? 0));
    const nodes = this.#slots.map((slot): MeshNodeSnapshot => {
      const node = slot.node;
      const base = { id: slot.id, index: slot.index, endpoint: slot.endpoint, state: slot.state };
      const calls = delta(`calls|${slot.id}`);
      const errors = delta(`errors|${slot.id}`);
      const rates = { rpcPerSecond: (calls * 1_000) / intervalMs, errorsPerSecond: (errors * 1_000) / intervalMs };
      if (node === undefined) {
        return { ...base, members: {}, leaders: {}, leads: [], ...rates, peers: [], traffic: { ok: 0, failed: 0, lastError: undefined } };
      }
      const members: Record<string, MemberStatus | undefined> = {};
      for (const s of this.#slots) members[s.id] = node.gossip.member(s.id)?.status;
      const leaders: Record<string, MeshLeader | undefined> = {};
      for (const scope of this.options.scopes) {
        const view = node.leadership.leader(scope);
        leaders[scope] = view === undefined ? undefined : { leaderId: view.leaderId, term: view.term, fenceToken: view.fenceToken.toString() };
      }
      const connections = node.factory.connections().filter((c) => c.state === 'active');
      const peers = this.#slots
        .filter((s) => s !== slot && s.endpoint !== '')
        .map((peer): MeshPeerSnapshot => {
          const endpoint = authorityOf(peer.endpoint);
          const h2 = delta(`calls|${slot.id}|${endpoint}|h2`);
          const h3 = delta(`calls|${slot.id}|${endpoint}|h3`);
          const reasons: string[] = [];
          if (peer.hint === 'deny') reasons.push('hint-denied');
          const health = node.health.state(endpoint);
          if (health !== undefined && node.health.isBroken(endpoint)) reasons.push(`http3-broken:${health.reason}`);
          for (const [key] of totals) {
            const prefix = `fallbacks|${slot.id}|${endpoint}|`;
            if (!key.startsWith(prefix)) continue;
            const n = delta(key);
            if (n > 0) reasons.push(`fallback:${key.slice(prefix.length)}×${n}`);
          }
          return {
            peer: peer.id,
            endpoint,
            calls: { h2, h3 },
            protocol: h3 > 0 && h2 > 0 ? 'h3+h2' : h3 > 0 ? 'h3' : h2 > 0 ? 'h2' : '-',
            connections: [...new Set(connections.filter((c) => c.authority === endpoint).map((c) => c.protocol))].sort(),
            breaker: node.breaker.state(endpoint, PROFILE),
            hint: peer.hint,
            reasons,
            fallbacksTotal: totals.get(`fallbacks|${slot.id}|${endpoint}`) ?? 0,
          };
        });
      return {
        ...base,
        members,
        leaders,
        leads: this.options.scopes.filter((scope) => node.leadership.isLeader(scope)),
        ...rates,
        peers,
        traffic: { ok: node.traffic.ok, failed: node.traffic.failed, lastError: node.traffic.lastError },
      };
    });
    const running = nodes.filter((n) => n.state === 'running');
    const scopes = this.options.scopes.map((scope): MeshScopeSnapshot => {
      const votes = new Map<string, { leader: MeshLeader; count: number }>();
      for (const n of running) {
        const leader = n.leaders[scope];
        if (leader === undefined) continue;
        const key = `${leader.leaderId}|${leader.term}|${leader.fenceToken}`;
        const vote = votes.get(key) ?? { leader, count: 0 };
        vote.count++;
        votes.set(key, vote);
      }
      const best = [...votes.values()].sort((a, b) => b.count - a.count || Number(BigInt(b.leader.fenceToken) - BigInt(a.leader.fenceToken)))[0];
      return { scope, leader: best?.leader, agreedBy: best?.count ?? 0, running: running.length, leading: running.filter((n) => n.leads.includes(scope)).map((n) => n.id) };
    });
    const events = this.#events.filter((e) => e.seq > this.#lastReportedEvent);
    this.#lastReportedEvent = this.#eventSeq;
    const snapshot: MeshSnapshot = { at, uptimeMs: at - this.#started, intervalMs, nodes, scopes, events, metricsUrl: this.metrics.url, dir: this.dir };
    this.#latest = snapshot;
    this.#snapshots.next(snapshot);
    return snapshot;
  }
}

function authorityOf(url: string): string {
  return new URL(url).host;
}

/** Cumulative outbound calls (per node, per node + endpoint + protocol), errors, and fallbacks, keyed for diffing. */
function totalsOf(collected: CollectedMetrics): Totals {
  const totals: Totals = new Map();
  const points = (name: string): readonly MetricPoint[] => collected.get(name) ?? [];
  for (const p of points(METRIC_GRPC_OUTBOUND_REQUESTS)) {
    const node = text(p.attributes.node);
    add(totals, `calls|${node}`, p.value);
    if (text(p.attributes[ATTR_RPC_GRPC_STATUS_CODE]) !== '0') add(totals, `errors|${node}`, p.value);
    add(totals, `calls|${node}|${text(p.attributes[ATTR_ENDPOINT])}|${text(p.attributes[ATTR_PROTOCOL])}`, p.value);
  }
  for (const p of points(METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS)) {
    const key = `fallbacks|${text(p.attributes.node)}|${text(p.attributes[ATTR_ENDPOINT])}`;
    add(totals, key, p.value);
    add(totals, `${key}|${text(p.attributes[ATTR_FALLBACK_REASON])}`, p.value);
  }
  return totals;
}

/** Starts a mesh (see {@link Mesh}); rejects with a ConfigError naming every bad option. */
export function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  return Mesh.start(options);
}
