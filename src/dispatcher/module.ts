import { ContainerModule, type ResolutionContext } from 'inversify';
import { systemClock, type Clock } from '../clock.js';
import type { IGrpcControlPlaneClientFactory } from '../factory/types.js';
import { TOKENS } from '../tokens.js';
import type { CallContext } from './context.js';
import { Dispatcher } from './dispatcher.js';
import { GrpcOutbound, type GrpcOutboundOptions } from './grpc-outbound.js';
import type { Middleware } from './middleware.js';

/** What `TOKENS.DispatcherConfig` holds: the dispatcher's name, middleware and gRPC outbounds by remote service. */
export interface DispatcherConfig {
  /** This service's name (sent as `rpc-caller`). */
  readonly name: string;
  /** One GrpcOutbound per remote service (fully qualified name), all over the shared client factory. */
  readonly outbounds?: Readonly<Record<string, GrpcOutboundOptions>> | undefined;
  readonly inboundMiddleware?: readonly Middleware[] | undefined;
  readonly outboundMiddleware?: readonly Middleware[] | undefined;
  readonly onOnewayError?: ((error: unknown, context: CallContext) => void) | undefined;
}

/** A dispatcher whose outbounds are GrpcOutbounds over `factory` (no channel or credential setup of their own). */
export function createDispatcher(factory: IGrpcControlPlaneClientFactory, config: DispatcherConfig, clock: Clock = systemClock): Dispatcher {
  const outbounds = Object.fromEntries(Object.entries(config.outbounds ?? {}).map(([service, options]) => [service, new GrpcOutbound(factory, options, clock)]));
  return new Dispatcher({
    name: config.name,
    outbounds,
    inboundMiddleware: config.inboundMiddleware,
    outboundMiddleware: config.outboundMiddleware,
    onOnewayError: config.onOnewayError,
    clock,
  });
}

/**
 * Binds `TOKENS.Dispatcher` (singleton) from `TOKENS.DispatcherConfig` and the client factory
 * of `grpcControlPlaneModule` (load that module too). Register procedures on the resolved
 * dispatcher, then `GrpcInbound.start(dispatcher, hostOptions)`.
 */
export const dispatcherModule = new ContainerModule(({ bind }) => {
  bind<Dispatcher>(TOKENS.Dispatcher)
    .toDynamicValue((context: ResolutionContext) =>
      createDispatcher(
        context.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory),
        context.get<DispatcherConfig>(TOKENS.DispatcherConfig),
        context.get<Clock>(TOKENS.Clock, { optional: true }) ?? systemClock,
      ),
    )
    .inSingletonScope();
});
