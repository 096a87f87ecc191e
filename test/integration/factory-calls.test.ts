import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import { controlPlaneV1, RpcError, TOKENS, type IGrpcControlPlaneClientFactory } from 'omnirelay';
import type { Container } from 'inversify';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;

describe('factory calls between two mTLS hosts with the defaults (HTTP/3 preferred; each GrpcHost serves HTTP/2 and HTTP/3 on one port)', () => {
  let pki: TestPki;
  let nodeA: TestNode;
  let nodeB: TestNode;
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });

  beforeAll(async () => {
    pki = await createTestPki();
    nodeA = await startNode('node-a', pki);
    nodeB = await startNode('node-b', pki);
    ({ container } = containerWith(
      mtlsOptions(pki, pki.client, { endpoints: { 'node-a': { url: nodeA.url, metadata: { 'x-zone': 'eu-1' } }, 'node-b': { url: nodeB.url } } }),
      (c) => c.bind(TOKENS.Telemetry).toConstantValue({ meterProvider, tracerProvider }),
    ));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await Promise.all([nodeA.host.close(), nodeB.host.close()]);
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
    await pki.cleanup();
  });

  it('makes a lightweight unary call and reports endpoint, protocol and the TLS peer on both sides', async () => {
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'node-a' });
    expect(result.message).toMatchObject({ node: 'node-a', sequence: 1, clientIdentity: 'client' });
    expect(result.protocol).toBe('h3');
    expect(result.endpoint).toBe(new URL(nodeA.url).host);
    expect(result.attempts).toBe(1);
    expect(result.peer.certificate?.subject).toContain('CN=server');
    expect(result.peer.certificate?.checkIssued(new (await import('node:crypto')).X509Certificate(pki.ca.certPem))).toBe(true);
  });

  it('gives typed clients for generated services, unary and server-streaming, by URL', async () => {
    const client = factory.client(ControlPlaneDefinition, { endpoint: nodeB.url });
    await expect(client.ping(ping(7))).resolves.toMatchObject({ node: 'node-b', sequence: 7 });
    const events: number[] = [];
    for await (const event of client.watch({ fromNode: 'test', count: 3, intervalMs: 5 })) events.push(event.sequence);
    expect(events).toEqual([1, 2, 3]);
  });

  it('enforces deadlines and caller cancellation over the same path', async () => {
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(2, 50), { endpoint: 'node-a', deadlineMs: 100 })).rejects.toMatchObject({ code: 'RPC_FAILED', statusName: 'DEADLINE_EXCEEDED' });
    const controller = new AbortController();
    const pending = factory.unary(ControlPlaneDefinition, 'ping', ping(3, 50), { endpoint: 'node-a', signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await expect(pending).rejects.toMatchObject({ code: 'RPC_FAILED', statusName: 'CANCELLED' });
  });

  it('sends the endpoint metadata from the options and the call metadata to the server', async () => {
    await factory.unary(ControlPlaneDefinition, 'ping', ping(11), { endpoint: 'node-a', metadata: { 'x-request-id': 'r-11', 'x-trace-bin': Buffer.from([1, 2, 3]) } });
    expect(nodeA.metadata.at(-1)).toMatchObject({ 'x-zone': 'eu-1', 'x-request-id': 'r-11', 'x-trace-bin': Buffer.from([1, 2, 3]).toString('base64') });
    const client = factory.client(ControlPlaneDefinition, { endpoint: 'node-a' });
    await client.ping(ping(12), { metadata: { 'x-zone': 'override' } });
    expect(nodeA.metadata.at(-1)?.['x-zone']).toBe('override');
  });

  it('retries a retryable failure on another peer inside the deadline', async () => {
    // A port nothing listens on: the first peer answers UNAVAILABLE, the retry goes to node-b.
    const dead = 'https://127.0.0.1:1';
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(4), { peers: [dead, nodeB.url], deadlineMs: 5_000 });
    expect(result.message.node).toBe('node-b');
    expect([1, 2]).toContain(result.attempts);
    const failing = factory.unary(ControlPlaneDefinition, 'ping', ping(5), { endpoint: dead, deadlineMs: 5_000 });
    await expect(failing).rejects.toBeInstanceOf(RpcError);
    await expect(failing).rejects.toMatchObject({ statusName: 'UNAVAILABLE' });
  });

  it('records the shared outbound instruments and one client span per call', async () => {
    spans.reset();
    await factory.unary(ControlPlaneDefinition, 'ping', ping(10), { endpoint: 'node-a' });
    await reader.forceFlush();
    const exported: ResourceMetrics[] = metrics.getMetrics();
    const all = exported.at(-1)!.scopeMetrics.flatMap((s) => s.metrics);
    const requests = all.find((m) => m.descriptor.name === 'grpc_outbound_requests');
    const duration = all.find((m) => m.descriptor.name === 'grpc_outbound_request_duration_seconds');
    expect(duration?.descriptor.unit).toBe('s');
    const point = requests?.dataPoints.find((p) => p.attributes['omnirelay.endpoint'] === new URL(nodeA.url).host && p.attributes['rpc.grpc.status_code'] === 0);
    expect(point?.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'omnirelay.controlplane.v1.ControlPlane',
      'rpc.method': 'Ping',
      'omnirelay.protocol': 'h3',
      'omnirelay.profile': 'control-plane',
    });
    const span = spans.getFinishedSpans().find((s) => s.name === 'omnirelay.controlplane.v1.ControlPlane/Ping');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.attributes).toMatchObject({ 'rpc.system': 'grpc', 'omnirelay.protocol': 'h3', 'rpc.grpc.status_code': 0 });
    // HTTP/3 was used as preferred: no downgrade reason on the span, no fallback counted.
    expect(span?.attributes['omnirelay.protocol.reason']).toBeUndefined();
    const fallbacks = all.find((m) => m.descriptor.name === 'grpc_outbound_protocol_fallbacks')?.dataPoints ?? [];
    expect(fallbacks.filter((p) => p.attributes['omnirelay.endpoint'] === new URL(nodeA.url).host)).toEqual([]);
  });

  it('keeps one connection per endpoint and profile', () => {
    const held = factory.connections().filter((c) => c.state === 'active');
    const keys = held.map((c) => `${c.profile}/${c.authority}/${c.protocol}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
