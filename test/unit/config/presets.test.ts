import { describe, expect, it } from '@jest/globals';
import { isPresetName, PRESET_NAMES, PRESETS } from '../../../src/config/presets.js';
import { ProfileOptionsSchema } from '../../../src/config/schema.js';

describe('PRESETS', () => {
  it('has exactly the two built-in presets', () => {
    expect(Object.keys(PRESETS).sort()).toEqual([...PRESET_NAMES].sort());
    expect(PRESET_NAMES.every(isPresetName)).toBe(true);
    expect(isPresetName('custom')).toBe(false);
  });

  it.each(PRESET_NAMES)('%s passes the resolved profile schema and its own cross-field rules', (name) => {
    const preset = PRESETS[name];
    expect(ProfileOptionsSchema.safeParse(preset).success).toBe(true);
    expect(preset.keepalive.timeoutMs).toBeLessThan(preset.keepalive.timeMs);
    expect(preset.retry.initialBackoffMs).toBeLessThanOrEqual(preset.retry.maxBackoffMs);
    expect(preset.http3Health.initialBackoffMs).toBeLessThanOrEqual(preset.http3Health.maxBackoffMs);
    expect(preset.tls).toEqual({ mode: 'mtls', crlFiles: [], checkRevocation: false, reloadPollMs: 500 });
    expect(preset.http3).toBe('prefer');
    expect(preset.retry.retryableStatusCodes).toEqual(['UNAVAILABLE']);
  });

  it('control-plane is small, fast and pings aggressively', () => {
    const cp = PRESETS['control-plane'];
    expect(cp.limits).toEqual({ maxReceiveMessageBytes: 4 * 1024 * 1024, maxSendMessageBytes: 4 * 1024 * 1024 });
    expect(cp.deadlineMs).toBe(2_000);
    expect(cp.keepalive).toEqual({ timeMs: 10_000, timeoutMs: 5_000, permitWithoutCalls: true });
    expect(cp.http3RaceDelayMs).toBe(250);
    expect(cp.http3Health).toEqual({ initialBackoffMs: 30_000, maxBackoffMs: 600_000 });
    expect(cp.connectTimeoutMs).toBe(1_500);
    expect(cp.connectTimeoutMs).toBeLessThanOrEqual(cp.deadlineMs);
    expect(cp.streamDeadlineMs).toBe('none');
    expect(cp.breaker.maxEjectionPercent).toBe(50);
    expect(cp.retry).toEqual({ maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 1_000, multiplier: 2, jitter: 0.2, retryableStatusCodes: ['UNAVAILABLE'] });
    expect(cp.drainGraceMs).toBe(30_000);
    expect(cp.http.connectionsPerEndpoint).toBe(4);
  });

  it('data-plane carries bigger messages, waits longer, pings gently and retries less', () => {
    const cp = PRESETS['control-plane'];
    const dp = PRESETS['data-plane'];
    expect(dp.limits.maxReceiveMessageBytes).toBe(16 * 1024 * 1024);
    expect(dp.deadlineMs).toBe(30_000);
    expect(dp.keepalive).toEqual({ timeMs: 60_000, timeoutMs: 20_000, permitWithoutCalls: false });
    expect(dp.retry.maxAttempts).toBe(2);
    expect(dp.limits.maxSendMessageBytes).toBeGreaterThan(cp.limits.maxSendMessageBytes);
    expect(dp.http.connectionsPerEndpoint).toBeGreaterThan(cp.http.connectionsPerEndpoint);
    expect(dp.drainGraceMs).toBeGreaterThan(cp.drainGraceMs);
    expect(dp.connectTimeoutMs).toBeGreaterThan(cp.connectTimeoutMs);
  });

  it('is deep-frozen', () => {
    expect(Object.isFrozen(PRESETS)).toBe(true);
    expect(Object.isFrozen(PRESETS['control-plane'].retry.retryableStatusCodes)).toBe(true);
    expect(Object.isFrozen(PRESETS['data-plane'].tls)).toBe(true);
  });
});
