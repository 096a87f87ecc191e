import { describe, expect, it } from '@jest/globals';
import type { ObservableResult } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { labelledMeterProvider } from '../../../src/cli/mesh/labelled-meter.js';

class Reader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

async function points(reader: Reader, name: string): Promise<{ attributes: Record<string, unknown>; value: unknown }[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints.map((p) => ({ attributes: { ...p.attributes }, value: p.value }))));
}

describe('labelledMeterProvider', () => {
  it('keeps the series of each view apart: counters do not add up, gauges do not overwrite each other', async () => {
    const reader = new Reader();
    const provider = new MeterProvider({ readers: [reader] });
    const a = labelledMeterProvider(provider, { node: 'a' }).getMeter('omnirelay');
    const b = labelledMeterProvider(provider, { node: 'b' }).getMeter('omnirelay');
    a.createCounter('calls').add(2, { method: 'ping' });
    b.createCounter('calls').add(5, { method: 'ping' });
    let calledA = 0;
    const report = (value: number) => (result: ObservableResult) => result.observe(value, { status: 'alive' });
    const reportA = (result: ObservableResult): void => {
      calledA++;
      report(3)(result);
    };
    const gaugeA = a.createObservableGauge('members');
    gaugeA.addCallback(reportA);
    b.createObservableGauge('members').addCallback(report(2));

    expect(await points(reader, 'calls')).toEqual(
      expect.arrayContaining([
        { attributes: { method: 'ping', node: 'a' }, value: 2 },
        { attributes: { method: 'ping', node: 'b' }, value: 5 },
      ]),
    );
    expect(await points(reader, 'members')).toEqual(
      expect.arrayContaining([
        { attributes: { status: 'alive', node: 'a' }, value: 3 },
        { attributes: { status: 'alive', node: 'b' }, value: 2 },
      ]),
    );
    // Removing the callback through the view removes the wrapped one: it is not called again.
    gaugeA.removeCallback(reportA);
    const before = calledA;
    await reader.collect();
    expect(calledA).toBe(before);
    await provider.shutdown();
  });

  it('the labels win over a clashing attribute, and batch callbacks observe through the view', async () => {
    const reader = new Reader();
    const provider = new MeterProvider({ readers: [reader] });
    const meter = labelledMeterProvider(provider, { node: 'a' }).getMeter('omnirelay');
    meter.createHistogram('latency').record(1, { node: 'forged' });
    const gauge = meter.createObservableGauge('health');
    let batchCalls = 0;
    const batch = (result: { observe: (metric: typeof gauge, value: number) => void }): void => {
      batchCalls++;
      result.observe(gauge, 7);
    };
    meter.addBatchObservableCallback(batch, [gauge]);
    expect((await points(reader, 'latency')).map((p) => p.attributes)).toEqual([{ node: 'a' }]);
    expect(await points(reader, 'health')).toEqual([{ attributes: { node: 'a' }, value: 7 }]);
    meter.removeBatchObservableCallback(batch, [gauge]);
    const before = batchCalls;
    await reader.collect();
    expect(batchCalls).toBe(before);
    await provider.shutdown();
  });
});
