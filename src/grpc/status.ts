/**
 * gRPC status codes, defined once: names and numbers (fixed by the gRPC protocol). The
 * configuration's status-name type and list, the transports and the breakers all derive from
 * this table.
 */
export const GRPC_STATUS = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;

/** gRPC status names other than `OK`, e.g. `UNAVAILABLE`: what configuration may name. */
export type GrpcStatusName = Exclude<keyof typeof GRPC_STATUS, 'OK'>;

/** Every status name but `OK`, in code order. */
export const GRPC_STATUS_NAMES = Object.keys(GRPC_STATUS).filter((name): name is GrpcStatusName => name !== 'OK');

const NAMES = new Map<number, string>(Object.entries(GRPC_STATUS).map(([name, code]) => [code, name]));

/** `UNAVAILABLE` for 14, `CODE_99` for codes gRPC does not define. */
export function statusName(code: number): string {
  return NAMES.get(code) ?? `CODE_${code}`;
}
