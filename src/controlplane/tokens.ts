/**
 * Inversify service identifiers of the control-plane agents (next to `TOKENS` of
 * `grpcControlPlaneModule`). Each can be replaced in a test with `rebind`, `snapshot`, `restore`.
 */
export const CONTROL_PLANE_TOKENS = {
  /** MembershipSource: the live member list (written by the gossip agent, read by discovery and leadership). */
  Membership: Symbol.for('omnirelay.controlplane.Membership'),
  /** Bound by the application: GossipOptionsInput (this node's id, seeds, timings...). */
  GossipOptions: Symbol.for('omnirelay.controlplane.GossipOptions'),
  /** The gossip membership agent (singleton; unbinding stops it after a graceful leave). */
  Gossip: Symbol.for('omnirelay.controlplane.Gossip'),
  /** The service registry built from the member list (service name → endpoints). */
  ServiceRegistry: Symbol.for('omnirelay.controlplane.ServiceRegistry'),
  /** Bound by the application: LeadershipOptionsInput (this node's id, scopes, lease timings...). */
  LeadershipOptions: Symbol.for('omnirelay.controlplane.LeadershipOptions'),
  /** The ILeaseStore leader election runs on; `leadershipModule` binds a singleton EmbeddedLeaseStore unless one is bound. */
  LeaseStore: Symbol.for('omnirelay.controlplane.LeaseStore'),
  /** Bound by the application with `etcdLeaseStoreModule`: EtcdLeaseStoreOptionsInput (etcd endpoints, profile, key prefix...). */
  EtcdLeaseStoreOptions: Symbol.for('omnirelay.controlplane.EtcdLeaseStoreOptions'),
  /** The leadership agent (singleton; unbinding stops it and resigns its terms). */
  Leadership: Symbol.for('omnirelay.controlplane.Leadership'),
  /** Optional: a structured logger ({ info(event, fields), warn(event, fields) }); default: one JSON line per event on stderr. */
  Logger: Symbol.for('omnirelay.controlplane.Logger'),
} as const;
