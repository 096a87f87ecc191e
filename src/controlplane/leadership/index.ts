/** Leader election per scope over an ILeaseStore (see docs/leadership.md). */
export { LeadershipAgent, type FencedWriter, type LeaderView, type LeadershipAgentDeps, type LeadershipChange, type StepDownReason } from './agent.js';
export { LeadershipClient, type LeadershipClientOptions, type LeadershipWatchBackoff, type LeadershipWatchFailure, type RemoteLeader, type RemoteLeadershipTransition } from './client.js';
export { EmbeddedLeaseStore, type EmbeddedLeaseStoreOptions } from './embedded-store.js';
export { LeadershipError, LeadershipNotRunningError, LeaseLostError, LeaseStoreUnavailableError, NotLeaderError, StaleFenceTokenError } from './errors.js';
export type { CreateLeaderResult, ILeaseStore, LeaderRecord, LeaseGrant, StoreCallOptions, StoredValue } from './lease-store.js';
export { leadershipModule } from './module.js';
export { LEADERSHIP_DEFAULTS, resolveLeadershipOptions, type LeadershipOptions, type LeadershipOptionsInput } from './options.js';
export { leadershipServiceImplementation } from './service.js';
export * from './telemetry.js';
export { systemTimers, type ControlPlaneTimers } from '../timers.js';
export { EtcdLeaseStore, ETCD_LEASE_STORE_DEFAULTS, resolveEtcdLeaseStoreOptions, type EtcdLeaseStoreDeps, type EtcdLeaseStoreOptions, type EtcdLeaseStoreOptionsInput } from './etcd/etcd-store.js';
export { etcdLeaseStoreModule } from './etcd/module.js';
