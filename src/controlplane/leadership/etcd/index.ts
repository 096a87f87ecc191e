/**
 * The etcd v3 groundwork of leader election (internal: not exported from the package root):
 * a typed etcd client over the control-plane client factory, its keep-alive and its errors.
 * See docs/etcd.md.
 */
export {
  DEFAULT_ETCD_PROFILE,
  EtcdClient,
  type EtcdCallOptions,
  type EtcdClientOptions,
  type EtcdCreateResult,
  type EtcdDeleteResult,
  type EtcdGetResult,
  type EtcdKeyValue,
  type EtcdLease,
  type EtcdLeaseTimeToLive,
  type EtcdPutResult,
  type EtcdWatchEvent,
  type EtcdWatchOptions,
} from './etcd-client.js';
export { EtcdError, leaseText, toEtcdError, type EtcdCallContext } from './errors.js';
export { EtcdLeaseKeepAlive, type EtcdKeepAliveOptions } from './keep-alive.js';
export { EtcdLeaseStore, ETCD_LEASE_STORE_DEFAULTS, resolveEtcdLeaseStoreOptions, type EtcdLeaseStoreDeps, type EtcdLeaseStoreOptions, type EtcdLeaseStoreOptionsInput } from './etcd-store.js';
export { etcdLeaseStoreModule } from './module.js';
