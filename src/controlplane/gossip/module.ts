import { ContainerModule, type ResolutionContext } from 'inversify';
import type { Observable } from 'rxjs';
import type { EndpointHintUpdate } from '../../hints/endpoint-hints.js';
import { TOKENS } from '../../tokens.js';
import { agentServices } from '../agent-services.js';
import { MembershipSource } from '../membership.js';
import { CONTROL_PLANE_TOKENS } from '../tokens.js';
import { GossipAgent } from './agent.js';
import { membershipHints } from './hints.js';
import { resolveGossipOptions } from './options.js';

/**
 * The gossip agent as an Inversify ContainerModule, next to `grpcControlPlaneModule`:
 *
 * - `CONTROL_PLANE_TOKENS.Membership`: a singleton MembershipSource (no dependencies; disposed on
 *   deactivation), unless the application bound one;
 * - `TOKENS.EndpointHints`: `membershipHints(membership)`, unless the application bound its own
 *   hints (then merge `membershipHints` into them yourself);
 * - `CONTROL_PLANE_TOKENS.Gossip`: the singleton GossipAgent, built from
 *   `CONTROL_PLANE_TOKENS.GossipOptions` (validated; a ConfigError names every bad key), the
 *   factory, the membership source, `TOKENS.Clock`, `TOKENS.Random`, `TOKENS.Telemetry` and
 *   `CONTROL_PLANE_TOKENS.Logger` (default: JSON lines on stderr). Deactivation stops it after a
 *   graceful leave. Resolving it does not start it: call `start()`.
 *
 * Stop the agent (`await agent.stop()`, or `container.unloadAsync(gossipModule)`) before the
 * factory goes, so its leave notices still have a factory to go through.
 */
export const gossipModule = new ContainerModule(({ bind, isBound }) => {
  if (!isBound(CONTROL_PLANE_TOKENS.Membership)) {
    bind<MembershipSource>(CONTROL_PLANE_TOKENS.Membership)
      .toDynamicValue(() => new MembershipSource())
      .inSingletonScope()
      .onDeactivation((membership) => membership.dispose());
  }
  if (!isBound(TOKENS.EndpointHints)) {
    bind<Observable<EndpointHintUpdate>>(TOKENS.EndpointHints)
      .toDynamicValue((context: ResolutionContext) => membershipHints(context.get<MembershipSource>(CONTROL_PLANE_TOKENS.Membership)))
      .inSingletonScope();
  }
  bind<GossipAgent>(CONTROL_PLANE_TOKENS.Gossip)
    .toDynamicValue((context: ResolutionContext) => {
      return new GossipAgent({
        ...agentServices(context),
        membership: context.get<MembershipSource>(CONTROL_PLANE_TOKENS.Membership),
        options: resolveGossipOptions(context.get<unknown>(CONTROL_PLANE_TOKENS.GossipOptions)),
      });
    })
    .inSingletonScope()
    .onDeactivation((agent) => agent.dispose());
});
