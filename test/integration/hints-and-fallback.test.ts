import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  controlPlaneV1,
  createEndpointHintSubject,
  healthV1,
  RpcError,
  TlsError,
  TOKENS,
  type IGrpcControlPlaneClientFactory,
  type Transport,
  type TransportConnection,
  type WireCall,
  type WireUnaryResult,
} from 'omnirelay';
import type { Container } from 'inversify';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition, PingRequest, PingResponse } = controlPlaneV1;

type Behaviour = 'ok' | 'handshake' | 'connect' | 'idle-timeout' | 'untrusted';
const { HealthCheckRequest, HealthCheckResponse, HealthCheckResponse_ServingStatus } = healthV1;

/**
 * An HTTP/3 transport double (the real one is its own issue). It answers pings itself when
 * told to succeed, or fails the way a QUIC transport fails: before anything was sent
 * (handshake, connect), mid-call (idle timeout), or in certificate verification.
 */
class Http3Double implements Transport {
  readonly protocol = 'h3' as const;
  behaviour: Behaviour = 'ok';
  /** What Health/Check answers. */
  serving: number = HealthCheckResponse_ServingStatus.SERVING;
  /** Delay of successful calls (ms). */
  delayMs = 0;
  calls = 0;
  opened = 0;
  closed = 0;

  open(): TransportConnection {
    this.opened++;
    return {
      protocol: 'h3',
      unary: async (call: WireCall): Promise<WireUnaryResult> => {
        this.calls++;
        const endpoint = 'double';
        switch (this.behaviour) {
          case 'handshake':
          case 'connect':
            throw new RpcError(14, 'UNAVAILABLE', `QUIC ${this.behaviour} failed`, { endpoint, protocol: 'h3', failure: this.behaviour });
          case 'idle-timeout':
            throw new RpcError(14, 'UNAVAILABLE', 'QUIC idle timeout', { endpoint, protocol: 'h3', failure: 'idle-timeout' });
          case 'untrusted':
            throw new TlsError('TLS_PEER_UNTRUSTED', 'peer certificate does not chain to the CA', { peer: endpoint });
          default: {
            if (call.path === '/grpc.health.v1.Health/Check') {
              expect(HealthCheckRequest.decode(call.message).service).toBe('omnirelay.controlplane.v1.ControlPlane');
              const message = HealthCheckResponse.encode({ status: this.serving }).finish();
              return { message, headers: {}, trailers: {}, peer: { address: undefined, certificate: undefined }, protocol: 'h3' };
            }
            if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
            const request = PingRequest.decode(call.message);
            const message = PingResponse.encode({ node: 'h3-double', sequence: request.sequence, clientIdentity: 'client', payload: new Uint8Array() }).finish();
            return { message, headers: {}, trailers: {}, peer: { address: undefined, certificate: undefined }, protocol: 'h3' };
          }
        }
      },
      serverStream: (call: WireCall): AsyncIterable<Uint8Array> => {
        this.calls++;
        const behaviour = this.behaviour;
        return (async function* () {
          await Promise.resolve();
          if (behaviour === 'handshake' || behaviour === 'connect') {
            throw new RpcError(14, 'UNAVAILABLE', `QUIC ${behaviour} failed`, { endpoint: 'double', protocol: 'h3', failure: behaviour });
          }
          const request = controlPlaneV1.WatchRequest.decode(call.message);
          for (let i = 1; i <= request.count; i++) yield controlPlaneV1.MembershipEvent.encode({ node: 'h3-double', sequence: i }).finish();
        })();
      },
      stream: () => {
        throw new Error('streams are not used with this double');
      },
      close: () => {
        this.closed++;
      },
    };
  }
}

describe('endpoint hints and HTTP/3 fallback (HTTP/3 transport double, real HTTP/2)', () => {
  let pki: TestPki;
  let nodeA: TestNode;
  let nodeB: TestNode;
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  const http3 = new Http3Double();
  const hints = createEndpointHintSubject();
  let now = 1_000_000;
  const clock = { now: () => now };
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });

  beforeAll(async () => {
    pki = await createTestPki();
    nodeA = await startNode('node-a', pki);
    nodeB = await startNode('node-b', pki);
    ({ container } = containerWith(
      mtlsOptions(pki, pki.client, {
        profiles: { 'control-plane': { http3Health: { initialBackoffMs: 10_000, maxBackoffMs: 60_000 }, retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 } } },
        endpoints: { 'node-a': { url: nodeA.url }, 'node-b': { url: nodeB.url } },
      }),
      (c) => {
        c.bind(TOKENS.Http3Transport).toConstantValue(http3);
        c.bind(TOKENS.EndpointHints).toConstantValue(hints);
        c.bind(TOKENS.Clock).toConstantValue(clock);
        c.bind(TOKENS.Telemetry).toConstantValue({ meterProvider });
      },
    ));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
  });

  afterEach(() => {
    http3.behaviour = 'ok';
    http3.serving = HealthCheckResponse_ServingStatus.SERVING;
    http3.delayMs = 0;
    hints.next({ endpoint: 'node-a', reset: true });
    hints.next({ endpoint: 'node-b', reset: true });
    now += 3_600_000; // past any HTTP/3 backoff window
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await Promise.all([nodeA.host.close(), nodeB.host.close()]);
    await meterProvider.shutdown();
    await pki.cleanup();
  });

  async function fallbacks(reason: string): Promise<number> {
    await reader.forceFlush();
    const last = metrics.getMetrics().at(-1);
    const metric = last?.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'grpc_outbound_protocol_fallbacks');
    return (metric?.dataPoints ?? [])
      .filter((p) => p.attributes['omnirelay.fallback.reason'] === reason && p.attributes['omnirelay.endpoint'] === new URL(nodeA.url).host)
      .reduce((sum, p) => sum + (p.value as number), 0);
  }

  it('uses HTTP/3 when the profile prefers it and a transport is registered', async () => {
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'node-a' });
    expect(result.protocol).toBe('h3');
    expect(result.message.node).toBe('h3-double');
  });

  it.each(['handshake', 'connect'] as const)('falls back to HTTP/2 on a %s failure, counts it, and keeps HTTP/2 until the backoff ends', async (behaviour) => {
    const before = await fallbacks(behaviour);
    http3.behaviour = behaviour;
    const first = await factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'node-a' });
    expect(first.protocol).toBe('h2');
    expect(first.message).toMatchObject({ node: 'node-a', clientIdentity: 'client' });
    expect(first.attempts).toBe(1);
    expect(await fallbacks(behaviour)).toBe(before + 1);

    const callsBefore = http3.calls;
    http3.behaviour = 'ok';
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(3), { endpoint: 'node-a' })).resolves.toMatchObject({ protocol: 'h2' });
    expect(http3.calls).toBe(callsBefore);

    now += 10_000; // the first backoff window ends: HTTP/3 is tried again
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(4), { endpoint: 'node-a' })).resolves.toMatchObject({ protocol: 'h3' });
  });

  it('places a server stream over HTTP/3, and falls back to HTTP/2 when HTTP/3 fails before the first message', async () => {
    const watch = async () => {
      const events: string[] = [];
      for await (const e of factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 't', count: 2, intervalMs: 1 }, { endpoint: 'node-a' })) events.push(`${e.node}#${e.sequence}`);
      return events;
    };
    await expect(watch()).resolves.toEqual(['h3-double#1', 'h3-double#2']);
    const before = await fallbacks('handshake');
    http3.behaviour = 'handshake';
    await expect(watch()).resolves.toEqual(['node-a#1', 'node-a#2']);
    expect(await fallbacks('handshake')).toBe(before + 1);
  });

  it('marks HTTP/3 broken on an idle timeout mid-call and retries that call over HTTP/2', async () => {
    http3.behaviour = 'idle-timeout';
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(5), { endpoint: 'node-a' });
    expect(result.protocol).toBe('h2');
    expect(result.attempts).toBe(2);
  });

  it('never falls back when HTTP/3 rejected the peer certificate', async () => {
    http3.behaviour = 'untrusted';
    const seen = nodeA.seen.length;
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(6), { endpoint: 'node-a' })).rejects.toMatchObject({ code: 'TLS_PEER_UNTRUSTED' });
    expect(nodeA.seen.length).toBe(seen);
  });

  it('lets a gRPC health probe over HTTP/3 force HTTP/2 for an endpoint, and a later good probe clear it', async () => {
    const probe = () => factory.probeHttp3({ endpoint: 'node-a', service: 'omnirelay.controlplane.v1.ControlPlane' });
    await expect(probe()).resolves.toMatchObject({ ok: true, endpoint: new URL(nodeA.url).host });
    http3.serving = HealthCheckResponse_ServingStatus.NOT_SERVING;
    await expect(probe()).resolves.toMatchObject({ ok: false, reason: 'health status NOT_SERVING' });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(30), { endpoint: 'node-a' })).resolves.toMatchObject({ protocol: 'h2' });
    http3.behaviour = 'connect';
    await expect(probe()).resolves.toMatchObject({ ok: false, reason: expect.stringContaining('QUIC connect failed') });
    http3.behaviour = 'ok';
    http3.serving = HealthCheckResponse_ServingStatus.SERVING;
    await expect(probe()).resolves.toMatchObject({ ok: true });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(31), { endpoint: 'node-a' })).resolves.toMatchObject({ protocol: 'h3' });
  });

  it('applies a hint that denies HTTP/3 to the next call, while a call already running on HTTP/3 finishes', async () => {
    http3.delayMs = 300;
    const closedBefore = http3.closed;
    const long = factory.unary(ControlPlaneDefinition, 'ping', ping(7), { endpoint: 'node-a' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    hints.next({ endpoint: 'node-a', http3: 'deny' });
    const next = await factory.unary(ControlPlaneDefinition, 'ping', ping(8), { endpoint: 'node-a' });
    expect(next.protocol).toBe('h2');
    expect(http3.closed).toBe(closedBefore); // the HTTP/3 connection drains: still open while the long call runs
    await expect(long).resolves.toMatchObject({ protocol: 'h3', message: { sequence: 7 } });
    expect(http3.closed).toBe(closedBefore + 1); // ... and closed when it finished
    expect(factory.connections().filter((c) => c.protocol === 'h3' && c.authority === new URL(nodeA.url).host)).toEqual([]);
  });

  it('stops sending new calls to a draining endpoint while its running call finishes', async () => {
    hints.next({ endpoint: 'node-a', http3: 'deny' });
    hints.next({ endpoint: 'node-b', http3: 'deny' });
    const long = factory.unary(ControlPlaneDefinition, 'ping', ping(9, 40), { peers: ['node-a'] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(nodeA.inFlight).toBe(1);
    hints.next({ endpoint: 'node-a', draining: true });
    const results = await Promise.all([1, 2, 3, 4].map((i) => factory.unary(ControlPlaneDefinition, 'ping', ping(10 + i), { peers: ['node-a', 'node-b'] })));
    expect(results.map((r) => r.message.node)).toEqual(['node-b', 'node-b', 'node-b', 'node-b']);
    await expect(long).resolves.toMatchObject({ message: { node: 'node-a', sequence: 9 } });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(20), { endpoint: 'node-a' })).rejects.toMatchObject({ code: 'PEER_DRAINING' });
  });
});
