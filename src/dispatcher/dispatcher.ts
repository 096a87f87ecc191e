import { systemClock, type Clock } from '../clock.js';
import { DispatcherError, RpcError } from '../errors.js';
import type { MethodDefinition, RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';
import { GRPC_STATUS } from '../grpc/status.js';
import { CALLER_METADATA_KEY, type CallContext, type DispatcherCallOptions, type PeerInfo, type ProcedureKind } from './context.js';
import { buildChains, type Chains, type Middleware } from './middleware.js';
import type { Outbound, OutboundProcedure } from './outbound.js';
import { ProcedureRegistry, type OnewayProcedure, type Procedure } from './procedures.js';

export interface DispatcherOptions {
  /** This service's name: sent as `rpc-caller` on every outbound call. */
  readonly name: string;
  /** Outbounds by the fully qualified name of the remote service they call. */
  readonly outbounds?: Readonly<Record<string, Outbound>> | undefined;
  /** Run between an inbound and the handler, first = outermost. */
  readonly inboundMiddleware?: readonly Middleware[] | undefined;
  /** Run between the caller and the outbound, first = outermost. */
  readonly outboundMiddleware?: readonly Middleware[] | undefined;
  /** Turns relative deadlines into absolute ones. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /**
   * Told when a oneway handler fails after its acknowledgement was sent (the caller never
   * learns). Default: `process.emitWarning`.
   */
  readonly onOnewayError?: ((error: unknown, context: CallContext) => void) | undefined;
}

/** A typed client whose calls run through the dispatcher's outbound middleware and outbound. */
export type DispatcherClient<S extends ServiceDefinition> = {
  readonly [K in UnaryMethodKeys<S>]: (request: RequestOf<S, K>, options?: DispatcherCallOptions) => Promise<ResponseOf<S, K>>;
} & {
  readonly [K in ServerStreamMethodKeys<S>]: (request: RequestOf<S, K>, options?: DispatcherCallOptions) => AsyncIterable<ResponseOf<S, K>>;
};

class OutboundContext implements CallContext {
  readonly direction = 'outbound';
  peer: PeerInfo | undefined = undefined;

  constructor(
    readonly service: string,
    readonly procedure: string,
    readonly kind: ProcedureKind,
    readonly metadata: Record<string, string | Buffer>,
    readonly deadline: number | undefined,
    readonly caller: string,
    readonly signal: AbortSignal | undefined,
    readonly target: OutboundProcedure,
  ) {}
}

function unimplemented(context: CallContext, kind: ProcedureKind, found: Procedure | undefined): RpcError {
  const what = found === undefined ? 'is not registered' : `is registered as ${found.kind}, not ${kind}`;
  return new RpcError(GRPC_STATUS.UNIMPLEMENTED, 'UNIMPLEMENTED', `Procedure ${context.service}/${context.procedure} ${what}.`, { endpoint: '', protocol: 'none' });
}

/**
 * A YARPC-style dispatcher: procedures registered by service + name, served by inbounds
 * (GrpcInbound) through the inbound middleware; calls to other services go through the
 * outbound middleware to the outbound configured for that service (GrpcOutbound).
 */
export class Dispatcher {
  readonly name: string;
  readonly #registry = new ProcedureRegistry();
  readonly #outbounds: Readonly<Record<string, Outbound>>;
  readonly #clock: Clock;
  readonly #onOnewayError: (error: unknown, context: CallContext) => void;
  readonly #inbound: Chains;
  readonly #outbound: Chains;
  readonly #runningOneway = new Set<Promise<void>>();
  #frozen = false;

  constructor(options: DispatcherOptions) {
    if (typeof options.name !== 'string' || options.name.trim() === '') {
      throw new DispatcherError('PROCEDURE_INVALID', '(dispatcher)', undefined, 'DispatcherOptions.name must be a non-empty service name (it is sent as `rpc-caller`).');
    }
    this.name = options.name;
    this.#outbounds = { ...options.outbounds };
    this.#clock = options.clock ?? systemClock;
    this.#onOnewayError =
      options.onOnewayError ??
      ((error, context) => process.emitWarning(`oneway procedure ${context.service}/${context.procedure} failed: ${error instanceof Error ? error.message : String(error)}`, 'OmniRelayOnewayWarning'));
    this.#inbound = buildChains(options.inboundMiddleware ?? [], {
      unary: async (context, request) => await this.#procedure(context, 'unary').handler(request, context),
      oneway: (context, request) => {
        let procedure: OnewayProcedure;
        try {
          procedure = this.#procedure(context, 'oneway');
        } catch (error) {
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        // The acknowledgement goes back as soon as the handler has started.
        const running = Promise.resolve()
          .then(() => procedure.handler(request, context))
          .catch((error: unknown) => this.#onOnewayError(error, context))
          .finally(() => this.#runningOneway.delete(running));
        this.#runningOneway.add(running);
        return Promise.resolve();
      },
      serverStream: (context, request) => this.#procedure(context, 'server-stream').handler(request, context),
    });
    this.#outbound = buildChains(options.outboundMiddleware ?? [], {
      unary: (context, request) => this.#outboundFor(context).unary(context, (context as OutboundContext).target, request),
      oneway: (context, request) => this.#outboundFor(context).oneway(context, (context as OutboundContext).target, request),
      serverStream: (context, request) => this.#outboundFor(context).serverStream(context, (context as OutboundContext).target, request),
    });
  }

  /** Registers procedures. Throws a DispatcherError for an invalid or duplicate one, or once an inbound has started. */
  register(...procedures: Procedure[]): this {
    for (const procedure of procedures) {
      if (this.#frozen) {
        throw new DispatcherError('PROCEDURE_INVALID', procedure.service, procedure.name, `Cannot register ${procedure.service}/${procedure.name}: an inbound has started serving this dispatcher; register every procedure before starting inbounds.`);
      }
      this.#registry.add(procedure);
    }
    return this;
  }

  /** Every registered procedure. */
  procedures(): Procedure[] {
    return this.#registry.all();
  }

  /** Stops registration; inbounds call this when they start serving the registered procedures. */
  freeze(): void {
    this.#frozen = true;
  }

  #procedure<K extends ProcedureKind>(context: CallContext, kind: K): Extract<Procedure, { kind: K }> {
    const found = this.#registry.get(context.service, context.procedure);
    if (found?.kind !== kind) throw unimplemented(context, kind, found);
    return found as Extract<Procedure, { kind: K }>;
  }

  // ---- Inbound: an inbound hands each decoded request here --------------------------------

  /** Runs the inbound middleware and the unary handler. */
  handleUnary(context: CallContext, request: unknown): Promise<unknown> {
    return this.#inbound.unary(context, request);
  }

  /** Runs the inbound middleware and starts the oneway handler; resolves once it started (the acknowledgement). */
  handleOneway(context: CallContext, request: unknown): Promise<void> {
    return this.#inbound.oneway(context, request);
  }

  /** Runs the inbound middleware and the server-stream handler. */
  handleServerStream(context: CallContext, request: unknown): AsyncIterable<unknown> {
    return this.#inbound.serverStream(context, request);
  }

  /** Resolves when every oneway handler that was running has finished. */
  async idle(): Promise<void> {
    while (this.#runningOneway.size > 0) await Promise.allSettled([...this.#runningOneway]);
  }

  // ---- Outbound -----------------------------------------------------------------------

  #outboundFor(context: CallContext): Outbound {
    const outbound = this.#outbounds[context.service];
    if (outbound === undefined) {
      const known = Object.keys(this.#outbounds);
      throw new DispatcherError('OUTBOUND_MISSING', context.service, context.procedure, `Dispatcher "${this.name}" has no outbound for service ${context.service} (configured: ${known.length > 0 ? known.join(', ') : 'none'}); add one under outbounds.`);
    }
    return outbound;
  }

  #context(definition: ServiceDefinition, key: string, kind: ProcedureKind, options: DispatcherCallOptions | undefined): OutboundContext {
    const method = definition.methods[key] as MethodDefinition<unknown, unknown> | undefined;
    if (method === undefined) {
      throw new DispatcherError('PROCEDURE_INVALID', definition.fullName, key, `Service ${definition.fullName} has no method "${key}".`);
    }
    if (method.requestStream || method.responseStream !== (kind === 'server-stream')) {
      throw new DispatcherError('PROCEDURE_INVALID', definition.fullName, method.name, `${definition.fullName}/${method.name} cannot be called as ${kind}.`);
    }
    const context = new OutboundContext(
      definition.fullName,
      method.name,
      kind,
      { ...options?.metadata, [CALLER_METADATA_KEY]: this.name },
      options?.deadlineMs !== undefined ? this.#clock.now() + options.deadlineMs : undefined,
      this.name,
      options?.signal,
      { definition, method: key },
    );
    this.#outboundFor(context);
    return context;
  }

  /** A unary call through the outbound middleware and the service's outbound. */
  async call<S extends ServiceDefinition, K extends UnaryMethodKeys<S> & string>(definition: S, method: K, request: RequestOf<S, K>, options?: DispatcherCallOptions): Promise<ResponseOf<S, K>> {
    const context = this.#context(definition, method, 'unary', options);
    return (await this.#outbound.unary(context, request)) as ResponseOf<S, K>;
  }

  /** A oneway call: resolves when the server acknowledged receipt; the handler's outcome is not reported. */
  async oneway<S extends ServiceDefinition, K extends UnaryMethodKeys<S> & string>(definition: S, method: K, request: RequestOf<S, K>, options?: DispatcherCallOptions): Promise<void> {
    const context = this.#context(definition, method, 'oneway', options);
    await this.#outbound.oneway(context, request);
  }

  /** A server-streaming call. */
  callServerStream<S extends ServiceDefinition, K extends ServerStreamMethodKeys<S> & string>(definition: S, method: K, request: RequestOf<S, K>, options?: DispatcherCallOptions): AsyncIterable<ResponseOf<S, K>> {
    const context = this.#context(definition, method, 'server-stream', options);
    return this.#outbound.serverStream(context, request) as AsyncIterable<ResponseOf<S, K>>;
  }

  /** A typed client for a generated service: unary and server-streaming methods, through the outbound chain. */
  client<S extends ServiceDefinition>(definition: S): DispatcherClient<S> {
    const client: Record<string, unknown> = {};
    for (const [key, def] of Object.entries(definition.methods)) {
      const method = def as MethodDefinition<unknown, unknown>;
      if (method.requestStream) continue;
      client[key] = method.responseStream
        ? (request: unknown, options?: DispatcherCallOptions) => this.#outbound.serverStream(this.#context(definition, key, 'server-stream', options), request)
        : async (request: unknown, options?: DispatcherCallOptions) => this.#outbound.unary(this.#context(definition, key, 'unary', options), request);
    }
    return client as DispatcherClient<S>;
  }
}
