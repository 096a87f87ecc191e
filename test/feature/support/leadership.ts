/**
 * Candidates for leadership in one test (or bench) process, each as an application would run
 * one: its own GrpcHost on 127.0.0.1 (mTLS) serving LeadershipControl, its own container with
 * `grpcControlPlaneModule` + `leadershipModule`, on a lease store given by a StoreBackend: one
 * EmbeddedLeaseStore shared by every node (`embeddedBackend`, the default), or a real etcd
 * (`etcdBackend`: each node its own EtcdLeaseStore through `etcdLeaseStoreModule` and its own
 * factory's `etcd` profile, mTLS with the node's certificate). Each node reaches the store
 * through a SwitchableStore, so a test can make one node's store calls hang (a paused or
 * partitioned node) without touching the others.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import type { Observable } from 'rxjs';
import {
  CONTROL_PLANE_TOKENS,
  createControlPlaneClientFactory,
  EmbeddedLeaseStore,
  etcdLeaseStoreModule,
  EtcdLeaseStore,
  GrpcHost,
  grpcControlPlaneModule,
  leadershipModule,
  leadershipServiceImplementation,
  leadershipV1,
  LeaseStoreUnavailableError,
  TOKENS,
  writeDevPki,
  type ControlPlaneLogger,
  type CreateLeaderResult,
  type DevPkiFiles,
  type IGrpcControlPlaneClientFactory,
  type ILeaseStore,
  type LeaderRecord,
  type LeadershipAgent,
  type LeadershipOptionsInput,
  type LeaseGrant,
  type StoreCallOptions,
  type StoredValue,
  type TelemetryProviders,
} from 'omnirelay';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';

export interface LogLine {
  readonly at: number;
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

/** One node's way to the shared store; `paused` makes every call hang until its caller gives up (aborts). */
export class SwitchableStore implements ILeaseStore {
  readonly name: string;
  paused = false;

  constructor(readonly inner: ILeaseStore) {
    this.name = `${inner.name} (switchable)`;
  }

  grant(ttlMs: number, options?: StoreCallOptions): Promise<LeaseGrant> {
    return this.#through(options, () => this.inner.grant(ttlMs, options));
  }
  keepAlive(leaseId: string, options?: StoreCallOptions): Promise<LeaseGrant> {
    return this.#through(options, () => this.inner.keepAlive(leaseId, options));
  }
  revoke(leaseId: string, options?: StoreCallOptions): Promise<void> {
    return this.#through(options, () => this.inner.revoke(leaseId, options));
  }
  timeToLive(leaseId: string, options?: StoreCallOptions): Promise<number | undefined> {
    return this.#through(options, () => this.inner.timeToLive(leaseId, options));
  }
  createLeader(scope: string, leaderId: string, leaseId: string, options?: StoreCallOptions): Promise<CreateLeaderResult> {
    return this.#through(options, () => this.inner.createLeader(scope, leaderId, leaseId, options));
  }
  get(scope: string, options?: StoreCallOptions): Promise<LeaderRecord | undefined> {
    return this.#through(options, () => this.inner.get(scope, options));
  }
  watch(scope: string): Observable<LeaderRecord | undefined> {
    return this.inner.watch(scope);
  }
  fencedPut(scope: string, token: bigint, key: string, value: string, options?: StoreCallOptions): Promise<bigint> {
    return this.#through(options, () => this.inner.fencedPut(scope, token, key, value, options));
  }
  read(key: string, options?: StoreCallOptions): Promise<StoredValue | undefined> {
    return this.#through(options, () => this.inner.read(key, options));
  }

  #through<T>(options: StoreCallOptions | undefined, call: () => Promise<T>): Promise<T> {
    if (!this.paused) return call();
    return new Promise<T>((_, reject) => {
      const signal = options?.signal;
      if (signal === undefined) {
        reject(new LeaseStoreUnavailableError(this.name, 'call', 'paused, and the call had no signal to give up with'));
        return;
      }
      if (signal.aborted) reject(signal.reason as Error);
      else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  }
}

export interface LeaderNode {
  readonly id: string;
  readonly host: GrpcHost;
  readonly container: Container;
  readonly agent: LeadershipAgent;
  readonly store: SwitchableStore;
  readonly logs: LogLine[];
  stopped: boolean;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 10 ms until it holds or `limitMs` passed (a hang guard, not a speed target); returns whether it held. */
export async function eventually(done: () => boolean, limitMs = 30_000): Promise<boolean> {
  for (let waited = 0; !done() && waited < limitMs; waited += 10) await pause(10);
  return done();
}

/** Where a cluster's nodes keep their leases. */
export interface StoreBackend {
  readonly name: string;
  /** Extra certificates the cluster's dev PKI issues for the backend (e.g. etcd's server certificate). */
  readonly certificateIds: readonly string[];
  init(pki: DevPkiFiles): Promise<void>;
  /** Adds the backend's profiles, bindings and modules to a node's container (before `leadershipModule`). */
  configure(id: string, pki: DevPkiFiles, container: Container, profiles: Record<string, unknown>): void;
  /** The store a test reads the shared state through (not any node's). */
  readonly reader: ILeaseStore;
  /** Releases what a node's store holds (after its agent stopped). */
  release(store: ILeaseStore): Promise<void>;
  close(): Promise<void>;
}

/** Every node on one EmbeddedLeaseStore, owned here. */
export function embeddedBackend(): StoreBackend {
  const store = new EmbeddedLeaseStore();
  return {
    name: 'embedded',
    certificateIds: [],
    init: () => Promise.resolve(),
    configure: (_id, _pki, container) => {
      container.bind(CONTROL_PLANE_TOKENS.LeaseStore).toConstantValue(new SwitchableStore(store));
    },
    reader: store,
    release: () => Promise.resolve(),
    close: () => Promise.resolve(store.dispose()),
  };
}

export interface EtcdNodeOverride {
  /** The etcd members this node's store dials (default: the test's etcd). */
  readonly endpoints?: readonly string[];
  /** The CA this node's `etcd` profile trusts (default: the cluster's dev CA, which issued etcd's certificate). */
  readonly caFile?: string;
}

/**
 * A real etcd (test/support/etcd.ts; client certificates required, its server certificate from
 * the cluster's dev PKI), started by `init` and stopped by `close`. Each node's store is an
 * EtcdLeaseStore from `etcdLeaseStoreModule` over the node's own factory; `overrides` point a
 * node elsewhere (an unreachable port, a CA that does not trust etcd).
 */
export class EtcdBackend implements StoreBackend {
  readonly name = 'etcd';
  readonly certificateIds = ['etcd-server', 'etcd-reader'];
  readonly overrides = new Map<string, EtcdNodeOverride>();
  readonly prefix = `/omnirelay-feature/${process.pid}/`;
  #etcd: EtcdServer | undefined;
  #factory: IGrpcControlPlaneClientFactory | undefined;
  #reader: EtcdLeaseStore | undefined;

  get etcd(): EtcdServer {
    if (this.#etcd === undefined) throw new Error('EtcdBackend.init() first');
    return this.#etcd;
  }

  get reader(): EtcdLeaseStore {
    if (this.#reader === undefined) throw new Error('EtcdBackend.init() first');
    return this.#reader;
  }

  async init(pki: DevPkiFiles): Promise<void> {
    const server = pki.files['etcd-server']!;
    this.#etcd = await startEtcd({ certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile });
    const reader = pki.files['etcd-reader']!;
    this.#factory = createControlPlaneClientFactory({ options: { profiles: { etcd: { http3: 'disable', tls: { mode: 'mtls', certFile: reader.certFile, keyFile: reader.keyFile, caFile: pki.caFile } } } } });
    this.#reader = new EtcdLeaseStore(this.#factory, { endpoints: [this.#etcd.url], prefix: this.prefix });
  }

  configure(id: string, pki: DevPkiFiles, container: Container, profiles: Record<string, unknown>): void {
    const files = pki.files[id]!;
    const override = this.overrides.get(id) ?? {};
    profiles['etcd'] = { http3: 'disable', connectTimeoutMs: 1_000, tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: override.caFile ?? pki.caFile } };
    container.bind(CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions).toConstantValue({ endpoints: override.endpoints ?? [this.etcd.url], prefix: this.prefix });
    container.load(etcdLeaseStoreModule);
    container.onActivation<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore, (_context, store) => new SwitchableStore(store));
  }

  async release(store: ILeaseStore): Promise<void> {
    if (store instanceof EtcdLeaseStore) await store.dispose();
  }

  async close(): Promise<void> {
    await this.#reader?.dispose();
    await this.#factory?.dispose();
    await this.#etcd?.close();
  }
}

export class LeadershipCluster {
  readonly nodes: LeaderNode[] = [];
  #dir = '';
  #pki: DevPkiFiles | undefined;

  constructor(
    readonly options: Partial<LeadershipOptionsInput> = {},
    readonly backend: StoreBackend = embeddedBackend(),
    /** Bound to TOKENS.Telemetry of every node when given (default: the global providers). */
    readonly telemetry?: TelemetryProviders,
  ) {}

  /** The shared state, read through the backend's own store. */
  get store(): ILeaseStore {
    return this.backend.reader;
  }

  async init(ids: readonly string[]): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'omnirelay-leadership-'));
    this.#pki = await writeDevPki(this.#dir, [...ids, ...this.backend.certificateIds]);
    await this.backend.init(this.#pki);
  }

  get pki(): DevPkiFiles {
    if (this.#pki === undefined) throw new Error('LeadershipCluster.init() first');
    return this.#pki;
  }

  node(id: string): LeaderNode {
    const found = this.nodes.find((n) => n.id === id && !n.stopped);
    if (found === undefined) throw new Error(`no running node ${id}`);
    return found;
  }

  running(): LeaderNode[] {
    return this.nodes.filter((n) => !n.stopped);
  }

  /** The running nodes that lead `scope` now (by their own account). */
  leadersOf(scope: string): LeaderNode[] {
    return this.running().filter((n) => n.agent.isLeader(scope));
  }

  async start(id: string): Promise<LeaderNode> {
    const files = this.pki.files[id];
    if (files === undefined) throw new Error(`no certificate for ${id}`);
    const logs: LogLine[] = [];
    const logger: ControlPlaneLogger = {
      info: (event, fields) => logs.push({ at: Date.now(), event, fields }),
      warn: (event, fields) => logs.push({ at: Date.now(), event, fields }),
    };
    const container = new Container();
    const profiles: Record<string, unknown> = {
      'control-plane': {
        tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: this.pki.caFile },
        connectTimeoutMs: 1_000,
        retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 },
      },
    };
    this.backend.configure(id, this.pki, container, profiles);
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue({ profiles });
    container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(logger);
    if (this.telemetry !== undefined) container.bind(TOKENS.Telemetry).toConstantValue(this.telemetry);
    container.bind(CONTROL_PLANE_TOKENS.LeadershipOptions).toConstantValue({ nodeId: id, ...this.options });
    container.load(grpcControlPlaneModule, leadershipModule);
    const agent = container.get<LeadershipAgent>(CONTROL_PLANE_TOKENS.Leadership);
    const store = container.get<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore);
    if (!(store instanceof SwitchableStore)) throw new Error(`node ${id}: the lease store is not switchable`);
    const host = await GrpcHost.start({ tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: this.pki.caFile } }, [[leadershipV1.LeadershipControlDefinition, leadershipServiceImplementation(agent)]]);
    const node: LeaderNode = { id, host, container, agent, store, logs, stopped: false };
    this.nodes.push(node);
    agent.start();
    return node;
  }

  /** A crash: the host closes at once, the agent goes quiet without resigning (its leases run out). */
  async kill(node: LeaderNode): Promise<void> {
    if (node.stopped) return;
    node.stopped = true;
    await node.host.close(0);
    await node.agent.stop({ resign: false });
    await this.backend.release(node.store.inner);
    await node.container.unbindAllAsync();
  }

  async close(): Promise<void> {
    for (const node of this.running()) {
      node.store.paused = false;
      await this.kill(node);
    }
    await this.backend.close();
    if (this.#dir !== '') await rm(this.#dir, { recursive: true, force: true });
  }
}
