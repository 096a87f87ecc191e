import { ContainerModule, type ResolutionContext } from 'inversify';
import { MembershipSource } from '../membership.js';
import { CONTROL_PLANE_TOKENS } from '../tokens.js';
import { ServiceRegistry } from './service-registry.js';

/**
 * Service discovery as an Inversify ContainerModule: binds `CONTROL_PLANE_TOKENS.ServiceRegistry`
 * (a singleton ServiceRegistry over `CONTROL_PLANE_TOKENS.Membership`, disposed on
 * deactivation). It binds `CONTROL_PLANE_TOKENS.Membership` to a singleton MembershipSource only
 * when nothing is bound to it yet (the gossip module binds the same token the same way, so
 * either can be loaded first; the registry depends on the member list only, never on the gossip
 * agent or the client factory, so `TOKENS.PeerLists` can be built from it).
 */
export const discoveryModule = new ContainerModule(({ bind, isBound }) => {
  if (!isBound(CONTROL_PLANE_TOKENS.Membership)) {
    bind<MembershipSource>(CONTROL_PLANE_TOKENS.Membership)
      .toDynamicValue(() => new MembershipSource())
      .inSingletonScope()
      .onDeactivation((membership) => membership.dispose());
  }
  bind<ServiceRegistry>(CONTROL_PLANE_TOKENS.ServiceRegistry)
    .toDynamicValue((context: ResolutionContext) => new ServiceRegistry(context.get<MembershipSource>(CONTROL_PLANE_TOKENS.Membership)))
    .inSingletonScope()
    .onDeactivation((registry) => registry.dispose());
});
