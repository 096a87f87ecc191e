import { ContainerModule, type ResolutionContext } from 'inversify';
import type { Clock } from '../../clock.js';
import { TOKENS } from '../../tokens.js';
import { agentServices } from '../agent-services.js';
import { CONTROL_PLANE_TOKENS } from '../tokens.js';
import { LeadershipAgent } from './agent.js';
import { EmbeddedLeaseStore } from './embedded-store.js';
import type { ILeaseStore } from './lease-store.js';
import { resolveLeadershipOptions } from './options.js';

/**
 * Leader election as an Inversify ContainerModule, next to `grpcControlPlaneModule`:
 *
 * - `CONTROL_PLANE_TOKENS.LeaseStore`: a singleton EmbeddedLeaseStore (on `TOKENS.Clock`;
 *   disposed on deactivation), unless the application bound a store (an etcd one, or one
 *   embedded store shared by the nodes of one process: then the application owns it);
 * - `CONTROL_PLANE_TOKENS.Leadership`: the singleton LeadershipAgent, built from
 *   `CONTROL_PLANE_TOKENS.LeadershipOptions` (validated; a ConfigError names every bad key), the
 *   factory, the store, `TOKENS.Clock`, `TOKENS.Random`, `TOKENS.Telemetry` and
 *   `CONTROL_PLANE_TOKENS.Logger` (default: JSON lines on stderr). Deactivation stops it and
 *   resigns its terms (revokes its leases, so others take over at once). Resolving it does not
 *   start it: call `start()`.
 */
export const leadershipModule = new ContainerModule(({ bind, isBound }) => {
  if (!isBound(CONTROL_PLANE_TOKENS.LeaseStore)) {
    bind<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore)
      .toDynamicValue((context: ResolutionContext) => new EmbeddedLeaseStore({ clock: context.get<Clock>(TOKENS.Clock, { optional: true }) }))
      .inSingletonScope()
      .onDeactivation((store) => {
        if (store instanceof EmbeddedLeaseStore) store.dispose();
      });
  }
  bind<LeadershipAgent>(CONTROL_PLANE_TOKENS.Leadership)
    .toDynamicValue((context: ResolutionContext) => {
      return new LeadershipAgent({
        ...agentServices(context),
        store: context.get<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore),
        options: resolveLeadershipOptions(context.get<unknown>(CONTROL_PLANE_TOKENS.LeadershipOptions)),
      });
    })
    .inSingletonScope()
    .onDeactivation((agent) => agent.dispose());
});
