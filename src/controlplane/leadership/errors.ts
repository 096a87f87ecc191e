import { OmniRelayError, type LeadershipErrorCode } from '../../errors.js';
import { GRPC_STATUS } from '../../grpc/status.js';

/**
 * The typed errors of leader election, shared by every `ILeaseStore` (embedded, etcd) and the
 * leadership agent. Each has a stable `code` and a `grpcStatus` for when it crosses a service.
 */
export abstract class LeadershipError extends OmniRelayError {
  declare readonly code: LeadershipErrorCode;

  constructor(code: LeadershipErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }

  /** The gRPC status this error is answered with when it crosses a service. */
  get grpcStatus(): number {
    return LEADERSHIP_STATUS[this.code];
  }
}

/**
 * A fenced write carried a fence token that is no longer the scope's current one: a newer leader
 * was elected (or nobody leads) since the writer was. The write was not applied.
 * `current` is undefined when the scope has no leader now.
 */
export class StaleFenceTokenError extends LeadershipError {
  readonly scope: string;
  readonly presented: bigint;
  readonly current: bigint | undefined;

  constructor(scope: string, presented: bigint, current: bigint | undefined) {
    super(
      'LEADERSHIP_STALE_FENCE_TOKEN',
      `Fenced write to scope "${scope}" rejected: fence token ${presented} is stale (current: ${current === undefined ? 'no leader' : current.toString()}). ` +
        'This node is no longer the leader of the scope; stop the work and let the current leader redo it.',
    );
    this.scope = scope;
    this.presented = presented;
    this.current = current;
  }
}

/** The lease expired or was revoked (or the store does not know it): everything attached to it is gone. */
export class LeaseLostError extends LeadershipError {
  readonly leaseId: string;
  readonly scope: string | undefined;

  constructor(leaseId: string, scope?: string, options?: { cause?: unknown }) {
    super('LEADERSHIP_LEASE_LOST', `Lease ${leaseId}${scope === undefined ? '' : ` (scope "${scope}")`} is gone: it expired or was revoked. Campaign again with a new lease.`, options);
    this.leaseId = leaseId;
    this.scope = scope;
  }
}

/** The lease store could not be reached or answered with a failure; the operation may be retried. */
export class LeaseStoreUnavailableError extends LeadershipError {
  readonly store: string;
  readonly operation: string;

  constructor(store: string, operation: string, detail: string, options?: { cause?: unknown }) {
    super('LEADERSHIP_STORE_UNAVAILABLE', `Lease store ${store} could not ${operation}: ${detail}. Retry later; a leader that cannot renew steps down before its lease can expire.`, options);
    this.store = store;
    this.operation = operation;
  }
}

/** An operation needs this node to lead the scope, and it does not (or not any more). */
export class NotLeaderError extends LeadershipError {
  readonly scope: string;
  readonly nodeId: string;

  constructor(scope: string, nodeId: string) {
    super('LEADERSHIP_NOT_LEADER', `Node ${nodeId} does not lead scope "${scope}"; only the leader may do this. Watch the scope and act when this node is elected.`);
    this.scope = scope;
    this.nodeId = nodeId;
  }
}

/** The agent (or store) is not running: not started yet, or disposed. */
export class LeadershipNotRunningError extends LeadershipError {
  constructor(what: string) {
    super('LEADERSHIP_NOT_RUNNING', `${what} is not running (not started, or disposed).`);
  }
}

const LEADERSHIP_STATUS: Readonly<Record<LeadershipErrorCode, number>> = {
  LEADERSHIP_STALE_FENCE_TOKEN: GRPC_STATUS.FAILED_PRECONDITION,
  LEADERSHIP_LEASE_LOST: GRPC_STATUS.FAILED_PRECONDITION,
  LEADERSHIP_STORE_UNAVAILABLE: GRPC_STATUS.UNAVAILABLE,
  LEADERSHIP_NOT_LEADER: GRPC_STATUS.FAILED_PRECONDITION,
  LEADERSHIP_NOT_RUNNING: GRPC_STATUS.UNAVAILABLE,
};
