import { describe, expect, it } from '@jest/globals';
import { PRESETS } from '../../../src/config/presets.js';
import { resolveOptions } from '../../../src/config/schema.js';
import { CERT, messageAt } from './config-helpers.js';

const profile = (extra: Record<string, unknown>) => ({ profiles: { p: { tls: CERT, ...extra } } });

describe('peerChooser and breaker options', () => {
  it('defaults: round-robin on the control plane, fewest-pending on the data plane, consecutive breakers that fail fast', () => {
    expect(PRESETS['control-plane'].peerChooser).toEqual({ kind: 'round-robin' });
    expect(PRESETS['data-plane'].peerChooser).toEqual({ kind: 'fewest-pending' });
    for (const preset of [PRESETS['control-plane'], PRESETS['data-plane']]) {
      expect(preset.breaker).toMatchObject({ mode: 'consecutive', consecutiveFailures: 5, failureStatusCodes: ['UNAVAILABLE', 'DEADLINE_EXCEEDED'], whenAllOpen: 'fail-fast' });
      expect(preset.breaker.windowMs).toBeGreaterThanOrEqual(2 * preset.deadlineMs);
    }
  });

  it('accepts a preferred peer by endpoint name or host:port', () => {
    const byName = resolveOptions({ ...profile({ peerChooser: { kind: 'preferred', preferred: 'a' } }), endpoints: { a: { url: 'https://10.0.0.1:7001', profile: 'p' } } });
    expect(byName.profiles['p']!.peerChooser).toEqual({ kind: 'preferred', preferred: 'a' });
    expect(resolveOptions(profile({ peerChooser: { kind: 'preferred', preferred: '10.0.0.1:7001' } })).profiles['p']!.peerChooser.preferred).toBe('10.0.0.1:7001');
  });

  it('names the key at fault for a preferred chooser set up wrong', () => {
    expect(messageAt(profile({ peerChooser: { kind: 'preferred' } }), 'profiles.p.peerChooser.preferred')).toMatch(/needs the peer to prefer/);
    expect(messageAt(profile({ peerChooser: { preferred: '10.0.0.1:7001' } }), 'profiles.p.peerChooser.preferred')).toMatch(/only used with peerChooser.kind "preferred"/);
    expect(messageAt(profile({ peerChooser: { kind: 'preferred', preferred: 'nowhere' } }), 'profiles.p.peerChooser.preferred')).toMatch(/neither a configured endpoint name nor host:port/);
    expect(messageAt(profile({ peerChooser: { kind: 'random' } }), 'profiles.p.peerChooser.kind')).toMatch(/round-robin/);
  });

  it('checks breaker fields: ratio strictly between 0 and 1, whole counts, gRPC status names', () => {
    expect(messageAt(profile({ breaker: { failureRatio: 1 } }), 'profiles.p.breaker.failureRatio')).toMatch(/between 0 and 1/);
    expect(messageAt(profile({ breaker: { consecutiveFailures: 0 } }), 'profiles.p.breaker.consecutiveFailures')).toMatch(/at least 1/);
    expect(messageAt(profile({ breaker: { failureStatusCodes: ['UNAVAIALBLE'] } }), 'profiles.p.breaker.failureStatusCodes.0')).toMatch(/gRPC status name/);
    expect(messageAt(profile({ breaker: { whenAllOpen: 'probe' } }), 'profiles.p.breaker.whenAllOpen')).toMatch(/probe-least-recently-failed/);
    expect(messageAt(profile({ breaker: { maxEjectionPercent: 101 } }), 'profiles.p.breaker.maxEjectionPercent')).toMatch(/at most 100/);
    expect(messageAt(profile({ breaker: { maxEjectionPercent: -1 } }), 'profiles.p.breaker.maxEjectionPercent')).toMatch(/must not be negative/);
    expect(resolveOptions(profile({ breaker: { maxEjectionPercent: 100 } })).profiles['p']!.breaker.maxEjectionPercent).toBe(100);
  });

  it('keeps connectTimeoutMs within deadlineMs: a written deadline lowers the preset connect timeout, a written connect timeout above the deadline is refused', () => {
    expect(resolveOptions(profile({ deadlineMs: 500 })).profiles['p']).toMatchObject({ deadlineMs: 500, connectTimeoutMs: 500 });
    expect(resolveOptions(profile({ deadlineMs: 5_000 })).profiles['p']).toMatchObject({ deadlineMs: 5_000, connectTimeoutMs: 1_500 });
    expect(messageAt(profile({ connectTimeoutMs: 3_000 }), 'profiles.p.connectTimeoutMs')).toMatch(/at most deadlineMs \(2000, the "control-plane" preset default\)/);
    expect(messageAt(profile({ deadlineMs: 1_000, connectTimeoutMs: 3_000 }), 'profiles.p.connectTimeoutMs')).toMatch(/at most deadlineMs \(1000\)/);
  });

  it('streamDeadlineMs is a number of ms or "none"', () => {
    expect(resolveOptions(profile({})).profiles['p']!.streamDeadlineMs).toBe('none');
    expect(resolveOptions(profile({ streamDeadlineMs: 60_000 })).profiles['p']!.streamDeadlineMs).toBe(60_000);
    expect(messageAt(profile({ streamDeadlineMs: 'never' }), 'profiles.p.streamDeadlineMs')).toMatch(/whole number of ms .* or "none"; got string "never"/);
    expect(messageAt(profile({ streamDeadlineMs: 0 }), 'profiles.p.streamDeadlineMs')).toMatch(/at least 1 ms/);
  });

  it('requires a failure-ratio window of at least two deadlines, reported at the key the user wrote', () => {
    expect(messageAt(profile({ breaker: { mode: 'failure-ratio', windowMs: 3_000 } }), 'profiles.p.breaker.windowMs')).toMatch(/at least 2 × deadlineMs \(4000\)/);
    expect(messageAt(profile({ deadlineMs: 6_000, breaker: { mode: 'failure-ratio' } }), 'profiles.p.deadlineMs')).toMatch(/at most half of breaker.windowMs/);
    // Consecutive mode does not use the window.
    expect(resolveOptions(profile({ deadlineMs: 6_000 })).profiles['p']!.breaker.mode).toBe('consecutive');
  });
});
