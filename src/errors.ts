import type { CertificateFailure } from './tls/verify-errors.js';

/**
 * Every error this library raises on purpose is an {@link OmniRelayError} with a stable
 * `code` that callers can switch on, and a message that says what to fix.
 */
export type OmniRelayErrorCode =
  | 'CONFIG_INVALID'
  | 'PROFILE_UNKNOWN'
  | 'ENDPOINT_INVALID'
  | 'ENDPOINT_INSECURE'
  | 'ENDPOINT_UNKNOWN'
  | 'METHOD_UNKNOWN'
  | 'METHOD_UNSUPPORTED'
  | 'TLS_CLIENT_CERT_MISSING'
  | 'TLS_CLIENT_CERT_UNREADABLE'
  | 'TLS_KEY_MISMATCH'
  | 'TLS_CA_UNREADABLE'
  | 'TLS_CRL_UNREADABLE'
  | 'TLS_CLIENT_CERT_EXPIRED'
  | 'TLS_PEER_UNTRUSTED'
  | 'TLS_PEER_NAME_MISMATCH'
  | 'TLS_PEER_EXPIRED'
  | 'TLS_REVOKED'
  | 'TLS_CUSTOM_CHECK_REJECTED'
  | 'TLS_CLIENT_CERT_REQUIRED'
  | 'TLS_CLIENT_CERT_REJECTED'
  | 'TLS_HANDSHAKE_FAILED'
  | 'PEER_UNAVAILABLE'
  | 'PEER_DRAINING'
  | 'CIRCUIT_OPEN'
  | 'RPC_FAILED'
  | 'DISPOSED'
  | 'PROCEDURE_INVALID'
  | 'PROCEDURE_DUPLICATE'
  | 'OUTBOUND_MISSING'
  | GossipErrorCode
  | EtcdErrorCode
  | LeadershipErrorCode;

/**
 * Why a call to etcd failed (see EtcdError in src/controlplane/leadership/etcd/errors.ts and
 * docs/etcd.md).
 */
export type EtcdErrorCode =
  | 'ETCD_UNAVAILABLE'
  | 'ETCD_DEADLINE_EXCEEDED'
  | 'ETCD_TLS_FAILED'
  | 'ETCD_LEASE_NOT_FOUND'
  | 'ETCD_LEASE_EXPIRED'
  | 'ETCD_COMPACTED'
  | 'ETCD_WATCH_CANCELED'
  | 'ETCD_REQUEST_FAILED';

/** Why the gossip agent refused or could not complete a gossip message (see GossipError). */
export type GossipErrorCode =
  | 'GOSSIP_IDENTITY_MISMATCH'
  | 'GOSSIP_CLUSTER_MISMATCH'
  | 'GOSSIP_MESSAGE_INVALID'
  | 'GOSSIP_MESSAGE_TOO_LARGE'
  | 'GOSSIP_WRONG_TARGET'
  | 'GOSSIP_NOT_RUNNING';

/** Why a leadership operation failed (see src/controlplane/leadership/errors.ts). */
export type LeadershipErrorCode =
  | 'LEADERSHIP_STALE_FENCE_TOKEN'
  | 'LEADERSHIP_LEASE_LOST'
  | 'LEADERSHIP_STORE_UNAVAILABLE'
  | 'LEADERSHIP_NOT_LEADER'
  | 'LEADERSHIP_NOT_RUNNING';

export class OmniRelayError extends Error {
  readonly code: OmniRelayErrorCode;

  constructor(code: OmniRelayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One rejected configuration key and why. */
export interface ConfigIssue {
  /** Dotted path of the key, e.g. `profiles.control-plane.keepalive.timeMs`. */
  readonly key: string;
  readonly message: string;
}

/** A configuration snapshot was rejected; `issues` names every bad key. */
export class ConfigError extends OmniRelayError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], source = 'options') {
    const list = issues.map((i) => `  - ${i.key}: ${i.message}`).join('\n');
    super('CONFIG_INVALID', `Invalid OmniRelay ${source} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${list}`);
    this.issues = issues;
  }
}

/** A profile name that no configuration defines. */
export class UnknownProfileError extends OmniRelayError {
  constructor(readonly profile: string, known: readonly string[]) {
    super('PROFILE_UNKNOWN', `Unknown profile "${profile}". Defined profiles: ${known.join(', ')}. Add it under "profiles" in the options.`);
  }
}

/**
 * An endpoint that cannot be dialled as given: `ENDPOINT_INVALID` (not a usable URL or
 * `host:port`), `ENDPOINT_INSECURE` (plaintext for a TLS profile), `ENDPOINT_UNKNOWN` (a name
 * no configured endpoint has; `known` lists the configured ones).
 */
export class EndpointError extends OmniRelayError {
  constructor(
    code: 'ENDPOINT_INVALID' | 'ENDPOINT_INSECURE' | 'ENDPOINT_UNKNOWN',
    readonly endpoint: string,
    message: string,
    readonly known: readonly string[] = [],
  ) {
    super(code, message);
  }
}

/**
 * A call named a method its service definition does not have (`METHOD_UNKNOWN`), or one of
 * another kind than the call (`METHOD_UNSUPPORTED`: a streaming method through `unary`, a
 * client-streaming one anywhere). `methods` lists the methods the call could have used.
 */
export class MethodError extends OmniRelayError {
  constructor(
    code: 'METHOD_UNKNOWN' | 'METHOD_UNSUPPORTED',
    readonly service: string,
    readonly method: string,
    readonly methods: readonly string[],
    message: string,
  ) {
    super(code, message);
  }
}

export type TlsErrorCode = Extract<OmniRelayErrorCode, `TLS_${string}`>;

/**
 * A TLS or mTLS failure. `file` names the file at fault when there is one, `peer` the
 * endpoint when the failure happened against a peer, `verifyError` the exact reason when we
 * refused the peer's certificate (OpenSSL's verify error name, e.g. `CRL_HAS_EXPIRED`, or
 * `ERR_TLS_CERT_ALTNAME_INVALID`; the same over HTTP/2 and HTTP/3).
 */
export class TlsError extends OmniRelayError {
  readonly file: string | undefined;
  readonly peer: string | undefined;
  readonly profile: string | undefined;
  readonly verifyError: CertificateFailure | undefined;

  constructor(
    code: TlsErrorCode,
    message: string,
    details: { file?: string | undefined; peer?: string | undefined; profile?: string | undefined; verifyError?: CertificateFailure | undefined; cause?: unknown } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.file = details.file;
    this.peer = details.peer;
    this.profile = details.profile;
    this.verifyError = details.verifyError;
  }
}

/** The call could not be placed on any peer. */
export class PeerUnavailableError extends OmniRelayError {
  constructor(code: 'PEER_UNAVAILABLE' | 'PEER_DRAINING' | 'CIRCUIT_OPEN', readonly peers: readonly string[], message: string) {
    super(code, message);
  }
}

/** Used after the factory (or the module that owns it) has been disposed. */
export class DisposedError extends OmniRelayError {
  constructor(what: string) {
    super('DISPOSED', `${what} has been disposed; resolve a new one from the container.`);
  }
}

/**
 * How a transport failed below gRPC, when it did. Decides fallback, health memory and
 * transparent retry:
 * - `connect`, `handshake`: no connection (nothing reached the server);
 * - `idle-timeout`: the HTTP/3 connection died mid-call (the request may have been processed);
 * - `stream`: the stream or its connection failed after the request went out;
 * - `refused`: the server refused the request **without processing it** — HTTP/3: the stream
 *   was reset with H3_REQUEST_REJECTED, or its id was at or above the server's GOAWAY id;
 *   HTTP/2: RST_STREAM REFUSED_STREAM, which is also how a GOAWAY refuses the streams above
 *   its last stream id. Safe to retry on a new connection, and never a breaker failure.
 */
export type TransportFailureKind = 'connect' | 'handshake' | 'idle-timeout' | 'stream' | 'refused';

/**
 * A call ended with a non-OK gRPC status. `status` is the numeric gRPC code and
 * `statusName` its name; `failure` says whether the transport itself failed and how.
 */
export class RpcError extends OmniRelayError {
  constructor(
    readonly status: number,
    readonly statusName: string,
    readonly details: string,
    readonly context: {
      endpoint: string;
      protocol: 'h2' | 'h3' | 'none';
      failure?: TransportFailureKind | undefined;
      trailers?: Readonly<Record<string, string>> | undefined;
      /** Set when HTTP/3 was required (`http3: 'require'`), so HTTP/2 was never tried. */
      http3Required?: boolean | undefined;
      /**
       * Set on DEADLINE_EXCEEDED when the attempt had less time than its profile's `deadlineMs`
       * (the caller set a tighter deadline, or retries used part of it): running out of it does
       * not show the peer is at fault, so breakers do not count it.
       */
      callerDeadline?: boolean | undefined;
    },
  ) {
    super('RPC_FAILED', `${statusName} from ${context.endpoint} over ${context.protocol}: ${details}`);
  }

  get failure(): TransportFailureKind | undefined {
    return this.context.failure;
  }

  /** The server refused the request without processing it (see {@link TransportFailureKind}). */
  get refused(): boolean {
    return this.context.failure === 'refused';
  }

  /** HTTP/3 was required for this call (`http3: 'require'` on the profile or the endpoint's hint): no HTTP/2 fallback was tried. */
  get http3Required(): boolean {
    return this.context.http3Required === true;
  }

  /** A deadline tighter than the profile's ran out (see `context.callerDeadline`): not evidence against the peer. */
  get callerDeadline(): boolean {
    return this.context.callerDeadline === true;
  }
}

/**
 * A dispatcher refused a procedure or a call: `PROCEDURE_INVALID` (bad name, kind, codec or
 * handler, or registration after an inbound started), `PROCEDURE_DUPLICATE` (service + name
 * registered twice), `OUTBOUND_MISSING` (no outbound configured for the called service).
 * `service` and `procedure` name the one at fault.
 */
export class DispatcherError extends OmniRelayError {
  constructor(
    code: 'PROCEDURE_INVALID' | 'PROCEDURE_DUPLICATE' | 'OUTBOUND_MISSING',
    readonly service: string,
    readonly procedure: string | undefined,
    message: string,
  ) {
    super(code, message);
  }
}
