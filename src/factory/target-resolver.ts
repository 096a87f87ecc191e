import { Subject, type Observable, type Subscription } from 'rxjs';
import type { OptionsMonitor } from '../config/options-monitor.js';
import type { ControlPlaneOptions, ProfileOptions } from '../config/types.js';
import { EndpointError, PeerUnavailableError, UnknownProfileError } from '../errors.js';
import type { PeerCandidate } from '../peers/peer-chooser.js';
import { parseEndpoint, resolveEndpoint } from '../transport/endpoint.js';
import type { CallMetadata, ParsedEndpoint } from '../transport/types.js';
import type { CallTarget } from './types.js';

/** Named peer lists: each Observable emits the full current membership (endpoint names or URLs). */
export type PeerLists = Readonly<Record<string, Observable<readonly string[]>>>;

/** A call target resolved against the live options. */
export interface ResolvedTarget {
  readonly profileName: string;
  readonly profile: ProfileOptions;
  readonly peers: readonly PeerCandidate[];
  readonly metadata: CallMetadata;
  /** Names the peer set for the chooser's per-set state. */
  readonly peerSet: string;
}

/** Members that left a peer list: their connections drain. */
export interface MembersLeft {
  readonly list: string;
  /** `host:port` no member of the list uses any more. */
  readonly authorities: ReadonlySet<string>;
}

/**
 * Turns a call target (an endpoint, several peers or a live peer list) into its profile, its
 * peers and their metadata, against the live options. Memoised per options snapshot and per
 * peer-list membership, so the calls that name the same few targets over and over allocate
 * nothing. Owns the peer lists' subscriptions.
 */
export class TargetResolver {
  readonly #options: OptionsMonitor;
  readonly #lists: PeerLists;
  readonly #subscriptions: Subscription[] = [];
  readonly #membersLeft = new Subject<MembersLeft>();
  /** Latest members of each peer list (absent until the list first emits). */
  readonly #members = new Map<string, readonly string[]>();
  /** Resolved peer-list targets: rebuilt when the members, the options or the profile change. */
  readonly #resolvedLists = new Map<string, { readonly members: readonly string[]; readonly options: ControlPlaneOptions; readonly resolved: ResolvedTarget }>();
  /** Resolved targets per options snapshot. */
  readonly #resolved = new WeakMap<ControlPlaneOptions, Map<string, ResolvedTarget>>();
  /** Peer-list members reported as unusable, so each is warned about once. */
  readonly #reportedMembers = new Set<string>();

  constructor(options: OptionsMonitor, lists: PeerLists | undefined) {
    this.#options = options;
    this.#lists = lists ?? {};
    // Members arrive and leave live; the authorities no member uses any more are announced.
    for (const [name, list$] of Object.entries(this.#lists)) {
      this.#subscriptions.push(
        list$.subscribe({
          next: (members) => {
            const before = this.#members.get(name);
            this.#members.set(name, [...members]);
            this.#firstMembers.get(name)?.resolve();
            this.#firstMembers.delete(name);
            if (before === undefined) return;
            const still = new Set(members);
            const gone = new Set(before.filter((m) => !still.has(m)).flatMap((m) => this.authorityOf(m)));
            for (const m of members) for (const authority of this.authorityOf(m)) gone.delete(authority);
            if (gone.size > 0) this.#membersLeft.next({ list: name, authorities: gone });
          },
          // A failed discovery stream must not take the process down: the last members stay.
          error: (error: unknown) => {
            process.emitWarning(`OmniRelay peer list "${name}" failed (${error instanceof Error ? error.message : String(error)}); its last members stay in use.`, { code: 'OMNIRELAY_PEER_LIST_FAILED' });
          },
        }),
      );
    }
  }

  /** Authorities that left a peer list (for the cache-invalidation listener). */
  get membersLeft$(): Observable<MembersLeft> {
    return this.#membersLeft.asObservable();
  }

  /** `host:port` of an endpoint name or URL; none when it cannot be parsed (it was never dialled). */
  authorityOf(name: string): string[] {
    try {
      return [parseEndpoint(this.#options.current.endpoints[name]?.url ?? name).authority];
    } catch {
      return [];
    }
  }

  /** The configured endpoint whose URL has `authority`, if any (for error messages that name config keys). */
  configuredNameOf(authority: string): string | undefined {
    return Object.keys(this.#options.current.endpoints).find((name) => this.authorityOf(name)[0] === authority);
  }

  /** Waiters for peer lists that have not emitted yet. */
  readonly #firstMembers = new Map<string, { readonly promise: Promise<void>; readonly resolve: () => void }>();

  /**
   * For a call to peer list `name` that has not emitted yet: a promise of its first members
   * (the call queues for them, within its deadline, like grpc-js's picks while its resolver has
   * not answered). Undefined when the list has emitted (even an empty list: that is an answer,
   * and calls fail fast) or is not bound (resolving then names the problem).
   */
  firstMembers(name: string): Promise<void> | undefined {
    if (!Object.hasOwn(this.#lists, name) || this.#members.has(name)) return undefined;
    let waiter = this.#firstMembers.get(name);
    if (waiter === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      waiter = { promise, resolve };
      this.#firstMembers.set(name, waiter);
    }
    return waiter.promise;
  }

  /** Checks what can be checked when a client is made: a peer list may still be empty then, only its binding is checked. */
  check(target: CallTarget): void {
    if (target.peerList !== undefined) {
      if (!Object.hasOwn(this.#lists, target.peerList)) this.#membersOf(target.peerList);
    } else {
      this.resolve(target);
    }
  }

  resolve(target: CallTarget): ResolvedTarget {
    if (target.peerList !== undefined) return this.#resolveList({ ...target, peerList: target.peerList });
    const options = this.#options.current;
    const names = target.peers ?? (target.endpoint !== undefined ? [target.endpoint] : []);
    const key = `${target.profile ?? ''}\u0000${names.join('\u0000')}`;
    let memo = this.#resolved.get(options);
    if (memo === undefined) {
      memo = new Map();
      this.#resolved.set(options, memo);
    }
    const known = memo.get(key);
    if (known !== undefined) return known;
    const resolved = this.#resolveUncached(options, target, names);
    if (memo.size >= 1024) memo.clear();
    memo.set(key, resolved);
    return resolved;
  }

  dispose(): void {
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#membersLeft.complete();
  }

  /** The current members of a bound peer list; throws when the list is unknown or empty. */
  #membersOf(name: string): readonly string[] {
    if (!Object.hasOwn(this.#lists, name)) {
      const known = Object.keys(this.#lists);
      throw new EndpointError('ENDPOINT_INVALID', name, `No peer list "${name}" is bound to TOKENS.PeerLists (${known.length === 0 ? 'none is bound' : `bound: ${known.join(', ')}`}).`);
    }
    const members = this.#members.get(name) ?? [];
    if (members.length === 0) throw new PeerUnavailableError('PEER_UNAVAILABLE', [], `Peer list "${name}" has no members${this.#members.has(name) ? '' : ' yet (its Observable has not emitted)'}.`);
    return members;
  }

  #resolveList(target: CallTarget & { readonly peerList: string }): ResolvedTarget {
    const members = this.#membersOf(target.peerList);
    const options = this.#options.current;
    const memoKey = `${target.profile ?? ''}\u0000${target.peerList}`;
    const known = this.#resolvedLists.get(memoKey);
    if (known !== undefined && known.members === members && known.options === options) return known.resolved;
    const resolved = { ...this.#resolveUncached(options, target, this.#usableMembers(target, members, options)), peerSet: `list:${target.peerList}` };
    this.#resolvedLists.set(memoKey, { members, options, resolved });
    return resolved;
  }

  /**
   * The members a call can use: one bad discovery entry (unparsable, plaintext for a TLS
   * profile) is left out and reported once as a process warning naming it, instead of failing
   * every call to the list; with no usable member left, the first member's error is thrown.
   */
  #usableMembers(target: CallTarget & { readonly peerList: string }, members: readonly string[], options: ControlPlaneOptions): readonly string[] {
    const usable: string[] = [];
    let first: unknown;
    for (const member of members) {
      try {
        this.#resolveUncached(options, target, [member]);
        usable.push(member);
      } catch (error) {
        first ??= error;
        const key = `${target.peerList}\u0000${member}\u0000${error instanceof Error ? error.message : String(error)}`;
        if (!this.#reportedMembers.has(key)) {
          if (this.#reportedMembers.size >= 1024) this.#reportedMembers.clear();
          this.#reportedMembers.add(key);
          process.emitWarning(`OmniRelay peer list "${target.peerList}": member "${member}" is left out: ${error instanceof Error ? error.message : String(error)}`, { code: 'OMNIRELAY_PEER_LIST_MEMBER_INVALID' });
        }
      }
    }
    if (usable.length === 0) throw first;
    return usable.length === members.length ? members : usable;
  }

  #resolveUncached(options: ControlPlaneOptions, target: CallTarget, names: readonly string[]): ResolvedTarget {
    if (names.length === 0) throw new EndpointError('ENDPOINT_INVALID', '(none)', 'A call needs a target: set `endpoint` (URL or configured endpoint name), `peers` or `peerList`.');
    let profileName = target.profile;
    const metadata: Record<string, string | Buffer> = {};
    const peers: PeerCandidate[] = [];
    for (const name of names) {
      const configured = Object.hasOwn(options.endpoints, name) ? options.endpoints[name] : undefined;
      profileName ??= configured?.profile;
      if (configured !== undefined) Object.assign(metadata, configured.metadata);
      const endpoint = resolveEndpoint(name, options);
      peers.push({ authority: endpoint.authority, endpoint });
    }
    profileName ??= 'control-plane';
    const profile = options.profiles[profileName];
    if (profile === undefined) throw new UnknownProfileError(profileName, Object.keys(options.profiles));
    for (const { endpoint } of peers) checkScheme(endpoint, profileName, profile);
    return { profileName, profile, peers, metadata, peerSet: `peers:${names.join(',')}` };
  }
}

/** A TLS profile's calls never go to a plaintext URL, and an insecure profile's never to an https one. */
function checkScheme(endpoint: ParsedEndpoint, profileName: string, profile: ProfileOptions): void {
  if (!endpoint.secure && profile.tls.mode !== 'insecure') {
    throw new EndpointError('ENDPOINT_INSECURE', endpoint.url, `Endpoint ${endpoint.url} is plaintext but profile "${profileName}" uses ${profile.tls.mode}; OmniRelay never sends a TLS profile's calls in plaintext. Use https://.`);
  }
  if (endpoint.secure && profile.tls.mode === 'insecure') {
    throw new EndpointError('ENDPOINT_INVALID', endpoint.url, `Endpoint ${endpoint.url} is https but profile "${profileName}" is insecure (plaintext); use a tls or mtls profile for it.`);
  }
}
