import { RpcError } from '../errors.js';
import type { ServiceDefinition } from '../grpc/service-definition.js';
import { HealthCheckResponse_ServingStatus, HealthDefinition, type HealthCheckRequest, type HealthCheckResponse } from '../gen/grpc/health/v1/health.js';
import { GRPC_STATUS } from '../grpc/status.js';
import type { ServiceImplementation } from './service-handlers.js';

/** `grpc.health.v1.Health` with `Check` only: what GrpcHost serves when the application does not. */
const HealthCheckOnly = {
  name: HealthDefinition.name,
  fullName: HealthDefinition.fullName,
  methods: { check: HealthDefinition.methods.check },
} as const;

/**
 * The gRPC health checking protocol's `Check` for a host's own services: SERVING for the
 * whole server (`""`) and for every service it registered, NOT_FOUND for any other name.
 * `factory.probeHttp3()` asks exactly this over HTTP/3. Returns no entry when the
 * application registered its own `grpc.health.v1.Health`.
 */
export function builtInHealthService<S extends ServiceDefinition>(
  services: ReadonlyArray<readonly [S, ServiceImplementation<S>]>,
): ReadonlyArray<readonly [typeof HealthCheckOnly, ServiceImplementation<typeof HealthCheckOnly>]> {
  if (services.some(([definition]) => definition.fullName === HealthDefinition.fullName)) return [];
  const served = new Set(['', ...services.map(([definition]) => definition.fullName)]);
  const check = (request: HealthCheckRequest): HealthCheckResponse => {
    if (!served.has(request.service)) throw new RpcError(GRPC_STATUS.NOT_FOUND, 'NOT_FOUND', `unknown service "${request.service}"`, { endpoint: '', protocol: 'none' });
    return { status: HealthCheckResponse_ServingStatus.SERVING };
  };
  return [[HealthCheckOnly, { check }]];
}
