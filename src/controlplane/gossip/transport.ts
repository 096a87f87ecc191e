import * as gossipV1 from '../../gen/omnirelay/controlplane/gossip/v1/gossip.js';
import type { IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import { commonNameOf } from '../../grpc/peer-identity.js';

/** The gossip RPCs, by method name of the generated definition. */
export interface GossipRequests {
  readonly ping: gossipV1.PingRequest;
  readonly pingReq: gossipV1.PingReqRequest;
  readonly sync: gossipV1.SyncRequest;
  readonly leave: gossipV1.LeaveRequest;
}
export interface GossipResponses {
  readonly ping: gossipV1.PingResponse;
  readonly pingReq: gossipV1.PingReqResponse;
  readonly sync: gossipV1.SyncResponse;
  readonly leave: gossipV1.LeaveResponse;
}
export type GossipMethod = keyof GossipRequests;

/** Where a gossip message goes: a member (its id known) or a seed (only its endpoint). */
export interface GossipPeer {
  readonly endpoint: string;
  /** The member id the caller expects to answer; undefined for a seed. */
  readonly nodeId?: string | undefined;
}

/** A reply and what the transport learned about who sent it. */
export interface GossipReply<T> {
  readonly message: T;
  /** The protocol of the call (`h3`, `h2`; the fake network says `fake`). */
  readonly protocol: string;
  /** The responder's certificate identity (CN), '' without one. */
  readonly responder: string;
}

/**
 * "Send a gossip RPC to endpoint X": the only way the agent talks to other nodes. The production
 * one ({@link FactoryGossipTransport}) calls through the control-plane client factory; tests use
 * the in-memory network ({@link InMemoryGossipNetwork}). A failed call rejects (any error).
 */
export interface GossipTransport {
  call<K extends GossipMethod>(method: K, peer: GossipPeer, request: GossipRequests[K], timeoutMs: number): Promise<GossipReply<GossipResponses[K]>>;
}

/** Who sent an inbound gossip message, as the server side saw it. */
export interface GossipCaller {
  /** The client certificate's CN ('' without one). */
  readonly identity: string;
  /** The protocol the call came over. */
  readonly protocol: string;
}

/** The receiving side of gossip (the agent): one handler per RPC, refusing with a GossipError. */
export interface GossipReceiver {
  receive<K extends GossipMethod>(method: K, request: GossipRequests[K], caller: GossipCaller): Promise<GossipResponses[K]>;
}

/**
 * Gossip over the control-plane client factory: every call is `factory.unary` on the gossip
 * definition with the configured profile (`control-plane`: HTTP/3 preferred, mTLS, breakers,
 * retries within the deadline, the factory's RPC metrics and spans) and the timeout as deadline.
 */
export class FactoryGossipTransport implements GossipTransport {
  constructor(
    private readonly factory: IGrpcControlPlaneClientFactory,
    private readonly profile: string,
  ) {}

  async call<K extends GossipMethod>(method: K, peer: GossipPeer, request: GossipRequests[K], timeoutMs: number): Promise<GossipReply<GossipResponses[K]>> {
    const result = await this.factory.unary(gossipV1.GossipDefinition, method, request as never, { endpoint: peer.endpoint, profile: this.profile, deadlineMs: timeoutMs });
    return { message: result.message as GossipResponses[K], protocol: result.protocol, responder: commonNameOf(result.peer.certificate?.subject) };
  }
}

/** A node as the in-memory network knows it. */
interface FakeNode {
  readonly receiver: GossipReceiver;
  /** The identity its "certificate" names. */
  readonly identity: string;
  up: boolean;
}

/**
 * An in-memory network of gossip agents for tests (memberlist ships one too): each endpoint is a
 * receiver with an identity; a call to an endpoint that is down or unknown rejects at once, and
 * calls between two endpoints can be cut (`partition`). Messages go through the generated
 * codecs, so what crosses the fake network is what would cross a real one.
 */
export class InMemoryGossipNetwork {
  readonly #nodes = new Map<string, FakeNode>();
  readonly #cut = new Set<string>();

  /** Registers a receiver at `endpoint` whose certificate names `identity`. */
  attach(endpoint: string, identity: string, receiver: GossipReceiver): void {
    this.#nodes.set(endpoint, { receiver, identity, up: true });
  }

  /** Takes an endpoint down (`false`: calls to and from it fail) or back up. */
  setUp(endpoint: string, up: boolean): void {
    const node = this.#nodes.get(endpoint);
    if (node !== undefined) node.up = up;
  }

  /** Cuts (or restores) the link between two endpoints, both ways. */
  partition(a: string, b: string, cut = true): void {
    for (const key of [`${a} ${b}`, `${b} ${a}`]) {
      if (cut) this.#cut.add(key);
      else this.#cut.delete(key);
    }
  }

  /** The transport of the node at `from`, presenting `identity` as its client certificate. */
  transport(from: string, identity: string): GossipTransport {
    return {
      call: async <K extends GossipMethod>(method: K, peer: GossipPeer, request: GossipRequests[K]): Promise<GossipReply<GossipResponses[K]>> => {
        const target = this.#nodes.get(peer.endpoint);
        const source = this.#nodes.get(from);
        if (target === undefined || !target.up || (source !== undefined && !source.up) || this.#cut.has(`${from} ${peer.endpoint}`)) {
          await Promise.resolve();
          throw new Error(`UNAVAILABLE: ${peer.endpoint} is unreachable from ${from}`);
        }
        const definition = gossipV1.GossipDefinition.methods[method];
        const wireRequest = (definition.requestType as { decode(b: Uint8Array): unknown; encode(m: unknown): { finish(): Uint8Array } }).decode(
          (definition.requestType as { encode(m: unknown): { finish(): Uint8Array } }).encode(request).finish(),
        ) as GossipRequests[K];
        const response = await target.receiver.receive(method, wireRequest, { identity, protocol: 'fake' });
        if (!target.up) throw new Error(`UNAVAILABLE: ${peer.endpoint} went down`);
        return { message: response, protocol: 'fake', responder: target.identity };
      },
    };
  }
}
