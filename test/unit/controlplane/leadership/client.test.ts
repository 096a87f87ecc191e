import { afterEach, describe, expect, it } from '@jest/globals';
import { LeadershipClient, type LeadershipWatchFailure, type RemoteLeader } from '../../../../src/controlplane/leadership/client.js';
import { ConfigError, RpcError } from '../../../../src/errors.js';
import type { IGrpcControlPlaneClientFactory } from '../../../../src/factory/types.js';
import type { LeadershipTransition } from '../../../../src/gen/omnirelay/controlplane/leadership/v1/leadership.js';
import { FakeWatch, until } from '../fake-watch.js';

/** One Watch call the fake factory took: the test feeds it transitions, a failure or its end. */
class LeadershipWatch extends FakeWatch<{ scopes: string[] }, LeadershipTransition> {
  send(leaderId: string, term: number, fenceToken: string): void {
    this.message({ current: { scope: this.request.scopes[0]!, leaderId, term, fenceToken, expiresAtUnixMs: 0 }, previousLeaderId: '', observedBy: 'remote', observedAtUnixMs: 1 });
  }
}

function fakeFactory(): { factory: IGrpcControlPlaneClientFactory; watches: LeadershipWatch[] } {
  const watches: LeadershipWatch[] = [];
  const factory = {
    serverStream: (_service: unknown, method: string, request: { scopes: string[] }, target: Record<string, unknown>) => {
      expect(method).toBe('watch');
      const watch = new LeadershipWatch(request, target);
      watches.push(watch);
      return watch.stream();
    },
  } as unknown as IGrpcControlPlaneClientFactory;
  return { factory, watches };
}

const TARGET = { endpoint: 'https://n1:7443', profile: 'control-plane' };
let client: LeadershipClient | undefined;
afterEach(async () => {
  await client?.dispose();
  client = undefined;
});

describe('LeadershipClient.leader$', () => {
  it('shares one Watch per scope, emits each new leader once, and re-watches after failures with a growing backoff', async () => {
    const fake = fakeFactory();
    const sleeps: number[] = [];
    const failures: LeadershipWatchFailure[] = [];
    client = new LeadershipClient(fake.factory, {
      target: TARGET,
      random: () => 0.5,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      onWatchError: (_error, failure) => failures.push(failure),
    });
    const a: RemoteLeader[] = [];
    const b: RemoteLeader[] = [];
    const first = client.leader$('global').subscribe((leader) => a.push(leader));
    const second = client.leader$('global').subscribe((leader) => b.push(leader));
    await until(() => fake.watches.length === 1);
    expect(fake.watches[0]!.request).toEqual({ scopes: ['global'] });
    expect(fake.watches[0]!.target).toMatchObject({ ...TARGET, deadlineMs: 'none' });
    fake.watches[0]!.send('n2', 1, '5');
    fake.watches[0]!.send('n2', 1, '5');
    await until(() => a.length === 1);
    fake.watches[0]!.fail(new RpcError(14, 'UNAVAILABLE', 'gone', { endpoint: 'remote', protocol: 'h2' }));
    await until(() => fake.watches.length === 2);
    fake.watches[1]!.end();
    await until(() => fake.watches.length === 3);
    fake.watches[2]!.send('n3', 2, '9');
    await until(() => a.length === 2);
    expect(a.map((l) => [l.leaderId, l.term, l.fenceToken])).toEqual([
      ['n2', 1, 5n],
      ['n3', 2, 9n],
    ]);
    expect(b).toEqual(a);
    expect(failures.map((f) => [f.scope, f.failures])).toEqual([
      ['global', 1],
      ['global', 2],
    ]);
    expect(sleeps).toEqual([100, 200]);
    first.unsubscribe();
    expect(fake.watches[2]!.aborted).toBe(false);
    second.unsubscribe();
    expect(fake.watches[2]!.aborted).toBe(true);
  });

  it('dispose() cancels the watch and completes the stream', async () => {
    const fake = fakeFactory();
    client = new LeadershipClient(fake.factory, { target: TARGET });
    let completed = false;
    client.leader$('shard-7').subscribe({ complete: () => (completed = true) });
    await until(() => fake.watches.length === 1);
    await client.dispose();
    expect(completed).toBe(true);
    expect(fake.watches[0]!.aborted).toBe(true);
  });

  it('refuses a bad backoff with a ConfigError naming the key', () => {
    expect(() => new LeadershipClient(fakeFactory().factory, { target: TARGET, backoff: { jitter: 3 } })).toThrow(ConfigError);
    try {
      new LeadershipClient(fakeFactory().factory, { target: TARGET, backoff: { initialMs: 500, maxMs: 100 } });
    } catch (error) {
      expect((error as ConfigError).issues.map((i) => i.key)).toEqual(['backoff.maxMs']);
    }
  });
});
