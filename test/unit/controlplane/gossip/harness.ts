import type { Clock } from '../../../../src/clock.js';
import { GossipAgent, type GossipTimers } from '../../../../src/controlplane/gossip/agent.js';
import { resolveGossipOptions, type GossipOptionsInput } from '../../../../src/controlplane/gossip/options.js';
import { InMemoryGossipNetwork, type GossipTransport } from '../../../../src/controlplane/gossip/transport.js';
import type { ControlPlaneLogger } from '../../../../src/controlplane/logger.js';
import { MembershipSource, type MemberStatus } from '../../../../src/controlplane/membership.js';
import type { TelemetryProviders } from '../../../../src/telemetry/internal.js';
import { seeded } from '../../peers/peers.js';

/** A fake clock and timer queue: `advance` runs due timers in time order, draining promises after each. */
export class FakeTime implements Clock, GossipTimers {
  #now = 1_000_000;
  #next = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (due === undefined || entry[1].at < due[1].at || (entry[1].at === due[1].at && entry[0] < due[0]))) due = entry;
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].callback();
      await flush();
    }
    this.#now = end;
    await flush();
  }
}

/** Lets every queued promise continuation run (the in-memory network has no real I/O). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export interface LogRecord {
  readonly level: 'info' | 'warn';
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

export class RecordingLogger implements ControlPlaneLogger {
  readonly records: LogRecord[] = [];
  info(event: string, fields: Record<string, unknown>): void {
    this.records.push({ level: 'info', event, fields });
  }
  warn(event: string, fields: Record<string, unknown>): void {
    this.records.push({ level: 'warn', event, fields });
  }
  events(event: string, peer?: string): LogRecord[] {
    return this.records.filter((r) => r.event === event && (peer === undefined || r.fields['peer'] === peer));
  }
}

export const endpointOf = (id: string): string => `https://${id}.test:7000`;

export interface FakeNode {
  readonly id: string;
  readonly agent: GossipAgent;
  readonly membership: MembershipSource;
  readonly logger: RecordingLogger;
}

/** N agents on one in-memory network, sharing one fake clock; node i seeds from node 0. */
export class FakeCluster {
  readonly time = new FakeTime();
  readonly network = new InMemoryGossipNetwork();
  readonly nodes: FakeNode[] = [];

  constructor(
    readonly seed = 42,
    readonly defaults: Partial<GossipOptionsInput> = {},
  ) {}

  /** Adds a node; `wrap` may stand between the agent and its transport (to record or fail its calls). */
  add(id: string, extra: Partial<GossipOptionsInput> = {}, telemetry?: TelemetryProviders, wrap: (transport: GossipTransport) => GossipTransport = (t) => t): FakeNode {
    const membership = new MembershipSource();
    const logger = new RecordingLogger();
    const seeds = this.nodes.length === 0 ? [] : [endpointOf(this.nodes[0]!.id)];
    const options = resolveGossipOptions({ nodeId: id, advertiseEndpoint: endpointOf(id), seeds, probeIntervalMs: 200, probeTimeoutMs: 100, syncIntervalMs: 2_000, ...this.defaults, ...extra });
    const agent = new GossipAgent({
      transport: wrap(this.network.transport(endpointOf(id), id)),
      membership,
      options,
      clock: this.time,
      timers: this.time,
      random: seeded(this.seed + this.nodes.length),
      logger,
      telemetry,
    });
    this.network.attach(endpointOf(id), id, agent);
    const node = { id, agent, membership, logger };
    this.nodes.push(node);
    return node;
  }

  node(id: string): FakeNode {
    const found = this.nodes.find((n) => n.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  /** What `viewer` thinks of `subject`. */
  statusOf(viewer: string, subject: string): MemberStatus | undefined {
    return this.node(viewer).agent.member(subject)?.status;
  }

  /** Advances in rounds until `done` or `maxMs` of fake time passed; returns the fake time it took. */
  async until(done: () => boolean, maxMs: number, stepMs = 50): Promise<number> {
    let spent = 0;
    while (!done() && spent < maxMs) {
      await this.time.advance(stepMs);
      spent += stepMs;
    }
    return spent;
  }

  async stopAll(): Promise<void> {
    const stopping = this.nodes.map((n) => n.agent.stop({ leave: false }));
    await this.time.advance(0);
    await Promise.all(stopping);
  }
}
