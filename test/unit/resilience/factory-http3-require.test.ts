/**
 * `http3: 'require'` (profile or endpoint hint) in the factory, over scripted transports:
 * HTTP/3 only — no race, no fallback to HTTP/2 — and an HTTP/3 failure is the call's error,
 * saying HTTP/3 was required and why it failed; a hint that leaves no protocol is a ConfigError.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ConfigError, RpcError } from '../../../src/errors.js';
import { ControlPlaneDefinition } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';
import { RpcTelemetry } from '../../../src/telemetry/index.js';
import { createHarness } from '../telemetry/harness.js';
import { connectFailure, harness, PEERS, type Harness } from './factory-harness.js';
import { failureOf } from '../../support/failure.js';

const [P1] = PEERS;
const ping = (sequence: number) => ({ fromNode: 'test', sequence, payload: new Uint8Array() });
const ONE_ATTEMPT = { maxAttempts: 1 } as const;

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("profile http3: 'require'", () => {
  it('uses HTTP/3, even while the endpoint is in an HTTP/3 backoff window', async () => {
    h = harness({ http3: 'require', retry: ONE_ATTEMPT });
    h.health.markBroken(P1, 'connect', { initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    expect(result.protocol).toBe('h3');
    expect(h.seen.map((s) => s.protocol)).toEqual(['h3']);
  });

  it('an HTTP/3 connect failure is the call error (typed, says HTTP/3 was required and why); HTTP/2 is never tried', async () => {
    h = harness({ http3: 'require', retry: ONE_ATTEMPT });
    h.behaviour.set(P1, (_call, protocol) => {
      if (protocol === 'h3') throw connectFailure(P1, protocol);
    });
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' }));
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ statusName: 'UNAVAILABLE', failure: 'connect', http3Required: true, context: { protocol: 'h3' } });
    expect((error as RpcError).details).toMatch(/^HTTP\/3 is required \(profile "test" has http3 "require"\), so HTTP\/2 was not tried; HTTP\/3 failed \(connect\): connect ECONNREFUSED/);
    expect(h.seen.map((s) => s.protocol)).toEqual(['h3']);
    // The HTTP/3 memory learns from it (for profiles that may fall back).
    expect(h.health.isBroken(P1)).toBe(true);
  });

  it.each(['handshake', 'idle-timeout'] as const)('an HTTP/3 %s failure too: the call error, no fallback', async (failure) => {
    h = harness({ http3: 'require', retry: ONE_ATTEMPT });
    h.behaviour.set(P1, (_call, protocol) => {
      if (protocol === 'h3') throw new RpcError(14, 'UNAVAILABLE', `QUIC ${failure}`, { endpoint: P1, protocol, failure });
    });
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' }));
    expect(error).toMatchObject({ failure, http3Required: true });
    expect((error as RpcError).details).toContain(`HTTP/3 failed (${failure}): QUIC ${failure}`);
    expect(h.seen.map((s) => s.protocol)).toEqual(['h3']);
  });

  it('is retried by the policy like any UNAVAILABLE, over HTTP/3 again', async () => {
    h = harness({ http3: 'require', retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 } });
    let failed = false;
    h.behaviour.set(P1, (_call, protocol) => {
      if (!failed) {
        failed = true;
        throw connectFailure(P1, protocol);
      }
    });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    expect(result).toMatchObject({ protocol: 'h3', attempts: 2 });
    expect(h.seen.map((s) => s.protocol)).toEqual(['h3', 'h3']);
  });

  it('server streams: HTTP/3 only too', async () => {
    h = harness({ http3: 'require' });
    h.streams.set(P1, (_call, protocol) => {
      if (protocol === 'h3') throw connectFailure(P1, protocol);
    });
    const drain = async (): Promise<void> => {
      for await (const _ of h!.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 0 }, { endpoint: 'peer-1' })) void _;
    };
    await expect(drain()).rejects.toMatchObject({ http3Required: true, failure: 'connect' });
    expect(h.seen.map((s) => s.protocol)).toEqual(['h3']);
  });

  it("a live hint http3: 'deny' against it: ConfigError naming both keys; nothing is sent", async () => {
    h = harness({ http3: 'require', retry: ONE_ATTEMPT });
    h.hints.apply({ endpoint: 'peer-1', http3: 'deny' });
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key).sort()).toEqual(['endpoints.peer-1.hints.http3', 'profiles.test.http3']);
    expect(h.seen).toHaveLength(0);
  });

  it('no HTTP/3 transport registered: ConfigError at profiles.<name>.http3; nothing is sent over HTTP/2', async () => {
    h = harness({ http3: 'require', retry: ONE_ATTEMPT }, { http3: false });
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([{ key: 'profiles.test.http3', message: expect.stringContaining('no HTTP/3 transport is registered') }]);
    expect(h.seen).toHaveLength(0);
    expect(h.breaker.state(P1, 'test')).toBe('closed');
  });

  it('a profile switched live from disable to require drains its HTTP/2 connections; the next call is HTTP/3', async () => {
    h = harness({ http3: 'disable', retry: ONE_ATTEMPT });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' })).resolves.toMatchObject({ protocol: 'h2' });
    expect(h.factory.connections().map((c) => c.protocol)).toEqual(['h2']);
    const current = h.options.value;
    h.options.next({ ...current, profiles: { test: { ...current.profiles?.['test'], http3: 'require' } } });
    expect(h.factory.connections()).toEqual([]);
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1' })).resolves.toMatchObject({ protocol: 'h3' });
    expect(h.factory.connections().map((c) => c.protocol)).toEqual(['h3']);
  });

  it("the span says omnirelay.protocol.reason 'required'", async () => {
    const telemetry = createHarness();
    h = harness({ http3: 'require' }, { telemetry: new RpcTelemetry({ meterProvider: telemetry.meterProvider, tracerProvider: telemetry.tracerProvider }) });
    await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    const [span] = telemetry.spans();
    expect(span?.attributes).toMatchObject({ 'omnirelay.protocol': 'h3', 'omnirelay.protocol.reason': 'required' });
    await telemetry.shutdown();
  });
});

describe("endpoint hint http3: 'require'", () => {
  it('flipped live under a prefer profile: the next call is HTTP/3 only (no fallback), and back to prefer on allow', async () => {
    h = harness({ http3: 'prefer', retry: ONE_ATTEMPT });
    h.behaviour.set(P1, (_call, protocol) => {
      if (protocol === 'h3') throw connectFailure(P1, protocol);
    });
    // prefer: HTTP/3 fails to connect, the same call falls back to HTTP/2.
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' })).resolves.toMatchObject({ protocol: 'h2' });
    h.seen.length = 0;
    h.hints.apply({ endpoint: 'peer-1', http3: 'require' });
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1' }));
    expect(error).toMatchObject({ http3Required: true, failure: 'connect' });
    expect((error as RpcError).details).toContain(`the endpoint hint for ${P1} has http3 "require"`);
    expect(h.seen.map((s) => s.protocol)).toEqual(['h3']);
    h.seen.length = 0;
    h.hints.apply({ endpoint: 'peer-1', http3: 'allow' });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(3), { endpoint: 'peer-1' })).resolves.toMatchObject({ protocol: 'h2' });
  });

  it("a live hint under a profile that disables HTTP/3: ConfigError naming both keys (the profile's and the hint's)", async () => {
    h = harness({ http3: 'disable', retry: ONE_ATTEMPT });
    h.hints.apply({ endpoint: 'https://10.0.0.9:7001', http3: 'require' });
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'https://10.0.0.9:7001', profile: 'test' }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key).sort()).toEqual(['EndpointHints[10.0.0.9:7001].http3', 'profiles.test.http3']);
    expect((error as ConfigError).message).toContain('HTTP/3 requirement for a call to 10.0.0.9:7001');
    expect(h.seen).toHaveLength(0);
  });
});
