/**
 * Names shared by every OmniRelay telemetry producer: the instrumentation scope, the metric
 * instruments and the attribute keys. Dispatcher and control-plane client both go through
 * {@link RpcTelemetry}, so they emit exactly these names and nothing else.
 *
 * Metric names are chosen so that `@opentelemetry/exporter-prometheus` (0.223) exposes them
 * verbatim. That exporter only (a) replaces characters outside `[a-zA-Z0-9_]` with `_` and
 * (b) appends `_total` to monotonic sums whose name does not already end in `_total`; it does
 * NOT append unit suffixes. Counters are therefore named without `_total`, and histograms
 * carry their `_seconds` unit suffix in the name itself (which also stays correct for
 * exporters that do append unit suffixes, since they skip names already ending in it).
 */

/** Instrumentation scope (meter and tracer) name and version. */
export const INSTRUMENTATION_SCOPE_NAME = 'omnirelay';
export const INSTRUMENTATION_SCOPE_VERSION = '0.1.0';

// ---- Metric instruments (OTel names) ------------------------------------------------------

/** Counter; Prometheus: `grpc_outbound_requests_total`. */
export const METRIC_GRPC_OUTBOUND_REQUESTS = 'grpc_outbound_requests';
/** Histogram, unit `s`; Prometheus: `grpc_outbound_request_duration_seconds{_bucket,_sum,_count}`. */
export const METRIC_GRPC_OUTBOUND_REQUEST_DURATION = 'grpc_outbound_request_duration_seconds';
/** Counter; Prometheus: `grpc_outbound_protocol_fallbacks_total`. */
export const METRIC_GRPC_OUTBOUND_PROTOCOL_FALLBACKS = 'grpc_outbound_protocol_fallbacks';
/** Counter, one per attempt (and per transparent retry): the peer chosen and its circuit state; Prometheus: `grpc_outbound_peer_choices_total`. */
export const METRIC_GRPC_OUTBOUND_PEER_CHOICES = 'grpc_outbound_peer_choices';
/** Counter; Prometheus: `omnirelay_tls_reloads_total`. */
export const METRIC_TLS_RELOADS = 'omnirelay_tls_reloads';
/** Counter; Prometheus: `http_client_requests_total`. */
export const METRIC_HTTP_CLIENT_REQUESTS = 'http_client_requests';
/** Histogram, unit `s`; Prometheus: `http_client_request_duration_seconds{_bucket,_sum,_count}`. */
export const METRIC_HTTP_CLIENT_REQUEST_DURATION = 'http_client_request_duration_seconds';
/** Counter; Prometheus: `omnirelay_circuit_breaker_transitions_total`. One per circuit state change. */
export const METRIC_CIRCUIT_BREAKER_TRANSITIONS = 'omnirelay_circuit_breaker_transitions';
/** Gauge; Prometheus: `omnirelay_circuit_breaker_state`. 0 closed, 1 half-open, 2 open. */
export const METRIC_CIRCUIT_BREAKER_STATE = 'omnirelay_circuit_breaker_state';

/** The names as a Prometheus scrape shows them (exporter-prometheus 0.223, no prefix). */
export const PROMETHEUS_NAMES = {
  grpcOutboundRequests: 'grpc_outbound_requests_total',
  grpcOutboundRequestDuration: 'grpc_outbound_request_duration_seconds',
  grpcOutboundProtocolFallbacks: 'grpc_outbound_protocol_fallbacks_total',
  grpcOutboundPeerChoices: 'grpc_outbound_peer_choices_total',
  tlsReloads: 'omnirelay_tls_reloads_total',
  httpClientRequests: 'http_client_requests_total',
  httpClientRequestDuration: 'http_client_request_duration_seconds',
  circuitBreakerTransitions: 'omnirelay_circuit_breaker_transitions_total',
  circuitBreakerState: 'omnirelay_circuit_breaker_state',
} as const;

/** Unit of both duration histograms (UCUM seconds). */
export const UNIT_SECONDS = 's';

/** Bucket boundaries (seconds) for gRPC call durations: 0.5 ms .. 10 s. */
export const RPC_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Bucket boundaries (seconds) for HTTP client durations (OTel HTTP semconv advice). */
export const HTTP_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

// ---- Attribute keys: OTel semantic conventions --------------------------------------------

export const ATTR_RPC_SYSTEM = 'rpc.system';
export const ATTR_RPC_SERVICE = 'rpc.service';
export const ATTR_RPC_METHOD = 'rpc.method';
/** Numeric gRPC status code (0 = OK). */
export const ATTR_RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_NETWORK_PEER_ADDRESS = 'network.peer.address';
export const ATTR_NETWORK_PEER_PORT = 'network.peer.port';
export const ATTR_NETWORK_PROTOCOL_NAME = 'network.protocol.name';
export const ATTR_NETWORK_PROTOCOL_VERSION = 'network.protocol.version';
export const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
export const ATTR_HTTP_REQUEST_METHOD_ORIGINAL = 'http.request.method_original';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const ATTR_ERROR_TYPE = 'error.type';

/** Value of `rpc.system`. */
export const RPC_SYSTEM_GRPC = 'grpc';
/** Value of `network.protocol.name`. */
export const NETWORK_PROTOCOL_HTTP = 'http';

// ---- Attribute keys: OmniRelay-specific ---------------------------------------------------

/** Logical endpoint as configured, `host:port`. On spans and metrics. */
export const ATTR_ENDPOINT = 'omnirelay.endpoint';
/**
 * Wire protocol actually used: `h2` | `h3` (gRPC), `h1` | `h2` (HTTP). When the call ended
 * before a transport was chosen the value is {@link PROTOCOL_NONE}.
 */
export const ATTR_PROTOCOL = 'omnirelay.protocol';
/** Configuration profile name. On spans and metrics. */
export const ATTR_PROFILE = 'omnirelay.profile';
/** `dispatcher` | `control-plane`. Spans only: both callers share one metric series shape. */
export const ATTR_CALLER = 'omnirelay.caller';
/** Latest 1-based attempt number of a call. Spans only. */
export const ATTR_ATTEMPT = 'omnirelay.attempt';
/** A peer (`host:port`): the one chosen for the latest attempt on spans; the circuit's peer on breaker metrics. */
export const ATTR_PEER = 'omnirelay.peer';
/**
 * Circuit state of a peer: `closed` | `half-open` | `open`. On spans (the chosen peer's state
 * when it was chosen), the peer-choice metric and the breaker-transition metric (the state moved to).
 */
export const ATTR_BREAKER_STATE = 'omnirelay.breaker.state';
/** Why a call / endpoint fell back to another protocol. Span attribute and fallback metric. */
export const ATTR_FALLBACK_REASON = 'omnirelay.fallback.reason';
/** Protocol fallen back from. Span event and fallback metric. */
export const ATTR_FALLBACK_FROM = 'omnirelay.fallback.from';
/** Protocol fallen back to. Span event and fallback metric. */
export const ATTR_FALLBACK_TO = 'omnirelay.fallback.to';
/** `loaded` | `rejected`. TLS reload metric. */
export const ATTR_TLS_RELOAD_OUTCOME = 'omnirelay.tls.reload.outcome';
/** Why a TLS reload was rejected (a bounded code, e.g. an OmniRelayErrorCode). TLS reload metric. */
export const ATTR_TLS_RELOAD_REASON = 'omnirelay.tls.reload.reason';

/** {@link ATTR_PROTOCOL} value when the call ended before any transport was chosen. */
export const PROTOCOL_NONE = 'none';

// ---- Span event names ---------------------------------------------------------------------

export const EVENT_FALLBACK = 'fallback';
export const EVENT_RETRY = 'retry';
/**
 * A request the server refused without processing it (draining, GOAWAY) was sent again at
 * once, without spending an attempt. Attributes: `omnirelay.peer` (the peer that refused),
 * `omnirelay.attempt` (the attempt it belongs to) and `omnirelay.refusal` (the reason).
 */
export const EVENT_TRANSPARENT_RETRY = 'transparent-retry';
/** Why a request was refused (`EVENT_TRANSPARENT_RETRY`), a short text. Span events only. */
export const ATTR_REFUSAL = 'omnirelay.refusal';
/**
 * Why the call used the protocol it did, when that was not the profile's plain preference:
 * `required` (HTTP/3 only, by the profile or the endpoint's hint), or why HTTP/2 was used
 * (`profile-disabled`, `hint-denied`, `http3-broken`, `no-http3-transport`, `insecure`, or
 * `http3-pending`: HTTP/2 won the race against an HTTP/3 dial that is still under way). Spans only.
 */
export const ATTR_PROTOCOL_REASON = 'omnirelay.protocol.reason';
