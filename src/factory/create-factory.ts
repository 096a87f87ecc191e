import type { Observable } from 'rxjs';
import { systemClock, type Clock } from '../clock.js';
import { OptionsMonitor, type ControlPlaneOptionsSource } from '../config/options-monitor.js';
import { EndpointHintStore, type EndpointHintUpdate } from '../hints/endpoint-hints.js';
import { Http3Health } from '../hints/http3-health.js';
import type { IPeerChooser } from '../peers/peer-chooser.js';
import { ProfilePeerChooser } from '../peers/profile-peer-chooser.js';
import { PeerCircuitBreaker, type ICircuitBreaker } from '../resilience/circuit-breaker.js';
import type { RandomSource } from '../resilience/retry.js';
import { HttpTelemetry, RpcTelemetry, type TelemetryProviders } from '../telemetry/index.js';
import { FileTlsProvider } from '../tls/file-tls-provider.js';
import type { PeerCertificateValidator } from '../tls/peer-verification.js';
import type { ITlsProvider } from '../tls/tls-provider.js';
import { ChannelCache } from '../transport/channel-cache.js';
import { resolveEndpoint } from '../transport/endpoint.js';
import { GrpcJsTransport } from '../transport/http2/grpc-js-transport.js';
import { GrpcH3Transport } from '../transport/http3/grpc-h3-transport.js';
import type { Transport, WireProtocol } from '../transport/types.js';
import { ControlPlaneClientFactory } from './control-plane-client-factory.js';
import { HttpDispatcherPool } from './http-dispatchers.js';
import type { PeerLists } from './target-resolver.js';
import type { IGrpcControlPlaneClientFactory } from './types.js';

/**
 * What `createControlPlaneClientFactory` runs on. Every field is optional; what is not given
 * is built with its default, and disposing the factory disposes exactly what it built (what
 * you pass in stays yours to dispose).
 */
export interface ControlPlaneClientFactoryDeps {
  /** Options (an object or an Observable of them); default: the built-in defaults. Ignored when `optionsMonitor` is given. */
  readonly options?: ControlPlaneOptionsSource | undefined;
  /** The validated, live options, when you already have them (shared with a TLS provider you built). */
  readonly optionsMonitor?: OptionsMonitor | undefined;
  /** Default: FileTlsProvider over the options' TLS files. */
  readonly tlsProvider?: ITlsProvider | undefined;
  /** Default: ProfilePeerChooser (each profile's `peerChooser`). */
  readonly peerChooser?: IPeerChooser | undefined;
  /** Default: PeerCircuitBreaker (each profile's `breaker`). */
  readonly circuitBreaker?: ICircuitBreaker | undefined;
  /** Default: GrpcJsTransport (@grpc/grpc-js). */
  readonly http2Transport?: Transport | undefined;
  /** Default: GrpcH3Transport; `null` sends every call over HTTP/2. */
  readonly http3Transport?: Transport | null | undefined;
  /** The HTTP/3 health memory (share it to force HTTP/2 for an endpoint from outside); default: a new one. */
  readonly http3Health?: Http3Health | undefined;
  /** Live per-endpoint hints. */
  readonly endpointHints?: Observable<EndpointHintUpdate> | undefined;
  /** A custom peer certificate check (default TLS provider only). */
  readonly peerCertificateValidator?: PeerCertificateValidator | undefined;
  /** Named live peer lists (`CallTarget.peerList`). */
  readonly peerLists?: PeerLists | undefined;
  /** OpenTelemetry providers; default: the global ones. */
  readonly telemetry?: TelemetryProviders | undefined;
  /** The RpcTelemetry to record calls with (one per container: the TLS provider's reload metrics use it too); default: one over `telemetry`. */
  readonly rpcTelemetry?: RpcTelemetry | undefined;
  /** Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** Default: Math.random. */
  readonly random?: RandomSource | undefined;
}

/**
 * The control-plane client factory without a container: builds every part that is not given,
 * wires the call path, and returns the factory. `grpcControlPlaneModule` is an adapter over it.
 * `await factory.dispose()` closes every connection, watch and timer it opened.
 */
export function createControlPlaneClientFactory(deps: ControlPlaneClientFactoryDeps = {}): IGrpcControlPlaneClientFactory {
  const owned: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(part: T): T => {
    owned.push(part);
    return part;
  };
  const clock = deps.clock ?? systemClock;
  const options = deps.optionsMonitor ?? own(new OptionsMonitor(deps.options));
  const rpcTelemetry = deps.rpcTelemetry ?? new RpcTelemetry(deps.telemetry);
  const tls = deps.tlsProvider ?? own(new FileTlsProvider(options, { clock, telemetry: rpcTelemetry, peerValidator: deps.peerCertificateValidator }));
  const breaker =
    deps.circuitBreaker ??
    own(
      new PeerCircuitBreaker({
        settingsFor: (profile) => options.current.profiles[profile]?.breaker,
        clock,
        telemetry: deps.telemetry,
      }),
    );
  const random = deps.random ?? Math.random;
  const health = deps.http3Health ?? own(new Http3Health(clock, (endpoint) => resolveEndpoint(endpoint, options.current).authority));
  const transports = new Map<WireProtocol, Transport>([['h2', deps.http2Transport ?? new GrpcJsTransport()]]);
  const http3 = deps.http3Transport === undefined ? new GrpcH3Transport() : deps.http3Transport;
  if (http3 !== null) transports.set('h3', http3);
  return new ControlPlaneClientFactory({
    options,
    tls,
    hints: new EndpointHintStore(options.snapshots$, deps.endpointHints),
    health,
    cache: new ChannelCache(transports),
    chooser: deps.peerChooser ?? new ProfilePeerChooser(options, random),
    breaker,
    telemetry: rpcTelemetry,
    http: new HttpDispatcherPool(tls, options, new HttpTelemetry(deps.telemetry)),
    clock,
    random,
    peerLists: deps.peerLists,
    owned,
  });
}
