import { Observable, Subject, type Subscriber } from 'rxjs';
import { DisposedError } from '../../errors.js';
import type { CallOptions, CallTarget, IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import * as leadershipV1 from '../../gen/omnirelay/controlplane/leadership/v1/leadership.js';
import { sleep as realSleep, type RandomSource } from '../../resilience/retry.js';
import { resolveWatchBackoff, rewatch, sharedLiveStream, type WatchBackoff } from '../live-watch.js';

/** A scope's leader as a LeadershipControl service reported it. */
export interface RemoteLeader {
  readonly scope: string;
  /** Empty when the scope has no leader. */
  readonly leaderId: string;
  /** 0 when the scope has no leader. */
  readonly term: number;
  /** undefined when the scope has no leader. */
  readonly fenceToken: bigint | undefined;
  /** ms since the epoch; undefined when unknown. */
  readonly expiresAt: number | undefined;
}

export interface RemoteLeadershipTransition {
  readonly current: RemoteLeader;
  /** Empty for a scope's first message or after a leaderless spell. */
  readonly previousLeaderId: string;
  readonly observedBy: string;
  readonly observedAt: number;
}

/** Backoff between two watches of a scope by `leader$` after a failure (or a stream the server ended): first wait `initialMs` (default 100), cap `maxMs` (default 5 000: a node that comes back is watched again within 5 s), growth `multiplier` per failure in a row (default 2), randomised fraction `jitter` (default 0.2). */
export type LeadershipWatchBackoff = WatchBackoff;

/** What `onWatchError` learns about a failed watch of `leader$`. */
export interface LeadershipWatchFailure {
  readonly scope: string;
  /** Failures in a row for this scope (1 = the first since the last good message). */
  readonly failures: number;
  /** How long the client waits before watching again (ms). */
  readonly delayMs: number;
}

export interface LeadershipClientOptions {
  /** The node whose LeadershipControl service to ask (`endpoint`, `peers` or a `peerList`, and optionally the `profile`). */
  readonly target: CallTarget;
  /** Backoff of `leader$` between watches after a failure; see {@link LeadershipWatchBackoff} for the defaults. */
  readonly backoff?: Partial<LeadershipWatchBackoff> | undefined;
  /** Jitter source, a number in [0, 1). Default: Math.random. */
  readonly random?: RandomSource | undefined;
  /** Waits `ms` or rejects when `signal` aborts (inject it to drive the backoff in tests). Default: a timer. */
  readonly sleep?: ((ms: number, signal: AbortSignal) => Promise<void>) | undefined;
  /** Called when a watch of `leader$` fails or the server ends it (it watches again after `delayMs`). Default: nothing. */
  readonly onWatchError?: ((error: unknown, failure: LeadershipWatchFailure) => void) | undefined;
}

const DEFAULT_BACKOFF: LeadershipWatchBackoff = { initialMs: 100, maxMs: 5_000, multiplier: 2, jitter: 0.2 };

/** The server ended a watch with OK (its agent stopped, or it is shutting down). */
class WatchEndedError extends Error {
  constructor(scope: string) {
    super(`the LeadershipControl server ended the watch of "${scope}"`);
  }
}

/**
 * A typed client of another node's `omnirelay.controlplane.leadership.v1.LeadershipControl`
 * service, through the control-plane client factory (its TLS, peer choice, breakers, telemetry).
 *
 * - `get(scopes)`: the leader of each scope as that node sees it now.
 * - `watch$(scopes)`: one Watch per subscription, no deadline; the node's current leaders first,
 *   then every transition it observes. It errors when the stream fails and completes when the
 *   server ends it: subscribe again to resume (the first messages restate the current leaders).
 * - `leader$(scope)`: the leader of one scope as the node sees it, kept live: one Watch however
 *   many subscribe (started by the first, cancelled when the last leaves); emits when the first
 *   message arrives, then on every change of leader or term. When the watch fails or the server
 *   ends it, the last value stays and the client watches again after a backoff that grows with
 *   each failure in a row and starts over after a good message.
 *
 * `dispose()` ends every running watch and completes every `leader$` stream.
 */
export class LeadershipClient {
  readonly #factory: IGrpcControlPlaneClientFactory;
  readonly #target: CallTarget;
  readonly #backoff: LeadershipWatchBackoff;
  readonly #random: RandomSource;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #onWatchError: (error: unknown, failure: LeadershipWatchFailure) => void;
  readonly #watches = new Set<AbortController>();
  readonly #leaders = new Map<string, Observable<RemoteLeader>>();
  readonly #loops = new Set<Promise<void>>();
  readonly #disposed$ = new Subject<void>();
  #disposed = false;

  constructor(factory: IGrpcControlPlaneClientFactory, options: LeadershipClientOptions) {
    this.#factory = factory;
    this.#target = options.target;
    this.#backoff = resolveWatchBackoff(DEFAULT_BACKOFF, options.backoff, 'leadership client options');
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? realSleep;
    this.#onWatchError = options.onWatchError ?? ((): void => undefined);
  }

  async get(scopes: readonly string[] = [], options: CallOptions = {}): Promise<readonly RemoteLeader[]> {
    if (this.#disposed) throw new DisposedError('The leadership client');
    const result = await this.#factory.unary(leadershipV1.LeadershipControlDefinition, 'get', { scopes: [...scopes] }, { ...options, ...this.#target });
    return result.message.leaders.map(fromWire);
  }

  watch$(scopes: readonly string[] = []): Observable<RemoteLeadershipTransition> {
    return new Observable<RemoteLeadershipTransition>((subscriber) => {
      if (this.#disposed) {
        subscriber.error(new DisposedError('The leadership client'));
        return undefined;
      }
      const controller = new AbortController();
      this.#watches.add(controller);
      void (async () => {
        try {
          const stream = this.#factory.serverStream(leadershipV1.LeadershipControlDefinition, 'watch', { scopes: [...scopes] }, { ...this.#target, deadlineMs: 'none', signal: controller.signal });
          for await (const message of stream) {
            if (message.current === undefined) continue;
            subscriber.next({ current: fromWire(message.current), previousLeaderId: message.previousLeaderId, observedBy: message.observedBy, observedAt: message.observedAtUnixMs });
          }
          subscriber.complete();
        } catch (error) {
          if (controller.signal.aborted) subscriber.complete();
          else subscriber.error(error);
        } finally {
          this.#watches.delete(controller);
        }
      })();
      return () => controller.abort();
    });
  }

  /** The leader of `scope` as the node sees it, live and re-watched after failures (see the class comment). */
  leader$(scope: string): Observable<RemoteLeader> {
    if (this.#disposed) throw new DisposedError('The leadership client');
    let stream = this.#leaders.get(scope);
    if (stream === undefined) {
      stream = sharedLiveStream<RemoteLeader>((subscriber, signal) => this.#watchLeader(scope, subscriber, signal), (a, b) => a.leaderId === b.leaderId && a.fenceToken === b.fenceToken && a.term === b.term, this.#loops, this.#disposed$);
      this.#leaders.set(scope, stream);
    }
    return stream;
  }

  /** Ends every running watch (they complete) and resolves once every `leader$` loop has stopped. Idempotent. */
  async dispose(): Promise<void> {
    if (!this.#disposed) {
      this.#disposed = true;
      for (const watch of this.#watches) watch.abort();
      this.#watches.clear();
      this.#disposed$.next();
      this.#disposed$.complete();
      this.#leaders.clear();
    }
    await Promise.all([...this.#loops]);
  }

  #watchLeader(scope: string, subscriber: Subscriber<RemoteLeader>, signal: AbortSignal): Promise<void> {
    return rewatch(
      (opened) => this.#factory.serverStream(leadershipV1.LeadershipControlDefinition, 'watch', { scopes: [scope] }, { ...this.#target, deadlineMs: 'none', signal: opened }),
      (message) => {
        if (message.current === undefined) return false;
        subscriber.next(fromWire(message.current));
        return true;
      },
      () => new WatchEndedError(scope),
      subscriber,
      signal,
      { backoff: this.#backoff, random: this.#random, sleep: this.#sleep, onFailure: (error, failures, delayMs) => this.#onWatchError(error, { scope, failures, delayMs }) },
    );
  }
}

function fromWire(info: leadershipV1.LeaderInfo): RemoteLeader {
  return {
    scope: info.scope,
    leaderId: info.leaderId,
    term: info.term,
    fenceToken: info.fenceToken === '' ? undefined : BigInt(info.fenceToken),
    expiresAt: info.expiresAtUnixMs === 0 ? undefined : info.expiresAtUnixMs,
  };
}
