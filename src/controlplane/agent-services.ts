import type { ResolutionContext } from 'inversify';
import { systemClock, type Clock } from '../clock.js';
import type { IGrpcControlPlaneClientFactory } from '../factory/types.js';
import type { RandomSource } from '../resilience/retry.js';
import type { TelemetryProviders } from '../telemetry/internal.js';
import { TOKENS } from '../tokens.js';
import { jsonLinesLogger, type ControlPlaneLogger } from './logger.js';
import { CONTROL_PLANE_TOKENS } from './tokens.js';

/** What every control-plane agent takes from the container, whatever else it needs. */
export interface AgentServices {
  readonly factory: IGrpcControlPlaneClientFactory;
  readonly clock: Clock;
  readonly random: RandomSource | undefined;
  readonly telemetry: TelemetryProviders | undefined;
  readonly logger: ControlPlaneLogger;
}

/**
 * The shared dependencies of an agent's Inversify binding: the client factory, `TOKENS.Clock`
 * (default: the system clock), `TOKENS.Random` and `TOKENS.Telemetry` when bound, and
 * `CONTROL_PLANE_TOKENS.Logger` (default: JSON lines on stderr, timed by that clock).
 */
export function agentServices(context: ResolutionContext): AgentServices {
  const clock = context.get<Clock>(TOKENS.Clock, { optional: true }) ?? systemClock;
  return {
    factory: context.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory),
    clock,
    random: context.get<RandomSource>(TOKENS.Random, { optional: true }),
    telemetry: context.get<TelemetryProviders>(TOKENS.Telemetry, { optional: true }),
    logger: context.get<ControlPlaneLogger>(CONTROL_PLANE_TOKENS.Logger, { optional: true }) ?? jsonLinesLogger(process.stderr, clock),
  };
}
