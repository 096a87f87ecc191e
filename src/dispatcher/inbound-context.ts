import type { ServerCallInfo } from '../server/grpc-host.js';
import { CALLER_METADATA_KEY, type CallContext, type PeerInfo, type ProcedureKind } from './context.js';

/** The context of a call a gRPC inbound received; the peer and metadata are read on first use. */
export class InboundContext implements CallContext {
  readonly direction = 'inbound';
  #peer: PeerInfo | undefined;
  #peerRead = false;

  constructor(
    readonly service: string,
    readonly procedure: string,
    readonly kind: ProcedureKind,
    readonly call: ServerCallInfo,
  ) {}

  get metadata(): Record<string, string> {
    return this.call.metadata;
  }

  get deadline(): number | undefined {
    return this.call.deadline;
  }

  get caller(): string {
    return this.call.metadata[CALLER_METADATA_KEY] ?? '';
  }

  get signal(): AbortSignal {
    return this.call.signal;
  }

  get peer(): PeerInfo | undefined {
    if (!this.#peerRead) {
      this.#peerRead = true;
      this.#peer = { identity: this.call.clientIdentity, certificate: this.call.clientCertificate, endpoint: undefined, protocol: this.call.protocol };
    }
    return this.#peer;
  }

  set peer(value: PeerInfo | undefined) {
    this.#peerRead = true;
    this.#peer = value;
  }
}
