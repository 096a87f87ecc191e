import type { X509Certificate } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import { EndpointError } from '../errors.js';
import { CALLER_OPTION, type CallerMarked } from '../factory/caller.js';
import type { MethodDefinition, ServiceDefinition } from '../grpc/service-definition.js';
import type { CallOptions, CallTarget, IGrpcControlPlaneClientFactory } from '../factory/types.js';
import { commonNameOf } from '../grpc/peer-identity.js';
import type { CallContext } from './context.js';
import { ONEWAY_ACK } from './oneway-ack.js';
import type { Outbound, OutboundProcedure } from './outbound.js';

export interface GrpcOutboundOptions {
  /** Replicas of the remote service (URLs or configured endpoint names); the factory's peer chooser spreads calls over them. */
  readonly peers?: readonly string[] | undefined;
  /** One endpoint (URL or configured endpoint name), when there is a single replica. */
  readonly endpoint?: string | undefined;
  /** A live peer list bound to `TOKENS.PeerLists` (members join and leave while calls run). */
  readonly peerList?: string | undefined;
  /** Factory profile; default: the endpoint's configured profile, else `control-plane`. */
  readonly profile?: string | undefined;
}

function identityOf(certificate: X509Certificate | undefined): string {
  return commonNameOf(certificate?.subject);
}

/** The same method with the oneway acknowledgement as its response, cached per method. */
const onewayDefinitions = new WeakMap<MethodDefinition<unknown, unknown>, ServiceDefinition>();

function onewayDefinition(definition: ServiceDefinition, key: string): ServiceDefinition {
  const method = definition.methods[key] as MethodDefinition<unknown, unknown>;
  let derived = onewayDefinitions.get(method);
  if (derived === undefined) {
    derived = { name: definition.name, fullName: definition.fullName, methods: { [key]: { ...method, responseType: ONEWAY_ACK, responseStream: false } } };
    onewayDefinitions.set(method, derived);
  }
  return derived;
}

/**
 * The target + options of one outbound call. A class (one hidden shape, no spread) with the
 * caller mark on its prototype: building it is cheap, and the mark is read by the factory only.
 */
class DispatcherCallTarget implements CallTarget, CallOptions, CallerMarked {
  constructor(
    readonly peers: readonly string[] | undefined,
    readonly endpoint: string | undefined,
    readonly peerList: string | undefined,
    readonly profile: string | undefined,
    readonly deadlineMs: number | undefined,
    readonly signal: AbortSignal | undefined,
    readonly metadata: CallOptions['metadata'],
  ) {}

  get [CALLER_OPTION](): 'dispatcher' {
    return 'dispatcher';
  }
}

/**
 * The dispatcher's gRPC outbound. It owns no channel, credentials or connection settings:
 * every call goes through the control-plane client factory (`TOKENS.GrpcControlPlaneClientFactory`),
 * which picks the peer (chooser + breaker), the protocol and the TLS material, retries and
 * records telemetry. Its calls are marked `omnirelay.caller = dispatcher`.
 */
export class GrpcOutbound implements Outbound {
  readonly #factory: IGrpcControlPlaneClientFactory;
  readonly #target: CallTarget;
  readonly #clock: Clock;

  constructor(factory: IGrpcControlPlaneClientFactory, options: GrpcOutboundOptions, clock: Clock = systemClock) {
    const peers = options.peers !== undefined && options.peers.length > 0 ? [...options.peers] : undefined;
    const endpoint = options.endpoint !== '' ? options.endpoint : undefined;
    const peerList = options.peerList !== '' ? options.peerList : undefined;
    const given = [peers, endpoint, peerList].filter((t) => t !== undefined).length;
    if (given !== 1) {
      throw new EndpointError('ENDPOINT_INVALID', '(none)', `GrpcOutbound needs exactly one of \`peers\` (one or more replicas), \`endpoint\` or \`peerList\`; ${given === 0 ? 'none was' : `${given} were`} given.`);
    }
    this.#factory = factory;
    this.#target = { peers, endpoint, peerList, profile: options.profile };
    this.#clock = clock;
  }

  #options(context: CallContext): DispatcherCallTarget {
    const target = this.#target;
    return new DispatcherCallTarget(
      target.peers,
      target.endpoint,
      target.peerList,
      target.profile,
      context.deadline !== undefined ? Math.max(0, context.deadline - this.#clock.now()) : undefined,
      context.signal,
      context.metadata,
    );
  }

  async unary(context: CallContext, procedure: OutboundProcedure, request: unknown): Promise<unknown> {
    const result = await this.#factory.unary(procedure.definition, procedure.method as never, request, this.#options(context));
    context.peer = { identity: identityOf(result.peer.certificate), certificate: result.peer.certificate, endpoint: result.endpoint, protocol: result.protocol };
    return result.message;
  }

  async oneway(context: CallContext, procedure: OutboundProcedure, request: unknown): Promise<void> {
    const definition = onewayDefinition(procedure.definition, procedure.method);
    const result = await this.#factory.unary(definition, procedure.method as never, request, this.#options(context));
    context.peer = { identity: identityOf(result.peer.certificate), certificate: result.peer.certificate, endpoint: result.endpoint, protocol: result.protocol };
  }

  serverStream(context: CallContext, procedure: OutboundProcedure, request: unknown): AsyncIterable<unknown> {
    return this.#factory.serverStream(procedure.definition, procedure.method as never, request, this.#options(context));
  }
}
