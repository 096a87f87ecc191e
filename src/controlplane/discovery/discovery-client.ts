import { Subject, type Observable, type Subscriber } from 'rxjs';
import { DisposedError } from '../../errors.js';
import type { CallOptions, CallTarget, IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import * as discoveryV1 from '../../gen/omnirelay/controlplane/discovery/v1/discovery.js';
import { sleep as realSleep, type RandomSource } from '../../resilience/retry.js';
import { resolveWatchBackoff, rewatch, sharedLiveStream, type WatchBackoff } from '../live-watch.js';
import type { EndpointSource } from './service-registry.js';

/** Backoff between two watches of one service after a failure (or a stream the server ended): first wait `initialMs` (default 100), cap `maxMs` (default 10 000), growth `multiplier` per failure in a row (default 2), randomised fraction `jitter` (default 0.2). */
export type DiscoveryBackoff = WatchBackoff;

/** What `onWatchError` learns about a failed watch. */
export interface DiscoveryWatchFailure {
  readonly service: string;
  /** Failures in a row for this service (1 = the first since the last good message). */
  readonly failures: number;
  /** How long the client waits before watching again (ms). */
  readonly delayMs: number;
}

export interface DiscoveryClientOptions {
  /**
   * Where the remote Discovery service runs: a node that gossips (`endpoint`, `peers` or a
   * `peerList`, and optionally the `profile`), as for any factory call.
   */
  readonly target: CallTarget;
  /** Backoff between watches of a service after a failure; see {@link DiscoveryBackoff} for the defaults. */
  readonly backoff?: Partial<DiscoveryBackoff> | undefined;
  /** Jitter source, a number in [0, 1). Default: Math.random. */
  readonly random?: RandomSource | undefined;
  /** Waits `ms` or rejects when `signal` aborts (inject it to drive the backoff in tests). Default: a timer. */
  readonly sleep?: ((ms: number, signal: AbortSignal) => Promise<void>) | undefined;
  /**
   * Called when a watch fails or the server ends it (the client watches again after
   * `delayMs`). Default: a process warning (`OMNIRELAY_DISCOVERY_WATCH_FAILED`) on the first
   * failure in a row of each service only.
   */
  readonly onWatchError?: ((error: unknown, failure: DiscoveryWatchFailure) => void) | undefined;
}

const DEFAULT_BACKOFF: DiscoveryBackoff = { initialMs: 100, maxMs: 10_000, multiplier: 2, jitter: 0.2 };

/** The server ended a watch with OK (its registry was disposed, or it is shutting down). */
class WatchEndedError extends Error {
  constructor(service: string) {
    super(`the Discovery server ended the watch of "${service}"`);
  }
}

/**
 * Service discovery for a process that does not gossip: asks a remote node's Discovery
 * service (through the control-plane client factory, so with its TLS, peer choice, breakers
 * and telemetry) and exposes the same `endpoints$(service)` as a `ServiceRegistry`, so
 * `discoveryPeerLists(client, services)` works with either.
 *
 * `endpoints$(service)` runs one `Watch` per service however many subscribe (started on the
 * first subscription, cancelled when the last one leaves), with no deadline. It emits the
 * remote's sorted endpoint URLs when the first snapshot arrives (nothing before: an unknown
 * list is not an empty one), then on every change. When the watch fails or the server ends
 * it, the last list stays and the client watches again after a backoff that grows with each
 * failure in a row and starts over after a good message. `dispose()` cancels every watch and
 * completes every stream.
 */
export class DiscoveryClient implements EndpointSource {
  readonly #factory: IGrpcControlPlaneClientFactory;
  readonly #target: CallTarget;
  readonly #backoff: DiscoveryBackoff;
  readonly #random: RandomSource;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #onWatchError: (error: unknown, failure: DiscoveryWatchFailure) => void;
  readonly #streams = new Map<string, Observable<readonly string[]>>();
  readonly #disposed$ = new Subject<void>();
  /** The running watch loops, so dispose() can wait until each has stopped. */
  readonly #loops = new Set<Promise<void>>();
  #disposed = false;

  constructor(factory: IGrpcControlPlaneClientFactory, options: DiscoveryClientOptions) {
    this.#factory = factory;
    this.#target = options.target;
    this.#backoff = resolveWatchBackoff(DEFAULT_BACKOFF, options.backoff, 'discovery client options');
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? realSleep;
    this.#onWatchError =
      options.onWatchError ??
      ((error, failure) => {
        if (failure.failures === 1) {
          process.emitWarning(`OmniRelay discovery: the watch of "${failure.service}" failed (${error instanceof Error ? error.message : String(error)}); its last endpoints stay in use, watching again in ${failure.delayMs} ms.`, { code: 'OMNIRELAY_DISCOVERY_WATCH_FAILED' });
        }
      });
  }

  /** The remote's endpoints of `service` now (one `Resolve` call), sorted. */
  async resolve(service: string, options: CallOptions = {}): Promise<readonly string[]> {
    if (this.#disposed) throw new DisposedError('The discovery client');
    const result = await this.#factory.unary(discoveryV1.DiscoveryDefinition, 'resolve', { service }, { ...options, ...this.#target });
    return urlsOf(result.message.endpoints);
  }

  /** The remote's sorted endpoint URLs of `service`, live (see the class comment). */
  endpoints$(service: string): Observable<readonly string[]> {
    if (this.#disposed) throw new DisposedError('The discovery client');
    let stream = this.#streams.get(service);
    if (stream === undefined) {
      stream = sharedLiveStream<readonly string[]>((subscriber, signal) => this.#watch(service, subscriber, signal), sameStrings, this.#loops, this.#disposed$);
      this.#streams.set(service, stream);
    }
    return stream;
  }

  /** Cancels every watch, completes every stream, and resolves once every watch loop has stopped. */
  async dispose(): Promise<void> {
    if (!this.#disposed) {
      this.#disposed = true;
      this.#disposed$.next();
      this.#disposed$.complete();
      this.#streams.clear();
    }
    await Promise.all([...this.#loops]);
  }

  #watch(service: string, subscriber: Subscriber<readonly string[]>, signal: AbortSignal): Promise<void> {
    return rewatch(
      (opened) => this.#factory.serverStream(discoveryV1.DiscoveryDefinition, 'watch', { service }, { ...this.#target, deadlineMs: 'none', signal: opened }),
      (snapshot) => {
        subscriber.next(urlsOf(snapshot.endpoints));
        return true;
      },
      () => new WatchEndedError(service),
      subscriber,
      signal,
      { backoff: this.#backoff, random: this.#random, sleep: this.#sleep, onFailure: (error, failures, delayMs) => this.#onWatchError(error, { service, failures, delayMs }) },
    );
  }
}

function urlsOf(endpoints: readonly discoveryV1.Endpoint[]): readonly string[] {
  return Object.freeze([...new Set(endpoints.map((e) => e.endpoint).filter((url) => url !== ''))].sort());
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
