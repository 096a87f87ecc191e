import { BehaviorSubject, type Observable } from 'rxjs';
import type { ControlPlaneOptionsInput, ProfileOptionsInput } from '../../../src/config/types.js';
import { OptionsMonitor } from '../../../src/config/options-monitor.js';
import { RpcError } from '../../../src/errors.js';
import { ControlPlaneClientFactory } from '../../../src/factory/control-plane-client-factory.js';
import { HttpDispatcherPool } from '../../../src/factory/http-dispatchers.js';
import { MembershipEvent, PingRequest, PingResponse } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';
import { EndpointHintStore } from '../../../src/hints/endpoint-hints.js';
import { Http3Health } from '../../../src/hints/http3-health.js';
import type { IPeerChooser } from '../../../src/peers/peer-chooser.js';
import { ProfilePeerChooser } from '../../../src/peers/profile-peer-chooser.js';
import { PeerCircuitBreaker, type ICircuitBreaker } from '../../../src/resilience/circuit-breaker.js';
import { HttpTelemetry, RpcTelemetry } from '../../../src/telemetry/index.js';
import { FileTlsProvider } from '../../../src/tls/file-tls-provider.js';
import { ChannelCache } from '../../../src/transport/channel-cache.js';
import { resolveEndpoint } from '../../../src/transport/endpoint.js';
import { statusName } from '../../../src/grpc/status.js';
import type { DialTarget, Transport, TransportConnection, WireCall, WireProtocol, WireUnaryResult } from '../../../src/transport/types.js';

/** What a fake peer does with one call: answer (its name) or throw. */
export type PeerBehaviour = (call: WireCall, protocol: WireProtocol) => void;

/** One attempt as the fake transports saw it. */
export interface SeenAttempt {
  readonly authority: string;
  readonly protocol: WireProtocol;
  readonly at: number;
}

export function unavailable(authority: string, protocol: WireProtocol): RpcError {
  return new RpcError(14, statusName(14), 'peer is down', { endpoint: authority, protocol });
}

/** What a transport reports for a request the server refused without processing it (draining: GOAWAY, H3_REQUEST_REJECTED, REFUSED_STREAM). */
export function refused(authority: string, protocol: WireProtocol): RpcError {
  return new RpcError(14, statusName(14), 'the server refused the request without processing it', { endpoint: authority, protocol, failure: 'refused' });
}

/** What a transport reports when it could not connect (nothing reached the server). */
export function connectFailure(authority: string, protocol: WireProtocol): RpcError {
  return new RpcError(14, statusName(14), 'connect ECONNREFUSED', { endpoint: authority, protocol, failure: 'connect' });
}

/**
 * A transport that never touches the network: each peer's behaviour decides the outcome of
 * a call, and every attempt is recorded. Used to test the factory's retry loop, which is
 * the same for both protocols.
 */
export class ScriptedTransport implements Transport {
  constructor(
    readonly protocol: WireProtocol,
    private readonly behaviour: Map<string, PeerBehaviour>,
    private readonly seen: SeenAttempt[],
    private readonly now: () => number,
    /** Server streams: a peer listed here answers with one event unless its behaviour throws; others fail UNAVAILABLE. */
    private readonly streams: Map<string, PeerBehaviour> = new Map(),
  ) {}

  open(target: DialTarget): TransportConnection {
    const authority = target.endpoint.authority;
    const protocol = this.protocol;
    return {
      protocol,
      unary: (call: WireCall): Promise<WireUnaryResult> => {
        this.seen.push({ authority, protocol, at: this.now() });
        try {
          this.behaviour.get(authority)?.(call, protocol);
        } catch (error) {
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        const request = PingRequest.decode(call.message);
        const message = PingResponse.encode({ node: authority, sequence: request.sequence, clientIdentity: '', payload: new Uint8Array() }).finish();
        return Promise.resolve({ message, headers: {}, trailers: {}, peer: { address: authority, certificate: undefined }, protocol });
      },
      serverStream: (call: WireCall): AsyncIterable<Uint8Array> => {
        const stream = this.streams.get(authority);
        if (stream === undefined) return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(unavailable(authority, protocol)) }) };
        const seen = this.seen;
        const now = this.now;
        return (async function* () {
          await Promise.resolve();
          seen.push({ authority, protocol, at: now() });
          stream(call, protocol);
          yield MembershipEvent.encode({ node: authority, sequence: 1 }).finish();
        })();
      },
      stream: () => {
        throw new Error('streams are not scripted here');
      },
      close: () => undefined,
    };
  }
}

export interface Harness {
  readonly factory: ControlPlaneClientFactory;
  readonly seen: SeenAttempt[];
  readonly behaviour: Map<string, PeerBehaviour>;
  /** Server-stream behaviour per peer (see ScriptedTransport). */
  readonly streams: Map<string, PeerBehaviour>;
  readonly clock: { now(): number; advance(ms: number): void };
  readonly breaker: ICircuitBreaker;
  readonly chooser: IPeerChooser;
  readonly options: BehaviorSubject<ControlPlaneOptionsInput>;
  /** The endpoint hints (configured + live); `apply` is a live update. */
  readonly hints: EndpointHintStore;
  /** The HTTP/3 backoff memory. */
  readonly health: Http3Health;
  dispose(): Promise<void>;
}

export const PEERS = ['10.0.0.1:7001', '10.0.0.2:7001', '10.0.0.3:7001'] as const;

/** A factory over scripted HTTP/2 and HTTP/3 transports, with a fake clock and fixed randomness. */
export function harness(
  profile: ProfileOptionsInput,
  extra: { peerLists?: Record<string, Observable<readonly string[]>>; breaker?: ICircuitBreaker; telemetry?: RpcTelemetry; http3?: boolean } = {},
): Harness {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => void (now += ms) };
  const seen: SeenAttempt[] = [];
  const behaviour = new Map<string, PeerBehaviour>();
  const streams = new Map<string, PeerBehaviour>();
  const options = new BehaviorSubject<ControlPlaneOptionsInput>({
    // Server-verified TLS (system roots): HTTP/3 needs TLS, and the scripted transports never dial.
    profiles: { test: { tls: { mode: 'tls' }, ...profile } },
    endpoints: Object.fromEntries(PEERS.map((p, i) => [`peer-${i + 1}`, { url: `https://${p}`, profile: 'test' }])),
  });
  const monitor = new OptionsMonitor(options);
  const tls = new FileTlsProvider(monitor, { clock });
  const random = (): number => 0.5;
  const chooser = new ProfilePeerChooser(monitor, random);
  const breaker = extra.breaker ?? new PeerCircuitBreaker({ settingsFor: (p) => monitor.current.profiles[p]?.breaker, clock });
  const transports = new Map<WireProtocol, Transport>([['h2', new ScriptedTransport('h2', behaviour, seen, clock.now, streams)]]);
  if (extra.http3 !== false) transports.set('h3', new ScriptedTransport('h3', behaviour, seen, clock.now, streams));
  const hints = new EndpointHintStore(monitor.snapshots$, undefined);
  const health = new Http3Health(clock, (endpoint) => resolveEndpoint(endpoint, monitor.current).authority);
  const factory = new ControlPlaneClientFactory({
    options: monitor,
    tls,
    hints,
    health,
    cache: new ChannelCache(transports),
    chooser,
    breaker,
    telemetry: extra.telemetry ?? new RpcTelemetry(),
    http: new HttpDispatcherPool(tls, monitor, new HttpTelemetry()),
    clock,
    random,
    peerLists: extra.peerLists,
  });
  return {
    factory, seen, behaviour, streams, clock, breaker, chooser, options, hints, health,
    dispose: async () => {
      await factory.dispose();
      tls.dispose();
      monitor.dispose();
    },
  };
}

/** Short real backoffs: the retry loop sleeps on timers, the deadline budget is on the fake clock. */
export const FAST_RETRY = { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 4, jitter: 0.2 } as const;
