import type { Observable } from 'rxjs';
import { LeadershipAgent } from '../../../../src/controlplane/leadership/agent.js';
import { EmbeddedLeaseStore } from '../../../../src/controlplane/leadership/embedded-store.js';
import { LeaseStoreUnavailableError } from '../../../../src/controlplane/leadership/errors.js';
import type { CreateLeaderResult, ILeaseStore, LeaderRecord, LeaseGrant, StoreCallOptions, StoredValue } from '../../../../src/controlplane/leadership/lease-store.js';
import { resolveLeadershipOptions, type LeadershipOptionsInput } from '../../../../src/controlplane/leadership/options.js';
import type { IGrpcControlPlaneClientFactory } from '../../../../src/factory/types.js';
import type { TelemetryProviders } from '../../../../src/telemetry/internal.js';
import { seeded } from '../../peers/peers.js';
import { FakeTime, RecordingLogger } from '../gossip/harness.js';

export { FakeTime, RecordingLogger };

/** How a node's view of the store behaves: `ok`, every call hangs until aborted, or every call fails at once. */
export type StoreMode = 'ok' | 'hang' | 'fail';

/**
 * One node's connection to the shared store, with a switch to make its calls hang (a paused or
 * partitioned node) or fail (the store unreachable). Watches pass through.
 */
export class SwitchableStore implements ILeaseStore {
  readonly name: string;
  mode: StoreMode = 'ok';
  /** In `ok` mode: the store applies each call at once, but its answer reaches the node this many ms (fake time) later. */
  answerDelayMs = 0;
  /** Calls made, by operation (diagnostics). */
  readonly calls: string[] = [];

  constructor(
    readonly inner: ILeaseStore,
    readonly time: FakeTime,
  ) {
    this.name = `${inner.name} (switchable)`;
  }

  grant(ttlMs: number, options?: StoreCallOptions): Promise<LeaseGrant> {
    return this.#through('grant', options, () => this.inner.grant(ttlMs, options));
  }
  keepAlive(leaseId: string, options?: StoreCallOptions): Promise<LeaseGrant> {
    return this.#through('keepAlive', options, () => this.inner.keepAlive(leaseId, options));
  }
  revoke(leaseId: string, options?: StoreCallOptions): Promise<void> {
    return this.#through('revoke', options, () => this.inner.revoke(leaseId, options));
  }
  timeToLive(leaseId: string, options?: StoreCallOptions): Promise<number | undefined> {
    return this.#through('timeToLive', options, () => this.inner.timeToLive(leaseId, options));
  }
  createLeader(scope: string, leaderId: string, leaseId: string, options?: StoreCallOptions): Promise<CreateLeaderResult> {
    return this.#through('createLeader', options, () => this.inner.createLeader(scope, leaderId, leaseId, options));
  }
  get(scope: string, options?: StoreCallOptions): Promise<LeaderRecord | undefined> {
    return this.#through('get', options, () => this.inner.get(scope, options));
  }
  watch(scope: string): Observable<LeaderRecord | undefined> {
    return this.inner.watch(scope);
  }
  fencedPut(scope: string, token: bigint, key: string, value: string, options?: StoreCallOptions): Promise<bigint> {
    return this.#through('fencedPut', options, () => this.inner.fencedPut(scope, token, key, value, options));
  }
  read(key: string, options?: StoreCallOptions): Promise<StoredValue | undefined> {
    return this.#through('read', options, () => this.inner.read(key, options));
  }

  #through<T>(operation: string, options: StoreCallOptions | undefined, call: () => Promise<T>): Promise<T> {
    this.calls.push(operation);
    if (this.mode === 'ok' && this.answerDelayMs === 0) return call();
    if (this.mode === 'ok') {
      const answer = call();
      return new Promise<T>((resolve, reject) => {
        const timer = this.time.setTimeout(() => {
          options?.signal?.removeEventListener('abort', onAbort);
          answer.then(resolve, reject);
        }, this.answerDelayMs);
        const onAbort = (): void => {
          this.time.clearTimeout(timer);
          answer.catch(() => undefined);
          reject(options?.signal?.reason as Error);
        };
        options?.signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    if (this.mode === 'fail') return Promise.reject(new LeaseStoreUnavailableError(this.name, operation, 'unreachable (test)'));
    return new Promise<T>((_, reject) => {
      const signal = options?.signal;
      if (signal === undefined) return;
      if (signal.aborted) reject(signal.reason as Error);
      else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  }
}

/** The agent never calls the factory in these tests (only `client()` would). */
export const unusedFactory = new Proxy(
  {},
  {
    // Not a thenable (containers check), and every method throws when called.
    get: (_, name) =>
      name === 'then' || typeof name === 'symbol'
        ? undefined
        : () => {
            throw new Error(`the factory was not expected to be used (${String(name)})`);
          },
  },
) as IGrpcControlPlaneClientFactory;

export interface FakeNode {
  readonly id: string;
  readonly agent: LeadershipAgent;
  readonly store: SwitchableStore;
  readonly logger: RecordingLogger;
}

/** N candidates on one embedded store, all on one fake clock. */
export class FakeElection {
  readonly time = new FakeTime();
  readonly store = new EmbeddedLeaseStore({ clock: this.time, timers: this.time });
  readonly nodes: FakeNode[] = [];
  readonly #random: () => number;

  constructor(seed: number) {
    this.#random = seeded(seed);
  }

  add(id: string, options: Partial<LeadershipOptionsInput> = {}, telemetry?: TelemetryProviders): FakeNode {
    const store = new SwitchableStore(this.store, this.time);
    const logger = new RecordingLogger();
    const agent = new LeadershipAgent({
      factory: unusedFactory,
      store,
      options: resolveLeadershipOptions({ nodeId: id, ...options }),
      clock: this.time,
      timers: this.time,
      random: this.#random,
      logger,
      telemetry,
    });
    const node = { id, agent, store, logger };
    this.nodes.push(node);
    return node;
  }

  node(id: string): FakeNode {
    const found = this.nodes.find((n) => n.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  leadersOf(scope: string): string[] {
    return this.nodes.filter((n) => n.agent.isLeader(scope)).map((n) => n.id);
  }

  /** Advances the fake clock in 10 ms steps until `done` holds or `limitMs` passed; returns whether it held. */
  async until(done: () => boolean, limitMs: number): Promise<boolean> {
    for (let waited = 0; !done() && waited < limitMs; waited += 10) await this.time.advance(10);
    return done();
  }

  async stopAll(): Promise<void> {
    for (const node of this.nodes) {
      node.store.mode = 'ok';
      node.store.answerDelayMs = 0;
      await node.agent.stop({ resign: false });
    }
    this.store.dispose();
  }
}
