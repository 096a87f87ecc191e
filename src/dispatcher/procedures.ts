import { DispatcherError } from '../errors.js';
import type { MessageCodec, MethodDefinition, RequestOf, ResponseOf, ServerStreamMethodKeys, ServiceDefinition, UnaryMethodKeys } from '../grpc/service-definition.js';
import type { CallContext, ProcedureKind } from './context.js';

interface ProcedureBase<Req> {
  /** Fully qualified service name (`package.Service`). */
  readonly service: string;
  /** Procedure (gRPC method) name; the wire path is `/${service}/${name}`. */
  readonly name: string;
  readonly requestType: MessageCodec<Req>;
}

export interface UnaryProcedure<Req = unknown, Res = unknown> extends ProcedureBase<Req> {
  readonly kind: 'unary';
  readonly responseType: MessageCodec<Res>;
  readonly handler: (request: Req, context: CallContext) => Res | Promise<Res>;
}

/** A procedure that returns nothing: the caller gets an acknowledgement, not a result. */
export interface OnewayProcedure<Req = unknown> extends ProcedureBase<Req> {
  readonly kind: 'oneway';
  readonly handler: (request: Req, context: CallContext) => void | Promise<void>;
}

export interface ServerStreamProcedure<Req = unknown, Res = unknown> extends ProcedureBase<Req> {
  readonly kind: 'server-stream';
  readonly responseType: MessageCodec<Res>;
  readonly handler: (request: Req, context: CallContext) => AsyncIterable<Res>;
}

export type Procedure = UnaryProcedure | OnewayProcedure | ServerStreamProcedure;

const SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const PROCEDURE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KINDS: readonly ProcedureKind[] = ['unary', 'oneway', 'server-stream'];

function isCodec(value: unknown): boolean {
  const codec = value as Partial<MessageCodec<unknown>> | undefined;
  return typeof codec?.encode === 'function' && typeof codec.decode === 'function';
}

/** Throws a DispatcherError naming the service and procedure if `p` cannot be served. */
export function validateProcedure(p: Procedure): void {
  const service = typeof p.service === 'string' ? p.service : String(p.service);
  const name = typeof p.name === 'string' ? p.name : undefined;
  const fail = (message: string): never => {
    throw new DispatcherError('PROCEDURE_INVALID', service, name, `Procedure ${service}/${String(p.name)}: ${message}`);
  };
  if (!SERVICE_NAME.test(service)) fail('the service name must be a dotted identifier such as `package.Service`.');
  if (name === undefined || !PROCEDURE_NAME.test(name)) fail('the procedure name must be an identifier such as `Ping`.');
  if (!KINDS.includes(p.kind)) fail(`unknown kind "${String(p.kind)}"; use one of ${KINDS.join(', ')}.`);
  if (typeof p.handler !== 'function') fail('the handler is not a function.');
  if (!isCodec(p.requestType)) fail('requestType needs encode() and decode().');
  if (p.kind !== 'oneway' && !isCodec(p.responseType)) fail('responseType needs encode() and decode().');
}

function methodOf(definition: ServiceDefinition, key: string, kind: ProcedureKind): MethodDefinition<unknown, unknown> {
  const method = definition.methods[key] as MethodDefinition<unknown, unknown> | undefined;
  if (method === undefined) {
    throw new DispatcherError('PROCEDURE_INVALID', definition.fullName, key, `Service ${definition.fullName} has no method "${key}" (it has ${Object.keys(definition.methods).join(', ')}).`);
  }
  const streaming = kind === 'server-stream';
  if (method.requestStream || method.responseStream !== streaming) {
    const shape = method.requestStream ? 'client/bidi-streaming' : method.responseStream ? 'server-streaming' : 'unary';
    throw new DispatcherError('PROCEDURE_INVALID', definition.fullName, method.name, `${definition.fullName}/${method.name} is ${shape}; it cannot be registered as a ${kind} procedure.`);
  }
  return method;
}

/** A unary procedure for a method of a generated service definition. */
export function unaryProcedure<S extends ServiceDefinition, K extends UnaryMethodKeys<S> & string>(
  definition: S,
  method: K,
  handler: (request: RequestOf<S, K>, context: CallContext) => ResponseOf<S, K> | Promise<ResponseOf<S, K>>,
): UnaryProcedure {
  const m = methodOf(definition, method, 'unary');
  return { kind: 'unary', service: definition.fullName, name: m.name, requestType: m.requestType, responseType: m.responseType, handler: handler as UnaryProcedure['handler'] };
}

/**
 * A oneway procedure for a unary method of a generated service definition: the request type
 * is the method's; its response type is not used (the caller gets an empty acknowledgement).
 */
export function onewayProcedure<S extends ServiceDefinition, K extends UnaryMethodKeys<S> & string>(
  definition: S,
  method: K,
  handler: (request: RequestOf<S, K>, context: CallContext) => void | Promise<void>,
): OnewayProcedure {
  const m = methodOf(definition, method, 'oneway');
  return { kind: 'oneway', service: definition.fullName, name: m.name, requestType: m.requestType, handler: handler as OnewayProcedure['handler'] };
}

/** A server-streaming procedure for a method of a generated service definition. */
export function serverStreamProcedure<S extends ServiceDefinition, K extends ServerStreamMethodKeys<S> & string>(
  definition: S,
  method: K,
  handler: (request: RequestOf<S, K>, context: CallContext) => AsyncIterable<ResponseOf<S, K>>,
): ServerStreamProcedure {
  const m = methodOf(definition, method, 'server-stream');
  return { kind: 'server-stream', service: definition.fullName, name: m.name, requestType: m.requestType, responseType: m.responseType, handler: handler as ServerStreamProcedure['handler'] };
}

/** Handlers for every unary and server-streaming method of a generated service. */
export type ServiceProcedures<S extends ServiceDefinition> = {
  readonly [K in UnaryMethodKeys<S>]: (request: RequestOf<S, K>, context: CallContext) => ResponseOf<S, K> | Promise<ResponseOf<S, K>>;
} & {
  readonly [K in ServerStreamMethodKeys<S>]: (request: RequestOf<S, K>, context: CallContext) => AsyncIterable<ResponseOf<S, K>>;
};

/** One procedure per unary / server-streaming method of a generated service (client-streaming methods are refused). */
export function serviceProcedures<S extends ServiceDefinition>(definition: S, implementation: ServiceProcedures<S>): Procedure[] {
  return Object.entries(definition.methods).map(([key, def]) => {
    const method = def as MethodDefinition<unknown, unknown>;
    const handler = (implementation as Record<string, unknown>)[key];
    if (typeof handler !== 'function') {
      throw new DispatcherError('PROCEDURE_INVALID', definition.fullName, method.name, `No handler for ${definition.fullName}/${method.name} (implementation key "${key}").`);
    }
    const kind: ProcedureKind = method.responseStream ? 'server-stream' : 'unary';
    methodOf(definition, key, kind);
    return kind === 'unary'
      ? { kind, service: definition.fullName, name: method.name, requestType: method.requestType, responseType: method.responseType, handler: handler as UnaryProcedure['handler'] }
      : { kind, service: definition.fullName, name: method.name, requestType: method.requestType, responseType: method.responseType, handler: handler as ServerStreamProcedure['handler'] };
  });
}

/** Procedures by `service/name`. */
export class ProcedureRegistry {
  readonly #byKey = new Map<string, Procedure>();

  add(procedure: Procedure): void {
    validateProcedure(procedure);
    const key = `${procedure.service}/${procedure.name}`;
    const existing = this.#byKey.get(key);
    if (existing !== undefined) {
      throw new DispatcherError('PROCEDURE_DUPLICATE', procedure.service, procedure.name, `Procedure ${key} is already registered (as ${existing.kind}); each service + name is registered once.`);
    }
    this.#byKey.set(key, procedure);
  }

  get(service: string, name: string): Procedure | undefined {
    return this.#byKey.get(`${service}/${name}`);
  }

  all(): Procedure[] {
    return [...this.#byKey.values()];
  }
}
