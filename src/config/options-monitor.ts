import { BehaviorSubject, isObservable, Subject, type Observable, type Subscription } from 'rxjs';
import { ConfigError } from '../errors.js';
import { resolveOptions } from './schema.js';
import type { ControlPlaneOptions, ControlPlaneOptionsInput } from './types.js';

/** What may be bound to `TOKENS.ControlPlaneOptions`. */
export type ControlPlaneOptionsSource = ControlPlaneOptionsInput | Observable<ControlPlaneOptionsInput>;

/**
 * Holds the live options snapshot. Each new input is validated whole; a bad one is
 * reported on `rejections$` with every bad key named, and the last good snapshot stays live.
 * The first snapshot must be valid: construction throws its ConfigError.
 */
export class OptionsMonitor {
  readonly #snapshots: BehaviorSubject<ControlPlaneOptions>;
  readonly #rejections = new Subject<ConfigError>();
  readonly #subscription: Subscription | undefined;

  constructor(source: ControlPlaneOptionsSource | undefined) {
    if (!isObservable(source)) {
      this.#snapshots = new BehaviorSubject(resolveOptions(source ?? {}));
      return;
    }
    let first: ControlPlaneOptions | undefined;
    let firstError: unknown;
    const live: { subject?: BehaviorSubject<ControlPlaneOptions> } = {};
    this.#subscription = source.subscribe({
      next: (input) => {
        const subject = live.subject;
        if (subject === undefined) {
          try {
            first = resolveOptions(input);
          } catch (error) {
            firstError ??= error;
          }
          return;
        }
        try {
          subject.next(resolveOptions(input));
        } catch (error) {
          if (error instanceof ConfigError) this.#rejections.next(error);
          else throw error;
        }
      },
    });
    if (first === undefined) {
      this.#subscription.unsubscribe();
      if (firstError !== undefined) throw firstError as Error;
      throw new ConfigError([{ key: 'TOKENS.ControlPlaneOptions', message: 'the options Observable emitted nothing when subscribed; give it a current value (BehaviorSubject, startWith or of)' }]);
    }
    live.subject = new BehaviorSubject(first);
    this.#snapshots = live.subject;
  }

  get current(): ControlPlaneOptions {
    return this.#snapshots.value;
  }

  /** The current snapshot, then every accepted one. */
  get snapshots$(): Observable<ControlPlaneOptions> {
    return this.#snapshots.asObservable();
  }

  /** Snapshots that were rejected; the previous one stayed live. */
  get rejections$(): Observable<ConfigError> {
    return this.#rejections.asObservable();
  }

  dispose(): void {
    this.#subscription?.unsubscribe();
    this.#snapshots.complete();
    this.#rejections.complete();
  }
}
