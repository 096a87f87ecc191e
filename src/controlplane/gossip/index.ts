/** The SWIM gossip membership agent (see docs/gossip.md). */
export { GossipAgent, systemTimers, type GossipAgentDeps, type GossipTimers } from './agent.js';
export { BroadcastQueue } from './broadcast-queue.js';
export { GossipError } from './errors.js';
export { retransmitLimit, suspicionTimeoutAfterConfirmations, suspicionTimeoutMs } from './formulas.js';
export { membershipHints } from './hints.js';
export { MemberList, type ApplyResult, type MemberUpdate, type Transition, type TransitionKind } from './member-list.js';
export { gossipModule } from './module.js';
export { GOSSIP_DEFAULTS, resolveGossipOptions, type GossipOptions, type GossipOptionsInput } from './options.js';
export { gossipServiceImplementation } from './service.js';
export * from './telemetry.js';
export {
  FactoryGossipTransport,
  InMemoryGossipNetwork,
  type GossipCaller,
  type GossipMethod,
  type GossipPeer,
  type GossipReceiver,
  type GossipReply,
  type GossipRequests,
  type GossipResponses,
  type GossipTransport,
} from './transport.js';
