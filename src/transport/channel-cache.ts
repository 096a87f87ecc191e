import { DisposedError } from '../errors.js';
import type { DialTarget, Transport, TransportConnection, WireProtocol } from './types.js';

/** A connection borrowed for one call. Release it exactly once, when the call ends. */
export interface Lease {
  readonly connection: TransportConnection;
  /** Identifies the connection generation (for tests and spans). */
  readonly generation: number;
  release(): void;
}

export interface CacheEntryInfo {
  readonly profile: string;
  readonly authority: string;
  readonly protocol: WireProtocol;
  readonly generation: number;
  readonly tlsGeneration: number;
  readonly inFlight: number;
  readonly state: 'active' | 'draining';
}

interface Entry {
  readonly profile: string;
  readonly authority: string;
  readonly protocol: WireProtocol;
  readonly generation: number;
  readonly tlsGeneration: number;
  /** Everything the connection was built from (see {@link sameInputs}); equal inputs mean the entry can be reused. */
  readonly tlsFingerprint: string;
  readonly url: string;
  readonly settings: string;
  readonly connection: TransportConnection;
  inFlight: number;
  state: 'active' | 'draining' | 'closed';
  grace: NodeJS.Timeout | undefined;
}

/** Profile snapshots are immutable, so their connection settings are serialised once. */
const settingsOf = new WeakMap<DialTarget['profile'], string>();

/** The profile settings a connection is built from (deadline and retry are per call). */
export function connectionSettingsOf(profile: DialTarget['profile']): string {
  let settings = settingsOf.get(profile);
  if (settings === undefined) {
    const { limits, keepalive, connectTimeoutMs, http3RaceDelayMs } = profile;
    settings = JSON.stringify([limits, keepalive, connectTimeoutMs, http3RaceDelayMs]);
    settingsOf.set(profile, settings);
  }
  return settings;
}

/**
 * Whether `entry` was built from what `target` would build: TLS material, endpoint and
 * connection settings. Compared field by field rather than as one concatenated string, so an
 * acquire builds no string: the three are usually the very same string objects (material and
 * parsed endpoints are reused, settings serialised once per profile snapshot).
 */
function sameInputs(entry: Entry, target: DialTarget): boolean {
  return entry.tlsFingerprint === target.tls.fingerprint && entry.url === target.endpoint.url && entry.settings === connectionSettingsOf(target.profile);
}

/** Active entries of one (profile, endpoint): at most one per protocol. */
interface Slot {
  h2?: Entry | undefined;
  h3?: Entry | undefined;
}

/**
 * Owns every transport connection. Key: (profile, endpoint, protocol); the entry also
 * remembers the TLS generation and the settings it was built from. On each acquire the
 * inputs are compared: equal → reuse; different → a new generation takes new calls at
 * once and the old one drains (closed when its in-flight calls reach zero or the grace
 * period ends). Callers hold leases, never raw connections, so a swap never breaks them.
 */
export class ChannelCache {
  readonly #transports: ReadonlyMap<WireProtocol, Transport>;
  /** Active entries by profile, then endpoint authority, then protocol (no key string is built per acquire). */
  readonly #active = new Map<string, Map<string, Slot>>();
  readonly #draining = new Set<Entry>();
  #generation = 0;
  #disposed = false;

  constructor(transports: ReadonlyMap<WireProtocol, Transport>) {
    this.#transports = transports;
  }

  hasTransport(protocol: WireProtocol): boolean {
    return this.#transports.has(protocol);
  }

  acquire(target: DialTarget, protocol: WireProtocol): Lease {
    if (this.#disposed) throw new DisposedError('The channel cache');
    let entry = this.#slot(target.profileName, target.endpoint.authority)?.[protocol];
    if (entry !== undefined && !sameInputs(entry, target)) {
      this.#retire(entry, target.profile.drainGraceMs);
      entry = undefined;
    }
    if (entry === undefined) {
      const transport = this.#transports.get(protocol);
      if (transport === undefined) throw new Error(`no ${protocol} transport is registered`);
      entry = {
        profile: target.profileName, authority: target.endpoint.authority, protocol, generation: ++this.#generation,
        tlsGeneration: target.tls.generation, tlsFingerprint: target.tls.fingerprint, url: target.endpoint.url, settings: connectionSettingsOf(target.profile),
        connection: transport.open(target), inFlight: 0, state: 'active', grace: undefined,
      };
      this.#setActive(entry);
    }
    const leased = entry;
    leased.inFlight++;
    let released = false;
    return {
      connection: leased.connection,
      generation: leased.generation,
      release: () => {
        if (released) return;
        released = true;
        leased.inFlight--;
        if (leased.state === 'draining' && leased.inFlight === 0) this.#close(leased);
      },
    };
  }

  /**
   * Drains every active entry the predicate selects: new calls get a new generation,
   * running calls finish on the old one (up to `graceMs`).
   */
  retire(predicate: (entry: CacheEntryInfo) => boolean, graceMs: (entry: CacheEntryInfo) => number): number {
    let count = 0;
    for (const entry of [...this.#activeEntries()]) {
      const info = this.#info(entry);
      if (predicate(info)) {
        this.#retire(entry, graceMs(info));
        count++;
      }
    }
    return count;
  }

  /** A snapshot of every open entry. */
  entries(): CacheEntryInfo[] {
    return [...this.#activeEntries(), ...this.#draining].map((e) => this.#info(e));
  }

  #info(entry: Entry): CacheEntryInfo {
    return {
      profile: entry.profile, authority: entry.authority, protocol: entry.protocol, generation: entry.generation,
      tlsGeneration: entry.tlsGeneration, inFlight: entry.inFlight, state: entry.state === 'active' ? 'active' : 'draining',
    };
  }

  #retire(entry: Entry, graceMs: number): void {
    if (entry.state !== 'active') return;
    this.#deleteActive(entry);
    entry.state = 'draining';
    if (entry.inFlight === 0) {
      this.#close(entry);
      return;
    }
    this.#draining.add(entry);
    entry.grace = setTimeout(() => this.#close(entry), graceMs);
    entry.grace.unref();
  }

  #close(entry: Entry): void {
    if (entry.state === 'closed') return;
    entry.state = 'closed';
    if (entry.grace !== undefined) clearTimeout(entry.grace);
    this.#draining.delete(entry);
    this.#deleteActive(entry);
    entry.connection.close();
  }

  /** Closes every connection now; calls still running are cancelled. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const entry of [...this.#activeEntries(), ...this.#draining]) this.#close(entry);
  }

  #slot(profile: string, authority: string): Slot | undefined {
    return this.#active.get(profile)?.get(authority);
  }

  #setActive(entry: Entry): void {
    let byAuthority = this.#active.get(entry.profile);
    if (byAuthority === undefined) {
      byAuthority = new Map();
      this.#active.set(entry.profile, byAuthority);
    }
    let slot = byAuthority.get(entry.authority);
    if (slot === undefined) {
      slot = {};
      byAuthority.set(entry.authority, slot);
    }
    slot[entry.protocol] = entry;
  }

  /** Removes `entry` from the active entries if it is the active one of its (profile, endpoint, protocol). */
  #deleteActive(entry: Entry): void {
    const byAuthority = this.#active.get(entry.profile);
    const slot = byAuthority?.get(entry.authority);
    if (slot === undefined || slot[entry.protocol] !== entry) return;
    slot[entry.protocol] = undefined;
    if (slot.h2 === undefined && slot.h3 === undefined) {
      byAuthority?.delete(entry.authority);
      if (byAuthority?.size === 0) this.#active.delete(entry.profile);
    }
  }

  *#activeEntries(): Iterable<Entry> {
    for (const byAuthority of this.#active.values()) {
      for (const slot of byAuthority.values()) {
        if (slot.h2 !== undefined) yield slot.h2;
        if (slot.h3 !== undefined) yield slot.h3;
      }
    }
  }
}
