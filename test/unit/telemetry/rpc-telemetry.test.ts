import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { metrics, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { DataPointType, MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  ATTR_CALLER,
  ATTR_ENDPOINT,
  ATTR_FALLBACK_FROM,
  ATTR_FALLBACK_REASON,
  ATTR_FALLBACK_TO,
  ATTR_PROFILE,
  ATTR_PROTOCOL,
  ATTR_RPC_GRPC_STATUS_CODE,
  ATTR_RPC_METHOD,
  ATTR_RPC_SERVICE,
  ATTR_RPC_SYSTEM,
  ATTR_TLS_RELOAD_OUTCOME,
  ATTR_TLS_RELOAD_REASON,
  INSTRUMENTATION_SCOPE_NAME,
  INSTRUMENTATION_SCOPE_VERSION,
  METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS,
  METRIC_GRPC_OUTBOUND_REQUEST_DURATION,
  METRIC_GRPC_OUTBOUND_REQUESTS,
  METRIC_TLS_RELOADS,
  RPC_DURATION_BUCKETS_SECONDS,
  RpcTelemetry,
} from '../../../src/telemetry/index.js';
import type { RpcCallInfo } from '../../../src/telemetry/index.js';
import { CollectingReader, createHarness, histogramValue, numberValue, pointsMatching } from './harness.js';
import type { Harness } from './harness.js';

const SERVICE = 'omnirelay.controlplane.v1.ControlPlane';
const call = (over: Partial<RpcCallInfo> = {}): RpcCallInfo => ({
  service: SERVICE,
  method: 'WatchEndpoints',
  endpoint: 'cp.internal:8443',
  profile: 'control-plane',
  caller: 'control-plane',
  ...over,
});

let h: Harness;
let telemetry: RpcTelemetry;

beforeEach(() => {
  h = createHarness();
  telemetry = new RpcTelemetry({ meterProvider: h.meterProvider, tracerProvider: h.tracerProvider, clock: h.clock });
});

afterEach(async () => {
  await h.shutdown();
});

describe('RpcTelemetry.start / end', () => {
  it('records a successful call as a CLIENT span plus counter and histogram', async () => {
    const obs = telemetry.start(call());
    obs.setProtocol('h3');
    obs.noteAttempt(1, '10.0.0.7:8443');
    h.advance(42);
    obs.end(0);

    const [span, ...others] = h.spans();
    expect(others).toHaveLength(0);
    expect(span?.name).toBe(`${SERVICE}/WatchEndpoints`);
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.instrumentationScope).toMatchObject({ name: INSTRUMENTATION_SCOPE_NAME, version: INSTRUMENTATION_SCOPE_VERSION });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.events).toHaveLength(0);
    expect(span?.attributes).toEqual({
      'rpc.system': 'grpc',
      'rpc.service': SERVICE,
      'rpc.method': 'WatchEndpoints',
      'rpc.grpc.status_code': 0,
      'server.address': 'cp.internal',
      'server.port': 8443,
      'network.protocol.name': 'http',
      'network.protocol.version': '3',
      'network.peer.address': '10.0.0.7',
      'network.peer.port': 8443,
      'omnirelay.endpoint': 'cp.internal:8443',
      'omnirelay.profile': 'control-plane',
      'omnirelay.caller': 'control-plane',
      'omnirelay.protocol': 'h3',
      'omnirelay.attempt': 1,
      'omnirelay.peer': '10.0.0.7:8443',
    });

    const counter = await h.metric(METRIC_GRPC_OUTBOUND_REQUESTS);
    expect(counter.dataPointType).toBe(DataPointType.SUM);
    expect(counter.dataPointType === DataPointType.SUM && counter.isMonotonic).toBe(true);
    expect(counter.dataPoints).toHaveLength(1);
    const expectedAttrs = {
      'rpc.system': 'grpc',
      'rpc.service': SERVICE,
      'rpc.method': 'WatchEndpoints',
      'rpc.grpc.status_code': 0,
      'omnirelay.endpoint': 'cp.internal:8443',
      'omnirelay.protocol': 'h3',
      'omnirelay.profile': 'control-plane',
    };
    expect(counter.dataPoints[0]?.attributes).toEqual(expectedAttrs);
    expect(counter.dataPoints[0]?.value).toBe(1);

    const duration = await h.metric(METRIC_GRPC_OUTBOUND_REQUEST_DURATION);
    expect(duration.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(duration.descriptor.unit).toBe('s');
    expect(duration.dataPoints).toHaveLength(1);
    expect(duration.dataPoints[0]?.attributes).toEqual(expectedAttrs);
    const hist = histogramValue(pointsMatching(duration, {})[0]);
    expect(hist.count).toBe(1);
    expect(hist.sum).toBeCloseTo(0.042, 9);
    expect(hist.buckets.boundaries).toEqual(RPC_DURATION_BUCKETS_SECONDS);
    // 0.042 s lands in the (0.025, 0.05] bucket.
    expect(hist.buckets.counts[RPC_DURATION_BUCKETS_SECONDS.indexOf(0.05)]).toBe(1);
  });

  it('uses protocol "none" and an ERROR span when the call fails before a transport is chosen', async () => {
    const obs = telemetry.start(call({ endpoint: '[::1]:9443' }));
    const err = new Error('connect ECONNREFUSED');
    obs.end(14, err);

    const span = h.spans()[0];
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'connect ECONNREFUSED' });
    expect(span?.attributes[ATTR_PROTOCOL]).toBe('none');
    expect(span?.attributes['server.address']).toBe('::1');
    expect(span?.attributes['server.port']).toBe(9443);
    expect(span?.attributes[ATTR_RPC_GRPC_STATUS_CODE]).toBe(14);
    expect(span?.attributes['error.type']).toBe('UNAVAILABLE');
    expect(span?.attributes['network.protocol.version']).toBeUndefined();
    expect(span?.events.map((e) => e.name)).toEqual(['exception']);

    const counter = await h.metric(METRIC_GRPC_OUTBOUND_REQUESTS);
    expect(numberValue(pointsMatching(counter, { [ATTR_PROTOCOL]: 'none', [ATTR_RPC_GRPC_STATUS_CODE]: 14 })[0])).toBe(1);
  });

  it('describes a non-OK status without an error object by its gRPC name', () => {
    telemetry.start(call()).end(4);
    expect(h.spans()[0]?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'gRPC status 4 DEADLINE_EXCEEDED' });
  });

  it('records fallback and retries on the span', async () => {
    const obs = telemetry.start(call({ caller: 'dispatcher', profile: 'default' }));
    obs.setProtocol('h3');
    obs.noteAttempt(1, 'a.internal:8443');
    obs.noteFallback('h3', 'h2', 'H3_HANDSHAKE_TIMEOUT');
    obs.noteAttempt(2, 'b.internal:8443');
    obs.end(0);

    const span = h.spans()[0];
    expect(span?.attributes[ATTR_FALLBACK_REASON]).toBe('H3_HANDSHAKE_TIMEOUT');
    expect(span?.attributes[ATTR_PROTOCOL]).toBe('h2');
    expect(span?.attributes['network.protocol.version']).toBe('2');
    expect(span?.attributes['omnirelay.attempt']).toBe(2);
    expect(span?.attributes['omnirelay.peer']).toBe('b.internal:8443');
    expect(span?.events.map((e) => [e.name, e.attributes])).toEqual([
      ['fallback', { [ATTR_FALLBACK_FROM]: 'h3', [ATTR_FALLBACK_TO]: 'h2', [ATTR_FALLBACK_REASON]: 'H3_HANDSHAKE_TIMEOUT' }],
      ['retry', { 'omnirelay.attempt': 2, 'omnirelay.peer': 'b.internal:8443' }],
    ]);

    // noteFallback is span-only; the counter is recordFallback's job.
    const names = (await h.metrics()).map((m) => m.descriptor.name);
    expect(names).not.toContain(METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS);
    const counter = await h.metric(METRIC_GRPC_OUTBOUND_REQUESTS);
    expect(counter.dataPoints[0]?.attributes[ATTR_PROTOCOL]).toBe('h2');
  });

  it('records the chosen peer and its circuit state on the span and counts each choice', async () => {
    const obs = telemetry.start(call());
    obs.noteAttempt(1, 'cp.internal:8443', 'closed');
    obs.noteAttempt(2, 'b.internal:8443', 'half-open');
    obs.end(0);

    const span = h.spans()[0];
    expect(span?.attributes['omnirelay.peer']).toBe('b.internal:8443');
    expect(span?.attributes['omnirelay.breaker.state']).toBe('half-open');
    const choices = await h.metric('grpc_outbound_peer_choices');
    expect(choices.dataPoints.map((p) => [p.attributes['omnirelay.endpoint'], p.attributes['omnirelay.breaker.state'], p.value])).toEqual([
      ['cp.internal:8443', 'closed', 1],
      ['b.internal:8443', 'half-open', 1],
    ]);
    expect(Object.keys(choices.dataPoints[0]?.attributes ?? {}).sort()).toEqual(['omnirelay.breaker.state', 'omnirelay.endpoint', 'omnirelay.profile', 'rpc.method', 'rpc.service', 'rpc.system']);
  });

  it('end is idempotent and later notes are ignored', async () => {
    const obs = telemetry.start(call());
    obs.setProtocol('h2');
    obs.end(0);
    obs.end(13, new Error('late'));
    obs.setProtocol('h3');
    obs.noteAttempt(5, 'x:1');
    obs.noteFallback('h2', 'h3', 'X');

    expect(h.spans()).toHaveLength(1);
    expect(h.spans()[0]?.status.code).toBe(SpanStatusCode.UNSET);
    expect(h.spans()[0]?.attributes[ATTR_PROTOCOL]).toBe('h2');
    const counter = await h.metric(METRIC_GRPC_OUTBOUND_REQUESTS);
    expect(counter.dataPoints).toHaveLength(1);
    expect(counter.dataPoints[0]?.value).toBe(1);
    expect(histogramValue(pointsMatching(await h.metric(METRIC_GRPC_OUTBOUND_REQUEST_DURATION), {})[0]).count).toBe(1);
  });

  it('gives dispatcher and control-plane calls the same metric series; caller is on spans only', async () => {
    const other = new RpcTelemetry({ meterProvider: h.meterProvider, tracerProvider: h.tracerProvider, clock: h.clock });
    for (const [t, caller] of [[telemetry, 'dispatcher'], [other, 'control-plane']] as const) {
      const obs = t.start(call({ caller }));
      obs.setProtocol('h2');
      obs.end(0);
    }

    const counter = await h.metric(METRIC_GRPC_OUTBOUND_REQUESTS);
    expect(counter.dataPoints).toHaveLength(1);
    expect(counter.dataPoints[0]?.value).toBe(2);
    expect(Object.keys(counter.dataPoints[0]?.attributes ?? {})).not.toContain(ATTR_CALLER);

    const [a, b] = h.spans();
    expect(a?.attributes[ATTR_CALLER]).toBe('dispatcher');
    expect(b?.attributes[ATTR_CALLER]).toBe('control-plane');
    const { [ATTR_CALLER]: _a, ...restA } = a?.attributes ?? {};
    const { [ATTR_CALLER]: _b, ...restB } = b?.attributes ?? {};
    expect(restA).toEqual(restB);
    expect(a?.name).toBe(b?.name);
  });
});

describe('RpcTelemetry counters', () => {
  it('counts protocol fallbacks by endpoint, profile, from, to and reason', async () => {
    const e = { endpoint: 'cp.internal:8443', profile: 'control-plane', from: 'h3', to: 'h2', reason: 'H3_HANDSHAKE_TIMEOUT' } as const;
    telemetry.recordFallback(e);
    telemetry.recordFallback(e);
    telemetry.recordFallback({ ...e, reason: 'H3_UNSUPPORTED' });

    const m = await h.metric(METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS);
    expect(m.dataPointType === DataPointType.SUM && m.isMonotonic).toBe(true);
    expect(m.dataPoints).toHaveLength(2);
    const timeout = pointsMatching(m, { [ATTR_FALLBACK_REASON]: 'H3_HANDSHAKE_TIMEOUT' })[0];
    expect(timeout?.attributes).toEqual({
      [ATTR_RPC_SYSTEM]: 'grpc',
      [ATTR_ENDPOINT]: 'cp.internal:8443',
      [ATTR_PROFILE]: 'control-plane',
      [ATTR_FALLBACK_FROM]: 'h3',
      [ATTR_FALLBACK_TO]: 'h2',
      [ATTR_FALLBACK_REASON]: 'H3_HANDSHAKE_TIMEOUT',
    });
    expect(numberValue(timeout)).toBe(2);
    expect(numberValue(pointsMatching(m, { [ATTR_FALLBACK_REASON]: 'H3_UNSUPPORTED' })[0])).toBe(1);
  });

  it('counts TLS reloads by outcome (and reason when given)', async () => {
    telemetry.recordTlsReload({ profile: 'p', outcome: 'loaded' });
    telemetry.recordTlsReload({ profile: 'p', outcome: 'loaded' });
    telemetry.recordTlsReload({ profile: 'p', outcome: 'rejected', reason: 'TLS_KEY_MISMATCH' });

    const m = await h.metric(METRIC_TLS_RELOADS);
    expect(m.dataPointType === DataPointType.SUM && m.isMonotonic).toBe(true);
    const loaded = pointsMatching(m, { [ATTR_TLS_RELOAD_OUTCOME]: 'loaded' });
    expect(loaded).toHaveLength(1);
    expect(loaded[0]?.attributes).toEqual({ [ATTR_PROFILE]: 'p', [ATTR_TLS_RELOAD_OUTCOME]: 'loaded' });
    expect(numberValue(loaded[0])).toBe(2);
    const rejected = pointsMatching(m, { [ATTR_TLS_RELOAD_OUTCOME]: 'rejected' })[0];
    expect(rejected?.attributes[ATTR_TLS_RELOAD_REASON]).toBe('TLS_KEY_MISMATCH');
    expect(numberValue(rejected)).toBe(1);
  });
});

describe('RpcTelemetry with global providers', () => {
  it('picks up a global meter provider registered after construction', async () => {
    const lazy = new RpcTelemetry();
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    try {
      expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
      expect(trace.setGlobalTracerProvider(h.tracerProvider)).toBe(true);
      const obs = lazy.start(call());
      obs.end(0);
      const { resourceMetrics } = await reader.collect();
      const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
      expect(names).toEqual(expect.arrayContaining([METRIC_GRPC_OUTBOUND_REQUESTS, METRIC_GRPC_OUTBOUND_REQUEST_DURATION]));
      expect(h.spans().map((s) => s.name)).toEqual([`${SERVICE}/WatchEndpoints`]);
    } finally {
      metrics.disable();
      trace.disable();
      await provider.shutdown();
    }
  });
});

describe('attribute key constants', () => {
  it('match the OTel RPC semantic conventions', () => {
    expect([ATTR_RPC_SYSTEM, ATTR_RPC_SERVICE, ATTR_RPC_METHOD, ATTR_RPC_GRPC_STATUS_CODE]).toEqual([
      'rpc.system',
      'rpc.service',
      'rpc.method',
      'rpc.grpc.status_code',
    ]);
  });
});
