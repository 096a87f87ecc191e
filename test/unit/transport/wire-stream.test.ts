/**
 * The pieces both transports share for streaming calls: the request pump (back-pressure, end,
 * failures, stop) and the deadline timer (none for Infinity).
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { deadlineTimer, failedWireStream, RequestPump, StreamEnd, timeoutOf, type PumpFailure } from '../../../src/transport/wire-stream.js';

/** A sink whose writes stay pending until the test releases them. */
function slowSink() {
  const written: Uint8Array[] = [];
  const pending: Array<() => void> = [];
  let ended = 0;
  return {
    written,
    pending,
    get ended() {
      return ended;
    },
    sink: {
      write: (message: Uint8Array) => {
        written.push(message);
        return new Promise<void>((resolve) => pending.push(resolve));
      },
      end: () => {
        ended++;
      },
    },
  };
}

/** An iterator that counts pulls and returns. */
function counted(count: number | undefined, fail?: Error) {
  const state = { pulled: 0, returned: 0 };
  const iterable: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        state.pulled++;
        if (fail !== undefined && state.pulled === 2) return Promise.reject(fail);
        if (count !== undefined && state.pulled > count) return Promise.resolve({ done: true as const, value: undefined });
        return Promise.resolve({ done: false as const, value: Uint8Array.of(state.pulled) });
      },
      return: () => {
        state.returned++;
        return Promise.resolve({ done: true as const, value: undefined });
      },
    }),
  };
  return { state, iterable };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('RequestPump', () => {
  it('pulls the next message only once the previous write resolved, then half-closes', async () => {
    const { state, iterable } = counted(3);
    const target = slowSink();
    new RequestPump(iterable, target.sink, 100, () => undefined).start();
    await settle();
    expect(state.pulled).toBe(1);
    expect(target.written).toHaveLength(1);
    target.pending.shift()?.();
    await settle();
    expect(state.pulled).toBe(2);
    target.pending.shift()?.();
    await settle();
    target.pending.shift()?.();
    await settle();
    expect(state.pulled).toBe(4);
    expect(target.ended).toBe(1);
    expect(state.returned).toBe(0);
  });

  it('a throwing iterable fails the call with CANCELLED naming the cause, and is not returned', async () => {
    const { state, iterable } = counted(undefined, new Error('producer broke'));
    const failures: PumpFailure[] = [];
    const target = slowSink();
    new RequestPump(iterable, target.sink, 100, (f) => failures.push(f)).start();
    await settle();
    target.pending.shift()?.();
    await settle();
    expect(failures).toEqual([{ status: 1, details: 'the request stream failed: Error: producer broke' }]);
    expect(state.returned).toBe(0);
    expect(target.ended).toBe(0);
  });

  it('a message above the limit fails the call with RESOURCE_EXHAUSTED before it is written', async () => {
    const iterable: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: false as const, value: new Uint8Array(11) }) }) };
    const failures: PumpFailure[] = [];
    const target = slowSink();
    new RequestPump(iterable, target.sink, 10, (f) => failures.push(f)).start();
    await settle();
    expect(failures).toEqual([{ status: 8, details: 'request message larger than max (11 vs. 10)' }]);
    expect(target.written).toHaveLength(0);
  });

  it('stop() while a write is pending returns the iterator once and pulls nothing more', async () => {
    const { state, iterable } = counted(undefined);
    const target = slowSink();
    const pump = new RequestPump(iterable, target.sink, 100, () => undefined);
    pump.start();
    await settle();
    pump.stop();
    pump.stop();
    target.pending.shift()?.();
    await settle();
    expect(state.pulled).toBe(1);
    expect(state.returned).toBe(1);
  });

  it('a sink that takes each message at once (write returns undefined): all written in order, then half-closed', async () => {
    const { state, iterable } = counted(5);
    const written: number[] = [];
    let ended = 0;
    const sink = {
      write: (message: Uint8Array): undefined => void written.push(message[0]!),
      end: () => void ended++,
    };
    new RequestPump(iterable, sink, 100, () => undefined).start();
    for (let i = 0; i < 5 && ended === 0; i++) await settle();
    expect({ written, ended, pulled: state.pulled, returned: state.returned }).toEqual({ written: [1, 2, 3, 4, 5], ended: 1, pulled: 6, returned: 0 });
  });

  it('a failing write stops the pump quietly and returns the iterator (the response side reports)', async () => {
    const { state, iterable } = counted(undefined);
    const failures: PumpFailure[] = [];
    new RequestPump(iterable, { write: () => Promise.reject(new Error('stream reset')), end: () => undefined }, 100, (f) => failures.push(f)).start();
    await settle();
    expect(failures).toEqual([]);
    expect(state.returned).toBe(1);
  });
});

describe('deadlines', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('Infinity arms no timer and sends no grpc-timeout', () => {
    jest.useFakeTimers();
    const fired = jest.fn();
    deadlineTimer(Infinity, fired);
    expect(jest.getTimerCount()).toBe(0);
    expect(timeoutOf(Infinity)).toBeUndefined();
  });

  it('a finite deadline fires at its time; one beyond setTimeout’s range is re-armed, not fired at once', () => {
    jest.useFakeTimers({ now: 0 });
    const soon = jest.fn();
    deadlineTimer(500, soon);
    jest.advanceTimersByTime(499);
    expect(soon).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(soon).toHaveBeenCalledTimes(1);

    const far = jest.fn();
    const cancel = deadlineTimer(30 * 24 * 3_600_000, far); // 30 days
    jest.advanceTimersByTime(25 * 24 * 3_600_000);
    expect(far).not.toHaveBeenCalled();
    jest.advanceTimersByTime(5 * 24 * 3_600_000);
    expect(far).toHaveBeenCalledTimes(1);
    cancel();
    expect(timeoutOf(Date.now() + 1_000)).toBe(1_000);
  });
});

describe('StreamEnd and failedWireStream', () => {
  it('headers settle to undefined and trailers resolve when a call ends without headers', async () => {
    const end = new StreamEnd();
    end.finish({ a: '1' });
    end.gotHeaders({ late: 'x' });
    expect(await end.headers).toBeUndefined();
    expect(await end.trailers).toEqual({ a: '1' });
  });

  it('a failed stream rejects on iteration and settles its promises', async () => {
    const error = new Error('closed');
    const stream = failedWireStream(error);
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toBe(error);
    expect(await stream.headers).toBeUndefined();
    expect(await stream.trailers).toEqual({});
  });
});
