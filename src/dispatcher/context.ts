import type { X509Certificate } from 'node:crypto';
import type { CallMetadata } from '../transport/types.js';

/** How a procedure is called. */
export type ProcedureKind = 'unary' | 'oneway' | 'server-stream';

/** The other side of a call. */
export interface PeerInfo {
  /**
   * Inbound: the client certificate's subject CN ('' without one).
   * Outbound: the server certificate's subject CN ('' without TLS).
   */
  readonly identity: string;
  readonly certificate: X509Certificate | undefined;
  /** Outbound: `host:port` of the replica that answered. Inbound: undefined. */
  readonly endpoint: string | undefined;
  readonly protocol: 'h2' | 'h3' | undefined;
}

/**
 * What every middleware and handler learns about a call. One object per call, passed down
 * the whole chain, so a middleware may add outbound metadata or read what an inner one set.
 */
export interface CallContext {
  readonly direction: 'inbound' | 'outbound';
  /** Fully qualified service name, e.g. `omnirelay.controlplane.v1.ControlPlane`. */
  readonly service: string;
  /** The procedure (gRPC method) name, e.g. `Ping`. */
  readonly procedure: string;
  readonly kind: ProcedureKind;
  /**
   * Request metadata. Inbound: what the client sent (binary values base64). Outbound:
   * what will be sent; middleware may add or replace entries before calling `next`.
   */
  readonly metadata: Record<string, string | Buffer>;
  /** Absolute deadline in ms since the epoch (the dispatcher's clock); undefined: none given (outbound: the profile's default applies). */
  readonly deadline: number | undefined;
  /**
   * Inbound: the authenticated client (set before any middleware runs).
   * Outbound: the replica that answered a unary or oneway call, set when the transport
   * returns (undefined before `next` resolves, and for server streams).
   */
  peer: PeerInfo | undefined;
  /**
   * The calling service's name. Outbound: this dispatcher's name (sent as `rpc-caller`).
   * Inbound: the `rpc-caller` the client sent, '' when it sent none.
   */
  readonly caller: string;
  /** Aborts when the call is cancelled (inbound: client cancel or deadline; outbound: the caller's signal). */
  readonly signal: AbortSignal | undefined;
}

/** The metadata key carrying the calling service's name (as in YARPC). */
export const CALLER_METADATA_KEY = 'rpc-caller';

/** Outbound call options a dispatcher caller may give. */
export interface DispatcherCallOptions {
  /** Relative deadline in ms; default: the outbound profile's `deadlineMs`. */
  readonly deadlineMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Extra metadata (lowercase keys; `-bin` keys take Buffers). */
  readonly metadata?: CallMetadata | undefined;
}
