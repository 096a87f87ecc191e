/**
 * OmniRelay telemetry: one module for every outbound path (dispatcher and control-plane
 * client factory alike), depending on `@opentelemetry/api` only.
 */
export * from './names.js';
export { RpcTelemetry, grpcStatusName } from './rpc-telemetry.js';
export type {
  RpcBreakerState,
  RpcCallInfo,
  RpcCaller,
  RpcFallbackEvent,
  RpcObservation,
  TelemetryProviders,
  TlsReloadEvent,
  WireProtocol,
} from './rpc-telemetry.js';
export { HttpTelemetry } from './http-telemetry.js';
export type { HttpObservation, HttpRequestInfo, HttpWireProtocol } from './http-telemetry.js';
export { BreakerTelemetry, CIRCUIT_STATE_VALUE } from './breaker-telemetry.js';
export type { CircuitSnapshot, CircuitStateName } from './breaker-telemetry.js';
