import { systemClock, type Clock } from '../clock.js';
import { OmniRelayError, PeerUnavailableError, RpcError, TlsError } from '../errors.js';
import { GRPC_STATUS } from '../grpc/status.js';

/** What bounds one call: its absolute deadline on the system clock (Infinity: none) and the caller's signal. */
export interface CallBounds {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * The deadline budget is kept on the injected clock (so tests control retries and backoff
 * windows); the transports need an absolute deadline on the system clock. Infinity stays
 * Infinity (a stream without a deadline).
 */
export function wireDeadline(clock: Clock, deadline: number): number {
  if (deadline === Number.POSITIVE_INFINITY) return deadline;
  return systemClock.now() + Math.max(0, deadline - clock.now());
}

/** The gRPC status a call that failed with `error` is recorded with. */
export function statusOf(error: unknown): number {
  if (error instanceof RpcError) return error.status;
  if (error instanceof TlsError) return GRPC_STATUS.UNAVAILABLE;
  if (error instanceof PeerUnavailableError) return GRPC_STATUS.UNAVAILABLE;
  if (error instanceof OmniRelayError) return GRPC_STATUS.FAILED_PRECONDITION;
  if (error instanceof Error && error.name === 'AbortError') return GRPC_STATUS.CANCELLED;
  return GRPC_STATUS.UNKNOWN;
}

/** The error of a call its caller aborted. */
export function cancelled(endpoint: string, reason: unknown): RpcError {
  const details = reason instanceof Error ? reason.message : 'the caller aborted the call';
  return new RpcError(GRPC_STATUS.CANCELLED, 'CANCELLED', details, { endpoint, protocol: 'none' });
}

/**
 * `promise`, bounded by the call's deadline (DEADLINE_EXCEEDED), its AbortSignal (the signal's
 * reason) and the factory's disposal (`stop`, DisposedError): waiting for a connection (or a
 * peer list's first members) must outlive neither the call nor the factory.
 */
export function withinCall<T>(promise: Promise<T>, call: CallBounds, endpoint: string, stop: AbortSignal, connecting: 'HTTP/3' | 'HTTP/3 and HTTP/2' | { readonly waitingFor: string } = 'HTTP/3'): Promise<T> {
  const what = typeof connecting === 'string' ? `connecting over ${connecting}` : `waiting for ${connecting.waitingFor}`;
  const protocol = connecting === 'HTTP/3' ? 'h3' : 'none';
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => finish(() => reject(call.signal?.reason as Error));
    const onStop = (): void => finish(() => reject(stop.reason as Error));
    const timer =
      call.deadline === Number.POSITIVE_INFINITY
        ? undefined
        : setTimeout(
            () =>
              finish(() =>
                reject(new RpcError(GRPC_STATUS.DEADLINE_EXCEEDED, 'DEADLINE_EXCEEDED', `deadline exceeded while ${what}`, { endpoint, protocol })),
              ),
            Math.max(0, call.deadline - systemClock.now()),
          );
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      stop.removeEventListener('abort', onStop);
      settle();
    };
    if (stop.aborted) {
      onStop();
      return;
    }
    if (call.signal?.aborted === true) {
      onAbort();
      return;
    }
    call.signal?.addEventListener('abort', onAbort, { once: true });
    stop.addEventListener('abort', onStop, { once: true });
    promise.then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(String(error)))),
    );
  });
}
