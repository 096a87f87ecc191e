/**
 * The two built-in profiles. Every profile starts from one of them (its `preset`) and the
 * user's fields are deep-merged on top. Each number carries the one-line reason it was
 * chosen; docs/control-plane-client-factory.md repeats them in its key tables.
 */
import { deepFreeze } from './merge.js';
import type { ProfileOptions } from './types.js';

/** Names of the built-in presets; both always exist as profiles in a resolved snapshot. */
export type PresetName = 'control-plane' | 'data-plane';

/** The preset names, in a stable order. */
export const PRESET_NAMES: readonly PresetName[] = ['control-plane', 'data-plane'];

const MiB = 1024 * 1024;

/** True when `name` is a built-in preset name. */
export function isPresetName(name: unknown): name is PresetName {
  return name === 'control-plane' || name === 'data-plane';
}

/**
 * Defaults of the built-in profiles (deep-frozen).
 *
 * - `control-plane`: small, latency-sensitive calls (config, membership, leases, watches) that
 *   must fail fast and notice a dead peer quickly, even on idle connections.
 * - `data-plane`: bulk payloads and long streams that need room and time, and must not be
 *   disturbed by aggressive pinging or replayed too often.
 */
export const PRESETS: Readonly<Record<PresetName, ProfileOptions>> = deepFreeze({
  'control-plane': {
    // HTTP/3 avoids TCP head-of-line blocking and resumes faster; HTTP/2 remains the fallback.
    http3: 'prefer',
    // RFC 8305 (Happy Eyeballs v2) recommends 250 ms before starting the next connection attempt.
    http3RaceDelayMs: 250,
    http3Health: {
      // A network that drops UDP stays broken for a while; skip the race for 30 s after a failure.
      initialBackoffMs: 30_000,
      // Re-probe at least every 10 min so a fixed network gets HTTP/3 back the same day, not never.
      maxBackoffMs: 600_000,
    },
    tls: {
      // Control-plane peers authenticate clients; mutual TLS is the only safe default.
      mode: 'mtls',
      // No revocation lists unless the deployment ships them.
      crlFiles: [],
      // Revocation needs CRL files, so it cannot be on by default.
      checkRevocation: false,
      // Backstop for file watches that miss atomic symlink swaps (Kubernetes secrets); stat is cheap.
      reloadPollMs: 500,
    },
    limits: {
      // gRPC's own default receive cap; control messages are small, and a cap bounds a bad peer's cost.
      maxReceiveMessageBytes: 4 * MiB,
      // Symmetric with the receive cap: a request bigger than 4 MiB is a bug on a control plane.
      maxSendMessageBytes: 4 * MiB,
    },
    keepalive: {
      // Ping every 10 s so an idle watch connection to a dead peer is noticed within ~15 s.
      timeMs: 10_000,
      // 5 s is many round trips even cross-region; longer just delays failover.
      timeoutMs: 5_000,
      // Control connections sit idle between watches; that is exactly when a dead peer must be found.
      permitWithoutCalls: true,
    },
    // Control calls answer in milliseconds; 2 s leaves room for one retry on another peer.
    deadlineMs: 2_000,
    // Control streams are watches that live as long as the process; keepalive (10 s + 5 s) finds a dead peer.
    streamDeadlineMs: 'none',
    // One TCP SYN retransmit (1 s) plus the TLS handshake, inside one call's 2 s deadline.
    connectTimeoutMs: 1_500,
    retry: {
      // One try plus two retries: enough to step over a restarting peer without amplifying an outage.
      maxAttempts: 3,
      // Short first pause: a control call that failed fast is usually fine on the next peer.
      initialBackoffMs: 50,
      // Caps the wait so retries stay inside the 2 s deadline.
      maxBackoffMs: 1_000,
      // Exponential backoff, the gRPC retry-design default.
      multiplier: 2,
      // Randomising 20 % of each pause spreads synchronized clients yet keeps the delay predictable.
      jitter: 0.2,
      // UNAVAILABLE means the call was not processed, so a retry is safe even for non-idempotent calls.
      retryableStatusCodes: ['UNAVAILABLE'],
    },
    // Matches the common 30 s termination grace: running watches and calls finish before a swap closes them.
    drainGraceMs: 30_000,
    http: {
      // Small calls multiplex well on HTTP/2; four connections spread load past the 100-stream limit.
      connectionsPerEndpoint: 4,
    },
    peerChooser: {
      // Control calls are small and uniform: rotating spreads them evenly with no bookkeeping.
      kind: 'round-robin',
    },
    breaker: {
      // Control traffic is sparse: a ratio needs volume it rarely has, a run of failures does not.
      mode: 'consecutive',
      // Five in a row rules out a single dropped connection yet stops hammering a dead peer within a second of traffic.
      consecutiveFailures: 5,
      // Used only in failure-ratio mode: more than half the window's calls failing means the peer is unwell.
      failureRatio: 0.5,
      // Used only in failure-ratio mode: 10 s is 5 × the 2 s deadline, so slow failures land inside the window.
      windowMs: 10_000,
      // Used only in failure-ratio mode: fewer than 20 calls is too few to judge a ratio.
      minimumCalls: 20,
      // A restarting control-plane process is back within seconds; probe after 5 s.
      halfOpenAfterMs: 5_000,
      // Unavailable or timing out says "this peer is unwell"; other statuses are the call's own fault.
      failureStatusCodes: ['UNAVAILABLE', 'DEADLINE_EXCEEDED'],
      // Envoy's panic threshold: below half the replicas, spreading load over all beats refusing it (a lone peer is never ejected).
      maxEjectionPercent: 50,
      // Only with maxEjectionPercent 100: failing fast keeps an outage from piling calls on dead peers; probes still find recovery.
      whenAllOpen: 'fail-fast',
    },
  },
  'data-plane': {
    // Bulk streams gain the most from HTTP/3's loss recovery; HTTP/2 remains the fallback.
    http3: 'prefer',
    // Same RFC 8305 delay: the race costs nothing when HTTP/3 works.
    http3RaceDelayMs: 250,
    http3Health: {
      // Flipping protocols mid-transfer hurts throughput; stay on HTTP/2 for a minute after a failure.
      initialBackoffMs: 60_000,
      // Re-probe at least every 15 min.
      maxBackoffMs: 900_000,
    },
    tls: {
      // Data is at least as sensitive as control traffic: mutual TLS by default.
      mode: 'mtls',
      // No revocation lists unless the deployment ships them.
      crlFiles: [],
      // Revocation needs CRL files, so it cannot be on by default.
      checkRevocation: false,
      // Same backstop poll as the control plane: rotations land within half a second.
      reloadPollMs: 500,
    },
    limits: {
      // Room for batches and snapshots; bigger payloads should be streamed in chunks.
      maxReceiveMessageBytes: 16 * MiB,
      // Symmetric with the receive cap.
      maxSendMessageBytes: 16 * MiB,
    },
    keepalive: {
      // Busy connections prove liveness with traffic; a ping a minute stays under servers' ping policing.
      timeMs: 60_000,
      // Generous: a saturated link can delay a ping ack behind megabytes of data.
      timeoutMs: 20_000,
      // No pings on idle connections: thousands of idle data connections must not ping servers awake.
      permitWithoutCalls: false,
    },
    // Bulk calls move megabytes; 30 s fits a 16 MiB message on a slow link.
    deadlineMs: 30_000,
    // Long transfers are streams whose length the caller knows, not the profile; keepalive finds a dead peer.
    streamDeadlineMs: 'none',
    // Data-plane peers may be farther away and busier; 5 s still fails a black-holed peer quickly.
    connectTimeoutMs: 5_000,
    retry: {
      // A retry replays a large payload; one retry covers a restarting peer without doubling load twice.
      maxAttempts: 2,
      // Let a struggling peer breathe before the replay.
      initialBackoffMs: 100,
      // Small next to the 30 s deadline.
      maxBackoffMs: 2_000,
      // Exponential backoff, the gRPC retry-design default.
      multiplier: 2,
      // Randomising 20 % of each pause spreads synchronized clients.
      jitter: 0.2,
      // Only UNAVAILABLE is known to be unprocessed and so safe to replay.
      retryableStatusCodes: ['UNAVAILABLE'],
    },
    // Long transfers need time to finish on the old connection after a certificate or endpoint swap.
    drainGraceMs: 120_000,
    http: {
      // Large messages hog a connection's flow-control window; more connections keep throughput up.
      connectionsPerEndpoint: 16,
    },
    peerChooser: {
      // Bulk calls vary widely in length: sending each to the less busy of two random peers avoids piling onto a slow one.
      kind: 'fewest-pending',
    },
    breaker: {
      // A run of failures is judged the same at any volume; failure-ratio suits steady high-volume traffic (opt in).
      mode: 'consecutive',
      // Five in a row rules out one dropped connection yet stops replaying payloads onto a dead peer.
      consecutiveFailures: 5,
      // Used only in failure-ratio mode: more than half the window's calls failing means the peer is unwell, not unlucky.
      failureRatio: 0.5,
      // Used only in failure-ratio mode: 60 s is 2 × the 30 s deadline, so a call that times out is still counted.
      windowMs: 60_000,
      // Used only in failure-ratio mode: fewer than 20 calls in the window is too few to judge a ratio.
      minimumCalls: 20,
      // A data node takes longer to come back (warm-up, replay); probe after 15 s.
      halfOpenAfterMs: 15_000,
      // Unavailable or timing out says "this peer is unwell"; other statuses are the call's own fault.
      failureStatusCodes: ['UNAVAILABLE', 'DEADLINE_EXCEEDED'],
      // Same panic threshold as the control plane: an overload spread over all replicas must not become an outage.
      maxEjectionPercent: 50,
      // Only with maxEjectionPercent 100: failing fast keeps an outage from piling replays on dead peers.
      whenAllOpen: 'fail-fast',
    },
  },
} satisfies Record<PresetName, ProfileOptions>);
