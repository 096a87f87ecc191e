import { OmniRelayError, type GossipErrorCode } from '../../errors.js';
import { GRPC_STATUS } from '../../grpc/status.js';

/**
 * A gossip message refused (inbound: the caller gets the matching gRPC status) or a reply
 * refused (outbound: treated as no answer). Codes:
 *
 * - `GOSSIP_IDENTITY_MISMATCH`: the certificate's CN is not the node id the message claims
 *   (inbound: the caller's; outbound: the responder's). PERMISSION_DENIED.
 * - `GOSSIP_CLUSTER_MISMATCH`: the message is for another cluster. FAILED_PRECONDITION.
 * - `GOSSIP_MESSAGE_INVALID`: a field is missing or malformed. INVALID_ARGUMENT.
 * - `GOSSIP_MESSAGE_TOO_LARGE`: over `maxMessageBytes`. RESOURCE_EXHAUSTED.
 * - `GOSSIP_WRONG_TARGET`: a ping meant for another node reached this one. FAILED_PRECONDITION.
 * - `GOSSIP_NOT_RUNNING`: the agent is not started or already stopped. UNAVAILABLE.
 */
export class GossipError extends OmniRelayError {
  declare readonly code: GossipErrorCode;

  constructor(code: GossipErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }

  /** The gRPC status an inbound refusal is answered with. */
  get grpcStatus(): number {
    return GOSSIP_STATUS[this.code];
  }
}

const GOSSIP_STATUS: Readonly<Record<GossipErrorCode, number>> = {
  GOSSIP_IDENTITY_MISMATCH: GRPC_STATUS.PERMISSION_DENIED,
  GOSSIP_CLUSTER_MISMATCH: GRPC_STATUS.FAILED_PRECONDITION,
  GOSSIP_MESSAGE_INVALID: GRPC_STATUS.INVALID_ARGUMENT,
  GOSSIP_MESSAGE_TOO_LARGE: GRPC_STATUS.RESOURCE_EXHAUSTED,
  GOSSIP_WRONG_TARGET: GRPC_STATUS.FAILED_PRECONDITION,
  GOSSIP_NOT_RUNNING: GRPC_STATUS.UNAVAILABLE,
};
