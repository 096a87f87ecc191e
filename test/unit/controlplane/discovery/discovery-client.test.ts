import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { DiscoveryClient, type DiscoveryWatchFailure } from '../../../../src/controlplane/discovery/discovery-client.js';
import { ConfigError, DisposedError, RpcError } from '../../../../src/errors.js';
import type { IGrpcControlPlaneClientFactory } from '../../../../src/factory/types.js';
import type { WatchResponse } from '../../../../src/gen/omnirelay/controlplane/discovery/v1/discovery.js';
import { FakeWatch, until } from '../fake-watch.js';
import { record } from './members.js';

const SVC = 'acme.orders.v1.Orders';

/** One Watch call the fake factory took: the test feeds it snapshots, a failure or its end. */
class DiscoveryWatch extends FakeWatch<{ service: string }, WatchResponse> {
  send(...urls: string[]): void {
    this.message({ endpoints: urls.map((endpoint, i) => ({ endpoint, nodeId: `n${i}`, http3: true, region: undefined })) });
  }
}

interface Fake {
  readonly factory: IGrpcControlPlaneClientFactory;
  readonly watches: DiscoveryWatch[];
  readonly unaryCalls: { request: unknown; target: Record<string, unknown> }[];
  disposed: boolean;
}

function fakeFactory(): Fake {
  const fake: Fake = {
    watches: [],
    unaryCalls: [],
    disposed: false,
    factory: undefined as unknown as IGrpcControlPlaneClientFactory,
  };
  const factory = {
    unary: (_service: unknown, method: string, request: { service: string }, target: Record<string, unknown>) => {
      expect(method).toBe('resolve');
      fake.unaryCalls.push({ request, target });
      return Promise.resolve({ message: { endpoints: [{ endpoint: 'https://b:1', nodeId: 'b', http3: true }, { endpoint: 'https://a:1', nodeId: 'a', http3: false }, { endpoint: 'https://a:1', nodeId: 'a2', http3: false }] } });
    },
    serverStream: (_service: unknown, method: string, request: { service: string }, target: Record<string, unknown>) => {
      expect(method).toBe('watch');
      if (fake.disposed) return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new DisposedError('The control-plane client factory')) }) };
      const watch = new DiscoveryWatch(request, target);
      fake.watches.push(watch);
      return watch.stream();
    },
  };
  (fake as { factory: unknown }).factory = factory;
  return fake;
}

const TARGET = { endpoint: 'https://registry:7443', profile: 'control-plane' };
let client: DiscoveryClient | undefined;
afterEach(async () => {
  await client?.dispose();
  client = undefined;
});

describe('DiscoveryClient', () => {
  it('resolve() asks the remote once through the factory and returns the sorted, distinct URLs', async () => {
    const fake = fakeFactory();
    client = new DiscoveryClient(fake.factory, { target: TARGET });
    await expect(client.resolve(SVC, { deadlineMs: 500 })).resolves.toEqual(['https://a:1', 'https://b:1']);
    expect(fake.unaryCalls).toEqual([{ request: { service: SVC }, target: { deadlineMs: 500, ...TARGET } }]);
  });

  it('watches once per service with no deadline, emits nothing before the first snapshot, then each change once', async () => {
    const fake = fakeFactory();
    client = new DiscoveryClient(fake.factory, { target: TARGET });
    const first = record(client.endpoints$(SVC));
    const second = record(client.endpoints$(SVC));
    await until(() => fake.watches.length === 1);
    const watch = fake.watches[0]!;
    expect(watch.request).toEqual({ service: SVC });
    expect(watch.target).toMatchObject({ ...TARGET, deadlineMs: 'none' });
    expect(first.values).toEqual([]);

    watch.send('https://b:1', 'https://a:1');
    await until(() => first.values.length === 1);
    watch.send('https://a:1', 'https://b:1'); // same set
    watch.send('https://a:1');
    await until(() => first.values.length === 2);
    expect(first.values).toEqual([['https://a:1', 'https://b:1'], ['https://a:1']]);
    expect(second.values).toEqual(first.values);
    // A late subscriber gets the current list at once, from the same watch.
    const late = record(client.endpoints$(SVC));
    expect(late.values).toEqual([['https://a:1']]);
    expect(fake.watches).toHaveLength(1);

    first.unsubscribe();
    second.unsubscribe();
    expect(watch.aborted).toBe(false);
    late.unsubscribe();
    expect(watch.aborted).toBe(true);
  });

  it('keeps the last list when the watch fails and watches again after a growing backoff, reset by a good message', async () => {
    const fake = fakeFactory();
    const waits: number[] = [];
    const failures: DiscoveryWatchFailure[] = [];
    client = new DiscoveryClient(fake.factory, {
      target: TARGET,
      backoff: { initialMs: 100, maxMs: 250, multiplier: 2, jitter: 0.5 },
      random: () => 0.5, // no spread
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      onWatchError: (_error, failure) => failures.push(failure),
    });
    const list = record(client.endpoints$(SVC));
    await until(() => fake.watches.length === 1);
    fake.watches[0]!.send('https://a:1');
    await until(() => list.values.length === 1);

    fake.watches[0]!.fail(new RpcError(14, 'UNAVAILABLE', 'connection reset', { endpoint: 'registry:7443', protocol: 'h2' }));
    await until(() => fake.watches.length === 2);
    fake.watches[1]!.fail(new RpcError(14, 'UNAVAILABLE', 'connect refused', { endpoint: 'registry:7443', protocol: 'h2' }));
    await until(() => fake.watches.length === 3);
    fake.watches[2]!.end(); // the server ended it (OK): watch again too
    await until(() => fake.watches.length === 4);
    expect(waits).toEqual([100, 200, 250]);
    expect(failures.map((f) => [f.service, f.failures, f.delayMs])).toEqual([[SVC, 1, 100], [SVC, 2, 200], [SVC, 3, 250]]);
    expect(list.values).toEqual([['https://a:1']]);

    fake.watches[3]!.send('https://a:1', 'https://c:1');
    await until(() => list.values.length === 2);
    fake.watches[3]!.fail(new Error('stream reset'));
    await until(() => fake.watches.length === 5);
    expect(waits.at(-1)).toBe(100);
    expect(failures.at(-1)?.failures).toBe(1);
    expect(list.error()).toBeUndefined();
  });

  it('warns once per failure streak by default', async () => {
    const fake = fakeFactory();
    const warnings = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      client = new DiscoveryClient(fake.factory, { target: TARGET, sleep: () => Promise.resolve(), random: () => 0.5 });
      const list = record(client.endpoints$(SVC));
      await until(() => fake.watches.length === 1);
      fake.watches[0]!.fail(new Error('first'));
      await until(() => fake.watches.length === 2);
      fake.watches[1]!.fail(new Error('second'));
      await until(() => fake.watches.length === 3);
      fake.watches[2]!.send('https://a:1');
      await until(() => list.values.length === 1);
      fake.watches[2]!.fail(new Error('third'));
      await until(() => fake.watches.length === 4);
      expect(warnings.mock.calls.map(([message, options]) => [String(message), (options as { code?: string }).code])).toEqual([
        [expect.stringMatching(/"acme.orders.v1.Orders" failed \(first\); its last endpoints stay in use, watching again in 100 ms/), 'OMNIRELAY_DISCOVERY_WATCH_FAILED'],
        [expect.stringMatching(/failed \(third\)/), 'OMNIRELAY_DISCOVERY_WATCH_FAILED'],
      ]);
    } finally {
      warnings.mockRestore();
    }
  });

  it('dispose() cancels the watch, stops a backoff wait, completes every stream and refuses further use', async () => {
    const fake = fakeFactory();
    let sleeping: AbortSignal | undefined;
    client = new DiscoveryClient(fake.factory, {
      target: TARGET,
      onWatchError: () => undefined,
      sleep: (_ms, signal) =>
        new Promise((_resolve, reject) => {
          sleeping = signal;
          signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    });
    const watching = record(client.endpoints$(SVC));
    const backingOff = record(client.endpoints$('acme.Other'));
    await until(() => fake.watches.length === 2);
    fake.watches[1]!.fail(new Error('down'));
    await until(() => sleeping !== undefined);

    await client.dispose();
    expect(fake.watches[0]!.aborted).toBe(true);
    expect(sleeping?.aborted).toBe(true);
    expect(watching.completed()).toBe(true);
    expect(backingOff.completed()).toBe(true);
    expect(fake.watches).toHaveLength(2);
    expect(() => client!.endpoints$(SVC)).toThrow(DisposedError);
    await expect(client.resolve(SVC)).rejects.toBeInstanceOf(DisposedError);
  });

  it('ends the stream with DisposedError when the factory is disposed, without retrying', async () => {
    const fake = fakeFactory();
    fake.disposed = true;
    client = new DiscoveryClient(fake.factory, { target: TARGET, sleep: () => Promise.reject(new Error('must not back off')) });
    const list = record(client.endpoints$(SVC));
    await until(() => list.error() !== undefined);
    expect(list.error()).toBeInstanceOf(DisposedError);
  });

  it('refuses a bad backoff with every key named', () => {
    expect(() => new DiscoveryClient(fakeFactory().factory, { target: TARGET, backoff: { initialMs: 0, multiplier: 0.5, jitter: 2 } })).toThrow(ConfigError);
    expect(() => new DiscoveryClient(fakeFactory().factory, { target: TARGET, backoff: { initialMs: 0, multiplier: 0.5, jitter: 2 } })).toThrow(/backoff.initialMs[^]*backoff.multiplier[^]*backoff.jitter/);
    expect(() => new DiscoveryClient(fakeFactory().factory, { target: TARGET, backoff: { initialMs: 500, maxMs: 100 } })).toThrow(/backoff.maxMs: must be at least backoff.initialMs/);
  });
});
