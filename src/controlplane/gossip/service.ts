import type * as gossipV1 from '../../gen/omnirelay/controlplane/gossip/v1/gossip.js';
import { RpcError } from '../../errors.js';
import { statusName } from '../../grpc/status.js';
import type { ServerCallInfo, ServiceImplementation } from '../../server/service-handlers.js';
import { GossipError } from './errors.js';
import type { GossipMethod, GossipReceiver, GossipRequests, GossipResponses } from './transport.js';

/**
 * The gossip service's handlers over an agent, to register on the node's GrpcHost next to its
 * other services:
 *
 *     GrpcHost.start({ tls }, [[gossipV1.GossipDefinition, gossipServiceImplementation(agent)], ...])
 *
 * `agent` may be a function returning the agent (or undefined while there is none yet): the host
 * usually starts first, since the agent advertises the host's URL. Until then calls are
 * refused with UNAVAILABLE.
 *
 * The caller's identity is its client certificate's CN (`ServerCallInfo.clientIdentity`); a
 * refused message is answered with the GossipError's status (PERMISSION_DENIED for a
 * certificate naming another node, etc.).
 */
export function gossipServiceImplementation(agent: GossipReceiver | (() => GossipReceiver | undefined)): ServiceImplementation<typeof gossipV1.GossipDefinition> {
  const current = typeof agent === 'function' ? agent : (): GossipReceiver => agent;
  const handler =
    <K extends GossipMethod>(method: K) =>
    async (request: GossipRequests[K], call: ServerCallInfo): Promise<GossipResponses[K]> => {
      try {
        const receiver = current();
        if (receiver === undefined) throw new GossipError('GOSSIP_NOT_RUNNING', 'no gossip agent serves this host yet');
        return await receiver.receive(method, request, { identity: call.clientIdentity, protocol: call.protocol });
      } catch (error) {
        if (error instanceof GossipError) throw new RpcError(error.grpcStatus, statusName(error.grpcStatus), `${error.code}: ${error.message}`, { endpoint: 'server', protocol: call.protocol });
        throw error;
      }
    };
  return {
    ping: handler('ping'),
    pingReq: handler('pingReq'),
    sync: handler('sync'),
    leave: handler('leave'),
  };
}
