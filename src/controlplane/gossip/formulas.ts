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
