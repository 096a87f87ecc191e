import { describe, expect, it, jest } from '@jest/globals';
import { finalize, NEVER, Observable } from 'rxjs';
import { discoveryServiceImplementation } from '../../../../src/controlplane/discovery/discovery-service.js';
import { latestValues } from '../../../../src/controlplane/observable-values.js';
import { ServiceRegistry } from '../../../../src/controlplane/discovery/service-registry.js';
import { MembershipSource } from '../../../../src/controlplane/membership.js';
import { RpcError } from '../../../../src/errors.js';
import type { WatchResponse } from '../../../../src/gen/omnirelay/controlplane/discovery/v1/discovery.js';
import type { ServerCallInfo } from '../../../../src/server/service-handlers.js';
import { member } from './members.js';

const A = 'acme.orders.v1.Orders';
const B = 'acme.billing.v1.Billing';

function callInfo(signal: AbortSignal = new AbortController().signal): ServerCallInfo {
  return { clientCertificate: undefined, clientIdentity: 'client', metadata: {}, protocol: 'h2', signal, setTrailer: () => undefined };
}

function setup(): { membership: MembershipSource; registry: ServiceRegistry; impl: ReturnType<typeof discoveryServiceImplementation>; live: () => number } {
  const membership = new MembershipSource();
  const registry = new ServiceRegistry(membership);
  // Counts the watchers subscribed to the registry, to prove a finished Watch holds nothing.
  let watchers = 0;
  const entries$ = registry.entries$.bind(registry);
  jest.spyOn(registry, 'entries$').mockImplementation((service) => {
    const source = entries$(service);
    return new Observable((subscriber) => {
      watchers++;
      return source.pipe(finalize(() => watchers--)).subscribe(subscriber);
    });
  });
  return { membership, registry, impl: discoveryServiceImplementation(registry), live: () => watchers };
}

const urls = (response: IteratorResult<WatchResponse, void>): string[] | 'done' => (response.done === true ? 'done' : response.value.endpoints.map((e) => e.endpoint));

describe('Discovery service handlers', () => {
  it('Resolve answers the endpoints with node id, HTTP/3 and region (absent when none)', async () => {
    const { membership, registry, impl } = setup();
    membership.publish([member('n2', [A], { http3: false, region: '' }), member('n1', [A, B]), member('n3', [B], { status: 'dead' })]);
    await expect(Promise.resolve(impl.resolve({ service: A }, callInfo()))).resolves.toEqual({
      endpoints: [
        { endpoint: 'https://10.0.0.1:7001', nodeId: 'n1', http3: true, region: 'eu-1' },
        { endpoint: 'https://10.0.0.2:7001', nodeId: 'n2', http3: false, region: undefined },
      ],
    });
    await expect(Promise.resolve(impl.resolve({ service: 'nobody.Serves' }, callInfo()))).resolves.toEqual({ endpoints: [] });
    registry.dispose();
  });

  it('refuses an empty service name (INVALID_ARGUMENT) and answers UNAVAILABLE once the registry is disposed', async () => {
    const { registry, impl } = setup();
    expect(() => impl.resolve({ service: '' }, callInfo())).toThrow(expect.objectContaining({ statusName: 'INVALID_ARGUMENT' }));
    await expect(impl.watch({ service: '' }, callInfo())[Symbol.asyncIterator]().next()).rejects.toMatchObject({ statusName: 'INVALID_ARGUMENT' });
    expect(() => impl.resolve({ service: 'x'.repeat(513) }, callInfo())).toThrow(RpcError);
    registry.dispose();
    expect(() => impl.resolve({ service: A }, callInfo())).toThrow(expect.objectContaining({ status: 14, statusName: 'UNAVAILABLE' }));
    await expect(impl.watch({ service: A }, callInfo())[Symbol.asyncIterator]().next()).rejects.toMatchObject({ statusName: 'UNAVAILABLE' });
  });

  it('Watch sends the current state first, a full snapshot per change of that service, and ends when the call is cancelled', async () => {
    const { membership, registry, impl, live } = setup();
    membership.publish([member('n1', [A])]);
    const controller = new AbortController();
    const watch = impl.watch({ service: A }, callInfo(controller.signal))[Symbol.asyncIterator]();
    expect(urls(await watch.next())).toEqual(['https://10.0.0.1:7001']);
    expect(live()).toBe(1);

    const next = watch.next();
    membership.publish([member('n1', [A]), member('n2', [B])]); // another service: nothing to send
    membership.publish([member('n1', [A]), member('n2', [B]), member('n3', [A])]);
    expect(urls(await next)).toEqual(['https://10.0.0.1:7001', 'https://10.0.0.3:7001']);

    // A slow reader gets the newest snapshot, not a backlog.
    membership.publish([member('n3', [A])]);
    membership.publish([]);
    membership.publish([member('n4', [A])]);
    expect(urls(await watch.next())).toEqual(['https://10.0.0.4:7001']);

    const pending = watch.next();
    controller.abort();
    expect(urls(await pending)).toBe('done');
    expect(live()).toBe(0);
    registry.dispose();
  });

  it('Watch ends (OK) when the registry is disposed and holds nothing when the host stops reading early', async () => {
    const { registry, impl, live } = setup();
    const watch = impl.watch({ service: A }, callInfo())[Symbol.asyncIterator]();
    expect(urls(await watch.next())).toEqual([]);
    registry.dispose();
    expect(urls(await watch.next())).toBe('done');
    expect(live()).toBe(0);

    const other = setup();
    const early = other.impl.watch({ service: A }, callInfo())[Symbol.asyncIterator]();
    await early.next();
    expect(other.live()).toBe(1);
    await early.return?.();
    expect(other.live()).toBe(0);
    other.registry.dispose();
  });

  it('Watch of a call cancelled before it started sends nothing and subscribes to nothing', async () => {
    const { registry, impl, live } = setup();
    const controller = new AbortController();
    controller.abort();
    const watch = impl.watch({ service: A }, callInfo(controller.signal))[Symbol.asyncIterator]();
    expect(urls(await watch.next())).toBe('done');
    expect(live()).toBe(0);
    registry.dispose();
  });
});

describe('latestValues', () => {
  it('rethrows the source error and unsubscribes', async () => {
    let subscribed = 0;
    const failing = new Observable<number>((subscriber) => {
      subscribed++;
      subscriber.next(1);
      subscriber.error(new Error('boom'));
      return () => subscribed--;
    });
    const values = latestValues(failing, new AbortController().signal);
    await expect(values.next()).resolves.toEqual({ done: false, value: 1 });
    await expect(values.next()).rejects.toThrow('boom');
    expect(subscribed).toBe(0);
  });

  it('stops listening to the signal once it ends', async () => {
    const controller = new AbortController();
    const removed = jest.spyOn(controller.signal, 'removeEventListener');
    const values = latestValues(NEVER, controller.signal);
    const pending = values.next();
    controller.abort();
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
  });
});
