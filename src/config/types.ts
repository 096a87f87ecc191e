/**
 * Resolved (validated, defaults applied) option types. Every snapshot the library works
 * with has this shape; `ControlPlaneOptionsInput` is what users write.
 * Defaults and the reasons behind them are listed in docs/control-plane-client-factory.md.
 */
import type { GrpcStatusName } from '../grpc/status.js';

/**
 * Whether a profile tries HTTP/3 first and falls back to HTTP/2 (`prefer`), never uses it
 * (`disable`), or uses HTTP/3 only (`require`: no race, no fallback; an HTTP/3 failure is the
 * call's error). `require` needs TLS (a ConfigError on an `insecure` profile).
 */
export type Http3Preference = 'prefer' | 'disable' | 'require';

/**
 * An endpoint's HTTP/3 hint: `allow` (the profile decides), `deny` (HTTP/2 only, whatever the
 * profile prefers) or `require` (HTTP/3 only, no fallback, even under a `prefer` profile). A
 * hint that leaves a call no protocol — `require` under a profile that disables HTTP/3 or is
 * insecure, `deny` under a profile that requires it — is a ConfigError: at validation for a
 * configured hint, when the call is made for a live one.
 */
export type Http3Hint = 'allow' | 'deny' | 'require';

/**
 * `mtls`: verify the server and present a client certificate. `tls`: verify the server only.
 * `insecure`: plaintext, only when `allowInsecure` is true at the top level; never reached by fallback.
 */
export type TlsMode = 'mtls' | 'tls' | 'insecure';

export interface TlsOptions {
  readonly mode: TlsMode;
  /** PEM client certificate (chain). Required for `mtls` unless `pfxFile` is set. */
  readonly certFile?: string | undefined;
  /** PEM private key matching `certFile`. */
  readonly keyFile?: string | undefined;
  /** PKCS#12 bundle holding the client certificate and key (alternative to certFile/keyFile). */
  readonly pfxFile?: string | undefined;
  /** Password of `pfxFile`. */
  readonly pfxPassword?: string | undefined;
  /** PEM CA bundle that server certificates must chain to. Absent: the system roots. */
  readonly caFile?: string | undefined;
  /** Name checked against the server certificate instead of the endpoint's host. */
  readonly serverNameOverride?: string | undefined;
  /** PEM CRL files enforced during the handshake. */
  readonly crlFiles: readonly string[];
  /** Require CRLs (crlFiles must not be empty) and reject revoked peers. */
  readonly checkRevocation: boolean;
  /** How often the files are polled for changes, besides file watches (ms). */
  readonly reloadPollMs: number;
}

export interface LimitsOptions {
  readonly maxSendMessageBytes: number;
  readonly maxReceiveMessageBytes: number;
}

export interface KeepaliveOptions {
  /** Interval between keepalive pings (ms). */
  readonly timeMs: number;
  /** How long to wait for a ping ack before the connection is considered dead (ms). */
  readonly timeoutMs: number;
  /** Ping even when no call is running. */
  readonly permitWithoutCalls: boolean;
}

/** gRPC status code names, e.g. `UNAVAILABLE` (defined once, in src/grpc/status.ts). */
export type { GrpcStatusName } from '../grpc/status.js';

export interface RetryOptions {
  /** Total attempts including the first (1 = no retry). */
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  /** Fraction (0..1) of each backoff that is randomised. */
  readonly jitter: number;
  readonly retryableStatusCodes: readonly GrpcStatusName[];
}

export interface Http3HealthOptions {
  /** First time an endpoint stays on HTTP/2 after HTTP/3 failed (ms); doubles on each repeated failure. */
  readonly initialBackoffMs: number;
  /** Cap of that backoff (ms). */
  readonly maxBackoffMs: number;
}

export interface HttpClientOptions {
  /** Max connections per endpoint for the undici dispatcher. */
  readonly connectionsPerEndpoint: number;
}

/** How a profile picks one peer out of several (see docs/peers-and-breakers.md). */
export type PeerChooserKind = 'round-robin' | 'preferred' | 'fewest-pending';

export interface PeerChooserOptions {
  /** `round-robin`, `preferred` (sticky to `preferred`, fails over and back) or `fewest-pending` (power of two choices). */
  readonly kind: PeerChooserKind;
  /** For `preferred` only: a configured endpoint name or `host:port`. */
  readonly preferred?: string | undefined;
}

/** `consecutive`: open after N failures in a row. `failure-ratio`: open when failures exceed a ratio over a sliding window. */
export type CircuitBreakerMode = 'consecutive' | 'failure-ratio';

/** What a call does when every peer's circuit is open. */
export type AllCircuitsOpenPolicy = 'fail-fast' | 'probe-least-recently-failed';

export interface CircuitBreakerOptions {
  readonly mode: CircuitBreakerMode;
  /** `consecutive`: failures in a row that open the circuit. */
  readonly consecutiveFailures: number;
  /** `failure-ratio`: the circuit opens when more than this fraction (0..1, exclusive) of the window's calls failed. */
  readonly failureRatio: number;
  /** `failure-ratio`: length of the sliding window (ms). */
  readonly windowMs: number;
  /** `failure-ratio`: calls the window must hold before the ratio is judged. */
  readonly minimumCalls: number;
  /** How long an open circuit rejects calls before one half-open probe may go (ms). */
  readonly halfOpenAfterMs: number;
  /** gRPC statuses that count as a peer failure (TLS handshake failures always count). */
  readonly failureStatusCodes: readonly GrpcStatusName[];
  /**
   * At most this percentage (0–100) of a call target's peers is kept out for an open circuit,
   * rounded down but at least one when the target has two or more peers; peers beyond it take
   * calls anyway (those whose last failure is oldest first), so an overload cannot eject every
   * replica. 100 lets every circuit eject its peer (then `whenAllOpen` decides).
   */
  readonly maxEjectionPercent: number;
  /** Every peer open (only possible with `maxEjectionPercent` 100): fail fast with CIRCUIT_OPEN, or send one probe to the peer that failed longest ago. */
  readonly whenAllOpen: AllCircuitsOpenPolicy;
}

export interface ProfileOptions {
  readonly http3: Http3Preference;
  /** Happy-eyeballs delay before HTTP/2 is dialled alongside a pending HTTP/3 handshake (ms). */
  readonly http3RaceDelayMs: number;
  readonly http3Health: Http3HealthOptions;
  readonly tls: TlsOptions;
  readonly limits: LimitsOptions;
  readonly keepalive: KeepaliveOptions;
  /** Deadline of a unary call that sets none (ms). */
  readonly deadlineMs: number;
  /**
   * Deadline of a stream (server, client or bidi) that sets none: ms, or `'none'` (no deadline;
   * keepalive is the liveness check, so a dead peer still ends the stream).
   */
  readonly streamDeadlineMs: number | 'none';
  /** Time allowed to establish a connection (ms). */
  readonly connectTimeoutMs: number;
  readonly retry: RetryOptions;
  /** How long an old connection generation may keep running calls after a swap (ms). */
  readonly drainGraceMs: number;
  readonly http: HttpClientOptions;
  /** Peer choice when a call names several peers (ignored when TOKENS.PeerChooser is rebound). */
  readonly peerChooser: PeerChooserOptions;
  /** Per-peer circuit breaker of this profile's calls. */
  readonly breaker: CircuitBreakerOptions;
}

/** Per-endpoint hints. They also arrive live on the EndpointHints stream. */
export interface EndpointHint {
  /** `deny` keeps the endpoint on HTTP/2 whatever the profile prefers; `require` keeps it on HTTP/3 only. */
  readonly http3?: Http3Hint | undefined;
  /** A draining endpoint takes no new calls; running calls finish. */
  readonly draining?: boolean | undefined;
}

export interface EndpointOptions {
  /** `https://host:port` (or `http://` for an `insecure` profile). */
  readonly url: string;
  /** Profile used when a call names this endpoint without a profile. */
  readonly profile: string;
  /** Metadata added to every call to this endpoint. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly hints: EndpointHint;
}

export interface ControlPlaneOptions {
  /** Must be true for any profile to use `tls.mode: insecure`. */
  readonly allowInsecure: boolean;
  /** Always contains `control-plane` and `data-plane`. */
  readonly profiles: Readonly<Record<string, ProfileOptions>>;
  readonly endpoints: Readonly<Record<string, EndpointOptions>>;
}

type DeepPartial<T> = T extends readonly (infer U)[]
  ? readonly U[]
  : T extends object
    ? { -readonly [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** A profile as users write it: any field may be omitted; `preset` picks the defaults. */
export type ProfileOptionsInput = DeepPartial<ProfileOptions> & {
  /** Defaults to start from. Default: the profile's own name when it names a preset, else `control-plane`. */
  preset?: 'control-plane' | 'data-plane';
};

export interface EndpointOptionsInput {
  url: string;
  profile?: string;
  metadata?: Record<string, string>;
  hints?: EndpointHint;
}

/** What users bind to `TOKENS.ControlPlaneOptions` (or emit on an Observable). */
export interface ControlPlaneOptionsInput {
  allowInsecure?: boolean;
  profiles?: Record<string, ProfileOptionsInput>;
  endpoints?: Record<string, EndpointOptionsInput>;
}
