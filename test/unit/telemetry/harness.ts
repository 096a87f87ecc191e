/** In-memory OTel SDK wiring for the telemetry unit tests. */
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram, MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Attributes } from '@opentelemetry/api';

/** A reader that only exports when the test asks it to. */
export class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Harness {
  readonly meterProvider: MeterProvider;
  readonly tracerProvider: BasicTracerProvider;
  /** Fake monotonic clock (ms) to hand to the telemetry classes. */
  readonly clock: () => number;
  advance(ms: number): void;
  metrics(): Promise<MetricData[]>;
  metric(name: string): Promise<MetricData>;
  spans(): ReadableSpan[];
  reset(): void;
  shutdown(): Promise<void>;
}

export function createHarness(): Harness {
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  let now = 1_000;

  const collect = async (): Promise<MetricData[]> => {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw new Error(`metric collection errors: ${errors.map(String).join('; ')}`);
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  };

  return {
    meterProvider,
    tracerProvider,
    clock: () => now,
    advance: (ms) => {
      now += ms;
    },
    metrics: collect,
    metric: async (name) => {
      const found = (await collect()).find((m) => m.descriptor.name === name);
      if (found === undefined) throw new Error(`metric ${name} not collected`);
      return found;
    },
    spans: () => spanExporter.getFinishedSpans(),
    reset: () => spanExporter.reset(),
    shutdown: async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/** Data points of a metric whose attributes include every given key/value. */
export function pointsMatching(metric: MetricData, attrs: Attributes): DataPoint<number | Histogram>[] {
  const points = metric.dataPoints as DataPoint<number | Histogram>[];
  return points.filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
}

export function numberValue(point: DataPoint<number | Histogram> | undefined): number {
  if (point === undefined || typeof point.value !== 'number') throw new Error('expected a numeric data point');
  return point.value;
}

export function histogramValue(point: DataPoint<number | Histogram> | undefined): Histogram {
  if (point === undefined || typeof point.value === 'number') throw new Error('expected a histogram data point');
  return point.value;
}
