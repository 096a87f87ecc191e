import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { Subject, type Observable, type Subscription } from 'rxjs';
import type { Clock } from '../clock.js';
import type { OptionsMonitor } from '../config/options-monitor.js';
import type { TlsOptions } from '../config/types.js';
import { DisposedError, TlsError, UnknownProfileError } from '../errors.js';
import type { RpcTelemetry } from '../telemetry/index.js';
import { loadTlsMaterial, type TlsMaterial } from './material.js';
import type { PeerCertificateValidator } from './peer-verification.js';
import type { ITlsProvider } from './tls-provider.js';

interface ProfileState {
  options: TlsOptions;
  material: TlsMaterial;
  /** stat signature of every file, to skip reloading unchanged files on each poll */
  signature: string;
  lastRejection: string | undefined;
  watchers: FSWatcher[];
  poll: NodeJS.Timeout | undefined;
  debounce: NodeJS.Timeout | undefined;
}

function filesOf(options: TlsOptions): string[] {
  return [options.caFile, options.certFile, options.keyFile, options.pfxFile, ...options.crlFiles].filter((f): f is string => f !== undefined);
}

function statSignature(files: readonly string[]): string {
  return files
    .map((file) => {
      try {
        const s = statSync(file);
        return `${file}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return `${file}:missing`;
      }
    })
    .join('|');
}

/**
 * Loads each profile's TLS files, watches their folders (a watch sees atomic renames as
 * events on the folder) and also polls them every `tls.reloadPollMs` (watches miss events
 * on some file systems). A changed file set is loaded and checked whole; if it is good a
 * new generation is emitted on `changes$`, if not the rejection is emitted and the last
 * good generation stays live. New options snapshots that change a profile's TLS settings
 * reload it the same way.
 */
export class FileTlsProvider implements ITlsProvider {
  readonly #states = new Map<string, ProfileState>();
  readonly #changes = new Subject<TlsMaterial>();
  readonly #rejections = new Subject<TlsError>();
  readonly #options: OptionsMonitor;
  readonly #clock: Clock;
  readonly #telemetry: RpcTelemetry | undefined;
  readonly #subscription: Subscription;
  #generation = 0;
  #disposed = false;

  constructor(
    options: OptionsMonitor,
    deps: { clock: Clock; telemetry?: RpcTelemetry | undefined; peerValidator?: PeerCertificateValidator | undefined },
  ) {
    this.#options = options;
    this.#clock = deps.clock;
    this.#telemetry = deps.telemetry;
    this.peerValidator = deps.peerValidator;
    this.#subscription = options.snapshots$.subscribe((snapshot) => {
      for (const [profile, state] of this.#states) {
        const next = snapshot.profiles[profile]?.tls;
        if (next !== undefined && JSON.stringify(next) !== JSON.stringify(state.options)) {
          state.options = next;
          this.#watch(profile, state);
          this.#check(profile, true);
        }
      }
    });
  }

  readonly peerValidator: PeerCertificateValidator | undefined;

  get changes$(): Observable<TlsMaterial> {
    return this.#changes.asObservable();
  }

  get rejections$(): Observable<TlsError> {
    return this.#rejections.asObservable();
  }

  current(profile: string): TlsMaterial {
    if (this.#disposed) throw new DisposedError('The TLS provider');
    const existing = this.#states.get(profile);
    if (existing !== undefined) return existing.material;
    const options = this.#options.current.profiles[profile]?.tls;
    if (options === undefined) throw new UnknownProfileError(profile, Object.keys(this.#options.current.profiles));
    const signature = statSignature(filesOf(options));
    const material = { ...loadTlsMaterial(profile, options, new Date(this.#clock.now())), generation: ++this.#generation };
    const state: ProfileState = { options, material, signature, lastRejection: undefined, watchers: [], poll: undefined, debounce: undefined };
    this.#states.set(profile, state);
    this.#watch(profile, state);
    this.#telemetry?.recordTlsReload({ profile, outcome: 'loaded' });
    return material;
  }

  /** Checks a profile's files now (the watch and the poll call this). */
  #check(profile: string, force: boolean): void {
    const state = this.#states.get(profile);
    if (state === undefined || this.#disposed) return;
    const signature = statSignature(filesOf(state.options));
    if (!force && signature === state.signature) return;
    try {
      const loaded = loadTlsMaterial(profile, state.options, new Date(this.#clock.now()));
      state.signature = signature;
      state.lastRejection = undefined;
      if (loaded.fingerprint === state.material.fingerprint) return;
      state.material = { ...loaded, generation: ++this.#generation };
      this.#telemetry?.recordTlsReload({ profile, outcome: 'loaded' });
      this.#changes.next(state.material);
    } catch (error) {
      const tlsError = error instanceof TlsError ? error : new TlsError('TLS_CLIENT_CERT_UNREADABLE', `Profile "${profile}": reloading TLS material failed: ${String(error)}`, { profile, cause: error });
      // A half-written rotation (new certificate, old key) is normal for a moment: it is
      // reported once per distinct problem, and checked again on the next event or poll.
      if (state.lastRejection !== tlsError.message) {
        state.lastRejection = tlsError.message;
        this.#telemetry?.recordTlsReload({ profile, outcome: 'rejected', reason: tlsError.code });
        this.#rejections.next(tlsError);
      }
    }
  }

  #watch(profile: string, state: ProfileState): void {
    this.#unwatch(state);
    const schedule = (): void => {
      if (state.debounce !== undefined) clearTimeout(state.debounce);
      state.debounce = setTimeout(() => {
        state.debounce = undefined;
        this.#check(profile, false);
      }, 25);
      state.debounce.unref();
    };
    for (const dir of new Set(filesOf(state.options).map((f) => dirname(f)))) {
      try {
        const watcher = watch(dir, { persistent: false }, schedule);
        watcher.on('error', () => watcher.close());
        state.watchers.push(watcher);
      } catch {
        // The folder cannot be watched (gone, or no inotify): the poll still sees changes.
      }
    }
    if (filesOf(state.options).length > 0) {
      state.poll = setInterval(() => this.#check(profile, false), state.options.reloadPollMs);
      state.poll.unref();
    }
  }

  #unwatch(state: ProfileState): void {
    for (const watcher of state.watchers) watcher.close();
    state.watchers = [];
    if (state.poll !== undefined) clearInterval(state.poll);
    if (state.debounce !== undefined) clearTimeout(state.debounce);
    state.poll = undefined;
    state.debounce = undefined;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#subscription.unsubscribe();
    for (const state of this.#states.values()) this.#unwatch(state);
    this.#states.clear();
    this.#changes.complete();
    this.#rejections.complete();
  }
}
