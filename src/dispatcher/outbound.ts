import type { ServiceDefinition } from '../grpc/service-definition.js';
import type { CallContext } from './context.js';

/** The procedure an outbound call targets: a method of a generated service definition, by key. */
export interface OutboundProcedure {
  readonly definition: ServiceDefinition;
  /** The method's key in `definition.methods` (e.g. `ping`). */
  readonly method: string;
}

/**
 * Sends a dispatcher's calls for one remote service. GrpcOutbound is the one this library
 * ships; tests may supply their own. A unary or oneway outbound sets `context.peer` to the
 * replica that answered.
 */
export interface Outbound {
  unary(context: CallContext, procedure: OutboundProcedure, request: unknown): Promise<unknown>;
  /** Resolves when the server acknowledged receipt (see docs/dispatcher.md, "Oneway"). */
  oneway(context: CallContext, procedure: OutboundProcedure, request: unknown): Promise<void>;
  serverStream(context: CallContext, procedure: OutboundProcedure, request: unknown): AsyncIterable<unknown>;
}
