import { ContainerModule, type ResolutionContext } from 'inversify';
import type { Clock } from '../../../clock.js';
import type { IGrpcControlPlaneClientFactory } from '../../../factory/types.js';
import type { RandomSource } from '../../../resilience/retry.js';
import { TOKENS } from '../../../tokens.js';
import { CONTROL_PLANE_TOKENS } from '../../tokens.js';
import type { ILeaseStore } from '../lease-store.js';
import { EtcdLeaseStore, type EtcdLeaseStoreOptionsInput } from './etcd-store.js';

/**
 * Leader election on etcd: binds `CONTROL_PLANE_TOKENS.LeaseStore` to a singleton
 * EtcdLeaseStore built from `CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions` (validated: a
 * ConfigError names every bad key) and the container's control-plane client factory (its
 * `etcd` profile, or the one the options name, carries the mTLS etcd trusts), on `TOKENS.Clock`
 * and `TOKENS.Random` when bound. Load it before `leadershipModule` (which then keeps this store
 * instead of binding the embedded one):
 *
 * ```ts
 * container.load(grpcControlPlaneModule, etcdLeaseStoreModule, leadershipModule);
 * ```
 *
 * Deactivation disposes the store (its watches and etcd client; the factory stays the
 * container's). Stop the agent first (`await agent.stop()`) so its resignation still reaches etcd.
 */
export const etcdLeaseStoreModule = new ContainerModule(({ bind }) => {
  bind<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore)
    .toDynamicValue(
      (context: ResolutionContext) =>
        new EtcdLeaseStore(context.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory), context.get<EtcdLeaseStoreOptionsInput>(CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions), {
          clock: context.get<Clock>(TOKENS.Clock, { optional: true }),
          random: context.get<RandomSource>(TOKENS.Random, { optional: true }),
        }),
    )
    .inSingletonScope()
    .onDeactivation(async (store) => {
      if (store instanceof EtcdLeaseStore) await store.dispose();
    });
});
