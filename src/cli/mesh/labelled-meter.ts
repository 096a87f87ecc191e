/**
 * A MeterProvider over another one that adds fixed attributes (here `node`) to everything
 * recorded through it. The mesh runs N nodes in one process on one MeterProvider (one
 * Prometheus endpoint); each node's container gets its own labelled view, so the series of
 * different nodes stay apart instead of adding up (counters) or overwriting each other
 * (gauges). Only `@opentelemetry/api` types: it wraps whatever provider it is given.
 */
import type {
  Attributes,
  BatchObservableCallback,
  BatchObservableResult,
  Context,
  Counter,
  Gauge,
  Histogram,
  Meter,
  MeterOptions,
  MeterProvider,
  MetricOptions,
  Observable,
  ObservableCallback,
  ObservableCounter,
  ObservableGauge,
  ObservableResult,
  ObservableUpDownCounter,
  UpDownCounter,
} from '@opentelemetry/api';

type Labels = Readonly<Attributes>;

const withLabels = (labels: Labels, attributes: Attributes | undefined): Attributes => (attributes === undefined ? { ...labels } : { ...attributes, ...labels });

/** The labelled observable and the inner one it stands for (batch callbacks observe the inner one). */
class LabelledObservable implements Observable {
  readonly #callbacks = new Map<ObservableCallback, ObservableCallback>();

  constructor(
    readonly inner: Observable,
    readonly labels: Labels,
  ) {}

  addCallback(callback: ObservableCallback): void {
    if (this.#callbacks.has(callback)) return;
    const wrapped: ObservableCallback = (result: ObservableResult) =>
      callback({ observe: (value: number, attributes?: Attributes) => result.observe(value, withLabels(this.labels, attributes)) });
    this.#callbacks.set(callback, wrapped);
    this.inner.addCallback(wrapped);
  }

  removeCallback(callback: ObservableCallback): void {
    const wrapped = this.#callbacks.get(callback);
    if (wrapped === undefined) return;
    this.#callbacks.delete(callback);
    this.inner.removeCallback(wrapped);
  }
}

class LabelledMeter implements Meter {
  readonly #batch = new Map<BatchObservableCallback, BatchObservableCallback>();

  constructor(
    readonly inner: Meter,
    readonly labels: Labels,
  ) {}

  createCounter(name: string, options?: MetricOptions): Counter {
    const inner = this.inner.createCounter(name, options);
    return { add: (value: number, attributes?: Attributes, context?: Context) => inner.add(value, withLabels(this.labels, attributes), context) };
  }

  createUpDownCounter(name: string, options?: MetricOptions): UpDownCounter {
    const inner = this.inner.createUpDownCounter(name, options);
    return { add: (value: number, attributes?: Attributes, context?: Context) => inner.add(value, withLabels(this.labels, attributes), context) };
  }

  createHistogram(name: string, options?: MetricOptions): Histogram {
    const inner = this.inner.createHistogram(name, options);
    return { record: (value: number, attributes?: Attributes, context?: Context) => inner.record(value, withLabels(this.labels, attributes), context) };
  }

  createGauge(name: string, options?: MetricOptions): Gauge {
    const inner = this.inner.createGauge(name, options);
    return { record: (value: number, attributes?: Attributes, context?: Context) => inner.record(value, withLabels(this.labels, attributes), context) };
  }

  createObservableGauge(name: string, options?: MetricOptions): ObservableGauge {
    return new LabelledObservable(this.inner.createObservableGauge(name, options), this.labels);
  }

  createObservableCounter(name: string, options?: MetricOptions): ObservableCounter {
    return new LabelledObservable(this.inner.createObservableCounter(name, options), this.labels);
  }

  createObservableUpDownCounter(name: string, options?: MetricOptions): ObservableUpDownCounter {
    return new LabelledObservable(this.inner.createObservableUpDownCounter(name, options), this.labels);
  }

  addBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    if (this.#batch.has(callback)) return;
    const wrapped: BatchObservableCallback = (result: BatchObservableResult) =>
      callback({ observe: (metric: Observable, value: number, attributes?: Attributes) => result.observe(innerOf(metric), value, withLabels(this.labels, attributes)) });
    this.#batch.set(callback, wrapped);
    this.inner.addBatchObservableCallback(wrapped, observables.map(innerOf));
  }

  removeBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    const wrapped = this.#batch.get(callback);
    if (wrapped === undefined) return;
    this.#batch.delete(callback);
    this.inner.removeBatchObservableCallback(wrapped, observables.map(innerOf));
  }
}

function innerOf(observable: Observable): Observable {
  return observable instanceof LabelledObservable ? observable.inner : observable;
}

/** `provider` seen through `labels`: every measurement made through the result carries them (they win over a clash). */
export function labelledMeterProvider(provider: MeterProvider, labels: Labels): MeterProvider {
  const frozen = Object.freeze({ ...labels });
  return {
    getMeter: (name: string, version?: string, options?: MeterOptions): Meter => new LabelledMeter(provider.getMeter(name, version, options), frozen),
  };
}
