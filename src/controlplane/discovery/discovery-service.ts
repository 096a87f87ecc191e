import { map } from 'rxjs';
import { DisposedError, RpcError } from '../../errors.js';
import type * as discoveryV1 from '../../gen/omnirelay/controlplane/discovery/v1/discovery.js';
import { GRPC_STATUS } from '../../grpc/status.js';
import type { ServerCallInfo, ServiceImplementation } from '../../server/service-handlers.js';
import { latestValues } from '../observable-values.js';
import type { ServiceEndpoint, ServiceRegistry } from './service-registry.js';

/** Service names longer than this are refused (a fully qualified name is far shorter). */
const MAX_SERVICE_NAME = 512;

/**
 * The handlers of the `omnirelay.controlplane.discovery.v1.Discovery` service over `registry`,
 * to register on a GrpcHost: `GrpcHost.start(options, [[discoveryV1.DiscoveryDefinition,
 * discoveryServiceImplementation(registry)], ...])`.
 *
 * - `Resolve` answers the service's endpoints now (sorted by URL; empty when none serves it).
 * - `Watch` sends the current endpoints at once, then a full snapshot whenever the set or an
 *   endpoint's details (node id, HTTP/3, region) change; a reader slower than the changes gets
 *   the newest snapshot, never a backlog. It ends when the client cancels (`info.signal`),
 *   when the host closes (which cancels running calls after its grace period), or with OK when
 *   the registry is disposed; it holds no subscription after it ends.
 *
 * An empty service name is `INVALID_ARGUMENT`; a disposed registry answers `UNAVAILABLE`.
 */
export function discoveryServiceImplementation(registry: ServiceRegistry): ServiceImplementation<discoveryV1.DiscoveryDefinition> {
  return {
    resolve: (request: discoveryV1.ResolveRequest): discoveryV1.ResolveResponse => {
      const service = serviceOf(request.service);
      return { endpoints: guard(() => registry.entries(service)).map(toWire) };
    },
    watch: async function* (request: discoveryV1.WatchRequest, info: ServerCallInfo): AsyncGenerator<discoveryV1.WatchResponse, void, undefined> {
      const service = serviceOf(request.service);
      const snapshots = guard(() => registry.entries$(service)).pipe(map((entries): discoveryV1.WatchResponse => ({ endpoints: entries.map(toWire) })));
      yield* latestValues(snapshots, info.signal);
    },
  };
}

function serviceOf(service: string): string {
  if (service === '') throw invalid('`service` is empty: name a fully qualified gRPC service (package.Service).');
  if (service.length > MAX_SERVICE_NAME) throw invalid(`\`service\` is ${service.length} characters long; at most ${MAX_SERVICE_NAME} are accepted.`);
  return service;
}

function guard<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof DisposedError) throw new RpcError(GRPC_STATUS.UNAVAILABLE, 'UNAVAILABLE', 'the service registry of this node has been disposed (the node is shutting down)', { endpoint: 'server', protocol: 'none' });
    throw error;
  }
}

function invalid(details: string): RpcError {
  return new RpcError(GRPC_STATUS.INVALID_ARGUMENT, 'INVALID_ARGUMENT', details, { endpoint: 'server', protocol: 'none' });
}

function toWire(entry: ServiceEndpoint): discoveryV1.Endpoint {
  return { endpoint: entry.endpoint, nodeId: entry.nodeId, http3: entry.http3, region: entry.region };
}
