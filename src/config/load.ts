/**
 * Options sources: environment variables, a JSON file, and merging several inputs. These
 * only shape raw input; `resolveOptions` validates it, so a variable that maps onto no known
 * key still reaches validation and is rejected by its dotted path instead of being dropped.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { deepMerge, isPlainObject, setOwn } from './merge.js';
import type { ControlPlaneOptionsInput } from './types.js';

/** Leaves that always stay strings (a password such as `1234` must not become a number). */
const STRING_LEAVES = new Set([
  'url',
  'preferred',
  'kind',
  'whenAllOpen',
  'profile',
  'preset',
  'mode',
  'http3',
  'certFile',
  'keyFile',
  'pfxFile',
  'pfxPassword',
  'caFile',
  'serverNameOverride',
]);

/** Leaves that hold lists: a JSON array (`[...]`) or comma-separated values. */
const LIST_LEAVES = new Set(['crlFiles', 'retryableStatusCodes', 'failureStatusCodes']);

/** `TIME_MS` → `timeMs`, `HTTP3_RACE_DELAY_MS` → `http3RaceDelayMs`. */
function camelCase(segment: string): string {
  return segment
    .toLowerCase()
    .split('_')
    .map((part, index) => (index === 0 ? part : part.charAt(0).toUpperCase() + part.slice(1)))
    .join('');
}

/** `NODE_A` → `node-a` (profile, endpoint and metadata names). */
function kebabCase(segment: string): string {
  return segment.toLowerCase().replaceAll('_', '-');
}

/** Maps the `__`-separated segments after the prefix onto an options path. */
function envPath(segments: readonly string[]): string[] {
  const path: string[] = [];
  segments.forEach((segment, index) => {
    const parent = path[index - 1];
    const isName = index === 1 && (path[0] === 'profiles' || path[0] === 'endpoints');
    const isMetadataKey = index === 3 && path[0] === 'endpoints' && parent === 'metadata';
    path.push(isName || isMetadataKey ? kebabCase(segment) : camelCase(segment));
  });
  return path;
}

function parseJsonArray(text: string): unknown {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed : text;
  } catch {
    return text;
  }
}

/** Turns an env value into the type its key needs; validation reports whatever still does not fit. */
function envValue(path: readonly string[], raw: string): unknown {
  const leaf = path[path.length - 1] ?? '';
  const isMetadataValue = path.length === 4 && path[0] === 'endpoints' && path[2] === 'metadata';
  if (isMetadataValue || STRING_LEAVES.has(leaf)) return raw;
  const text = raw.trim();
  if (LIST_LEAVES.has(leaf)) {
    if (text.startsWith('[')) return parseJsonArray(text);
    return text
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text.startsWith('[')) return parseJsonArray(text);
  return raw;
}

/**
 * Reads options from environment variables named `<prefix>__<KEY>__<KEY>...`:
 *
 * - `OMNIRELAY__ALLOW_INSECURE=true` → `allowInsecure: true`
 * - `OMNIRELAY__PROFILES__CONTROL_PLANE__KEEPALIVE__TIME_MS=10000` → `profiles['control-plane'].keepalive.timeMs`
 * - `OMNIRELAY__ENDPOINTS__NODE_A__URL=https://127.0.0.1:7001` → `endpoints['node-a'].url`
 * - `OMNIRELAY__ENDPOINTS__NODE_A__METADATA__X_ZONE=eu` → `endpoints['node-a'].metadata['x-zone']`
 *
 * Profile, endpoint and metadata names are lowercased with `_` → `-`; option keys go from
 * SCREAMING_SNAKE to camelCase. Values: `true`/`false` → boolean, integer/decimal → number,
 * `[...]` → JSON array, `CRL_FILES`/`RETRYABLE_STATUS_CODES`/`FAILURE_STATUS_CODES` also comma-separated, everything
 * else (and always URLs, file paths, passwords, modes, metadata values) a string.
 * Variables starting with `<prefix>_` but not `<prefix>__` are not ours and are ignored.
 * A variable that names no known key becomes an unknown key, which `resolveOptions` rejects.
 *
 * @throws ConfigError (key = the variable's name) for an empty segment (`A____B`) or when two
 *   variables collide (one sets a value where another needs an object).
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env, prefix = 'OMNIRELAY'): ControlPlaneOptionsInput {
  const head = `${prefix}__`;
  const root: Record<string, unknown> = {};
  const owners = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(env).sort()) {
    const raw = env[name];
    if (!name.startsWith(head) || raw === undefined) continue;
    const segments = name.slice(head.length).split('__');
    if (segments.some((segment) => segment === '')) {
      issues.push({ key: name, message: `has an empty segment; write ${head}SEGMENT__SEGMENT, e.g. ${head}PROFILES__CONTROL_PLANE__DEADLINE_MS` });
      continue;
    }
    const path = envPath(segments);
    const conflict = assign(root, path, envValue(path, raw), name, owners);
    if (conflict !== undefined) {
      issues.push({ key: name, message: `collides with ${conflict} on options key "${path.join('.')}": both set it, or one sets a value where the other needs nested keys` });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, 'environment');
  return root;
}

/**
 * Sets `path` in `root`. Returns the variable this one collides with: both spell the same key
 * (`NODE_A` and `node_a`), or one sets a value where the other needs nested keys.
 */
function assign(root: Record<string, unknown>, path: readonly string[], value: unknown, name: string, owners: Map<string, string>): string | undefined {
  let node = root;
  for (let depth = 0; depth < path.length; depth++) {
    const key = path[depth] ?? '';
    const dotted = path.slice(0, depth + 1).join('.');
    const existing = Object.hasOwn(node, key) ? node[key] : undefined;
    if (depth === path.length - 1) {
      if (existing !== undefined) return owners.get(dotted) ?? firstOwnerBelow(owners, dotted);
      setOwn(node, key, value);
      owners.set(dotted, name);
    } else if (existing === undefined) {
      const child: Record<string, unknown> = {};
      setOwn(node, key, child);
      node = child;
    } else if (isPlainObject(existing)) {
      node = existing;
    } else {
      return owners.get(dotted) ?? 'another variable';
    }
  }
  return undefined;
}

function firstOwnerBelow(owners: ReadonlyMap<string, string>, dotted: string): string {
  for (const [path, owner] of owners) if (path.startsWith(`${dotted}.`)) return owner;
  return 'another variable';
}

/**
 * Reads an options input from a JSON file. Only reading and JSON parsing happen here;
 * pass the result (alone or merged) to `resolveOptions` to validate it.
 * @throws ConfigError (key = `path`) when the file is missing or unreadable, is not valid
 *   JSON, or does not hold a JSON object.
 */
export async function optionsFromJsonFile(path: string): Promise<ControlPlaneOptionsInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ key: path, message: readFailure(error) }], 'options file');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([{ key: path, message: `is not valid JSON: ${error instanceof Error ? error.message : String(error)}` }], 'options file');
  }
  if (!isPlainObject(parsed)) {
    const got = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed;
    throw new ConfigError([{ key: path, message: `must hold a JSON object with allowInsecure, profiles and endpoints; got ${got}` }], 'options file');
  }
  return parsed;
}

function readFailure(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  switch (code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    case 'EISDIR':
      return 'is a directory, not a JSON file';
    default:
      return `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * Deep merge of option inputs, later inputs winning: objects merge key by key, arrays and
 * scalars replace, `undefined` keeps the earlier value. Inputs are not mutated.
 * Typical use: `mergeOptionInputs(await optionsFromJsonFile(path), optionsFromEnv())`.
 */
export function mergeOptionInputs(...inputs: ControlPlaneOptionsInput[]): ControlPlaneOptionsInput {
  return inputs.reduce<unknown>((merged, input) => deepMerge(merged, input), {}) as ControlPlaneOptionsInput;
}
