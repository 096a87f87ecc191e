/**
 * Lifeguard's Local Health Multiplier (Dadgar, Phillips, Currey, "Lifeguard: Local Health
 * Awareness for More Accurate Failure Detection", 2018, §IV-A; memberlist awareness.go): a
 * score in [0, max − 1] that rises when this node's own probes go unanswered in ways that
 * point at itself (helpers that do not even send their nack, a suspicion of itself to refute)
 * and falls with every answered probe. The probe interval and the probe timeout are scaled by
 * `score + 1`, so a node whose event loop or network is slow probes less often and waits longer
 * instead of accusing healthy peers.
 */
export class LocalHealth {
  #score = 0;

  /** `max`: the largest multiplier (memberlist `AwarenessMaxMultiplier`); 1 turns scaling off. */
  constructor(readonly max: number) {}

  get score(): number {
    return this.#score;
  }

  /** Adds `delta` (clamped to [0, max − 1]); true when the score changed. */
  apply(delta: number): boolean {
    const before = this.#score;
    this.#score = Math.min(this.max - 1, Math.max(0, this.#score + delta));
    return this.#score !== before;
  }

  /** `ms × (score + 1)`. */
  scale(ms: number): number {
    return ms * (this.#score + 1);
  }
}
