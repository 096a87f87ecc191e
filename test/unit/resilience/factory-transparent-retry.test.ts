/**
 * Requests a server refused without processing them (a draining server's GOAWAY,
 * H3_REQUEST_REJECTED, REFUSED_STREAM: `RpcError.refused`) in the factory's retry loop, over
 * scripted HTTP/2 and HTTP/3 transports: sent again at once (gRFC A6 "transparent retry"),
 * without spending an attempt, bounded, within the deadline, never counted by the breaker;
 * the refusing peer is offered last for a while.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { ProfileOptionsInput } from '../../../src/config/types.js';
import { RpcError } from '../../../src/errors.js';
import { MAX_TRANSPARENT_RETRIES } from '../../../src/factory/control-plane-client-factory.js';
import { ControlPlaneDefinition } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';
import { RpcTelemetry } from '../../../src/telemetry/index.js';
import { EVENT_TRANSPARENT_RETRY } from '../../../src/telemetry/names.js';
import { createHarness } from '../telemetry/harness.js';
import { connectFailure, FAST_RETRY, harness, PEERS, refused, unavailable, type Harness } from './factory-harness.js';

const [P1, P2, P3] = PEERS;
const ALL = ['peer-1', 'peer-2', 'peer-3'];
const ping = (sequence: number) => ({ fromNode: 'test', sequence, payload: new Uint8Array() });
/** One counted failure would open a circuit: any refusal the breaker counted would show. */
const TOUCHY_BREAKER: ProfileOptionsInput['breaker'] = { consecutiveFailures: 1, halfOpenAfterMs: 5_000 };

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe.each([
  ['HTTP/2', 'disable', 'h2'],
  ['HTTP/3', 'prefer', 'h3'],
] as const)('transparent retry over %s', (_name, http3, protocol) => {
  it('sends a refused request again on another peer without spending an attempt; the breaker records nothing', async () => {
    h = harness({ http3, retry: { ...FAST_RETRY, maxAttempts: 1 }, breaker: TOUCHY_BREAKER });
    h.behaviour.set(P1, (_call, p) => {
      throw refused(P1, p);
    });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    expect(result).toMatchObject({ attempts: 1, protocol });
    expect(result.endpoint).not.toBe(P1);
    expect(h.seen.map((s) => s.authority)).toEqual([P1, result.endpoint]);
    expect(h.breaker.state(P1, 'test')).toBe('closed');
    expect(h.breaker.lastFailureAt?.(P1, 'test')).toBeUndefined();
  });

  it('a peer that refuses everything: UNAVAILABLE (refused) after at most MAX_TRANSPARENT_RETRIES + maxAttempts requests, never counted by the breaker', async () => {
    h = harness({ http3, retry: FAST_RETRY, breaker: TOUCHY_BREAKER });
    h.behaviour.set(P1, (_call, p) => {
      throw refused(P1, p);
    });
    const failing = h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    await expect(failing).rejects.toBeInstanceOf(RpcError);
    await expect(failing).rejects.toMatchObject({ statusName: 'UNAVAILABLE', failure: 'refused', refused: true });
    expect(h.seen).toHaveLength(MAX_TRANSPARENT_RETRIES + 3);
    expect(h.seen.every((s) => s.authority === P1 && s.protocol === protocol)).toBe(true);
    expect(h.breaker.state(P1, 'test')).toBe('closed');
    expect(h.breaker.lastFailureAt?.(P1, 'test')).toBeUndefined();
    // The next call is not failed fast by an open circuit: the peer is asked again.
    h.seen.length = 0;
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1' })).rejects.toMatchObject({ failure: 'refused' });
    expect(h.seen.length).toBeGreaterThan(0);
  });

  it('spends no transparent retry past the deadline', async () => {
    h = harness({ http3, deadlineMs: 1_000, retry: { ...FAST_RETRY, maxAttempts: 1 } });
    const clock = h.clock;
    h.behaviour.set(P1, (_call, p) => {
      clock.advance(1_000);
      throw refused(P1, p);
    });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL })).rejects.toMatchObject({ failure: 'refused' });
    expect(h.seen.map((s) => s.authority)).toEqual([P1]);
  });

  it('offers a peer that refused only when no other is left, for breaker.halfOpenAfterMs', async () => {
    h = harness({ http3, retry: { ...FAST_RETRY, maxAttempts: 1 }, breaker: { halfOpenAfterMs: 5_000 } });
    let draining = true;
    h.behaviour.set(P1, (_call, p) => {
      if (draining) throw refused(P1, p);
    });
    await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    h.seen.length = 0;
    for (let i = 0; i < 6; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(10 + i), { peers: ALL });
    expect(h.seen.filter((s) => s.authority === P1)).toHaveLength(0);
    expect(new Set(h.seen.map((s) => s.authority))).toEqual(new Set([P2, P3]));
    // A target with only the refusing peer still reaches it.
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(20), { endpoint: 'peer-1' })).rejects.toMatchObject({ failure: 'refused' });

    // Restarted: once the period is over it is offered again and takes its share.
    draining = false;
    h.clock.advance(5_000);
    h.seen.length = 0;
    for (let i = 0; i < 6; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(30 + i), { peers: ALL });
    expect(h.seen.filter((s) => s.authority === P1)).toHaveLength(2);
  });

  it('a peer that refused and then cannot be reached (its listener closed) is not counted while the drain lasts; later it is', async () => {
    h = harness({ http3, retry: FAST_RETRY, breaker: TOUCHY_BREAKER });
    let refusing = true;
    h.behaviour.set(P1, (_call, p) => {
      if (refusing) {
        refusing = false;
        throw refused(P1, p);
      }
      throw connectFailure(P1, p);
    });
    const failing = h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' });
    await expect(failing).rejects.toMatchObject({ statusName: 'UNAVAILABLE', failure: 'refused' });
    await expect(failing).rejects.toThrow(/it is draining/);
    expect(h.breaker.state(P1, 'test')).toBe('closed');
    expect(h.breaker.lastFailureAt?.(P1, 'test')).toBeUndefined();
    // The connect failures did not renew the mark: after the period they count again.
    h.clock.advance(5_000);
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1' })).rejects.toBeDefined();
    expect(h.breaker.lastFailureAt?.(P1, 'test')).toBeDefined();
    expect(h.breaker.state(P1, 'test')).toBe('open');
  });

  it('a refusal after the policy already retried: the attempts already spent stay spent, the refusal adds none', async () => {
    h = harness({ http3, retry: { ...FAST_RETRY, maxAttempts: 2 } });
    h.behaviour.set(P1, (_call, p) => {
      throw unavailable(P1, p);
    });
    h.behaviour.set(P2, (_call, p) => {
      throw refused(P2, p);
    });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    expect(result).toMatchObject({ endpoint: P3, attempts: 2 });
    expect(h.seen.map((s) => s.authority)).toEqual([P1, P2, P3]);
  });
});

describe('server streams', () => {
  it('a stream refused before its first message is opened again on another peer; the breaker records nothing', async () => {
    h = harness({ http3: 'disable', breaker: TOUCHY_BREAKER });
    h.streams.set(P1, (_call, p) => {
      throw refused(P1, p);
    });
    h.streams.set(P2, () => undefined);
    h.streams.set(P3, () => undefined);
    const events: string[] = [];
    for await (const event of h.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 0 }, { peers: ALL })) events.push(event.node);
    expect(events).toHaveLength(1);
    expect(events[0]).not.toBe(P1);
    expect(h.seen.map((s) => s.authority)).toEqual([P1, events[0]]);
    expect(h.breaker.state(P1, 'test')).toBe('closed');
  });

  it('a stream every peer refuses ends UNAVAILABLE (refused) after MAX_TRANSPARENT_RETRIES + 1 opens', async () => {
    h = harness({ http3: 'disable', breaker: TOUCHY_BREAKER });
    for (const peer of PEERS) {
      h.streams.set(peer, (_call, p) => {
        throw refused(peer, p);
      });
    }
    const drain = async (): Promise<void> => {
      for await (const _ of h!.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 0 }, { peers: ALL })) void _;
    };
    await expect(drain()).rejects.toMatchObject({ statusName: 'UNAVAILABLE', failure: 'refused' });
    expect(h.seen).toHaveLength(MAX_TRANSPARENT_RETRIES + 1);
    for (const peer of PEERS) expect(h.breaker.state(peer, 'test')).toBe('closed');
  });
});

describe('telemetry', () => {
  it('records each transparent retry as a span event naming the peer and the refusal, and one attempt', async () => {
    const telemetry = createHarness();
    h = harness({ http3: 'disable', retry: { ...FAST_RETRY, maxAttempts: 1 } }, { telemetry: new RpcTelemetry({ meterProvider: telemetry.meterProvider, tracerProvider: telemetry.tracerProvider }) });
    h.behaviour.set(P1, (_call, p) => {
      throw refused(P1, p);
    });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    const [span] = telemetry.spans();
    const events = span?.events.filter((e) => e.name === EVENT_TRANSPARENT_RETRY) ?? [];
    expect(events).toHaveLength(1);
    expect(events[0]?.attributes).toMatchObject({ 'omnirelay.peer': P1, 'omnirelay.attempt': 1, 'omnirelay.refusal': 'the server refused the request without processing it' });
    expect(span?.events.filter((e) => e.name === 'retry')).toHaveLength(0);
    expect(span?.attributes['omnirelay.peer']).toBe(result.endpoint);
    expect(result.endpoint).not.toBe(P1);
    await telemetry.shutdown();
  });
});
