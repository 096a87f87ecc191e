import type { Subscription } from 'rxjs';
import type { OptionsMonitor } from '../config/options-monitor.js';
import type { ControlPlaneOptions } from '../config/types.js';
import type { EndpointHintStore } from '../hints/endpoint-hints.js';
import type { Http3Health } from '../hints/http3-health.js';
import type { ITlsProvider } from '../tls/tls-provider.js';
import { connectionSettingsOf, type CacheEntryInfo, type ChannelCache } from '../transport/channel-cache.js';
import { parseEndpoint } from '../transport/endpoint.js';
import type { TargetResolver } from './target-resolver.js';

/** `host:port`, or undefined when the URL cannot be parsed. */
function authorityOfUrl(url: string): string | undefined {
  try {
    return parseEndpoint(url).authority;
  } catch {
    return undefined;
  }
}

/**
 * `host:port` of the addresses configured endpoints used in `before` and no longer use in
 * `after` (their URL changed, or they were removed), less those any endpoint of `after` uses.
 * Connections to them drain whatever profile the calls used (a call may name a profile).
 */
export function movedAuthorities(before: ControlPlaneOptions, after: ControlPlaneOptions): Set<string> {
  const moved = new Set<string>();
  if (before.endpoints === after.endpoints) return moved;
  for (const [name, was] of Object.entries(before.endpoints)) {
    const now = after.endpoints[name];
    if (now !== undefined && now.url === was.url) continue;
    const authority = authorityOfUrl(was.url);
    if (authority !== undefined) moved.add(authority);
  }
  if (moved.size === 0) return moved;
  for (const now of Object.values(after.endpoints)) {
    const authority = authorityOfUrl(now.url);
    if (authority !== undefined) moved.delete(authority);
  }
  return moved;
}

export interface CacheInvalidationSources {
  readonly options: OptionsMonitor;
  readonly tls: ITlsProvider;
  readonly hints: EndpointHintStore;
  readonly health: Http3Health;
  readonly resolver: TargetResolver;
}

/**
 * Drains the cached connections that a change makes stale — a new TLS generation, a hint,
 * new options (a profile gone or its connection settings changed, an endpoint re-pointed), a
 * peer-list member that left, HTTP/3 marked broken — so new calls handshake anew while
 * running calls finish on the old connection (closed when its last call ends, or after the
 * profile's `drainGraceMs`). Listens until disposed.
 */
export class CacheInvalidation {
  readonly #subscriptions: Subscription[] = [];

  constructor(cache: ChannelCache, sources: CacheInvalidationSources) {
    const { options, tls, hints, health, resolver } = sources;
    const graceOf = (entry: CacheEntryInfo): number => options.current.profiles[entry.profile]?.drainGraceMs ?? 30_000;
    // A new TLS generation: connections built from the old one drain, new calls handshake anew.
    this.#subscriptions.push(
      tls.changes$.subscribe((material) => {
        cache.retire((e) => e.profile === material.profile && e.tlsGeneration !== material.generation, graceOf);
      }),
    );
    // Hints: denying HTTP/3 drains that endpoint's HTTP/3 connections; draining drains all of
    // its connections; requiring HTTP/3 drains its HTTP/2 connections.
    this.#subscriptions.push(
      hints.changes$.subscribe((change) => {
        if (change.current.draining === true) {
          cache.retire((e) => e.authority === change.authority, graceOf);
          return;
        }
        if (change.current.http3 === 'deny') cache.retire((e) => e.authority === change.authority && e.protocol === 'h3', graceOf);
        if (change.current.http3 === 'require') cache.retire((e) => e.authority === change.authority && e.protocol === 'h2', graceOf);
      }),
    );
    // New options: connections of profiles that are gone, or whose connection settings
    // changed, drain now rather than linger until the next call to their endpoint.
    let previous = options.current;
    this.#subscriptions.push(
      options.snapshots$.subscribe((snapshot) => {
        const before = previous;
        previous = snapshot;
        const graceBefore = (e: CacheEntryInfo): number => before.profiles[e.profile]?.drainGraceMs ?? 30_000;
        const stale = (e: CacheEntryInfo): boolean => {
          const now = snapshot.profiles[e.profile];
          const then = before.profiles[e.profile];
          if (now === undefined || then === undefined || connectionSettingsOf(now) !== connectionSettingsOf(then)) return true;
          // A profile that now requires (disables) HTTP/3 has no use for its HTTP/2 (HTTP/3) connections.
          return now.http3 !== then.http3 && ((now.http3 === 'require' && e.protocol === 'h2') || (now.http3 === 'disable' && e.protocol === 'h3'));
        };
        cache.retire(stale, graceBefore);
        // An endpoint whose URL changed (or that is gone): new calls already go to the new URL;
        // the old address's connections drain (closed when their in-flight calls, open streams
        // included, end, or after the profile's drainGraceMs), unless another configured
        // endpoint still uses that address.
        const moved = movedAuthorities(before, snapshot);
        if (moved.size > 0) cache.retire((e) => moved.has(e.authority), graceBefore);
      }),
    );
    // Peer lists: a member that left takes no new calls and its connections drain.
    this.#subscriptions.push(
      resolver.membersLeft$.subscribe(({ authorities }) => {
        cache.retire((e) => authorities.has(e.authority), graceOf);
      }),
    );
    // HTTP/3 marked broken: its connection for that endpoint drains.
    this.#subscriptions.push(
      health.changes$.subscribe((state) => {
        if (state.broken) cache.retire((e) => e.authority === state.authority && e.protocol === 'h3', graceOf);
      }),
    );
  }

  dispose(): void {
    for (const s of this.#subscriptions) s.unsubscribe();
  }
}
