import { endedWithoutStatus } from '../../../transport/http2/grpc-js-failures.js';
import { DisposedError, OmniRelayError, PeerUnavailableError, RpcError, TlsError, type EtcdErrorCode, type TlsErrorCode } from '../../../errors.js';

/**
 * A call to etcd failed. `code` says what to do about it:
 *
 * - `ETCD_UNAVAILABLE`: etcd could not be reached (connection refused, reset, no peer left to
 *   try) or answered UNAVAILABLE (e.g. `etcdserver: no leader`). `endpoint` names the member.
 * - `ETCD_DEADLINE_EXCEEDED`: no answer within the call's deadline (a member that accepts TCP
 *   but does not answer, or a slow cluster).
 * - `ETCD_TLS_FAILED`: the TLS handshake failed either way; `tlsCode` is the factory's
 *   `TlsError` code (`TLS_PEER_UNTRUSTED`: etcd's certificate does not chain to the profile's
 *   `caFile`; `TLS_CLIENT_CERT_REQUIRED` / `TLS_CLIENT_CERT_REJECTED`: etcd refused us).
 * - `ETCD_LEASE_NOT_FOUND`: etcd does not know `leaseId` (it expired or was revoked).
 * - `ETCD_LEASE_EXPIRED`: the keep-alive could not renew `leaseId` before its TTL ran out (etcd
 *   unreachable for that long); the lease must be treated as lost.
 * - `ETCD_COMPACTED`: a watch asked for history etcd has compacted (`compactRevision`).
 * - `ETCD_WATCH_CANCELED`: etcd cancelled a watch (`reason`).
 * - `ETCD_REQUEST_FAILED`: any other refusal; `status` is the gRPC status name and the
 *   message carries etcd's own text (e.g. `etcdserver: duplicate key given in txn request`).
 *
 * Every one names the operation (`Txn`, `LeaseKeepAlive`, ...), the endpoint, and the key or
 * lease it was about; `cause` is the factory's error.
 */
export class EtcdError extends OmniRelayError {
  declare readonly code: EtcdErrorCode;
  readonly operation: string;
  /** `host:port` of the member that failed, or the configured endpoints when no member was reached. */
  readonly endpoint: string;
  readonly key: string | undefined;
  readonly leaseId: bigint | undefined;
  /** The gRPC status name etcd (or the transport) ended the call with, when there was one. */
  readonly status: string | undefined;
  /** `ETCD_TLS_FAILED` only: the factory's TLS error code. */
  readonly tlsCode: TlsErrorCode | undefined;
  /** `ETCD_COMPACTED` only: the oldest revision etcd still has. */
  readonly compactRevision: bigint | undefined;

  constructor(
    code: EtcdErrorCode,
    message: string,
    details: {
      readonly operation: string;
      readonly endpoint: string;
      readonly key?: string | undefined;
      readonly leaseId?: bigint | undefined;
      readonly status?: string | undefined;
      readonly tlsCode?: TlsErrorCode | undefined;
      readonly compactRevision?: bigint | undefined;
      readonly cause?: unknown;
    },
  ) {
    super(code, message, { cause: details.cause });
    this.operation = details.operation;
    this.endpoint = details.endpoint;
    this.key = details.key;
    this.leaseId = details.leaseId;
    this.status = details.status;
    this.tlsCode = details.tlsCode;
    this.compactRevision = details.compactRevision;
  }
}

/** What a failed call was about, for the error's message and fields. */
export interface EtcdCallContext {
  readonly operation: string;
  /** The endpoints the call could go to (named when the error does not say which one failed). */
  readonly endpoints: readonly string[];
  readonly key?: string | undefined;
  readonly leaseId?: bigint | undefined;
}

// etcd's own messages (etcd 3.4 etcdserver/api/v3rpc/rpctypes/error.go), matched on the status
// they come with: the gRPC status alone does not tell a missing lease from a missing key.
const LEASE_NOT_FOUND = 'etcdserver: requested lease not found';
const COMPACTED = 'mvcc: required revision has been compacted';

/**
 * Maps what the factory threw for an etcd call to an {@link EtcdError}. A `DisposedError` (the
 * client or the factory was disposed) and errors that are not the factory's (a bug) pass through.
 */
export function toEtcdError(error: unknown, context: EtcdCallContext): unknown {
  if (error instanceof EtcdError || error instanceof DisposedError) return error;
  const about = describe(context);
  const base = { operation: context.operation, key: context.key, leaseId: context.leaseId, cause: error };
  if (error instanceof RpcError) {
    const endpoint = error.context.endpoint;
    const details = { ...base, endpoint, status: error.statusName };
    if (error.statusName === 'NOT_FOUND' && error.details.includes(LEASE_NOT_FOUND)) {
      return new EtcdError('ETCD_LEASE_NOT_FOUND', `etcd at ${endpoint} does not know lease ${leaseText(context.leaseId)} (${context.operation}: ${error.details}); it expired or was revoked`, details);
    }
    if (error.statusName === 'OUT_OF_RANGE' && error.details.includes(COMPACTED)) {
      return new EtcdError('ETCD_COMPACTED', `etcd at ${endpoint} has compacted the revision ${about} asked for: ${error.details}`, details);
    }
    // A member that stops closes its streams without a status (grpc-js: INTERNAL, "Call ended
    // without gRPC status"): it went away, like a connection that dropped.
    const wentAway = error.statusName === 'INTERNAL' && endedWithoutStatus(error.details);
    if (error.statusName === 'UNAVAILABLE' || error.failure === 'connect' || error.failure === 'handshake' || wentAway) {
      return new EtcdError('ETCD_UNAVAILABLE', `etcd at ${endpoint} is unavailable (${about}): ${error.statusName}${error.failure !== undefined ? ` (${error.failure})` : ''}: ${error.details}`, details);
    }
    if (error.statusName === 'DEADLINE_EXCEEDED') {
      return new EtcdError('ETCD_DEADLINE_EXCEEDED', `etcd at ${endpoint} did not answer ${about} within the deadline: ${error.details}`, details);
    }
    return new EtcdError('ETCD_REQUEST_FAILED', `etcd at ${endpoint} refused ${about}: ${error.statusName}: ${error.details}`, details);
  }
  if (error instanceof TlsError) {
    const endpoint = error.peer ?? context.endpoints.join(', ');
    return new EtcdError('ETCD_TLS_FAILED', `TLS with etcd at ${endpoint} failed (${about}): ${error.code}: ${error.message}`, { ...base, endpoint, tlsCode: error.code as TlsErrorCode });
  }
  if (error instanceof PeerUnavailableError) {
    const endpoint = error.peers.length > 0 ? error.peers.join(', ') : context.endpoints.join(', ');
    return new EtcdError('ETCD_UNAVAILABLE', `no etcd member can take ${about} (${error.code}): ${error.message}`, { ...base, endpoint, status: error.code });
  }
  return error;
}

/** `Txn (key "a", lease 7 (0x7))` */
function describe(context: EtcdCallContext): string {
  const parts: string[] = [];
  if (context.key !== undefined) parts.push(`key "${context.key}"`);
  if (context.leaseId !== undefined) parts.push(`lease ${leaseText(context.leaseId)}`);
  return parts.length === 0 ? context.operation : `${context.operation} (${parts.join(', ')})`;
}

/** A lease id as etcd prints it (decimal) and as etcdctl shows it (hex). */
export function leaseText(id: bigint | undefined): string {
  return id === undefined ? '(none)' : `${id.toString()} (0x${id.toString(16)})`;
}
