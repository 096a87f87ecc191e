import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter, Span } from '@opentelemetry/api';
import { defaultClock, errorType, hostPortOf, MeterBinding, TracerBinding } from './internal.js';
import type { TelemetryProviders } from './internal.js';
import {
  ATTR_ENDPOINT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_PROFILE,
  ATTR_PROTOCOL,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  HTTP_DURATION_BUCKETS_SECONDS,
  METRIC_HTTP_CLIENT_REQUEST_DURATION,
  METRIC_HTTP_CLIENT_REQUESTS,
  NETWORK_PROTOCOL_HTTP,
  PROTOCOL_NONE,
  UNIT_SECONDS,
} from './names.js';

/** HTTP protocol of a plain (non-gRPC) request. */
export type HttpWireProtocol = 'h1' | 'h2';

export interface HttpRequestInfo {
  method: string;
  /** Logical endpoint, `host:port`. */
  endpoint: string;
  profile: string;
}

/** One outbound HTTP request in flight. */
export interface HttpObservation {
  readonly span: Span;
  setProtocol(p: HttpWireProtocol): void;
  /**
   * Records the counter + duration histogram and ends the span. `statusCode` is undefined
   * when no response arrived. Span status is ERROR for no response or a status >= 400.
   * Idempotent: only the first call counts.
   */
  end(statusCode: number | undefined, error?: Error): void;
}

const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

interface HttpInstruments {
  requests: Counter;
  duration: Histogram;
}

function buildHttpInstruments(meter: Meter): HttpInstruments {
  return {
    requests: meter.createCounter(METRIC_HTTP_CLIENT_REQUESTS, {
      description: 'Outbound HTTP requests completed, by method, status code and protocol.',
    }),
    duration: meter.createHistogram(METRIC_HTTP_CLIENT_REQUEST_DURATION, {
      description: 'Duration of outbound HTTP requests.',
      unit: UNIT_SECONDS,
      advice: { explicitBucketBoundaries: [...HTTP_DURATION_BUCKETS_SECONDS] },
    }),
  };
}

/**
 * Telemetry for plain outbound HTTP requests (e.g. endpoint discovery, CRL fetches).
 * Spans: kind CLIENT, named after the method (OTel HTTP semconv; unknown methods become
 * `HTTP` with `http.request.method` = `_OTHER`). Metric attributes: `http.request.method`,
 * `http.response.status_code` (absent when no response), `error.type` (on failure),
 * `omnirelay.endpoint`, `omnirelay.protocol` (`h1` | `h2` | `none`), `omnirelay.profile`.
 */
export class HttpTelemetry {
  private readonly instruments: MeterBinding<HttpInstruments>;
  private readonly tracer: TracerBinding;
  private readonly clock: () => number;

  constructor(providers: TelemetryProviders = {}) {
    this.instruments = new MeterBinding(providers.meterProvider, buildHttpInstruments);
    this.tracer = new TracerBinding(providers.tracerProvider);
    this.clock = providers.clock ?? defaultClock;
  }

  start(req: HttpRequestInfo): HttpObservation {
    const upper = req.method.toUpperCase();
    const method = KNOWN_METHODS.has(upper) ? upper : '_OTHER';
    const { host, port } = hostPortOf(req.endpoint);
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: method,
      [ATTR_SERVER_ADDRESS]: host,
      [ATTR_ENDPOINT]: req.endpoint,
      [ATTR_PROFILE]: req.profile,
      [ATTR_NETWORK_PROTOCOL_NAME]: NETWORK_PROTOCOL_HTTP,
    };
    if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
    if (method !== req.method) attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = req.method;
    const span = this.tracer.get().startSpan(
      method === '_OTHER' ? 'HTTP' : method,
      { kind: SpanKind.CLIENT, attributes },
      context.active(),
    );
    return new HttpRequest(span, method, req, this.instruments, this.clock);
  }
}

class HttpRequest implements HttpObservation {
  private protocol: HttpWireProtocol | undefined;
  private ended = false;
  private readonly startedAt: number;

  constructor(
    readonly span: Span,
    private readonly method: string,
    private readonly req: HttpRequestInfo,
    private readonly instruments: MeterBinding<HttpInstruments>,
    private readonly clock: () => number,
  ) {
    this.startedAt = clock();
  }

  setProtocol(p: HttpWireProtocol): void {
    if (this.ended) return;
    this.protocol = p;
    this.span.setAttributes({ [ATTR_PROTOCOL]: p, [ATTR_NETWORK_PROTOCOL_VERSION]: p === 'h1' ? '1.1' : '2' });
  }

  end(statusCode: number | undefined, error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    const seconds = Math.max(0, this.clock() - this.startedAt) / 1000;
    const failed = statusCode === undefined || statusCode >= 400;
    const type = failed ? (errorType(error) ?? (statusCode !== undefined ? String(statusCode) : '_OTHER')) : undefined;

    const metricAttributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: this.method,
      [ATTR_ENDPOINT]: this.req.endpoint,
      [ATTR_PROTOCOL]: this.protocol ?? PROTOCOL_NONE,
      [ATTR_PROFILE]: this.req.profile,
    };
    if (statusCode !== undefined) metricAttributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = statusCode;
    if (type !== undefined) metricAttributes[ATTR_ERROR_TYPE] = type;
    const { requests, duration } = this.instruments.get();
    requests.add(1, metricAttributes);
    duration.record(seconds, metricAttributes);

    if (statusCode !== undefined) this.span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
    if (this.protocol === undefined) this.span.setAttribute(ATTR_PROTOCOL, PROTOCOL_NONE);
    if (error !== undefined) this.span.recordException(error);
    if (type !== undefined) {
      this.span.setAttribute(ATTR_ERROR_TYPE, type);
      this.span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error?.message ?? (statusCode === undefined ? 'no response' : `HTTP ${statusCode}`),
      });
    }
    this.span.end();
  }
}
