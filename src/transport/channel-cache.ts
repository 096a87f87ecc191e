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
  readonly key: string;
  readonly profile: string;
  readonly authority: string;
  readonly protocol: WireProtocol;
  readonly generation: number;
  readonly tlsGeneration: number;
  /** Everything the connection was built from; equal inputs mean the entry can be reused. */
  readonly inputs: string;
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

/** Everything a connection is built from: TLS material, endpoint and connection settings. */
function inputsOf(target: DialTarget): string {
  return `${target.tls.fingerprint}|${target.endpoint.url}|${connectionSettingsOf(target.profile)}`;
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
  readonly #active = new Map<string, Entry>();
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
    const key = `${target.profileName}\u0000${target.endpoint.authority}\u0000${protocol}`;
    const inputs = inputsOf(target);
    let entry = this.#active.get(key);
    if (entry !== undefined && entry.inputs !== inputs) {
      this.#retire(entry, target.profile.drainGraceMs);
      entry = undefined;
    }
    if (entry === undefined) {
      const transport = this.#transports.get(protocol);
      if (transport === undefined) throw new Error(`no ${protocol} transport is registered`);
      entry = {
        key, profile: target.profileName, authority: target.endpoint.authority, protocol, generation: ++this.#generation,
        tlsGeneration: target.tls.generation, inputs, connection: transport.open(target), inFlight: 0, state: 'active', grace: undefined,
      };
      this.#active.set(key, entry);
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
    for (const entry of [...this.#active.values()]) {
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
    return [...this.#active.values(), ...this.#draining].map((e) => this.#info(e));
  }

  #info(entry: Entry): CacheEntryInfo {
    return {
      profile: entry.profile, authority: entry.authority, protocol: entry.protocol, generation: entry.generation,
      tlsGeneration: entry.tlsGeneration, inFlight: entry.inFlight, state: entry.state === 'active' ? 'active' : 'draining',
    };
  }

  #retire(entry: Entry, graceMs: number): void {
    if (entry.state !== 'active') return;
    if (this.#active.get(entry.key) === entry) this.#active.delete(entry.key);
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
    if (this.#active.get(entry.key) === entry) this.#active.delete(entry.key);
    entry.connection.close();
  }

  /** Closes every connection now; calls still running are cancelled. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const entry of [...this.#active.values(), ...this.#draining]) this.#close(entry);
  }
}
