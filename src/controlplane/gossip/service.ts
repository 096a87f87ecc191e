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
 * The caller's identity is its client certificate's CN (`ServerCallInfo.clientIdentity`); a
 * refused message is answered with the GossipError's status (PERMISSION_DENIED for a
 * certificate naming another node, etc.).
 */
export function gossipServiceImplementation(agent: GossipReceiver): ServiceImplementation<typeof gossipV1.GossipDefinition> {
  const handler =
    <K extends GossipMethod>(method: K) =>
    async (request: GossipRequests[K], call: ServerCallInfo): Promise<GossipResponses[K]> => {
      try {
        return await agent.receive(method, request, { identity: call.clientIdentity, protocol: call.protocol });
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
