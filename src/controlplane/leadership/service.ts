import { RpcError } from '../../errors.js';
import type * as leadershipV1 from '../../gen/omnirelay/controlplane/leadership/v1/leadership.js';
import { GRPC_STATUS } from '../../grpc/status.js';
import type { ServerCallInfo, ServiceImplementation } from '../../server/service-handlers.js';
import { queuedValues } from '../observable-values.js';
import type { LeaderView, LeadershipAgent } from './agent.js';

/** Transitions a Watch reader may fall behind by before its stream is ended with RESOURCE_EXHAUSTED. */
const MAX_QUEUED_TRANSITIONS = 1_024;

/**
 * The handlers of `omnirelay.controlplane.leadership.v1.LeadershipControl` over a node's agent,
 * to register on its GrpcHost next to its other services:
 *
 *     GrpcHost.start({ tls }, [[leadershipV1.LeadershipControlDefinition, leadershipServiceImplementation(() => agent)], ...])
 *
 * - `Get` answers the leader of each scope asked (all of the node's scopes when none) as the
 *   node sees it, with the time the leader stops acting unless it renews (the node's own
 *   deadline when it leads, otherwise the lease's remaining TTL in the store; 0 when unknown).
 * - `Watch` sends the leader of each scope now, then one message per transition the node
 *   observes, in order (a reader more than 1,024 transitions behind is ended with
 *   RESOURCE_EXHAUSTED). It ends when the client cancels, the host closes, or with OK when the
 *   agent stops.
 *
 * A scope the node is not a candidate in is INVALID_ARGUMENT; no agent (yet, or any more) is
 * UNAVAILABLE.
 */
export function leadershipServiceImplementation(agent: LeadershipAgent | (() => LeadershipAgent | undefined)): ServiceImplementation<typeof leadershipV1.LeadershipControlDefinition> {
  const current = typeof agent === 'function' ? agent : (): LeadershipAgent => agent;
  const running = (): LeadershipAgent => {
    const found = current();
    if (found === undefined || found.state !== 'running') throw new RpcError(GRPC_STATUS.UNAVAILABLE, 'UNAVAILABLE', 'no leadership agent runs on this node (not started yet, or stopped)', { endpoint: 'server', protocol: 'none' });
    return found;
  };
  return {
    get: async (request: leadershipV1.GetRequest, info: ServerCallInfo): Promise<leadershipV1.GetResponse> => {
      const node = running();
      const scopes = scopesOf(node, request.scopes);
      const leaders = await Promise.all(
        scopes.map(async (scope) => {
          const view = node.leader(scope);
          let expiresAt: number | undefined;
          if (view !== undefined) {
            try {
              expiresAt = await node.expiresAt(view, { signal: info.signal });
            } catch {
              expiresAt = undefined;
            }
          }
          return toWire(scope, view, expiresAt);
        }),
      );
      return { leaders };
    },
    watch: async function* (request: leadershipV1.WatchRequest, info: ServerCallInfo): AsyncGenerator<leadershipV1.LeadershipTransition, void, undefined> {
      const node = running();
      const scopes = scopesOf(node, request.scopes);
      const overflow = (): RpcError => new RpcError(GRPC_STATUS.RESOURCE_EXHAUSTED, 'RESOURCE_EXHAUSTED', `the reader fell ${MAX_QUEUED_TRANSITIONS} transitions behind; watch again`, { endpoint: 'server', protocol: 'none' });
      for await (const change of queuedValues(node.changes$(scopes), info.signal, MAX_QUEUED_TRANSITIONS, overflow)) {
        yield {
          current: toWire(change.scope, change.current, change.current?.expiresAt),
          previousLeaderId: change.previous?.leaderId ?? '',
          observedBy: node.nodeId,
          observedAtUnixMs: change.at,
        };
      }
    },
  };
}

function scopesOf(agent: LeadershipAgent, asked: readonly string[]): readonly string[] {
  if (asked.length === 0) return agent.options.scopes;
  const unknown = asked.filter((scope) => !agent.options.scopes.includes(scope));
  if (unknown.length > 0) {
    throw new RpcError(GRPC_STATUS.INVALID_ARGUMENT, 'INVALID_ARGUMENT', `\`scopes\` names ${unknown.map((s) => `"${s}"`).join(', ')}, which node ${agent.nodeId} is not a candidate in; its scopes: ${agent.options.scopes.join(', ')}`, { endpoint: 'server', protocol: 'none' });
  }
  return asked;
}

function toWire(scope: string, view: LeaderView | undefined, expiresAt: number | undefined): leadershipV1.LeaderInfo {
  if (view === undefined) return { scope, leaderId: '', term: 0, fenceToken: '', expiresAtUnixMs: 0 };
  return { scope, leaderId: view.leaderId, term: view.term, fenceToken: view.fenceToken.toString(), expiresAtUnixMs: expiresAt ?? 0 };
}
