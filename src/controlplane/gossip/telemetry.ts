import type { Counter, Histogram, Meter, ObservableCallback, ObservableGauge } from '@opentelemetry/api';
import { MeterBinding, type TelemetryProviders } from '../../telemetry/internal.js';
import { UNIT_SECONDS } from '../../telemetry/names.js';
import type { MemberStatus } from '../membership.js';

/** Observable gauge, members by `status` as this node sees them (itself included); Prometheus: `mesh_gossip_members`. */
export const METRIC_GOSSIP_MEMBERS = 'mesh_gossip_members';
/** Histogram, unit `s`: round-trip time of answered direct pings; Prometheus: `mesh_gossip_rtt_seconds`. */
export const METRIC_GOSSIP_RTT = 'mesh_gossip_rtt_seconds';
/** Observable gauge: Lifeguard's local health score (0 healthy … awarenessMaxMultiplier − 1); Prometheus: `mesh_gossip_health_score`. */
export const METRIC_GOSSIP_HEALTH = 'mesh_gossip_health_score';
/** Counter by `direction` (`inbound` | `outbound`), `outcome` (`ok` | `rejected` | `failed`) and `message`; Prometheus: `mesh_gossip_messages_total`. */
export const METRIC_GOSSIP_MESSAGES = 'mesh_gossip_messages';

export const ATTR_GOSSIP_STATUS = 'status';
export const ATTR_GOSSIP_DIRECTION = 'direction';
export const ATTR_GOSSIP_OUTCOME = 'outcome';
/** The gossip RPC (`ping`, `pingReq`, `sync`, `leave`). */
export const ATTR_GOSSIP_MESSAGE = 'message';

/** RTT buckets (seconds): 0.25 ms .. 1 s, a LAN's range. */
const RTT_BUCKETS_SECONDS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export type GossipDirection = 'inbound' | 'outbound';
/** `ok`; `rejected`: refused by a check (identity, cluster, size, shape); `failed`: no answer (timeout, unreachable). */
export type GossipOutcome = 'ok' | 'rejected' | 'failed';

interface Instruments {
  readonly rtt: Histogram;
  readonly messages: Counter;
  readonly members: ObservableGauge;
  readonly health: ObservableGauge;
}

const STATUSES: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];

/**
 * The gossip agent's instruments, from the injected meter provider or the global one (like
 * RpcTelemetry). RPC metrics of gossip calls are the factory's own; these are the agent's.
 */
export class GossipTelemetry {
  readonly #binding: MeterBinding<Instruments>;
  readonly #gauges: ObservableGauge[] = [];
  readonly #report: ObservableCallback;
  readonly #reportHealth: ObservableCallback;
  #disposed = false;

  constructor(providers: TelemetryProviders | undefined, counts: () => Readonly<Record<MemberStatus, number>>, healthScore: () => number) {
    this.#report = (result) => {
      if (this.#disposed) return;
      const now = counts();
      for (const status of STATUSES) result.observe(now[status], { [ATTR_GOSSIP_STATUS]: status });
    };
    this.#reportHealth = (result) => {
      if (!this.#disposed) result.observe(healthScore());
    };
    this.#binding = new MeterBinding(providers?.meterProvider, (meter: Meter) => {
      const members = meter.createObservableGauge(METRIC_GOSSIP_MEMBERS, { description: 'Gossip members by status, as this node sees them (itself included).' });
      members.addCallback(this.#report);
      const health = meter.createObservableGauge(METRIC_GOSSIP_HEALTH, { description: "Lifeguard local health score of this node's gossip agent: 0 healthy; its probe interval and timeouts are scaled by score + 1." });
      health.addCallback(this.#reportHealth);
      this.#gauges.push(members, health);
      return {
        members,
        health,
        rtt: meter.createHistogram(METRIC_GOSSIP_RTT, { description: 'Round-trip time of answered gossip pings.', unit: UNIT_SECONDS, advice: { explicitBucketBoundaries: RTT_BUCKETS_SECONDS } }),
        messages: meter.createCounter(METRIC_GOSSIP_MESSAGES, { description: 'Gossip messages by direction, outcome and RPC.' }),
      };
    });
    this.#binding.get();
  }

  recordRtt(seconds: number): void {
    if (!this.#disposed) this.#binding.get().rtt.record(seconds);
  }

  recordMessage(direction: GossipDirection, outcome: GossipOutcome, message: string): void {
    if (!this.#disposed) this.#binding.get().messages.add(1, { [ATTR_GOSSIP_DIRECTION]: direction, [ATTR_GOSSIP_OUTCOME]: outcome, [ATTR_GOSSIP_MESSAGE]: message });
  }

  /** Stops reporting; the gauge callback is removed. */
  dispose(): void {
    this.#disposed = true;
    for (const gauge of this.#gauges.splice(0)) {
      gauge.removeCallback(this.#report);
      gauge.removeCallback(this.#reportHealth);
    }
  }
}
