import { describe, expect, it } from '@jest/globals';
import { PRESETS } from '../../../src/config/presets.js';
import type { CircuitBreakerOptions } from '../../../src/config/types.js';
import { PeerUnavailableError, RpcError, TlsError } from '../../../src/errors.js';
import { ConsecutiveFailureCircuitBreaker, PeerCircuitBreaker, type BreakerChange } from '../../../src/resilience/circuit-breaker.js';
import { GRPC_STATUS, statusName } from '../../../src/grpc/status.js';

const PEER = '10.0.0.1:7001';

function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let now = start;
  return { now: () => now, advance: (ms) => (now += ms) };
}

function rpcError(status: number): RpcError {
  return new RpcError(status, statusName(status), 'test', { endpoint: PEER, protocol: 'h2' });
}

const fail = (status: number) => (): Promise<never> => Promise.reject(rpcError(status));
const succeed = (): Promise<string> => Promise.resolve('ok');

function settings(extra: Partial<CircuitBreakerOptions> = {}): CircuitBreakerOptions {
  return { ...PRESETS['control-plane'].breaker, consecutiveFailures: 3, halfOpenAfterMs: 1_000, ...extra };
}

function recorder(breaker: PeerCircuitBreaker): BreakerChange[] {
  const changes: BreakerChange[] = [];
  breaker.changes$.subscribe((c) => changes.push(c));
  return changes;
}

describe('PeerCircuitBreaker, consecutive mode (fake clock)', () => {
  it('opens after N failures in a row, rejects fast with CIRCUIT_OPEN naming the peer, and reports every change', async () => {
    const clock = fakeClock();
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings(), clock });
    const changes = recorder(breaker);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.DEADLINE_EXCEEDED))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
    expect(changes).toEqual([{ peer: PEER, profile: 'control-plane', state: 'open', previous: 'closed' }]);

    let called = false;
    const rejected = breaker.execute(PEER, () => {
      called = true;
      return succeed();
    });
    await expect(rejected).rejects.toBeInstanceOf(PeerUnavailableError);
    await expect(rejected).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', peers: [PEER] });
    expect(called).toBe(false);
  });

  it('a success resets the run of failures', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings(), clock: fakeClock() });
    for (let i = 0; i < 5; i++) {
      await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
      await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
      await breaker.execute(PEER, succeed);
    }
    expect(breaker.state(PEER)).toBe('closed');
  });

  it('lets one half-open probe through after halfOpenAfterMs on the injected clock; a good probe closes the circuit', async () => {
    const clock = fakeClock();
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings(), clock });
    const changes = recorder(breaker);
    for (let i = 0; i < 3; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    clock.advance(999);
    expect(breaker.state(PEER)).toBe('open');
    await expect(breaker.execute(PEER, succeed)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    clock.advance(1);
    expect(breaker.state(PEER)).toBe('half-open');
    await expect(breaker.execute(PEER, succeed)).resolves.toBe('ok');
    expect(breaker.state(PEER)).toBe('closed');
    expect(changes.map((c) => c.state)).toEqual(['open', 'half-open', 'closed']);
  });

  it('a failed probe opens the circuit again for another full wait', async () => {
    const clock = fakeClock();
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings(), clock });
    const changes = recorder(breaker);
    for (let i = 0; i < 3; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    clock.advance(1_000);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
    clock.advance(999);
    expect(breaker.state(PEER)).toBe('open');
    clock.advance(1);
    expect(breaker.state(PEER)).toBe('half-open');
    expect(changes.map((c) => c.state)).toEqual(['open', 'half-open', 'open']);
  });

  it('counts UNAVAILABLE, DEADLINE_EXCEEDED and TLS failures by default, never INVALID_ARGUMENT', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings({ consecutiveFailures: 1 }), clock: fakeClock() });
    for (let i = 0; i < 10; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.INVALID_ARGUMENT))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
    await expect(breaker.execute(PEER, () => Promise.reject(new TlsError('TLS_PEER_UNTRUSTED', 'untrusted')))).rejects.toBeInstanceOf(TlsError);
    expect(breaker.state(PEER)).toBe('open');
  });

  it('never counts a request the server refused without processing it (draining), not even as a success', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings({ consecutiveFailures: 2 }), clock: fakeClock() });
    const refused = (): Promise<never> => Promise.reject(new RpcError(GRPC_STATUS.UNAVAILABLE, 'UNAVAILABLE', 'refused', { endpoint: PEER, protocol: 'h3', failure: 'refused' }));
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    for (let i = 0; i < 10; i++) await expect(breaker.execute(PEER, refused)).rejects.toMatchObject({ refused: true });
    expect(breaker.state(PEER)).toBe('closed');
    expect(breaker.lastFailureAt(PEER)).toBeDefined();
    // The refusals did not reset the run either: one more real failure is the second in a row.
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
  });

  it('counts only the configured failure codes', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings({ consecutiveFailures: 1, failureStatusCodes: ['RESOURCE_EXHAUSTED'] }), clock: fakeClock() });
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.RESOURCE_EXHAUSTED))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
  });

  it('keeps one circuit per peer and per profile, each with its profile settings', async () => {
    const clock = fakeClock();
    const byProfile: Record<string, CircuitBreakerOptions> = { strict: settings({ consecutiveFailures: 1 }), lenient: settings({ consecutiveFailures: 4 }) };
    const breaker = new PeerCircuitBreaker({ settingsFor: (p) => byProfile[p], clock });
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE), 'strict')).rejects.toBeInstanceOf(RpcError);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE), 'lenient')).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER, 'strict')).toBe('open');
    expect(breaker.state(PEER, 'lenient')).toBe('closed');
    expect(breaker.state('10.0.0.2:7001', 'strict')).toBe('closed');
  });

  it('rebuilds a closed circuit when the profile settings change', async () => {
    let current = settings({ consecutiveFailures: 1 });
    const breaker = new PeerCircuitBreaker({ settingsFor: () => current, clock: fakeClock() });
    const changes = recorder(breaker);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
    current = settings({ consecutiveFailures: 2 });
    await expect(breaker.execute(PEER, succeed)).resolves.toBe('ok');
    expect(breaker.state(PEER)).toBe('closed');
    expect(changes.map((c) => c.state)).toEqual(['open', 'closed']);
  });

  it('remembers when a peer last failed, and allowProbe ends the wait at once (degraded mode)', async () => {
    const clock = fakeClock();
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings({ consecutiveFailures: 1, halfOpenAfterMs: 60_000 }), clock });
    expect(breaker.lastFailureAt(PEER)).toBeUndefined();
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.lastFailureAt(PEER)).toBe(clock.now());
    clock.advance(10);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.INVALID_ARGUMENT))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    breaker.allowProbe(PEER);
    expect(breaker.state(PEER)).toBe('half-open');
    await expect(breaker.execute(PEER, succeed)).resolves.toBe('ok');
    expect(breaker.state(PEER)).toBe('closed');
  });

  it('ConsecutiveFailureCircuitBreaker keeps its fixed settings for every profile', async () => {
    const breaker = new ConsecutiveFailureCircuitBreaker({ consecutiveFailures: 2, halfOpenAfterMs: 10, clock: fakeClock() });
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE), 'any')).rejects.toBeInstanceOf(RpcError);
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE), 'any')).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER, 'any')).toBe('open');
  });
});

describe('PeerCircuitBreaker, failure-ratio mode (fake clock)', () => {
  const ratio = settings({ mode: 'failure-ratio', failureRatio: 0.5, windowMs: 10_000, minimumCalls: 10 });

  it('judges nothing below the minimum number of calls, then opens when failures exceed the ratio', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => ratio, clock: fakeClock() });
    for (let i = 0; i < 9; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
    // 10 calls, 10 failures: above the ratio with the minimum reached.
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
  });

  it('stays closed at exactly the ratio and opens past it', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => ratio, clock: fakeClock() });
    for (let i = 0; i < 5; i++) await breaker.execute(PEER, succeed);
    for (let i = 0; i < 5; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('open');
  });

  it('forgets calls that slid out of the window, even after an idle gap', async () => {
    const clock = fakeClock();
    const breaker = new PeerCircuitBreaker({ settingsFor: () => ratio, clock });
    for (let i = 0; i < 9; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    clock.advance(11_000);
    // The nine old failures are gone: this one alone is below the minimum.
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
  });

  it('leaves refused requests out of the window (neither failures nor calls)', async () => {
    const breaker = new PeerCircuitBreaker({ settingsFor: () => ratio, clock: fakeClock() });
    const refused = (): Promise<never> => Promise.reject(new RpcError(GRPC_STATUS.UNAVAILABLE, 'UNAVAILABLE', 'refused', { endpoint: PEER, protocol: 'h2', failure: 'refused' }));
    for (let i = 0; i < 20; i++) await expect(breaker.execute(PEER, refused)).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
    // Nine real failures: still below the minimum of 10 calls, so the refusals were not counted as calls.
    for (let i = 0; i < 9; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
  });

  it('slides: failures older than the window stop counting bucket by bucket', async () => {
    const clock = fakeClock(0);
    const breaker = new PeerCircuitBreaker({ settingsFor: () => ratio, clock });
    for (let i = 0; i < 6; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    clock.advance(5_000);
    for (let i = 0; i < 5; i++) await breaker.execute(PEER, succeed);
    // t = 10 s: the six failures from t = 0 left the window; 5 successes + 4 failures is below the minimum.
    clock.advance(5_000);
    for (let i = 0; i < 4; i++) await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(breaker.state(PEER)).toBe('closed');
  });
});

describe('PeerCircuitBreaker.dispose', () => {
  it('stops reporting the state gauge (the container unbinding it leaves no stale series) and completes changes$', async () => {
    const { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
    // Delta: each collection shows only what the callbacks observed in it.
    const exporter = new InMemoryMetricExporter(AggregationTemporality.DELTA);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const gauge = async (): Promise<number> => {
      await reader.forceFlush();
      const metrics = exporter.getMetrics().at(-1)?.scopeMetrics.flatMap((s) => s.metrics) ?? [];
      exporter.reset();
      return metrics.find((m) => m.descriptor.name === 'omnirelay_circuit_breaker_state')?.dataPoints.length ?? 0;
    };
    const breaker = new PeerCircuitBreaker({ settingsFor: () => settings({ consecutiveFailures: 1 }), clock: fakeClock(), telemetry: { meterProvider } });
    let completed = false;
    breaker.changes$.subscribe({ complete: () => (completed = true) });
    await expect(breaker.execute(PEER, fail(GRPC_STATUS.UNAVAILABLE))).rejects.toBeInstanceOf(RpcError);
    expect(await gauge()).toBe(1);
    breaker.dispose();
    expect(completed).toBe(true);
    expect(await gauge()).toBe(0);
    await meterProvider.shutdown();
  });
});
