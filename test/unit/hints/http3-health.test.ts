import { describe, expect, it } from '@jest/globals';
import { Http3Health } from '../../../src/hints/http3-health.js';

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const options = { initialBackoffMs: 1_000, maxBackoffMs: 5_000 };

describe('Http3Health', () => {
  it('keeps an endpoint on HTTP/2 for the backoff window, then lets HTTP/3 be tried again', () => {
    const clock = fakeClock();
    const health = new Http3Health(clock);
    expect(health.isBroken('a:1')).toBe(false);
    health.markBroken('a:1', 'handshake', options);
    expect(health.isBroken('a:1')).toBe(true);
    expect(health.isBroken('b:1')).toBe(false);
    clock.advance(999);
    expect(health.isBroken('a:1')).toBe(true);
    clock.advance(1);
    expect(health.isBroken('a:1')).toBe(false);
  });

  it('doubles the window on each repeated failure up to the cap', () => {
    const clock = fakeClock();
    const health = new Http3Health(clock);
    const windows = [1, 2, 3, 4, 5].map(() => health.markBroken('a:1', 'idle-timeout', options).brokenUntil - clock.now());
    expect(windows).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('forgets failures after an HTTP/3 success, so the next failure starts from the initial window', () => {
    const clock = fakeClock();
    const health = new Http3Health(clock);
    health.markBroken('a:1', 'connect', options);
    health.markBroken('a:1', 'connect', options);
    health.markHealthy('a:1');
    expect(health.isBroken('a:1')).toBe(false);
    expect(health.markBroken('a:1', 'connect', options).brokenUntil - clock.now()).toBe(1_000);
  });

  it('lets a probe or an operator force HTTP/2 for a while, and reports every change', () => {
    const clock = fakeClock();
    const health = new Http3Health(clock);
    const seen: string[] = [];
    health.changes$.subscribe((c) => seen.push(`${c.authority}:${c.reason}:${c.broken}`));
    health.forceHttp2('a:1', 10_000);
    expect(health.isBroken('a:1')).toBe(true);
    clock.advance(10_000);
    expect(health.isBroken('a:1')).toBe(false);
    health.markHealthy('a:1');
    expect(seen).toEqual(['a:1:forced:true', 'a:1:forced:false']);
    health.dispose();
  });
});
