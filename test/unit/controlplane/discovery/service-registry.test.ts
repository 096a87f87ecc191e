import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { Container } from 'inversify';
import { BehaviorSubject } from 'rxjs';
import { ServiceRegistry } from '../../../../src/controlplane/discovery/service-registry.js';
import { discoveryModule } from '../../../../src/controlplane/discovery/module.js';
import { MembershipSource, type Member } from '../../../../src/controlplane/membership.js';
import { CONTROL_PLANE_TOKENS } from '../../../../src/controlplane/tokens.js';
import { DisposedError } from '../../../../src/errors.js';
import { member, record } from './members.js';

const A = 'acme.orders.v1.Orders';
const B = 'acme.billing.v1.Billing';

function registryWith(members: readonly Member[] = [], options?: ConstructorParameters<typeof ServiceRegistry>[1]): { membership: MembershipSource; registry: ServiceRegistry } {
  const membership = new MembershipSource();
  membership.publish(members);
  return { membership, registry: new ServiceRegistry(membership, options) };
}

describe('ServiceRegistry', () => {
  it('maps each service to the sorted endpoints of the members that list it', () => {
    const { registry } = registryWith([member('n3', [A]), member('n1', [A, B]), member('n2', [B])]);
    expect(registry.services()).toEqual([B, A]);
    expect(registry.resolve(A)).toEqual(['https://10.0.0.1:7001', 'https://10.0.0.3:7001']);
    expect(registry.resolve(B)).toEqual(['https://10.0.0.1:7001', 'https://10.0.0.2:7001']);
    expect(registry.resolve('nobody.Serves')).toEqual([]);
    expect(registry.entries(A)).toEqual([
      { endpoint: 'https://10.0.0.1:7001', nodeId: 'n1', http3: true, region: 'eu-1' },
      { endpoint: 'https://10.0.0.3:7001', nodeId: 'n3', http3: true, region: 'eu-1' },
    ]);
    registry.dispose();
  });

  it('replays the current list at once (empty too) and emits on every change of that service only', () => {
    const { membership, registry } = registryWith();
    const a = record(registry.endpoints$(A));
    expect(a.values).toEqual([[]]);

    membership.publish([member('n1', [A])]);
    membership.publish([member('n1', [A]), member('n2', [B])]); // B changes, A does not
    membership.publish([member('n1', [A]), member('n2', [B]), member('n3', [A])]);
    membership.publish([member('n1', [A]), member('n2', [B]), member('n3', [A], { http3: false })]); // details only: same URLs
    membership.publish([member('n3', [A])]);
    expect(a.values).toEqual([[], ['https://10.0.0.1:7001'], ['https://10.0.0.1:7001', 'https://10.0.0.3:7001'], ['https://10.0.0.3:7001']]);

    const late = record(registry.endpoints$(A));
    expect(late.values).toEqual([['https://10.0.0.3:7001']]);
    registry.dispose();
  });

  it('entries$ also emits when an endpoint\'s details change (HTTP/3, region, node id)', () => {
    const { membership, registry } = registryWith([member('n1', [A])]);
    const entries = record(registry.entries$(A));
    membership.publish([member('n1', [A], { http3: false, incarnation: 2 })]);
    membership.publish([member('n1', [A], { http3: false, incarnation: 3 })]); // nothing a reader sees changed
    membership.publish([member('n1', [A], { http3: false, region: '', incarnation: 4 })]);
    expect(entries.values.map((list) => list.map((e) => [e.http3, e.region]))).toEqual([[[true, 'eu-1']], [[false, 'eu-1']], [[false, undefined]]]);
    registry.dispose();
  });

  it('follows a member announcing new services with a higher incarnation', () => {
    const { membership, registry } = registryWith([member('n1', [A]), member('n2', [A])]);
    const a = record(registry.endpoints$(A));
    const b = record(registry.endpoints$(B));
    membership.publish([member('n1', [B], { incarnation: 2 }), member('n2', [A])]);
    expect(a.values.at(-1)).toEqual(['https://10.0.0.2:7001']);
    expect(b.values).toEqual([[], ['https://10.0.0.1:7001']]);
    expect(registry.services()).toEqual([B, A]);
    registry.dispose();
  });

  it('keeps suspect members routable by default and drops dead and left ones', () => {
    const { membership, registry } = registryWith([member('n1', [A]), member('n2', [A]), member('n3', [A])]);
    const a = record(registry.endpoints$(A));
    membership.publish([member('n1', [A]), member('n2', [A], { status: 'suspect' }), member('n3', [A])]);
    membership.publish([member('n1', [A]), member('n2', [A], { status: 'dead' }), member('n3', [A], { status: 'left' })]);
    expect(a.values).toEqual([['https://10.0.0.1:7001', 'https://10.0.0.2:7001', 'https://10.0.0.3:7001'], ['https://10.0.0.1:7001']]);
    // A refuted suspicion (higher incarnation, alive) brings the member back.
    membership.publish([member('n1', [A]), member('n2', [A], { incarnation: 2 })]);
    expect(a.values.at(-1)).toEqual(['https://10.0.0.1:7001', 'https://10.0.0.2:7001']);
    expect(registry.services()).toEqual([A]);
    membership.publish([member('n1', [A], { status: 'dead' }), member('n2', [A], { status: 'left' })]);
    expect(registry.services()).toEqual([]);
    registry.dispose();
  });

  it('routes alive members only with includeSuspect: false', () => {
    const { membership, registry } = registryWith([member('n1', [A]), member('n2', [A])], { includeSuspect: false });
    const a = record(registry.endpoints$(A));
    membership.publish([member('n1', [A]), member('n2', [A], { status: 'suspect' })]);
    expect(a.values).toEqual([['https://10.0.0.1:7001', 'https://10.0.0.2:7001'], ['https://10.0.0.1:7001']]);
    registry.dispose();
  });

  it('gives one entry per endpoint (alive first, then the higher incarnation) and skips members without an endpoint', () => {
    const shared = 'https://10.0.0.5:7001';
    const { registry } = registryWith([
      member('old', [A], { endpoint: shared, status: 'suspect', incarnation: 9 }),
      member('new', [A, A], { endpoint: shared, incarnation: 1 }),
      member('n6', [A], { endpoint: '' }),
      member('n7', [''], {}),
    ]);
    expect(registry.entries(A)).toEqual([{ endpoint: shared, nodeId: 'new', http3: true, region: 'eu-1' }]);
    expect(registry.services()).toEqual([A]);
    registry.dispose();
  });

  it('keeps its last state when the member list completes; dispose completes every stream and refuses further use', () => {
    const { membership, registry } = registryWith([member('n1', [A])]);
    const a = record(registry.endpoints$(A));
    membership.dispose();
    expect(registry.resolve(A)).toEqual(['https://10.0.0.1:7001']);
    expect(a.completed()).toBe(false);
    registry.dispose();
    registry.dispose();
    expect(a.completed()).toBe(true);
    expect(() => registry.resolve(A)).toThrow(DisposedError);
    expect(() => registry.endpoints$(A)).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(() => registry.services()).toThrow(DisposedError);
  });

  it('reads any MembershipView and stops listening on dispose', () => {
    const members$ = new BehaviorSubject<readonly Member[]>([member('n1', [A])]);
    const registry = new ServiceRegistry({ get members() { return members$.value; }, members$ });
    expect(members$.observed).toBe(true);
    registry.dispose();
    expect(members$.observed).toBe(false);
  });
});

describe('discoveryModule', () => {
  it('binds a singleton registry over the member list and a MembershipSource when none is bound; unbinding disposes both', async () => {
    const container = new Container();
    container.load(discoveryModule);
    const membership = container.get<MembershipSource>(CONTROL_PLANE_TOKENS.Membership);
    const registry = container.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry);
    expect(container.get(CONTROL_PLANE_TOKENS.ServiceRegistry)).toBe(registry);
    const a = record(registry.endpoints$(A));
    const members = record(membership.members$);
    membership.publish([member('n1', [A])]);
    expect(a.values).toEqual([[], ['https://10.0.0.1:7001']]);
    await container.unbindAllAsync();
    expect(a.completed()).toBe(true);
    expect(members.completed()).toBe(true);
  });

  it('uses the MembershipSource already bound (by the gossip module) instead of binding another', async () => {
    const container = new Container();
    const mine = new MembershipSource();
    container.bind(CONTROL_PLANE_TOKENS.Membership).toConstantValue(mine);
    container.load(discoveryModule);
    const registry = container.get<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry);
    mine.publish([member('n2', [B])]);
    expect(registry.resolve(B)).toEqual(['https://10.0.0.2:7001']);
    await container.unbindAllAsync();
    expect(() => registry.resolve(B)).toThrow(DisposedError);
  });
});
