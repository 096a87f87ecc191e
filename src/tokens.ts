/**
 * Inversify service identifiers. Every binding `grpcControlPlaneModule` makes can be
 * replaced in a test with the container's own `rebind`, `snapshot` and `restore`.
 */
export const TOKENS = {
  /** IGrpcControlPlaneClientFactory (singleton; disposing the binding closes every connection). */
  GrpcControlPlaneClientFactory: Symbol.for('omnirelay.GrpcControlPlaneClientFactory'),
  /** ITlsProvider (default: FileTlsProvider over the options' TLS files). */
  TlsProvider: Symbol.for('omnirelay.TlsProvider'),
  /**
   * IPeerChooser (default: ProfilePeerChooser, which follows each profile's `peerChooser`
   * option). Rebinding it replaces the choice for every profile: the option is then ignored.
   */
  PeerChooser: Symbol.for('omnirelay.PeerChooser'),
  /** ICircuitBreaker (default: PeerCircuitBreaker, following each profile's `breaker` option). */
  CircuitBreaker: Symbol.for('omnirelay.CircuitBreaker'),
  /** Bound by the application, optional: PeerLists, named Observables of peer-list members (CallTarget.peerList). */
  PeerLists: Symbol.for('omnirelay.PeerLists'),
  /** Bound by the application: ControlPlaneOptionsInput or Observable<ControlPlaneOptionsInput>. Optional (defaults). */
  ControlPlaneOptions: Symbol.for('omnirelay.ControlPlaneOptions'),
  /** Bound by the application, optional: Observable<EndpointHintUpdate>. */
  EndpointHints: Symbol.for('omnirelay.EndpointHints'),
  /** Bound by the application, optional: PeerCertificateValidator (custom peer certificate check). */
  PeerCertificateValidator: Symbol.for('omnirelay.PeerCertificateValidator'),
  /** Optional: TelemetryProviders ({ meterProvider, tracerProvider }); default: the global OpenTelemetry providers. */
  Telemetry: Symbol.for('omnirelay.Telemetry'),
  /** Optional: Clock (default: the system clock). */
  Clock: Symbol.for('omnirelay.Clock'),
  /** Optional: RandomSource, a () => number in [0, 1) (default: Math.random). */
  Random: Symbol.for('omnirelay.Random'),
  /**
   * The HTTP/3 Transport (default: GrpcH3Transport); profiles that prefer HTTP/3 use it.
   * Bind your own (before loading the module) or rebind it (after); `null` sends every call over HTTP/2.
   */
  Http3Transport: Symbol.for('omnirelay.Http3Transport'),
  /** The HTTP/2 Transport (default: GrpcJsTransport over @grpc/grpc-js); bind or rebind your own like Http3Transport (never null: HTTP/2 is the fallback). */
  Http2Transport: Symbol.for('omnirelay.Http2Transport'),
  /** The validated, live options (OptionsMonitor). */
  OptionsMonitor: Symbol.for('omnirelay.OptionsMonitor'),
  /** The Http3Health memory (force HTTP/2 for an endpoint from a probe or an operator). */
  Http3Health: Symbol.for('omnirelay.Http3Health'),
  /** Dispatcher (bound by `dispatcherModule`, singleton). */
  Dispatcher: Symbol.for('omnirelay.Dispatcher'),
  /** Bound by the application for `dispatcherModule`: DispatcherConfig (name, middleware, outbounds). */
  DispatcherConfig: Symbol.for('omnirelay.DispatcherConfig'),
} as const;
