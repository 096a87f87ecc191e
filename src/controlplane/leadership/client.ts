import { Observable } from 'rxjs';
import { DisposedError } from '../../errors.js';
import type { CallOptions, CallTarget, IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import * as leadershipV1 from '../../gen/omnirelay/controlplane/leadership/v1/leadership.js';

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

export interface LeadershipClientOptions {
  /** The node whose LeadershipControl service to ask (`endpoint`, `peers` or a `peerList`, and optionally the `profile`). */
  readonly target: CallTarget;
}

/**
 * A typed client of another node's `omnirelay.controlplane.leadership.v1.LeadershipControl`
 * service, through the control-plane client factory (its TLS, peer choice, breakers, telemetry).
 *
 * - `get(scopes)`: the leader of each scope as that node sees it now.
 * - `watch$(scopes)`: one Watch per subscription, no deadline; the node's current leaders first,
 *   then every transition it observes. It errors when the stream fails and completes when the
 *   server ends it: subscribe again to resume (the first messages restate the current leaders).
 *
 * `dispose()` ends every running watch.
 */
export class LeadershipClient {
  readonly #factory: IGrpcControlPlaneClientFactory;
  readonly #target: CallTarget;
  readonly #watches = new Set<AbortController>();
  #disposed = false;

  constructor(factory: IGrpcControlPlaneClientFactory, options: LeadershipClientOptions) {
    this.#factory = factory;
    this.#target = options.target;
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

  /** Ends every running watch (they complete). Idempotent. */
  dispose(): void {
    this.#disposed = true;
    for (const watch of this.#watches) watch.abort();
    this.#watches.clear();
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
