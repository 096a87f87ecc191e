import { DispatcherError } from '../errors.js';
import type { MethodDefinition, ServiceDefinition } from '../grpc/service-definition.js';
import { GrpcHost, type GrpcHostOptions, type ServerCallInfo } from '../server/grpc-host.js';
import type { Dispatcher } from './dispatcher.js';
import { InboundContext } from './inbound-context.js';
import { ONEWAY_ACK } from './oneway-ack.js';
import type { Procedure } from './procedures.js';

type Handler = (request: unknown, call: ServerCallInfo) => unknown;

/**
 * One ServiceDefinition per service of the registered procedures, with a handler per
 * procedure that runs the dispatcher's inbound middleware. A oneway procedure is a gRPC
 * unary method whose response is the empty acknowledgement.
 */
export function inboundServices(dispatcher: Dispatcher, procedures: readonly Procedure[]): Array<readonly [ServiceDefinition, Record<string, Handler>]> {
  const services = new Map<string, { methods: Record<string, MethodDefinition<unknown, unknown>>; handlers: Record<string, Handler> }>();
  for (const p of procedures) {
    let entry = services.get(p.service);
    if (entry === undefined) {
      entry = { methods: {}, handlers: {} };
      services.set(p.service, entry);
    }
    const { service, name, kind } = p;
    entry.methods[name] = {
      name,
      requestType: p.requestType,
      requestStream: false,
      responseType: p.kind === 'oneway' ? ONEWAY_ACK : p.responseType,
      responseStream: kind === 'server-stream',
    };
    entry.handlers[name] =
      kind === 'unary'
        ? (request, call) => dispatcher.handleUnary(new InboundContext(service, name, kind, call), request)
        : kind === 'oneway'
          ? async (request, call) => {
              await dispatcher.handleOneway(new InboundContext(service, name, kind, call), request);
              return {};
            }
          : (request, call) => dispatcher.handleServerStream(new InboundContext(service, name, kind, call), request);
  }
  return [...services].map(([fullName, { methods, handlers }]) => [{ name: fullName.slice(fullName.lastIndexOf('.') + 1), fullName, methods }, handlers] as const);
}

/**
 * Serves a dispatcher's procedures through GrpcHost — HTTP/2 (TCP) and HTTP/3 (UDP) on one port
 * number unless `http3: false` — with mTLS: client certificates required by default, CRLs,
 * the client's identity in `context.peer`.
 * Starting freezes the dispatcher's registrations: the served set is fixed.
 */
export class GrpcInbound {
  private constructor(
    readonly host: GrpcHost,
    readonly dispatcher: Dispatcher,
  ) {}

  static async start(dispatcher: Dispatcher, options: GrpcHostOptions): Promise<GrpcInbound> {
    const procedures = dispatcher.procedures();
    if (procedures.length === 0) {
      throw new DispatcherError('PROCEDURE_INVALID', '(none)', undefined, `Dispatcher "${dispatcher.name}" has no procedures to serve; register them before starting GrpcInbound.`);
    }
    dispatcher.freeze();
    const host = await GrpcHost.start(options, inboundServices(dispatcher, procedures));
    return new GrpcInbound(host, dispatcher);
  }

  /** `https://host:port`. */
  get url(): string {
    return this.host.url;
  }

  get port(): number {
    return this.host.port;
  }

  /** Stops taking calls, lets running calls finish for up to `graceMs`, then waits for running oneway handlers. */
  async close(graceMs = 5_000): Promise<void> {
    await this.host.close(graceMs);
    await this.dispatcher.idle();
  }
}
