import { describe, expect, it, jest } from '@jest/globals';
import { PRESETS } from '../../../src/config/presets.js';
import type { TlsMaterial } from '../../../src/tls/material.js';
import { ChannelCache } from '../../../src/transport/channel-cache.js';
import { parseEndpoint } from '../../../src/transport/endpoint.js';
import type { DialTarget, Transport, TransportConnection, WireProtocol } from '../../../src/transport/types.js';

/** A transport that records which connections it opened and which were closed. */
class RecordingTransport implements Transport {
  readonly opened: { target: DialTarget; closed: boolean }[] = [];
  constructor(readonly protocol: WireProtocol) {}
  open(target: DialTarget): TransportConnection {
    const record = { target, closed: false };
    this.opened.push(record);
    return {
      protocol: this.protocol,
      unary: () => Promise.reject(new Error('not used')),
      serverStream: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }) }),
      stream: () => {
        throw new Error('not used');
      },
      close: () => {
        record.closed = true;
      },
    };
  }
}

function tls(generation: number, fingerprint = `fp${generation}`): TlsMaterial {
  return {
    profile: 'control-plane', generation, mode: 'mtls', ca: undefined, cert: undefined, key: undefined, pfx: undefined, passphrase: undefined,
    crl: [], checkRevocation: false, serverNameOverride: undefined, clientCertificate: undefined, fingerprint, secureContext: undefined,
  };
}

function target(overrides: Partial<DialTarget> = {}): DialTarget {
  return { endpoint: parseEndpoint('https://127.0.0.1:7001'), profileName: 'control-plane', profile: PRESETS['control-plane'], tls: tls(1), peerValidator: undefined, ...overrides };
}

function setup() {
  const h2 = new RecordingTransport('h2');
  const h3 = new RecordingTransport('h3');
  const cache = new ChannelCache(new Map<WireProtocol, Transport>([['h2', h2], ['h3', h3]]));
  return { h2, h3, cache };
}

describe('ChannelCache', () => {
  it('reuses one connection per (profile, endpoint, protocol) while the inputs are equal', () => {
    const { h2, h3, cache } = setup();
    const leases = Array.from({ length: 100 }, () => cache.acquire(target(), 'h2'));
    cache.acquire(target({ endpoint: parseEndpoint('https://127.0.0.1:7002') }), 'h2').release();
    cache.acquire(target(), 'h3').release();
    expect(h2.opened).toHaveLength(2);
    expect(h3.opened).toHaveLength(1);
    expect(new Set(leases.map((l) => l.generation)).size).toBe(1);
    leases.forEach((l) => l.release());
    expect(h2.opened.every((o) => !o.closed)).toBe(true);
  });

  it('builds a new generation when the TLS material changes and drains the old one until its calls finish', () => {
    const { h2, cache } = setup();
    const old = cache.acquire(target(), 'h2');
    const fresh = cache.acquire(target({ tls: tls(2) }), 'h2');
    expect(fresh.generation).not.toBe(old.generation);
    expect(h2.opened).toHaveLength(2);
    expect(h2.opened[0]!.closed).toBe(false);
    expect(cache.entries().map((e) => `${e.generation}:${e.state}:${e.inFlight}`)).toEqual([`${fresh.generation}:active:1`, `${old.generation}:draining:1`]);
    old.release();
    expect(h2.opened[0]!.closed).toBe(true);
    old.release();
    fresh.release();
    expect(h2.opened[1]!.closed).toBe(false);
  });

  it('rebuilds when connection settings change, but not for per-call settings like the deadline or retry policy', () => {
    const { h2, cache } = setup();
    const base = PRESETS['control-plane'];
    cache.acquire(target(), 'h2').release();
    cache.acquire(target({ profile: { ...base, deadlineMs: 99, retry: { ...base.retry, maxAttempts: 1 } } }), 'h2').release();
    expect(h2.opened).toHaveLength(1);
    cache.acquire(target({ profile: { ...base, keepalive: { ...base.keepalive, timeMs: base.keepalive.timeMs + 1 } } }), 'h2').release();
    expect(h2.opened).toHaveLength(2);
    expect(h2.opened[0]!.closed).toBe(true);
  });

  it('closes a draining generation when the grace period ends even if calls are still running', () => {
    jest.useFakeTimers();
    try {
      const { h2, cache } = setup();
      const stuck = cache.acquire(target(), 'h2');
      expect(cache.retire((e) => e.authority === '127.0.0.1:7001', () => 1_000)).toBe(1);
      jest.advanceTimersByTime(999);
      expect(h2.opened[0]!.closed).toBe(false);
      jest.advanceTimersByTime(1);
      expect(h2.opened[0]!.closed).toBe(true);
      stuck.release();
      expect(cache.entries()).toEqual([]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('retires only what the predicate selects, and dispose closes everything', () => {
    const { h2, h3, cache } = setup();
    cache.acquire(target(), 'h2').release();
    cache.acquire(target(), 'h3').release();
    expect(cache.retire((e) => e.protocol === 'h3', () => 0)).toBe(1);
    expect(h3.opened[0]!.closed).toBe(true);
    expect(h2.opened[0]!.closed).toBe(false);
    cache.dispose();
    expect(h2.opened[0]!.closed).toBe(true);
    expect(() => cache.acquire(target(), 'h2')).toThrow(/disposed/);
  });
});
