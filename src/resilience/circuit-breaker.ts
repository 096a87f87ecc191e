import { BrokenCircuitError, circuitBreaker, CircuitState, ConsecutiveBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import { Subject, type Observable } from 'rxjs';
import { PeerUnavailableError, RpcError, TlsError } from '../errors.js';
import { GRPC_STATUS } from '../transport/grpc-status.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * One circuit per peer (bound to `TOKENS.CircuitBreaker`). The factory skips peers whose
 * circuit is open and runs every attempt through `execute`, which decides from the
 * outcome whether it counts as a failure.
 */
export interface ICircuitBreaker {
  state(peer: string): BreakerState;
  execute<T>(peer: string, call: () => Promise<T>): Promise<T>;
  readonly changes$: Observable<{ readonly peer: string; readonly state: BreakerState }>;
}

/** gRPC statuses that say "this peer is unwell" (default: UNAVAILABLE, DEADLINE_EXCEEDED). */
export const DEFAULT_BREAKER_FAILURE_CODES: readonly number[] = [GRPC_STATUS.UNAVAILABLE, GRPC_STATUS.DEADLINE_EXCEEDED];

/** A failed TLS handshake with a peer counts too: that peer cannot be used as configured. */
function isPeerFailure(codes: readonly number[]) {
  return (error: Error): boolean => error instanceof TlsError || (error instanceof RpcError && codes.includes(error.status));
}

/**
 * Opens a peer's circuit after `consecutiveFailures` failures in a row and lets one probe
 * through after `halfOpenAfterMs` (cockatiel's ConsecutiveBreaker).
 */
export class ConsecutiveFailureCircuitBreaker implements ICircuitBreaker {
  readonly #policies = new Map<string, CircuitBreakerPolicy>();
  readonly #changes = new Subject<{ readonly peer: string; readonly state: BreakerState }>();
  readonly #options: { consecutiveFailures: number; halfOpenAfterMs: number; failureCodes: readonly number[] };

  constructor(options: { consecutiveFailures?: number; halfOpenAfterMs?: number; failureCodes?: readonly number[] } = {}) {
    this.#options = {
      consecutiveFailures: options.consecutiveFailures ?? 5,
      halfOpenAfterMs: options.halfOpenAfterMs ?? 5_000,
      failureCodes: options.failureCodes ?? DEFAULT_BREAKER_FAILURE_CODES,
    };
  }

  get changes$(): Observable<{ readonly peer: string; readonly state: BreakerState }> {
    return this.#changes.asObservable();
  }

  state(peer: string): BreakerState {
    const policy = this.#policies.get(peer);
    if (policy === undefined) return 'closed';
    switch (policy.state) {
      case CircuitState.Open:
      case CircuitState.Isolated:
        return 'open';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return 'closed';
    }
  }

  async execute<T>(peer: string, call: () => Promise<T>): Promise<T> {
    try {
      return await this.#policy(peer).execute(call);
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw new PeerUnavailableError('CIRCUIT_OPEN', [peer], `The circuit for peer ${peer} is open after repeated failures; it lets a probe through after ${this.#options.halfOpenAfterMs} ms.`);
      }
      throw error;
    }
  }

  #policy(peer: string): CircuitBreakerPolicy {
    let policy = this.#policies.get(peer);
    if (policy === undefined) {
      policy = circuitBreaker(handleWhen(isPeerFailure(this.#options.failureCodes)), {
        halfOpenAfter: this.#options.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.#options.consecutiveFailures),
      });
      policy.onStateChange(() => this.#changes.next({ peer, state: this.state(peer) }));
      this.#policies.set(peer, policy);
    }
    return policy;
  }
}
