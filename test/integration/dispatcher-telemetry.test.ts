/**
 * One telemetry: the same RPC made through the dispatcher (GrpcOutbound) and through the
 * factory's lightweight unary call, on the same factory instance, produces the same
 * instruments (names, units, kinds), the same metric attribute keys and values, and spans of
 * the same shape (name, kind, status, attribute keys). Only the value of `omnirelay.caller`
 * differs: `dispatcher` vs `control-plane`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Attributes } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Container } from 'inversify';
import type { Dispatcher} from 'omnirelay';
import { controlPlaneV1, createDispatcher, dispatcherModule, TOKENS, type IGrpcControlPlaneClientFactory } from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

/** Exports on demand, each collection holding only what happened since the last one. */
class DeltaReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

interface MetricShape {
  readonly name: string;
  readonly unit: string;
  readonly valueType: number;
  readonly dataPointType: number;
  /** Attributes of every data point, sorted: keys and values must match across callers. */
  readonly points: readonly Attributes[];
}

function sortedAttributes(attributes: Attributes): Attributes {
  return Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b)));
}

function shapeOf(metrics: readonly MetricData[]): MetricShape[] {
  return metrics
    .filter((m) => m.dataPoints.length > 0)
    .map((m) => ({
      name: m.descriptor.name,
      unit: m.descriptor.unit,
      valueType: m.descriptor.valueType,
      dataPointType: m.dataPointType,
      points: m.dataPoints.map((p) => sortedAttributes(p.attributes)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function spanShape(span: ReadableSpan): { name: string; kind: number; status: number; attributeKeys: string[]; events: string[] } {
  return { name: span.name, kind: span.kind, status: span.status.code, attributeKeys: Object.keys(span.attributes).sort(), events: span.events.map((e) => e.name) };
}

describe('one telemetry for dispatcher outbound and factory unary calls', () => {
  let pki: TestPki;
  let node: TestNode;
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  let dispatcher: Dispatcher;
  let deadDispatcher: Dispatcher;
  const reader = new DeltaReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const DEAD = 'https://127.0.0.1:1';

  beforeAll(async () => {
    pki = await createTestPki();
    node = await startNode('node-a', pki);
    ({ container } = containerWith(
      mtlsOptions(pki, pki.client, {
        profiles: { 'control-plane': { http3: 'disable', deadlineMs: 5_000, connectTimeoutMs: 2_000, retry: { maxAttempts: 1 } } },
        endpoints: { 'node-a': { url: node.url } },
      }),
      (c) => {
        c.bind(TOKENS.Telemetry).toConstantValue({ meterProvider, tracerProvider });
        c.bind(TOKENS.DispatcherConfig).toConstantValue({ name: 'telemetry-test', outbounds: { [ControlPlaneDefinition.fullName]: { endpoint: 'node-a' } } });
      },
    ));
    container.load(dispatcherModule);
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    dispatcher = container.get<Dispatcher>(TOKENS.Dispatcher);
    // A second dispatcher over the same factory instance, whose outbound points at a dead port.
    deadDispatcher = createDispatcher(factory, { name: 'telemetry-test', outbounds: { [ControlPlaneDefinition.fullName]: { endpoint: DEAD } } });
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await node.host.close();
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
    await pki.cleanup();
  });

  /** Runs `call`, returns the metrics it recorded and its one span. */
  async function observe(call: () => Promise<unknown>): Promise<{ metrics: MetricShape[]; span: ReadableSpan }> {
    await reader.collect();
    spans.reset();
    await call().catch(() => undefined);
    const { resourceMetrics } = await reader.collect();
    const finished = spans.getFinishedSpans();
    expect(finished).toHaveLength(1);
    return { metrics: shapeOf(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)), span: finished[0]! };
  }

  it.each([
    ['a successful call', 'node-a', () => dispatcher, 0],
    ['a call that fails (UNAVAILABLE)', DEAD, () => deadDispatcher, 14],
  ])('%s: same instruments, units, attribute keys and values, and span shape', async (_label, endpoint, viaDispatcher, status) => {
    // Warm the connection so neither measured call pays for the handshake differently.
    await factory.unary(ControlPlaneDefinition, 'ping', ping(0), { endpoint }).catch(() => undefined);

    const outbound = await observe(() => viaDispatcher().call(ControlPlaneDefinition, 'ping', ping(1)));
    const direct = await observe(() => factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint }));

    expect(outbound.metrics.map((m) => m.name)).toEqual(
      expect.arrayContaining(['grpc_outbound_requests', 'grpc_outbound_request_duration_seconds', 'grpc_outbound_peer_choices']),
    );
    expect(outbound.metrics).toEqual(direct.metrics);
    const requests = outbound.metrics.find((m) => m.name === 'grpc_outbound_requests');
    expect(requests?.points).toEqual([expect.objectContaining({ 'rpc.grpc.status_code': status, 'rpc.method': 'Ping', 'omnirelay.profile': 'control-plane' })]);
    expect(outbound.metrics.find((m) => m.name === 'grpc_outbound_request_duration_seconds')?.unit).toBe('s');

    expect(spanShape(outbound.span)).toEqual(spanShape(direct.span));
    expect(outbound.span.name).toBe('omnirelay.controlplane.v1.ControlPlane/Ping');
    expect(outbound.span.attributes['omnirelay.caller']).toBe('dispatcher');
    expect(direct.span.attributes['omnirelay.caller']).toBe('control-plane');
    expect(outbound.span.attributes['omnirelay.breaker.state']).toBe('closed');
    // Every other span attribute has the same value, not just the same key.
    const rest = (span: ReadableSpan): Attributes => sortedAttributes({ ...span.attributes, 'omnirelay.caller': undefined });
    expect(rest(outbound.span)).toEqual(rest(direct.span));
  });
});
