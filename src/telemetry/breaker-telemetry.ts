import type { Counter, Meter, ObservableCallback, ObservableGauge } from '@opentelemetry/api';
import { MeterBinding, type TelemetryProviders } from './internal.js';
import { ATTR_BREAKER_STATE, ATTR_PEER, ATTR_PROFILE, METRIC_CIRCUIT_BREAKER_STATE, METRIC_CIRCUIT_BREAKER_TRANSITIONS } from './names.js';

/** Circuit states as the metrics name them. */
export type CircuitStateName = 'closed' | 'half-open' | 'open';

/** One circuit as the state gauge reports it. */
export interface CircuitSnapshot {
  readonly peer: string;
  readonly profile: string;
  readonly state: CircuitStateName;
}

/** Gauge value of each state: higher is worse. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitStateName, number>> = { closed: 0, 'half-open': 1, open: 2 };

interface BreakerInstruments {
  readonly transitions: Counter;
  readonly state: ObservableGauge;
}

/**
 * Circuit breaker metrics: `omnirelay_circuit_breaker_transitions_total` (counter, one per
 * state change, attributes `omnirelay.peer`, `omnirelay.profile`, `omnirelay.breaker.state`
 * = the new state) and `omnirelay_circuit_breaker_state` (gauge per peer and profile:
 * 0 closed, 1 half-open, 2 open), read from `circuits` at each collection.
 */
export class BreakerTelemetry {
  readonly #instruments: MeterBinding<BreakerInstruments>;
  readonly #gauges: ObservableGauge[] = [];
  readonly #report: ObservableCallback;
  #disposed = false;

  constructor(providers: TelemetryProviders | undefined, circuits: () => Iterable<CircuitSnapshot>) {
    this.#report = (result) => {
      if (this.#disposed) return;
      for (const c of circuits()) result.observe(CIRCUIT_STATE_VALUE[c.state], { [ATTR_PEER]: c.peer, [ATTR_PROFILE]: c.profile });
    };
    this.#instruments = new MeterBinding(providers?.meterProvider, (meter: Meter) => {
      const state = meter.createObservableGauge(METRIC_CIRCUIT_BREAKER_STATE, {
        description: 'Circuit state per peer and profile: 0 closed, 1 half-open, 2 open.',
      });
      state.addCallback(this.#report);
      this.#gauges.push(state);
      return {
        transitions: meter.createCounter(METRIC_CIRCUIT_BREAKER_TRANSITIONS, { description: 'Circuit breaker state changes, by peer, profile and new state.' }),
        state,
      };
    });
    this.#instruments.get();
  }

  /** Stops reporting: the gauge callbacks are removed, so a disposed breaker is neither observed nor kept alive by the meter. */
  dispose(): void {
    this.#disposed = true;
    for (const gauge of this.#gauges.splice(0)) gauge.removeCallback(this.#report);
  }

  recordTransition(change: CircuitSnapshot): void {
    if (this.#disposed) return;
    this.#instruments.get().transitions.add(1, { [ATTR_PEER]: change.peer, [ATTR_PROFILE]: change.profile, [ATTR_BREAKER_STATE]: change.state });
  }
}
