/** Conversions between the generated gossip messages and the member list's types, with validation. */
import * as gossipV1 from '../../gen/omnirelay/controlplane/gossip/v1/gossip.js';
import type { MemberMetadata, MemberStatus } from '../membership.js';
import { GossipError } from './errors.js';
import type { MemberUpdate } from './member-list.js';

const TO_WIRE: Readonly<Record<MemberStatus, gossipV1.MemberStatus>> = {
  alive: gossipV1.MemberStatus.MEMBER_STATUS_ALIVE,
  suspect: gossipV1.MemberStatus.MEMBER_STATUS_SUSPECT,
  dead: gossipV1.MemberStatus.MEMBER_STATUS_DEAD,
  left: gossipV1.MemberStatus.MEMBER_STATUS_LEFT,
};

const FROM_WIRE = new Map<number, MemberStatus>(Object.entries(TO_WIRE).map(([status, wire]) => [wire, status as MemberStatus]));

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Longest string field accepted in metadata (ids, names, URLs). */
const MAX_FIELD_CHARS = 1_024;
/** Most services one member may announce. */
const MAX_SERVICES = 1_024;

/**
 * Wire forms and sizes of updates, per update object: a queued update is measured for every
 * message it might join and sent several times, and member states are immutable, so each is
 * converted and encoded once.
 */
const wireForms = new WeakMap<MemberUpdate, gossipV1.MemberState>();
const wireSizes = new WeakMap<MemberUpdate, number>();

/** The message form of an update (shared: the generated encoders do not modify what they encode). */
export function toWire(update: MemberUpdate): gossipV1.MemberState {
  let wire = wireForms.get(update);
  if (wire === undefined) {
    const m = update.metadata;
    wire = {
      metadata: { nodeId: m.nodeId, role: m.role, cluster: m.cluster, region: m.region, version: m.version, endpoint: m.endpoint, http3: m.http3, services: [...m.services] },
      status: TO_WIRE[update.status],
      incarnation: update.incarnation,
      suspectedBy: update.status === 'suspect' ? (update.suspectedBy ?? '') : '',
    };
    wireForms.set(update, wire);
  }
  return wire;
}

/** The encoded size of one member state inside a message (field tag + length prefix included). */
export function wireSize(update: MemberUpdate): number {
  let size = wireSizes.get(update);
  if (size === undefined) {
    const body = gossipV1.MemberState.encode(toWire(update)).finish().length;
    size = body + 1 + (body < 128 ? 1 : body < 16_384 ? 2 : 3);
    wireSizes.set(update, size);
  }
  return size;
}

/** Checks a node id as it appears in a message (`from_node`, `target_node`, `node_id`). */
export function checkNodeId(value: string, field: string): string {
  if (value.length === 0 || value.length > MAX_FIELD_CHARS || !NODE_ID.test(value)) {
    throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field} must be a node id (letters, digits, '.', '_', '-'); got ${JSON.stringify(value.slice(0, 64))}`);
  }
  return value;
}

/**
 * One member state from the wire, validated: a known status, a node id, an https endpoint, the
 * expected cluster, bounded strings. Throws GossipError (GOSSIP_MESSAGE_INVALID or
 * GOSSIP_CLUSTER_MISMATCH) naming the field.
 */
export function fromWire(state: gossipV1.MemberState, cluster: string, field: string): MemberUpdate {
  const m = state.metadata;
  if (m === undefined) throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.metadata is missing`);
  const status = FROM_WIRE.get(state.status);
  if (status === undefined) throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.status ${state.status} is not a member status`);
  checkNodeId(m.nodeId, `${field}.metadata.nodeId`);
  if (m.cluster !== cluster) throw new GossipError('GOSSIP_CLUSTER_MISMATCH', `${field} is about a member of cluster ${JSON.stringify(m.cluster.slice(0, 64))}, not ${JSON.stringify(cluster)}`);
  for (const key of ['role', 'region', 'version', 'endpoint'] as const) {
    if (m[key].length > MAX_FIELD_CHARS) throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.metadata.${key} is longer than ${MAX_FIELD_CHARS} characters`);
  }
  if (!isEndpoint(m.endpoint)) throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.metadata.endpoint must be an https://host:port URL; got ${JSON.stringify(m.endpoint.slice(0, 64))}`);
  if (m.services.length > MAX_SERVICES || m.services.some((s) => s.length === 0 || s.length > MAX_FIELD_CHARS)) {
    throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.metadata.services must be at most ${MAX_SERVICES} non-empty names`);
  }
  if (!Number.isSafeInteger(state.incarnation) || state.incarnation < 0) throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.incarnation is out of range`);
  if (state.suspectedBy !== '') {
    if (status !== 'suspect') throw new GossipError('GOSSIP_MESSAGE_INVALID', `${field}.suspectedBy is only for a suspect state; this one is ${status}`);
    checkNodeId(state.suspectedBy, `${field}.suspectedBy`);
  }
  const metadata: MemberMetadata = Object.freeze({
    nodeId: m.nodeId,
    role: m.role,
    cluster: m.cluster,
    region: m.region,
    version: m.version,
    endpoint: m.endpoint,
    http3: m.http3,
    services: Object.freeze([...m.services]),
  });
  return state.suspectedBy === '' ? { metadata, status, incarnation: state.incarnation } : { metadata, status, incarnation: state.incarnation, suspectedBy: state.suspectedBy };
}

/** Every state of a list, validated (the whole message is refused on the first bad one). */
export function listFromWire(states: readonly gossipV1.MemberState[], cluster: string, field: string): MemberUpdate[] {
  return states.map((state, i) => fromWire(state, cluster, `${field}[${i}]`));
}

function isEndpoint(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.hostname !== '' && url.port !== '';
  } catch {
    return false;
  }
}
