/** Helpers shared by the telemetry classes. Not part of the public API. */
import { metrics, trace } from '@opentelemetry/api';
import type { Meter, MeterProvider, Tracer, TracerProvider } from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { INSTRUMENTATION_SCOPE_NAME, INSTRUMENTATION_SCOPE_VERSION } from './names.js';

/** Where telemetry goes. Each provider defaults to the global one from `@opentelemetry/api`. */
export interface TelemetryProviders {
  meterProvider?: MeterProvider;
  tracerProvider?: TracerProvider;
  /**
   * Monotonic clock in milliseconds used for the duration histograms (spans keep the
   * tracer's own clock). Default `performance.now`. Meant for tests.
   */
  clock?: () => number;
}

/**
 * Instruments bound to a meter provider. When no provider was injected the global one is
 * looked up on every use: `@opentelemetry/api` has no proxy meter provider, so instruments
 * created before the application registers its SDK would otherwise stay no-ops forever.
 * They are rebuilt only when the global provider changes.
 */
export class MeterBinding<T> {
  private provider: MeterProvider | undefined;
  private instruments: T | undefined;

  constructor(
    private readonly injected: MeterProvider | undefined,
    private readonly build: (meter: Meter) => T,
  ) {}

  get(): T {
    const provider = this.injected ?? metrics.getMeterProvider();
    if (this.instruments === undefined || provider !== this.provider) {
      this.provider = provider;
      this.instruments = this.build(provider.getMeter(INSTRUMENTATION_SCOPE_NAME, INSTRUMENTATION_SCOPE_VERSION));
    }
    return this.instruments;
  }
}

/**
 * The tracer of a provider, asked for once per provider rather than once per span: the SDK's
 * `getTracer` builds a `name@version:schema` key and looks it up, the global proxy provider
 * allocates a new ProxyTracer each time, the no-op one a new NoopTracer. Without an injected
 * provider the global one is looked up on every use, and the tracer rebuilt when it is a
 * different object (`trace.disable()` installs a new proxy); the global proxy's tracer finds
 * an SDK registered later by itself.
 */
export class TracerBinding {
  private provider: TracerProvider | undefined;
  private tracer: Tracer | undefined;

  constructor(private readonly injected: TracerProvider | undefined) {}

  get(): Tracer {
    const provider = this.injected ?? trace.getTracerProvider();
    if (this.tracer === undefined || provider !== this.provider) {
      this.provider = provider;
      this.tracer = provider.getTracer(INSTRUMENTATION_SCOPE_NAME, INSTRUMENTATION_SCOPE_VERSION);
    }
    return this.tracer;
  }
}

export function defaultClock(): number {
  return performance.now();
}

export interface HostPort {
  readonly host: string;
  readonly port?: number;
}

/** Split endpoints, by the endpoint string: calls name the same few endpoints over and over. */
const hostPorts = new Map<string, HostPort>();
const HOST_PORT_CACHE_SIZE = 1024;

/**
 * {@link splitHostPort}, remembered per endpoint string (up to 1,024 of them; the cache
 * starts over when full). The result is shared: do not mutate it.
 */
export function hostPortOf(endpoint: string): HostPort {
  let split = hostPorts.get(endpoint);
  if (split === undefined) {
    split = Object.freeze(splitHostPort(endpoint));
    if (hostPorts.size >= HOST_PORT_CACHE_SIZE) hostPorts.clear();
    hostPorts.set(endpoint, split);
  }
  return split;
}

/**
 * Splits `host:port`, `[v6]:port`, a bare host or bare IPv6 address (a leading `scheme://`
 * and any path are ignored). The port is omitted when absent or not a valid port number.
 */
export function splitHostPort(endpoint: string): HostPort {
  let rest = endpoint.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = rest.indexOf('/');
  if (slash >= 0) rest = rest.slice(0, slash);

  let host = rest;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close > 0) {
      host = rest.slice(1, close);
      const after = rest.slice(close + 1);
      if (after.startsWith(':')) portText = after.slice(1);
    }
  } else {
    const first = rest.indexOf(':');
    if (first >= 0 && first === rest.lastIndexOf(':')) {
      host = rest.slice(0, first);
      portText = rest.slice(first + 1);
    }
  }
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : undefined;
  return port !== undefined && port <= 65535 ? { host, port } : { host };
}

/** A low-cardinality type for `error.type`: a string `code` property, else the error's name. */
export function errorType(error: Error | undefined): string | undefined {
  if (error === undefined) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.length > 0) return code;
  return error.name.length > 0 ? error.name : '_OTHER';
}
