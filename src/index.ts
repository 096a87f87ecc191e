/**
 * OmniRelay's control-plane client factory for Node.js. This file is the only public surface.
 */
import 'reflect-metadata';

export { grpcControlPlaneModule } from './module.js';
export { TOKENS } from './tokens.js';

export type { IGrpcControlPlaneClientFactory, CallTarget, CallOptions, UnaryResult, TypedClient, Http3ProbeResult, Http3ProbeTarget } from './factory/types.js';
export type { ServiceDefinition, MethodDefinition, MessageCodec } from './grpc/service-definition.js';

export type {
  ControlPlaneOptions,
  ControlPlaneOptionsInput,
  ProfileOptions,
  ProfileOptionsInput,
  EndpointOptions,
  EndpointOptionsInput,
  EndpointHint,
  TlsOptions,
  TlsMode,
  Http3Preference,
  Http3Hint,
  RetryOptions,
  KeepaliveOptions,
  LimitsOptions,
  Http3HealthOptions,
  HttpClientOptions,
  GrpcStatusName,
  PeerChooserKind,
  PeerChooserOptions,
  CircuitBreakerMode,
  CircuitBreakerOptions,
  AllCircuitsOpenPolicy,
} from './config/types.js';
export { resolveOptions } from './config/schema.js';
export { PRESETS } from './config/presets.js';
export { optionsFromEnv, optionsFromJsonFile, mergeOptionInputs } from './config/load.js';
export { OptionsMonitor, type ControlPlaneOptionsSource } from './config/options-monitor.js';

export {
  OmniRelayError,
  ConfigError,
  UnknownProfileError,
  EndpointError,
  MethodError,
  TlsError,
  RpcError,
  PeerUnavailableError,
  DisposedError,
  DispatcherError,
  type OmniRelayErrorCode,
  type TlsErrorCode,
  type ConfigIssue,
  type TransportFailureKind,
} from './errors.js';

export type { ITlsProvider } from './tls/tls-provider.js';
export type { TlsMaterial } from './tls/material.js';
export type { PeerCertificateCheck, PeerCertificateValidator } from './tls/peer-verification.js';
export type { CertificateFailure, CertificateVerifyError } from './tls/verify-errors.js';
export { FileTlsProvider } from './tls/file-tls-provider.js';
export { createDevCertificateAuthority, writeDevPki, type DevCertificateAuthority, type DevCertificateAuthorityOptions, type DevPkiFiles, type IssuedCertificate, type IssueOptions, type IntermediateOptions, type CrlOptions, type CertificateUsage } from './tls/dev-pki.js';

export { createEndpointHintSubject, type EndpointHintUpdate } from './hints/endpoint-hints.js';
export { Http3Health, type Http3FailureReason, type Http3HealthState } from './hints/http3-health.js';

export type { IPeerChooser, PeerCandidate, PeerChoiceContext } from './peers/peer-chooser.js';
export { RoundRobinPeerChooser } from './peers/round-robin.js';
export { PreferredPeerChooser } from './peers/preferred-peer.js';
export { FewestPendingPeerChooser } from './peers/fewest-pending.js';
export { InFlightCounter } from './peers/in-flight.js';
export { ProfilePeerChooser } from './peers/profile-peer-chooser.js';
export type { PeerLists } from './factory/target-resolver.js';
export { MAX_TRANSPARENT_RETRIES } from './factory/retrying-call.js';
export { createControlPlaneClientFactory, type ControlPlaneClientFactoryDeps } from './factory/create-factory.js';
export {
  PeerCircuitBreaker,
  ConsecutiveFailureCircuitBreaker,
  DEFAULT_BREAKER_FAILURE_CODES,
  type ICircuitBreaker,
  type BreakerState,
  type BreakerChange,
  type PeerCircuitBreakerOptions,
} from './resilience/circuit-breaker.js';
export type { RandomSource } from './resilience/retry.js';

export type { Transport, TransportConnection, DialTarget, WireCall, WireStreamCall, WireStream, WireUnaryResult, WireProtocol, ParsedEndpoint, PeerIdentity, CallMetadata } from './transport/types.js';
export type { CacheEntryInfo } from './transport/channel-cache.js';
export { GRPC_STATUS } from './grpc/status.js';

export { RpcTelemetry, HttpTelemetry, type TelemetryProviders } from './telemetry/index.js';
export * as telemetryNames from './telemetry/names.js';
export type { Clock } from './clock.js';

export { GrpcH3Transport } from './transport/http3/grpc-h3-transport.js';
export { GrpcJsTransport } from './transport/http2/grpc-js-transport.js';
export { GrpcH3Host, type GrpcH3HostOptions, type Http3ConnectionStats } from './server/grpc-h3-host.js';
export {
  fetchHttp3,
  Http3Client,
  Http3RequestError,
  type Http3ClientOptions,
  type Http3ClientTls,
  type Http3RequestErrorKind,
  type Http3RequestOptions,
  type Http3Response,
} from './transport/http3/h3-request.js';
export { Http3FileHost, type Http3FileHostOptions } from './server/http3-file-host.js';
export { GrpcHost, type GrpcHostOptions, type GrpcHostHttp3Options, type GrpcHostTls, type ServerCallInfo, type ServiceImplementation, type UnaryHandler, type ServerStreamHandler, type ClientStreamHandler, type BidiStreamHandler, type ServiceRegistrations } from './server/grpc-host.js';

export { Dispatcher, type DispatcherOptions, type DispatcherClient } from './dispatcher/dispatcher.js';
export type { CallContext, PeerInfo, ProcedureKind, DispatcherCallOptions } from './dispatcher/context.js';
export { CALLER_METADATA_KEY } from './dispatcher/context.js';
export type { Middleware, UnaryNext, OnewayNext, ServerStreamNext } from './dispatcher/middleware.js';
export type { Outbound, OutboundProcedure } from './dispatcher/outbound.js';
export {
  unaryProcedure,
  onewayProcedure,
  serverStreamProcedure,
  serviceProcedures,
  type Procedure,
  type UnaryProcedure,
  type OnewayProcedure,
  type ServerStreamProcedure,
  type ServiceProcedures,
} from './dispatcher/procedures.js';
export { ONEWAY_ACK } from './dispatcher/oneway-ack.js';
export { GrpcInbound } from './dispatcher/grpc-inbound.js';
export { GrpcOutbound, type GrpcOutboundOptions } from './dispatcher/grpc-outbound.js';
export { dispatcherModule, createDispatcher, type DispatcherConfig } from './dispatcher/module.js';

/** Generated from protos/ (ts-proto generic definitions): the control-plane service and gRPC health checking. */
export * as controlPlaneV1 from './gen/omnirelay/controlplane/v1/gossip.js';
export * as healthV1 from './gen/grpc/health/v1/health.js';

/** Control-plane agents: the shared member list and the SWIM gossip membership agent (docs/gossip.md). */
export { CONTROL_PLANE_TOKENS } from './controlplane/tokens.js';
export { MembershipSource, type Member, type MemberMetadata, type MemberStatus, type MembershipView } from './controlplane/membership.js';
export { jsonLinesLogger, type ControlPlaneLogger, type LineSink } from './controlplane/logger.js';
export * from './controlplane/gossip/index.js';
export type { GossipErrorCode } from './errors.js';
/** Generated from protos/omnirelay/controlplane/gossip/v1/gossip.proto: the gossip service and its messages. */
export * as gossipV1 from './gen/omnirelay/controlplane/gossip/v1/gossip.js';
/** Service discovery (src/controlplane/discovery/): the registry over the member list, its gRPC service, peer lists for the factory, the remote client. */
export { ServiceRegistry, type ServiceEndpoint, type ServiceRegistryOptions, type EndpointSource } from './controlplane/discovery/service-registry.js';
export { discoveryModule } from './controlplane/discovery/module.js';
export { discoveryPeerLists } from './controlplane/discovery/peer-lists.js';
export { discoveryServiceImplementation } from './controlplane/discovery/discovery-service.js';
export { DiscoveryClient, type DiscoveryClientOptions, type DiscoveryBackoff, type DiscoveryWatchFailure } from './controlplane/discovery/discovery-client.js';
export * as discoveryV1 from './gen/omnirelay/controlplane/discovery/v1/discovery.js';
/** Leader election (src/controlplane/leadership/): the agent, the ILeaseStore interface and its embedded store, fencing, the LeadershipControl service and client (docs/leadership.md). */
export * from './controlplane/leadership/index.js';
export type { LeadershipErrorCode } from './errors.js';
/** Generated from protos/omnirelay/controlplane/leadership/v1/leadership.proto: the LeadershipControl service and its messages. */
export * as leadershipV1 from './gen/omnirelay/controlplane/leadership/v1/leadership.js';
