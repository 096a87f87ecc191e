import { describe, expect, it } from '@jest/globals';
import { BehaviorSubject, NEVER, Subject } from 'rxjs';
import { OptionsMonitor } from '../../../src/config/options-monitor.js';
import type { ControlPlaneOptionsInput } from '../../../src/config/types.js';
import { ConfigError } from '../../../src/errors.js';

const good = (deadlineMs: number): ControlPlaneOptionsInput => ({ profiles: { 'control-plane': { deadlineMs, tls: { mode: 'tls' } } } });

describe('OptionsMonitor', () => {
  it('takes a plain object as the one snapshot', () => {
    const monitor = new OptionsMonitor(good(1234));
    expect(monitor.current.profiles['control-plane']?.deadlineMs).toBe(1234);
    monitor.dispose();
  });

  it('follows an Observable: good snapshots go live, a bad one is rejected naming every bad key and the last good stays live', () => {
    const source = new BehaviorSubject<ControlPlaneOptionsInput>(good(1000));
    const monitor = new OptionsMonitor(source);
    const rejections: ConfigError[] = [];
    const seen: number[] = [];
    monitor.rejections$.subscribe((e) => rejections.push(e));
    monitor.snapshots$.subscribe((s) => seen.push(s.profiles['control-plane']!.deadlineMs));
    source.next(good(2000));
    source.next({ profiles: { 'control-plane': { deadlineMs: -5, keepalive: { timeMs: 'soon' as unknown as number } } } });
    expect(monitor.current.profiles['control-plane']?.deadlineMs).toBe(2000);
    expect(seen).toEqual([1000, 2000]);
    expect(rejections).toHaveLength(1);
    const keys = rejections[0]!.issues.map((i) => i.key);
    expect(keys).toEqual(expect.arrayContaining(['profiles.control-plane.deadlineMs', 'profiles.control-plane.keepalive.timeMs']));
    source.next(good(3000));
    expect(monitor.current.profiles['control-plane']?.deadlineMs).toBe(3000);
    monitor.dispose();
    source.next(good(4000));
    expect(seen).toEqual([1000, 2000, 3000]);
  });

  it('refuses to start on an invalid first snapshot', () => {
    expect(() => new OptionsMonitor({ profiles: { 'control-plane': { deadlineMs: 0 } } })).toThrow(ConfigError);
    expect(() => new OptionsMonitor(new BehaviorSubject<ControlPlaneOptionsInput>({ unknownKey: true } as ControlPlaneOptionsInput))).toThrow(/unknownKey/);
  });

  it('refuses an Observable that has no current value, saying how to give it one', () => {
    expect(() => new OptionsMonitor(NEVER)).toThrow(/BehaviorSubject/);
    expect(() => new OptionsMonitor(new Subject<ControlPlaneOptionsInput>())).toThrow(ConfigError);
  });
});
