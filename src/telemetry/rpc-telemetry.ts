import { statusName } from '../grpc/status.js';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter, Span } from '@opentelemetry/api';
import { defaultClock, hostPortOf, MeterBinding, TracerBinding } from './internal.js';
import type { TelemetryProviders } from './internal.js';
import {
  ATTR_ATTEMPT,
  ATTR_BREAKER_STATE,
  ATTR_CALLER,
  ATTR_ENDPOINT,
  ATTR_ERROR_TYPE,
  ATTR_FALLBACK_FROM,
  ATTR_FALLBACK_REASON,
  ATTR_FALLBACK_TO,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_PEER,
  ATTR_PROFILE,
  ATTR_PROTOCOL,
  ATTR_RPC_GRPC_STATUS_CODE,
  ATTR_RPC_METHOD,
  ATTR_RPC_SERVICE,
  ATTR_RPC_SYSTEM,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_TLS_RELOAD_OUTCOME,
  ATTR_TLS_RELOAD_REASON,
  ATTR_REFUSAL,
  EVENT_FALLBACK,
  EVENT_RETRY,
  EVENT_TRANSPARENT_RETRY,
  METRIC_GRPC_OUTBOUND_PEER_CHOICES,
  METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS,
  METRIC_GRPC_OUTBOUND_REQUEST_DURATION,
  METRIC_GRPC_OUTBOUND_REQUESTS,
  METRIC_TLS_RELOADS,
  NETWORK_PROTOCOL_HTTP,
  PROTOCOL_NONE,
  RPC_DURATION_BUCKETS_SECONDS,
  RPC_SYSTEM_GRPC,
  UNIT_SECONDS,
} from './names.js';

export type { TelemetryProviders } from './internal.js';

/** Transport a gRPC call can travel over. */
export type WireProtocol = 'h2' | 'h3';

/** A peer's circuit state as the telemetry records it. */
export type RpcBreakerState = 'closed' | 'half-open' | 'open';

/** Who made the call. Recorded on spans only; metrics have the same shape for both. */
export type RpcCaller = 'dispatcher' | 'control-plane';

export interface RpcCallInfo {
  /** Fully qualified proto service name, e.g. `omnirelay.controlplane.v1.ControlPlane`. */
  service: string;
  method: string;
  /** Logical endpoint, `host:port`. */
  endpoint: string;
  profile: string;
  caller: RpcCaller;
}

export interface RpcFallbackEvent {
  endpoint: string;
  profile: string;
  from: WireProtocol;
  to: WireProtocol;
  /** A bounded reason code (it becomes a metric label), not a free-form message. */
  reason: string;
}

export interface TlsReloadEvent {
  profile: string;
  outcome: 'loaded' | 'rejected';
  /** A bounded reason code (it becomes a metric label), not a free-form message. */
  reason?: string;
}

/** One outbound gRPC call in flight. */
export interface RpcObservation {
  readonly span: Span;
  /** Called once the transport is chosen (and again if it changes on retry/fallback). */
  setProtocol(protocol: WireProtocol): void;
  /**
   * Marks that this call fell back: sets `omnirelay.fallback.reason` on the span, adds a
   * `fallback` event (from, to, reason) and sets the protocol to `to`. Does not touch the
   * fallback counter; that is {@link RpcTelemetry.recordFallback}'s job.
   */
  noteFallback(from: WireProtocol, to: WireProtocol, reason: string): void;
  /**
   * Records an attempt number (1-based) on the span (event 'retry' for attempts > 1). With
   * `breakerState` (the chosen peer's circuit state when it was chosen), also sets
   * `omnirelay.peer` and `omnirelay.breaker.state` on the span and counts the choice in
   * `grpc_outbound_peer_choices`.
   */
  noteAttempt(attempt: number, peer: string, breakerState?: RpcBreakerState): void;
  /**
   * The request of `attempt` was refused by `peer` without being processed and is sent again
   * at once, without spending an attempt: a `transparent-retry` span event.
   */
  noteTransparentRetry(attempt: number, peer: string, refusal: string): void;
  /**
   * Ends: records the request counter + duration histogram with the final status code, ends
   * the span (status ERROR with message on non-OK). Idempotent: only the first call counts.
   */
  end(statusCode: number, error?: Error): void;
}

/** `UNAVAILABLE` for 14, `CODE_99` for unknown codes. */
export const grpcStatusName = statusName;

interface RpcInstruments {
  requests: Counter;
  duration: Histogram;
  fallbacks: Counter;
  peerChoices: Counter;
  tlsReloads: Counter;
}

function buildRpcInstruments(meter: Meter): RpcInstruments {
  return {
    requests: meter.createCounter(METRIC_GRPC_OUTBOUND_REQUESTS, {
      description: 'Outbound gRPC calls completed, by final status code and wire protocol.',
    }),
    duration: meter.createHistogram(METRIC_GRPC_OUTBOUND_REQUEST_DURATION, {
      description: 'Duration of outbound gRPC calls, including retries and fallback.',
      unit: UNIT_SECONDS,
      advice: { explicitBucketBoundaries: [...RPC_DURATION_BUCKETS_SECONDS] },
    }),
    fallbacks: meter.createCounter(METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS, {
      description: 'Times an endpoint fell back from one wire protocol to another.',
    }),
    peerChoices: meter.createCounter(METRIC_GRPC_OUTBOUND_PEER_CHOICES, {
      description: 'Peers chosen for outbound gRPC attempts, by peer and its circuit state.',
    }),
    tlsReloads: meter.createCounter(METRIC_TLS_RELOADS, {
      description: 'Client TLS material reloads, by outcome.',
    }),
  };
}

function networkProtocolVersion(protocol: WireProtocol): string {
  return protocol === 'h3' ? '3' : '2';
}

/**
 * Telemetry for outbound gRPC calls. The dispatcher and the control-plane client factory
 * both use this class, so a given call produces the same instruments, attributes and spans
 * whichever path made it. Instances are cheap; instruments are shared per meter provider.
 *
 * Spans: kind CLIENT, named `${service}/${method}` (OTel RPC semconv).
 * Metrics attributes (identical for both callers): `rpc.system`, `rpc.service`,
 * `rpc.method`, `rpc.grpc.status_code`, `omnirelay.endpoint`, `omnirelay.protocol`,
 * `omnirelay.profile`. `omnirelay.protocol` is `none` when the call ended before a
 * transport was chosen (e.g. failed while resolving or handshaking).
 */
export class RpcTelemetry {
  private readonly instruments: MeterBinding<RpcInstruments>;
  private readonly tracer: TracerBinding;
  private readonly clock: () => number;

  constructor(providers: TelemetryProviders = {}) {
    this.instruments = new MeterBinding(providers.meterProvider, buildRpcInstruments);
    this.tracer = new TracerBinding(providers.tracerProvider);
    this.clock = providers.clock ?? defaultClock;
  }

  /** Starts a CLIENT span named `${service}/${method}`, parented on the active context. */
  start(call: RpcCallInfo): RpcObservation {
    const { host, port } = hostPortOf(call.endpoint);
    const attributes: Attributes = {
      [ATTR_RPC_SYSTEM]: RPC_SYSTEM_GRPC,
      [ATTR_RPC_SERVICE]: call.service,
      [ATTR_RPC_METHOD]: call.method,
      [ATTR_SERVER_ADDRESS]: host,
      [ATTR_ENDPOINT]: call.endpoint,
      [ATTR_PROFILE]: call.profile,
      [ATTR_CALLER]: call.caller,
      [ATTR_NETWORK_PROTOCOL_NAME]: NETWORK_PROTOCOL_HTTP,
    };
    if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
    const span = this.tracer.get().startSpan(
      `${call.service}/${call.method}`,
      { kind: SpanKind.CLIENT, attributes },
      context.active(),
    );
    return new RpcCall(span, call, this.instruments, this.clock);
  }

  /** Counts one protocol fallback of an endpoint (`grpc_outbound_protocol_fallbacks_total`). */
  recordFallback(e: RpcFallbackEvent): void {
    this.instruments.get().fallbacks.add(1, {
      [ATTR_RPC_SYSTEM]: RPC_SYSTEM_GRPC,
      [ATTR_ENDPOINT]: e.endpoint,
      [ATTR_PROFILE]: e.profile,
      [ATTR_FALLBACK_FROM]: e.from,
      [ATTR_FALLBACK_TO]: e.to,
      [ATTR_FALLBACK_REASON]: e.reason,
    });
  }

  /** Counts one TLS material reload (`omnirelay_tls_reloads_total`). */
  recordTlsReload(e: TlsReloadEvent): void {
    const attributes: Attributes = { [ATTR_PROFILE]: e.profile, [ATTR_TLS_RELOAD_OUTCOME]: e.outcome };
    if (e.reason !== undefined) attributes[ATTR_TLS_RELOAD_REASON] = e.reason;
    this.instruments.get().tlsReloads.add(1, attributes);
  }
}

class RpcCall implements RpcObservation {
  private protocol: WireProtocol | undefined;
  private ended = false;
  private readonly startedAt: number;

  constructor(
    readonly span: Span,
    private readonly call: RpcCallInfo,
    private readonly instruments: MeterBinding<RpcInstruments>,
    private readonly clock: () => number,
  ) {
    this.startedAt = clock();
  }

  setProtocol(protocol: WireProtocol): void {
    if (this.ended) return;
    this.protocol = protocol;
    this.span.setAttributes({
      [ATTR_PROTOCOL]: protocol,
      [ATTR_NETWORK_PROTOCOL_VERSION]: networkProtocolVersion(protocol),
    });
  }

  noteFallback(from: WireProtocol, to: WireProtocol, reason: string): void {
    if (this.ended) return;
    this.span.setAttribute(ATTR_FALLBACK_REASON, reason);
    this.span.addEvent(EVENT_FALLBACK, {
      [ATTR_FALLBACK_FROM]: from,
      [ATTR_FALLBACK_TO]: to,
      [ATTR_FALLBACK_REASON]: reason,
    });
    this.setProtocol(to);
  }

  noteAttempt(attempt: number, peer: string, breakerState?: RpcBreakerState): void {
    if (this.ended) return;
    if (breakerState !== undefined) {
      this.span.setAttributes({ [ATTR_PEER]: peer, [ATTR_BREAKER_STATE]: breakerState });
      this.instruments.get().peerChoices.add(1, {
        [ATTR_RPC_SYSTEM]: RPC_SYSTEM_GRPC,
        [ATTR_RPC_SERVICE]: this.call.service,
        [ATTR_RPC_METHOD]: this.call.method,
        [ATTR_ENDPOINT]: peer,
        [ATTR_PROFILE]: this.call.profile,
        [ATTR_BREAKER_STATE]: breakerState,
      });
    }
    // The first attempt on the call's own endpoint adds nothing the span does not have yet.
    if (attempt === 1 && peer === this.call.endpoint) return;
    const { host, port } = hostPortOf(peer);
    const attributes: Attributes = { [ATTR_ATTEMPT]: attempt, [ATTR_PEER]: peer, [ATTR_NETWORK_PEER_ADDRESS]: host };
    if (port !== undefined) attributes[ATTR_NETWORK_PEER_PORT] = port;
    this.span.setAttributes(attributes);
    if (attempt > 1) this.span.addEvent(EVENT_RETRY, { [ATTR_ATTEMPT]: attempt, [ATTR_PEER]: peer });
  }

  noteTransparentRetry(attempt: number, peer: string, refusal: string): void {
    if (this.ended) return;
    this.span.addEvent(EVENT_TRANSPARENT_RETRY, { [ATTR_ATTEMPT]: attempt, [ATTR_PEER]: peer, [ATTR_REFUSAL]: refusal });
  }

  end(statusCode: number, error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    const seconds = Math.max(0, this.clock() - this.startedAt) / 1000;
    const protocol = this.protocol ?? PROTOCOL_NONE;

    const metricAttributes: Attributes = {
      [ATTR_RPC_SYSTEM]: RPC_SYSTEM_GRPC,
      [ATTR_RPC_SERVICE]: this.call.service,
      [ATTR_RPC_METHOD]: this.call.method,
      [ATTR_RPC_GRPC_STATUS_CODE]: statusCode,
      [ATTR_ENDPOINT]: this.call.endpoint,
      [ATTR_PROTOCOL]: protocol,
      [ATTR_PROFILE]: this.call.profile,
    };
    const { requests, duration } = this.instruments.get();
    requests.add(1, metricAttributes);
    duration.record(seconds, metricAttributes);

    this.span.setAttribute(ATTR_RPC_GRPC_STATUS_CODE, statusCode);
    if (this.protocol === undefined) this.span.setAttribute(ATTR_PROTOCOL, PROTOCOL_NONE);
    if (error !== undefined) this.span.recordException(error);
    if (statusCode !== 0) {
      this.span.setAttribute(ATTR_ERROR_TYPE, grpcStatusName(statusCode));
      this.span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error?.message ?? `gRPC status ${statusCode} ${grpcStatusName(statusCode)}`,
      });
    }
    this.span.end();
  }
}
