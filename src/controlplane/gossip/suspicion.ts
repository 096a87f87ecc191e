import { suspicionTimeoutAfterConfirmations } from './formulas.js';

/**
 * One member's suspicion (memberlist suspicion.go): when it started, and which nodes
 * independently suspect it. The suspector that started it is not counted; each other suspector
 * counts once, up to `wanted`. The agent checks `expired` every round.
 */
export class Suspicion {
  readonly #suspectors = new Set<string>();
  #confirmations = 0;

  constructor(
    readonly since: number,
    /** The node whose probe started it (not counted as a confirmation). */
    readonly suspectedBy: string,
    /** Confirmations that take the timeout down to `minMs` (memberlist: suspicionMult − 2, or 0 in clusters too small to give them). */
    readonly wanted: number,
    readonly minMs: number,
    readonly maxMs: number,
  ) {
    this.#suspectors.add(suspectedBy);
  }

  get confirmations(): number {
    return this.#confirmations;
  }

  /** Counts `suspectedBy` as a confirmation; true when it was new (then the update is worth re-gossiping). */
  confirm(suspectedBy: string): boolean {
    if (this.#confirmations >= this.wanted || this.#suspectors.has(suspectedBy)) return false;
    this.#suspectors.add(suspectedBy);
    this.#confirmations++;
    return true;
  }

  /** The timeout now, given the confirmations so far. */
  get timeoutMs(): number {
    return suspicionTimeoutAfterConfirmations(this.#confirmations, this.wanted, this.minMs, this.maxMs);
  }

  expired(now: number): boolean {
    return now - this.since >= this.timeoutMs;
  }
}
