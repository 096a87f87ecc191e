import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { createServer, get } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpTelemetry, PROMETHEUS_NAMES, RpcTelemetry } from '../../../src/telemetry/index.js';
import { ConsecutiveFailureCircuitBreaker } from '../../../src/resilience/circuit-breaker.js';
import { RpcError } from '../../../src/errors.js';

// exporter-prometheus treats `port: 0` as "unset" (falls back to 9464), so its own server
// is not started; its request handler is mounted on an ephemeral loopback server instead.
let exporter: PrometheusExporter;
let meterProvider: MeterProvider;
let tracerProvider: BasicTracerProvider;
let server: Server;

beforeAll(async () => {
  exporter = new PrometheusExporter({ preventServerStart: true });
  meterProvider = new MeterProvider({ readers: [exporter] });
  tracerProvider = new BasicTracerProvider();
  server = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});

function scrape(): Promise<string> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('Prometheus exposition', () => {
  it('exposes the documented metric names', async () => {
    let now = 0;
    const clock = (): number => now;
    const rpc = new RpcTelemetry({ meterProvider, tracerProvider, clock });
    const obs = rpc.start({
      service: 'omnirelay.controlplane.v1.ControlPlane',
      method: 'WatchEndpoints',
      endpoint: 'cp.internal:8443',
      profile: 'control-plane',
      caller: 'dispatcher',
    });
    obs.setProtocol('h2');
    obs.noteAttempt(1, 'cp.internal:8443', 'closed');
    now += 0.3; // 0.3 ms: lands in the first (le="0.0005") bucket
    obs.end(0);
    rpc.recordFallback({ endpoint: 'cp.internal:8443', profile: 'control-plane', from: 'h3', to: 'h2', reason: 'H3_HANDSHAKE_TIMEOUT' });
    rpc.recordTlsReload({ profile: 'control-plane', outcome: 'loaded' });
    const http = new HttpTelemetry({ meterProvider, tracerProvider, clock });
    const req = http.start({ method: 'GET', endpoint: 'hints.internal:443', profile: 'default' });
    req.setProtocol('h1');
    req.end(200);

    const breaker = new ConsecutiveFailureCircuitBreaker({ consecutiveFailures: 1, clock: { now: () => 0 }, telemetry: { meterProvider } });
    const unavailable = new RpcError(14, 'UNAVAILABLE', 'connection refused', { endpoint: 'cp.internal:8443', protocol: 'h2' });
    await expect(breaker.execute('cp.internal:8443', () => Promise.reject(unavailable))).rejects.toBe(unavailable);

    const text = await scrape();
    expect(text).toMatch(/^omnirelay_circuit_breaker_transitions_total\{[^}]*omnirelay_peer="cp\.internal:8443"[^}]*omnirelay_breaker_state="open"[^}]*\} 1$/m);
    expect(text).toMatch(/^omnirelay_circuit_breaker_state\{[^}]*omnirelay_peer="cp\.internal:8443",omnirelay_profile="control-plane"[^}]*\} 2$/m);
    expect(text).toContain('# TYPE grpc_outbound_requests_total counter');
    expect(text).toContain('grpc_outbound_requests_total{');
    expect(text).toMatch(
      /^grpc_outbound_requests_total\{rpc_system="grpc",rpc_service="omnirelay\.controlplane\.v1\.ControlPlane",rpc_method="WatchEndpoints",rpc_grpc_status_code="0",omnirelay_endpoint="cp\.internal:8443",omnirelay_protocol="h2",omnirelay_profile="control-plane",otel_scope_name="omnirelay",otel_scope_version="0\.1\.0"\} 1$/m,
    );
    expect(text).toContain('# TYPE grpc_outbound_request_duration_seconds histogram');
    expect(text).toContain('# UNIT grpc_outbound_request_duration_seconds s');
    expect(text).toContain('grpc_outbound_request_duration_seconds_bucket{');
    expect(text).toMatch(/^grpc_outbound_request_duration_seconds_bucket\{[^}]*le="0\.0005"\} 1$/m);
    expect(text).toMatch(/^grpc_outbound_request_duration_seconds_count\{[^}]*\} 1$/m);
    expect(text).toMatch(/^grpc_outbound_protocol_fallbacks_total\{[^}]*omnirelay_fallback_reason="H3_HANDSHAKE_TIMEOUT"[^}]*\} 1$/m);
    expect(text).toMatch(/^omnirelay_tls_reloads_total\{[^}]*omnirelay_tls_reload_outcome="loaded"[^}]*\} 1$/m);
    expect(text).toMatch(/^grpc_outbound_peer_choices_total\{[^}]*omnirelay_endpoint="cp\.internal:8443"[^}]*omnirelay_breaker_state="closed"[^}]*\} 1$/m);
    expect(text).toContain('http_client_requests_total{');
    expect(text).toContain('http_client_request_duration_seconds_bucket{');

    // Every documented name appears as a TYPE line, and nothing gets a doubled suffix.
    for (const name of Object.values(PROMETHEUS_NAMES)) expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    expect(text).not.toMatch(/_total_total|_seconds_seconds/);
  });
});
