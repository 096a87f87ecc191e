/** The options layer: contract types, presets, validation/resolution and input sources. */
export type * from './types.js';
export { isPresetName, PRESET_NAMES, PRESETS, type PresetName } from './presets.js';
export {
  ControlPlaneOptionsInputSchema,
  ControlPlaneOptionsSchema,
  EndpointOptionsInputSchema,
  EndpointOptionsSchema,
  endpointAuthority,
  MAX_ATTEMPTS,
  MAX_CONNECTIONS_PER_ENDPOINT,
  MAX_MESSAGE_BYTES,
  MAX_MS,
  ProfileOptionsInputSchema,
  ProfileOptionsSchema,
  resolveOptions,
} from './schema.js';
export type { EndpointAuthority } from './rules.js';
export { GRPC_STATUS_NAMES } from '../grpc/status.js';
export { mergeOptionInputs, optionsFromEnv, optionsFromJsonFile } from './load.js';
