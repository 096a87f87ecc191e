import { ConfigError, MethodError, type ConfigIssue } from '../errors.js';
import { MAX_MS } from '../config/schema.js';
import { metadataProblem } from '../grpc/mapping.js';
import type { MethodDefinition, ServiceDefinition } from '../grpc/service-definition.js';
import type { CallOptions } from './types.js';

/** What a method is, by its streaming flags. */
export type MethodKind = 'unary' | 'server-stream' | 'client-stream' | 'bidi-stream';

/** The factory method that calls a method of each kind. */
const CALL_OF: Readonly<Record<MethodKind, string>> = { unary: 'unary', 'server-stream': 'serverStream', 'client-stream': 'clientStream', 'bidi-stream': 'bidiStream' };

export function kindOf(method: MethodDefinition<unknown, unknown>): MethodKind {
  if (method.requestStream) return method.responseStream ? 'bidi-stream' : 'client-stream';
  return method.responseStream ? 'server-stream' : 'unary';
}

/**
 * The definition of `service.methods[name]` for a call of `kind`; a MethodError naming the
 * service and the method, listing the methods of that kind, when there is none.
 */
export function methodOf<Req, Res>(service: ServiceDefinition, name: unknown, kind: MethodKind): MethodDefinition<Req, Res> {
  const known = typeof name === 'string' && typeof service === 'object' && service !== null ? checked.get(service)?.get(name) : undefined;
  if (known !== undefined && kindOf(known) === kind) return known as MethodDefinition<Req, Res>;
  const definition = lookUp<Req, Res>(service, name, kind);
  let methods = checked.get(service);
  if (methods === undefined) {
    methods = new Map();
    checked.set(service, methods);
  }
  methods.set(name as string, definition);
  return definition;
}

/** Definitions already checked, per service object and method key: calls name the same few over and over. */
const checked = new WeakMap<ServiceDefinition, Map<string, MethodDefinition<unknown, unknown>>>();

function lookUp<Req, Res>(service: ServiceDefinition, name: unknown, kind: MethodKind): MethodDefinition<Req, Res> {
  const methods = (service as { methods?: unknown } | undefined)?.methods;
  const serviceName = (service as { fullName?: unknown } | undefined)?.fullName;
  if (typeof methods !== 'object' || methods === null || typeof serviceName !== 'string') {
    throw new TypeError(`A call needs a generated service definition (with fullName and methods); got ${service === null ? 'null' : typeof service}.`);
  }
  const table = methods as Record<string, MethodDefinition<unknown, unknown>>;
  const usable = Object.keys(table).filter((key) => kindOf(table[key] as MethodDefinition<unknown, unknown>) === kind);
  const list = usable.length === 0 ? `it has no ${kind} methods` : `its ${kind} methods: ${usable.join(', ')}`;
  const key = String(name);
  const definition = typeof name === 'string' && Object.hasOwn(table, name) ? table[name] : undefined;
  if (definition === undefined) {
    const close = Object.keys(table).find((k) => k.toLowerCase() === key.toLowerCase() || table[k]?.name === key);
    throw new MethodError('METHOD_UNKNOWN', serviceName, key, usable, `Service ${serviceName} has no method "${key}"${close !== undefined ? ` (did you mean "${close}"?)` : ''}; ${list}.`);
  }
  const actual = kindOf(definition);
  if (actual !== kind) {
    throw new MethodError('METHOD_UNSUPPORTED', serviceName, key, usable, `${serviceName}.${key} is a ${actual} method and cannot be called with ${CALL_OF[kind]}(); use ${CALL_OF[actual]}(); ${list}.`);
  }
  return definition as MethodDefinition<Req, Res>;
}

/**
 * Per-call options, checked before anything is sent. `metadata`: the rules of
 * {@link metadataProblem}, one issue per bad key (`metadata.<key>`), the same for both
 * protocols. `deadlineMs` is a number of milliseconds above 0 and at most 24 h (`MAX_MS`, the bound the options use), or — for streams only — the
 * string `'none'` (no deadline: keepalive is the liveness check); a ConfigError keyed
 * `deadlineMs` otherwise (a string, NaN, a negative or an overflowing value would otherwise
 * become an instant timeout or Node's TimeoutOverflowWarning). `signal` is an AbortSignal.
 */
export function checkCallOptions(options: CallOptions, kind: MethodKind): void {
  const deadline: unknown = options.deadlineMs;
  const signal: unknown = options.signal;
  const metadata: unknown = options.metadata;
  // The common call: a plain deadline (or none), a signal (or none), no metadata of its own.
  if ((deadline === undefined || (typeof deadline === 'number' && deadline > 0 && deadline <= MAX_MS)) && (signal === undefined || signal instanceof AbortSignal) && metadata === undefined) return;
  const issues: ConfigIssue[] = [];
  if (deadline === 'none') {
    if (kind === 'unary') issues.push({ key: 'deadlineMs', message: `"none" is for streams only; a unary call always has a deadline (a number of milliseconds)` });
  } else if (deadline !== undefined) {
    if (typeof deadline !== 'number') issues.push({ key: 'deadlineMs', message: `must be a number of milliseconds${kind === 'unary' ? '' : ' or "none"'}, got ${typeof deadline} ${JSON.stringify(deadline)}` });
    else if (!Number.isFinite(deadline)) issues.push({ key: 'deadlineMs', message: `must be a finite number of milliseconds, got ${deadline}${kind === 'unary' ? '' : '; use "none" for a stream without a deadline'}` });
    else if (deadline <= 0) issues.push({ key: 'deadlineMs', message: `must be greater than 0 ms, got ${deadline}` });
    else if (deadline > MAX_MS) issues.push({ key: 'deadlineMs', message: `must be at most ${MAX_MS} ms (24 h), got ${deadline}; a larger value is almost certainly a unit mistake` });
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) issues.push({ key: 'signal', message: `must be an AbortSignal, got ${signal === null ? 'null' : typeof signal}` });
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      issues.push({ key: 'metadata', message: `must be an object of metadata keys to strings or Buffers, got ${metadata === null ? 'null' : Array.isArray(metadata) ? 'an array' : typeof metadata}` });
    } else {
      for (const [key, value] of Object.entries(metadata)) {
        const problem = metadataProblem(key, value);
        if (problem !== undefined) issues.push({ key: `metadata.${key}`, message: problem });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, 'call options');
}

/** An AsyncIterable whose first `next()` rejects with `error`. */
export function failedStream<T>(error: unknown): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error instanceof Error ? error : new Error(String(error))) }) };
}
