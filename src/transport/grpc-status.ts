import type { GrpcStatusName } from '../config/types.js';

/** gRPC status codes by name (the numbers are fixed by the gRPC protocol). */
export const GRPC_STATUS: Readonly<Record<'OK' | GrpcStatusName, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

const NAMES = new Map<number, string>(Object.entries(GRPC_STATUS).map(([name, code]) => [code, name]));

/** `UNAVAILABLE` for 14, `CODE_99` for codes gRPC does not define. */
export function statusName(code: number): string {
  return NAMES.get(code) ?? `CODE_${code}`;
}
