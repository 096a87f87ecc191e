import type { Clock } from '../clock.js';
import { RpcError } from '../errors.js';
import { GRPC_STATUS } from '../grpc/status.js';

/** A refused request as the factory reports it (`RpcError.refused`: GOAWAY, H3_REQUEST_REJECTED, REFUSED_STREAM). */
export function refusalOf(error: unknown): RpcError | undefined {
  return error instanceof RpcError && error.refused ? error : undefined;
}

/**
 * Peers (authority) that refused a request without processing it, e.g. because they are
 * draining (GOAWAY), until when (injected clock). The picker offers them only when no other
 * peer is left; failing to connect to one meanwhile is its drain ending, not a failure.
 */
export class RefusalMemory {
  readonly #clock: Clock;
  readonly #until = new Map<string, { readonly until: number; readonly seq: number }>();
  /** Counts refusals, so a success clears a peer's mark only if its attempt began after the refusal. */
  #seq = 0;
  /** Connection failures reported as refused by {@link drainAware}: they do not renew a mark. */
  readonly #drainEnds = new WeakSet<RpcError>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** True while no peer is marked: callers skip the per-peer lookups. */
  get empty(): boolean {
    return this.#until.size === 0;
  }

  /** The refusal count now; an attempt remembers it so {@link servedBy} can tell older refusals from newer. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Remembers that `authority` refused work, for `forMs` (the profile's
   * `breaker.halfOpenAfterMs`, the time an unwell peer is kept out before a probe): a restarted
   * replica is offered again then, and one that is gone is counted by its breaker like any peer
   * that cannot be reached.
   */
  note(authority: string, forMs: number, error: RpcError): void {
    if (this.#drainEnds.has(error)) return;
    this.#until.set(authority, { until: this.#clock.now() + forMs, seq: ++this.#seq });
  }

  isRefusing(authority: string): boolean {
    const mark = this.#until.get(authority);
    if (mark === undefined) return false;
    if (this.#clock.now() < mark.until) return true;
    this.#until.delete(authority);
    return false;
  }

  /** A call to `authority` that started at refusal count `startedAt` succeeded: a refusal before it is over. */
  servedBy(authority: string, startedAt: number): void {
    const mark = this.#until.get(authority);
    if (mark !== undefined && mark.seq <= startedAt) this.#until.delete(authority);
  }

  /**
   * A connection failure (nothing reached the server) with a peer that refused work moments
   * ago is the end of its drain (a draining server stops listening), not a sign it is unwell:
   * it is reported as refused, so the breaker does not count it and it is retried transparently.
   */
  drainAware(authority: string, error: unknown): unknown {
    if (!(error instanceof RpcError) || error.failure !== 'connect' || error.status !== GRPC_STATUS.UNAVAILABLE || !this.isRefusing(authority)) return error;
    const refused = new RpcError(error.status, error.statusName, `${error.details} (the peer refused a request without processing it moments ago: it is draining)`, { ...error.context, failure: 'refused' });
    this.#drainEnds.add(refused);
    return refused;
  }
}
