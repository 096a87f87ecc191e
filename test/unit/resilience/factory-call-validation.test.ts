/**
 * Issue 13, defect 8: per-call input is checked before anything is sent, with typed errors
 * that name the bad key or value: deadlineMs, the method, the endpoint; Http3Health.forceHttp2
 * and probeHttp3 take an endpoint as a configured name, a URL or host:port.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ConfigError, EndpointError, MethodError } from '../../../src/errors.js';
import { ControlPlaneDefinition } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';
import type { ServiceDefinition } from '../../../src/grpc/service-definition.js';
import { harness, PEERS, type Harness } from './factory-harness.js';
import { failureOf } from '../../support/failure.js';

const ping = (sequence: number) => ({ fromNode: 'test', sequence, payload: new Uint8Array() });
const SERVICE = ControlPlaneDefinition.fullName;

describe('per-call validation', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.dispose();
    h = undefined;
  });

  it.each([
    ['a string', '500', 'must be a number of milliseconds, got string "500"'],
    ['negative', -1, 'must be greater than 0 ms, got -1'],
    ['zero', 0, 'must be greater than 0 ms, got 0'],
    ['NaN', Number.NaN, 'must be a finite number of milliseconds, got NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'must be a finite number of milliseconds, got Infinity'],
    ['above 24 h', 86_400_001, 'must be at most 86400000 ms (24 h), got 86400001'],
    ['above the timer limit', 2 ** 31, 'must be at most 86400000 ms (24 h)'],
  ])('refuses deadlineMs %s with a ConfigError keyed deadlineMs, sending nothing', async (_, deadlineMs, message) => {
    h = harness({});
    const options = { endpoint: 'peer-1', deadlineMs: deadlineMs as number };
    const unary = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), options));
    expect(unary).toBeInstanceOf(ConfigError);
    expect(unary).toMatchObject({ code: 'CONFIG_INVALID', issues: [{ key: 'deadlineMs', message: expect.stringContaining(message) as unknown }] });
    const stream = await failureOf(async () => {
      for await (const _event of h!.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 1 }, options)) void _event;
    });
    expect(stream).toMatchObject({ code: 'CONFIG_INVALID', issues: [{ key: 'deadlineMs' }] });
    const client = h.factory.client(ControlPlaneDefinition, { endpoint: 'peer-1' });
    await expect(client.ping(ping(2), { deadlineMs: deadlineMs as number })).rejects.toMatchObject({ issues: [{ key: 'deadlineMs' }] });
    expect(h.seen).toEqual([]);
  });

  it('gives a unary call the profile deadlineMs and a stream none (streamDeadlineMs "none"), unless the call sets one', async () => {
    h = harness({ deadlineMs: 2_000 });
    const deadlines: number[] = [];
    h.behaviour.set(PEERS[0], (call) => void deadlines.push(call.deadline - Date.now()));
    h.streams.set(PEERS[0], (call) => void deadlines.push(call.deadline - Date.now()));
    await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    const watch = (options: { deadlineMs?: number | 'none' }) => async () => {
      for await (const _event of h!.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 1 }, { endpoint: 'peer-1', ...options })) void _event;
    };
    await watch({})();
    await watch({ deadlineMs: 'none' })();
    await watch({ deadlineMs: 700 })();
    expect(deadlines[0]).toBeGreaterThan(1_000);
    expect(deadlines[0]).toBeLessThanOrEqual(2_000);
    expect(deadlines[1]).toBe(Number.POSITIVE_INFINITY);
    expect(deadlines[2]).toBe(Number.POSITIVE_INFINITY);
    expect(deadlines[3]).toBeLessThanOrEqual(700);
    expect(deadlines[3]).toBeGreaterThan(0);
  });

  it('a profile streamDeadlineMs bounds streams; deadlineMs "none" on a unary call is a ConfigError', async () => {
    h = harness({ streamDeadlineMs: 60_000 });
    const deadlines: number[] = [];
    h.streams.set(PEERS[0], (call) => void deadlines.push(call.deadline - Date.now()));
    for await (const _event of h.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 1 }, { endpoint: 'peer-1' })) void _event;
    expect(deadlines[0]).toBeGreaterThan(59_000);
    expect(deadlines[0]).toBeLessThanOrEqual(60_000);
    h.seen.length = 0;
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1', deadlineMs: 'none' }));
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', issues: [{ key: 'deadlineMs', message: expect.stringContaining('streams only') as unknown }] });
    expect(h.seen).toEqual([]);
  });

  it('accepts a fractional deadline and the 24 h bound', async () => {
    h = harness({});
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1', deadlineMs: 1_500.5 })).resolves.toMatchObject({ attempts: 1 });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1', deadlineMs: 86_400_000 })).resolves.toMatchObject({ attempts: 1 });
  });

  it('refuses an unknown method with a MethodError naming the service and the method and listing the methods', async () => {
    h = harness({});
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'pong' as 'ping', ping(1), { endpoint: 'peer-1' }));
    expect(error).toBeInstanceOf(MethodError);
    expect(error).toMatchObject({ code: 'METHOD_UNKNOWN', service: SERVICE, method: 'pong', methods: ['ping'] });
    expect((error as Error).message).toBe(`Service ${SERVICE} has no method "pong"; its unary methods: ping.`);
    // The wire name (Ping) is not the key: say which key was meant.
    const wireName = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'Ping' as 'ping', ping(1), { endpoint: 'peer-1' }));
    expect((wireName as Error).message).toContain('(did you mean "ping"?)');
    const stream = await failureOf(async () => {
      for await (const _event of h!.factory.serverStream(ControlPlaneDefinition, 'wach' as 'watch', { fromNode: 'test', count: 1, intervalMs: 1 }, { endpoint: 'peer-1' })) void _event;
    });
    expect(stream).toMatchObject({ code: 'METHOD_UNKNOWN', service: SERVICE, method: 'wach', methods: ['watch'] });
    expect(h.seen).toEqual([]);
  });

  it('refuses a method of another kind with METHOD_UNSUPPORTED', async () => {
    h = harness({});
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'watch' as 'ping', ping(1), { endpoint: 'peer-1' }));
    expect(error).toMatchObject({ code: 'METHOD_UNSUPPORTED', service: SERVICE, method: 'watch', methods: ['ping'] });
    expect((error as Error).message).toContain('is a server-stream method and cannot be called with unary(); use serverStream()');
  });

  it('refuses something that is not a service definition with a TypeError', async () => {
    h = harness({});
    await expect(h.factory.unary({} as unknown as ServiceDefinition as typeof ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' })).rejects.toThrow(TypeError);
  });

  it('refuses an endpoint name that is not configured with ENDPOINT_UNKNOWN, naming it and listing the configured endpoints', async () => {
    h = harness({});
    const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'node-x' }));
    expect(error).toBeInstanceOf(EndpointError);
    expect(error).toMatchObject({ code: 'ENDPOINT_UNKNOWN', endpoint: 'node-x', known: ['peer-1', 'peer-2', 'peer-3'] });
    expect((error as Error).message).toBe('Endpoint "node-x" is not configured (configured endpoints: peer-1, peer-2, peer-3). Name a configured endpoint, or give a URL (https://host:port) or host:port.');
    expect(() => h!.factory.client(ControlPlaneDefinition, { peers: ['peer-1', 'node-y'] })).toThrow(/Endpoint "node-y" is not configured/);
    // A URL or host:port without a port is still reported as such.
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'https://10.0.0.1' })).rejects.toMatchObject({ code: 'ENDPOINT_INVALID' });
    expect(h.seen).toEqual([]);
  });
});

describe('Http3Health.forceHttp2 and probeHttp3 take a name, a URL or host:port', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.dispose();
    h = undefined;
  });

  it.each([
    ['a configured name', 'peer-1'],
    ['a URL', `https://${PEERS[0]}`],
    ['host:port', PEERS[0]],
  ])('forces HTTP/2 for %s: the next call to the endpoint uses HTTP/2', async (_, endpoint) => {
    h = harness({});
    await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    expect(h.seen.at(-1)).toMatchObject({ protocol: 'h3' });
    const state = h.health.forceHttp2(endpoint, 10_000);
    expect(state).toMatchObject({ authority: PEERS[0], reason: 'forced' });
    expect(h.health.isBroken('peer-1')).toBe(true);
    expect(h.health.state(`https://${PEERS[0]}`)).toBe(state);
    await h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1' });
    expect(h.seen.at(-1)).toMatchObject({ authority: PEERS[0], protocol: 'h2' });
  });

  it('rejects what it cannot resolve, and a bad duration, with typed errors', () => {
    h = harness({});
    expect(() => h!.health.forceHttp2('node-x', 10_000)).toThrow(expect.objectContaining({ code: 'ENDPOINT_UNKNOWN', endpoint: 'node-x', known: ['peer-1', 'peer-2', 'peer-3'] }));
    expect(() => h!.health.forceHttp2('https://10.0.0.1', 10_000)).toThrow(expect.objectContaining({ code: 'ENDPOINT_INVALID' }));
    for (const duration of [-1, 0, Number.NaN, '1000', 86_400_001]) {
      expect(() => h!.health.forceHttp2('peer-1', duration as number)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', issues: [expect.objectContaining({ key: 'durationMs' })] }));
    }
    expect(h.health.state('peer-1')).toBeUndefined();
  });

  it('probeHttp3 takes the endpoint alone or { endpoint, service }', async () => {
    h = harness({});
    await expect(h.factory.probeHttp3('peer-2')).resolves.toMatchObject({ endpoint: PEERS[1] });
    await expect(h.factory.probeHttp3({ endpoint: `https://${PEERS[2]}`, profile: 'test', service: '' })).resolves.toMatchObject({ endpoint: PEERS[2] });
    await expect(h.factory.probeHttp3('node-x')).rejects.toMatchObject({ code: 'ENDPOINT_UNKNOWN' });
  });
});

describe('per-call metadata', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.dispose();
    h = undefined;
  });

  it.each([
    ['an uppercase key', { 'X-Trace': 'a' }, 'metadata.X-Trace', 'must be lowercase'],
    ['a reserved key', { 'grpc-timeout': '1S' }, 'metadata.grpc-timeout', 'reserved by gRPC'],
    ['a pseudo-header', { ':path': '/x' }, 'metadata.:path', 'must be lowercase'],
    ['content-type', { 'content-type': 'text/plain' }, 'metadata.content-type', 'reserved by gRPC'],
    ['a non-ASCII text value', { note: 'héllo' }, 'metadata.note', 'printable ASCII'],
    ['a line break (header injection)', { note: 'a\r\nx-evil: 1' }, 'metadata.note', 'printable ASCII'],
    ['a number', { count: 3 }, 'metadata.count', 'string or a Buffer'],
  ])('refuses %s with a ConfigError naming the key, over either protocol, sending nothing', async (_name, metadata, key, message) => {
    for (const http3 of ['disable', 'require'] as const) {
      h = harness({ http3 });
      const error = await failureOf(() => h!.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1', metadata: metadata as Record<string, string> }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ issues: [{ key, message: expect.stringContaining(message) as unknown }] });
      expect(h.seen).toEqual([]);
      await h.dispose();
      h = undefined;
    }
  });

  it('accepts lowercase text keys and -bin keys with bytes', async () => {
    h = harness({});
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1', metadata: { 'x-trace': 'abc', 'x-blob-bin': Buffer.from([0, 255]) } })).resolves.toMatchObject({ attempts: 1 });
  });
});
