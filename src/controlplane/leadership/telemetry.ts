import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import { MeterBinding, type TelemetryProviders } from '../../telemetry/internal.js';
import { UNIT_SECONDS } from '../../telemetry/names.js';

/** Counter by `scope`, `transition` (`elected` | `stepped_down`) and `reason`; Prometheus: `mesh_leadership_transitions_total`. */
export const METRIC_LEADERSHIP_TRANSITIONS = 'mesh_leadership_transitions';
/** Histogram, unit `s`, by `scope`: from a candidate's first campaign attempt to its election; Prometheus: `mesh_leadership_election_duration_seconds`. */
export const METRIC_LEADERSHIP_ELECTION_DURATION = 'mesh_leadership_election_duration_seconds';
/** Counter by `scope`: fenced writes of this node the store rejected as stale; Prometheus: `mesh_leadership_stale_fence_rejections_total`. */
export const METRIC_LEADERSHIP_STALE_FENCE_REJECTIONS = 'mesh_leadership_stale_fence_rejections';

export const ATTR_LEADERSHIP_SCOPE = 'scope';
export const ATTR_LEADERSHIP_TRANSITION = 'transition';
/** Why the transition happened: `campaign` for an election; `lease_lost`, `renew_deadline`, `superseded`, `resigned` for a step-down. */
export const ATTR_LEADERSHIP_REASON = 'reason';

/** Election buckets (seconds): 1 ms .. 10 s. */
const ELECTION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type LeadershipTransitionKind = 'elected' | 'stepped_down';

interface Instruments {
  readonly transitions: Counter;
  readonly election: Histogram;
  readonly stale: Counter;
}

/** The leadership agent's instruments, from the injected meter provider or the global one (like GossipTelemetry). */
export class LeadershipTelemetry {
  readonly #binding: MeterBinding<Instruments>;
  #disposed = false;

  constructor(providers: TelemetryProviders | undefined) {
    this.#binding = new MeterBinding(providers?.meterProvider, (meter: Meter) => ({
      transitions: meter.createCounter(METRIC_LEADERSHIP_TRANSITIONS, { description: 'Leadership transitions of this node by scope, kind and reason.' }),
      election: meter.createHistogram(METRIC_LEADERSHIP_ELECTION_DURATION, { description: "Time from a candidate's first campaign attempt to its election.", unit: UNIT_SECONDS, advice: { explicitBucketBoundaries: ELECTION_BUCKETS_SECONDS } }),
      stale: meter.createCounter(METRIC_LEADERSHIP_STALE_FENCE_REJECTIONS, { description: 'Fenced writes of this node rejected because their fence token was stale.' }),
    }));
    this.#binding.get();
  }

  recordTransition(scope: string, transition: LeadershipTransitionKind, reason: string): void {
    if (!this.#disposed) this.#binding.get().transitions.add(1, { [ATTR_LEADERSHIP_SCOPE]: scope, [ATTR_LEADERSHIP_TRANSITION]: transition, [ATTR_LEADERSHIP_REASON]: reason });
  }

  recordElection(scope: string, seconds: number): void {
    if (!this.#disposed) this.#binding.get().election.record(seconds, { [ATTR_LEADERSHIP_SCOPE]: scope });
  }

  recordStaleFence(scope: string): void {
    if (!this.#disposed) this.#binding.get().stale.add(1, { [ATTR_LEADERSHIP_SCOPE]: scope });
  }

  dispose(): void {
    this.#disposed = true;
  }
}
