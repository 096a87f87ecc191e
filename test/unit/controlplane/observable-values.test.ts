import { describe, expect, it } from '@jest/globals';
import { Subject } from 'rxjs';
import { latestValues, queuedValues } from '../../../src/controlplane/observable-values.js';

describe('queuedValues (a server stream of transitions, none skipped)', () => {
  it('yields every value in order, also those that arrived while the reader was away', async () => {
    const source = new Subject<number>();
    const values = queuedValues(source, new AbortController().signal, 10, () => new Error('overflow'));
    const first = values.next();
    source.next(1);
    source.next(2);
    source.next(3);
    await expect(first).resolves.toEqual({ value: 1, done: false });
    await expect(values.next()).resolves.toEqual({ value: 2, done: false });
    await expect(values.next()).resolves.toEqual({ value: 3, done: false });
    source.complete();
    await expect(values.next()).resolves.toEqual({ value: undefined, done: true });
    expect(source.observed).toBe(false);
  });

  it('a reader more than `max` behind gets the overflow error, after the values it was still owed', async () => {
    const source = new Subject<number>();
    const values = queuedValues(source, new AbortController().signal, 2, () => new Error('fell 2 behind'));
    const first = values.next();
    for (let i = 1; i <= 5; i++) source.next(i);
    await expect(first).resolves.toEqual({ value: 1, done: false });
    await expect(values.next()).resolves.toEqual({ value: 2, done: false });
    await expect(values.next()).rejects.toThrow('fell 2 behind');
    expect(source.observed).toBe(false);
  });

  it('ends when the signal aborts and unsubscribes', async () => {
    const source = new Subject<number>();
    const controller = new AbortController();
    const values = queuedValues(source, controller.signal, 2, () => new Error('overflow'));
    const pending = values.next();
    controller.abort();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    expect(source.observed).toBe(false);
  });
});

describe('latestValues (snapshots: a slow reader skips to the newest)', () => {
  it('yields the newest value only', async () => {
    const source = new Subject<number>();
    const values = latestValues(source, new AbortController().signal);
    const first = values.next();
    source.next(1);
    await expect(first).resolves.toEqual({ value: 1, done: false });
    source.next(2);
    source.next(3);
    await expect(values.next()).resolves.toEqual({ value: 3, done: false });
    source.complete();
    await expect(values.next()).resolves.toEqual({ value: undefined, done: true });
  });
});
