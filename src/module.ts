import { ContainerModule, type ResolutionContext } from 'inversify';
import type { Observable } from 'rxjs';
import { systemClock, type Clock } from './clock.js';
import { OptionsMonitor, type ControlPlaneOptionsSource } from './config/options-monitor.js';
import { createControlPlaneClientFactory } from './factory/create-factory.js';
import type { PeerLists } from './factory/target-resolver.js';
import type { IGrpcControlPlaneClientFactory } from './factory/types.js';
import type { EndpointHintUpdate } from './hints/endpoint-hints.js';
import { Http3Health } from './hints/http3-health.js';
import type { IPeerChooser } from './peers/peer-chooser.js';
import { ProfilePeerChooser } from './peers/profile-peer-chooser.js';
import { PeerCircuitBreaker, type ICircuitBreaker } from './resilience/circuit-breaker.js';
import type { RandomSource } from './resilience/retry.js';
import { RpcTelemetry, type TelemetryProviders } from './telemetry/index.js';
import { FileTlsProvider } from './tls/file-tls-provider.js';
import type { PeerCertificateValidator } from './tls/peer-verification.js';
import type { ITlsProvider } from './tls/tls-provider.js';
import { TOKENS } from './tokens.js';
import { resolveEndpoint } from './transport/endpoint.js';
import { GrpcJsTransport } from './transport/http2/grpc-js-transport.js';
import { GrpcH3Transport } from './transport/http3/grpc-h3-transport.js';
import type { Transport } from './transport/types.js';

function optional<T>(context: ResolutionContext, token: symbol): T | undefined {
  return context.get<T>(token, { optional: true });
}

/** The one default source of randomness (jitter, peer choice); bind TOKENS.Random to control it. */
function randomOf(context: ResolutionContext): RandomSource {
  return optional<RandomSource>(context, TOKENS.Random) ?? Math.random;
}

/** The container's one RpcTelemetry (call metrics and spans, TLS reload metrics): internal, not a public token. */
const RPC_TELEMETRY = Symbol('omnirelay.RpcTelemetry');

/**
 * The control-plane client factory as an Inversify ContainerModule: an adapter over
 * `createControlPlaneClientFactory`, with each part bound to its token so it can be replaced. Bind
 * `TOKENS.ControlPlaneOptions` (an options object or an Observable of them) and,
 * optionally, `TOKENS.EndpointHints`, `TOKENS.PeerCertificateValidator`, `TOKENS.Telemetry`,
 * then `container.load(grpcControlPlaneModule)`. `await container.unloadAsync(grpcControlPlaneModule)`
 * (or `unbindAllAsync()`) closes every connection, watch and timer it opened.
 */
export const grpcControlPlaneModule = new ContainerModule(({ bind, isBound }) => {
  bind<RpcTelemetry>(RPC_TELEMETRY)
    .toDynamicValue((context: ResolutionContext) => new RpcTelemetry(optional<TelemetryProviders>(context, TOKENS.Telemetry)))
    .inSingletonScope();
  bind<OptionsMonitor>(TOKENS.OptionsMonitor)
    .toDynamicValue((context: ResolutionContext) => new OptionsMonitor(optional<ControlPlaneOptionsSource>(context, TOKENS.ControlPlaneOptions)))
    .inSingletonScope()
    .onDeactivation((monitor) => monitor.dispose());

  bind<ITlsProvider>(TOKENS.TlsProvider)
    .toDynamicValue(
      (context: ResolutionContext) =>
        new FileTlsProvider(context.get<OptionsMonitor>(TOKENS.OptionsMonitor), {
          clock: optional<Clock>(context, TOKENS.Clock) ?? systemClock,
          telemetry: context.get<RpcTelemetry>(RPC_TELEMETRY),
          peerValidator: optional<PeerCertificateValidator>(context, TOKENS.PeerCertificateValidator),
        }),
    )
    .inSingletonScope()
    .onDeactivation((provider) => provider.dispose());

  bind<IPeerChooser>(TOKENS.PeerChooser)
    .toDynamicValue((context: ResolutionContext) => new ProfilePeerChooser(context.get<OptionsMonitor>(TOKENS.OptionsMonitor), randomOf(context)))
    .inSingletonScope();
  bind<ICircuitBreaker>(TOKENS.CircuitBreaker)
    .toDynamicValue((context: ResolutionContext) => {
      const options = context.get<OptionsMonitor>(TOKENS.OptionsMonitor);
      return new PeerCircuitBreaker({
        settingsFor: (profile) => options.current.profiles[profile]?.breaker,
        clock: optional<Clock>(context, TOKENS.Clock) ?? systemClock,
        telemetry: optional<TelemetryProviders>(context, TOKENS.Telemetry),
      });
    })
    .inSingletonScope()
    .onDeactivation((breaker) => breaker.dispose?.());
  // HTTP/3 is on by default: profiles that prefer it race it against HTTP/2. Turn it off per
  // profile (`http3: 'disable'`), per endpoint (hint `http3: 'deny'`), or for the whole
  // container by binding this token to `null` (before loading the module, or `rebind` after).
  if (!isBound(TOKENS.Http3Transport)) bind<Transport | null>(TOKENS.Http3Transport).toDynamicValue(() => new GrpcH3Transport()).inSingletonScope();
  // HTTP/2 (the fallback every profile can use): replaceable the same way, never null.
  if (!isBound(TOKENS.Http2Transport)) bind<Transport>(TOKENS.Http2Transport).toDynamicValue(() => new GrpcJsTransport()).inSingletonScope();
  bind<Http3Health>(TOKENS.Http3Health)
    .toDynamicValue((context: ResolutionContext) => {
      const options = context.get<OptionsMonitor>(TOKENS.OptionsMonitor);
      return new Http3Health(optional<Clock>(context, TOKENS.Clock) ?? systemClock, (endpoint) => resolveEndpoint(endpoint, options.current).authority);
    })
    .inSingletonScope()
    .onDeactivation((health) => health.dispose());

  bind<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory)
    .toDynamicValue((context: ResolutionContext) =>
      createControlPlaneClientFactory({
        optionsMonitor: context.get<OptionsMonitor>(TOKENS.OptionsMonitor),
        tlsProvider: context.get<ITlsProvider>(TOKENS.TlsProvider),
        peerChooser: context.get<IPeerChooser>(TOKENS.PeerChooser),
        circuitBreaker: context.get<ICircuitBreaker>(TOKENS.CircuitBreaker),
        http2Transport: context.get<Transport>(TOKENS.Http2Transport),
        http3Transport: optional<Transport | null>(context, TOKENS.Http3Transport) ?? null,
        http3Health: context.get<Http3Health>(TOKENS.Http3Health),
        endpointHints: optional<Observable<EndpointHintUpdate>>(context, TOKENS.EndpointHints),
        peerLists: optional<PeerLists>(context, TOKENS.PeerLists),
        telemetry: optional<TelemetryProviders>(context, TOKENS.Telemetry),
        rpcTelemetry: context.get<RpcTelemetry>(RPC_TELEMETRY),
        clock: optional<Clock>(context, TOKENS.Clock) ?? systemClock,
        random: randomOf(context),
      }),
    )
    .inSingletonScope()
    .onDeactivation((factory) => factory.dispose());
});
