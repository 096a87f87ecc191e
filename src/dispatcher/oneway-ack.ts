import type { MessageCodec } from '../grpc/service-definition.js';

/**
 * The acknowledgement of a oneway call: an empty protobuf message (the wire form of
 * `google.protobuf.Empty`). A oneway procedure is a gRPC unary method whose response is
 * this ack, sent once the inbound middleware accepted the request and the handler started.
 */
export const ONEWAY_ACK: MessageCodec<Record<string, never>> = {
  encode: () => ({ finish: () => new Uint8Array(0) }),
  // Like Empty, any fields a newer server might add are ignored.
  decode: () => ({}),
};
