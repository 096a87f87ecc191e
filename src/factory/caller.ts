import type { RpcCaller } from '../telemetry/index.js';

/**
 * A per-call marker, not part of the public CallOptions: GrpcOutbound sets it so the calls
 * it makes through the shared factory are recorded with `omnirelay.caller = dispatcher`.
 * A symbol key, so it never collides with options and never reaches the wire.
 */
export const CALLER_OPTION: unique symbol = Symbol('omnirelay.caller');

export interface CallerMarked {
  readonly [CALLER_OPTION]?: RpcCaller | undefined;
}

export function callerOf(options: object, fallback: RpcCaller): RpcCaller {
  return (options as CallerMarked)[CALLER_OPTION] ?? fallback;
}
