/**
 * The two scaling formulas of hashicorp/memberlist (github.com/hashicorp/memberlist, util.go:
 * `suspicionTimeout` and `retransmitLimit`; config.go documents SuspicionMult and RetransmitMult).
 */

/**
 * How long a member stays suspect before it is declared dead:
 * `suspicionMult × max(1, log10(n)) × probeInterval` (memberlist `suspicionTimeout`; n = the
 * number of members, the local node included). Larger clusters wait longer because the
 * suspicion needs more rounds to reach the suspect, which refutes it by raising its incarnation.
 */
export function suspicionTimeoutMs(members: number, suspicionMult: number, probeIntervalMs: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, members)));
  return Math.round(suspicionMult * scale * probeIntervalMs);
}

/**
 * How many times one update is piggybacked before it leaves the queue:
 * `retransmitMult × ceil(log10(n + 1))` (memberlist `retransmitLimit`; n = the number of members).
 */
export function retransmitLimit(members: number, retransmitMult: number): number {
  return retransmitMult * Math.ceil(Math.log10(Math.max(0, members) + 1));
}

/**
 * Lifeguard's dynamic suspicion timeout (Dadgar, Phillips, Currey, "Lifeguard: Local Health
 * Awareness for More Accurate Failure Detection", 2018, §IV-B; memberlist suspicion.go
 * `remainingSuspicionTime`): a suspicion starts at `maxMs` and shrinks towards `minMs` as
 * independent suspectors confirm it, `max − (max − min) × log(c + 1) / log(k + 1)`, never below
 * `minMs` (c confirmations of the k wanted; k = 0 → `minMs` at once). Whole milliseconds,
 * rounded down as memberlist does.
 */
export function suspicionTimeoutAfterConfirmations(confirmations: number, wanted: number, minMs: number, maxMs: number): number {
  if (wanted < 1) return minMs;
  const fraction = Math.log(confirmations + 1) / Math.log(wanted + 1);
  return Math.max(minMs, Math.floor(maxMs - fraction * (maxMs - minMs)));
}
