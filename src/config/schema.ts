/**
 * Validation and resolution of options snapshots. `resolveOptions` checks the whole input
 * (field rules through zod, then cross-field rules on the merged snapshot), applies the
 * presets, and either returns a frozen {@link ControlPlaneOptions} or throws one
 * {@link ConfigError} naming every bad key.
 */
import { z } from 'zod';
import { ConfigError, EndpointError, type ConfigIssue } from '../errors.js';
import { GRPC_STATUS_NAMES } from '../grpc/status.js';
import { deepFreeze, deepMerge, isPlainObject, setOwn } from './merge.js';
import { isPresetName, PRESET_NAMES, PRESETS, type PresetName } from './presets.js';
import { crossFieldIssues, parseEndpointUrl, type Candidate, type EndpointAuthority } from './rules.js';
import type { ControlPlaneOptions, ControlPlaneOptionsInput } from './types.js';

/** Upper bound of every millisecond field: 24 h. Anything larger is a unit mistake. */
export const MAX_MS = 86_400_000;
/** Upper bound of message sizes: 2^31-1 bytes, the largest length gRPC can frame. */
export const MAX_MESSAGE_BYTES = 2_147_483_647;
/** Upper bound of `retry.maxAttempts`. */
export const MAX_ATTEMPTS = 10;
/** Upper bound of `http.connectionsPerEndpoint`. */
export const MAX_CONNECTIONS_PER_ENDPOINT = 1024;

/** Profile and endpoint names. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** gRPC metadata keys as users may configure them (lowercase, ASCII). */
const METADATA_KEY_PATTERN = /^[0-9a-z_.-]+$/;
/** gRPC ASCII metadata values: printable ASCII only. */
const METADATA_VALUE_PATTERN = /^[\x20-\x7e]*$/;

// ---------------------------------------------------------------- field schemas

function wholeNumber(unit: string, min: number, max: number, maxNote: string): z.ZodNumber {
  const unitSuffix = unit === '' ? '' : ` ${unit}`;
  return z
    .number()
    .int({ error: `must be a whole number${unit === '' ? '' : ` of ${unit}`}` })
    .min(min, min === 0 ? 'must not be negative' : `must be at least ${min}${min === 1 && unit === 'bytes' ? ' byte' : unitSuffix}`)
    .max(max, `must be at most ${max}${unitSuffix}${maxNote}`);
}

/** Milliseconds: whole, at least `min` (1 unless 0 means "immediately"), at most 24 h. */
const ms = (min = 1): z.ZodNumber => wholeNumber('ms', min, MAX_MS, ' (24 h); a larger value is almost certainly a unit mistake');
const messageBytes = (): z.ZodNumber => wholeNumber('bytes', 1, MAX_MESSAGE_BYTES, ' (2^31-1, the largest message gRPC can frame)');
const filePath = (): z.ZodString => z.string().min(1, 'must be a non-empty file path');

const StatusNameSchema = z.enum(GRPC_STATUS_NAMES, {
  error: (issue) =>
    issue.input === 'OK'
      ? 'OK is success, not a failure; it can never be retried'
      : `must be a gRPC status name such as UNAVAILABLE (one of ${GRPC_STATUS_NAMES.join(', ')}); got ${describeValue(issue.input)}`,
});

const TlsSchema = z.strictObject({
  mode: z.enum(['mtls', 'tls', 'insecure']),
  certFile: filePath().optional(),
  keyFile: filePath().optional(),
  pfxFile: filePath().optional(),
  pfxPassword: z.string().optional(),
  caFile: filePath().optional(),
  serverNameOverride: z.string().min(1, 'must be a non-empty host name').optional(),
  crlFiles: z.array(filePath()),
  checkRevocation: z.boolean(),
  reloadPollMs: ms(),
});

const LimitsSchema = z.strictObject({
  maxSendMessageBytes: messageBytes(),
  maxReceiveMessageBytes: messageBytes(),
});

const KeepaliveSchema = z.strictObject({
  timeMs: ms(),
  timeoutMs: ms(),
  permitWithoutCalls: z.boolean(),
});

const RetrySchema = z.strictObject({
  maxAttempts: wholeNumber('', 1, MAX_ATTEMPTS, ' attempts; more only amplifies an outage'),
  initialBackoffMs: ms(),
  maxBackoffMs: ms(),
  multiplier: z.number().min(1, 'must be at least 1 (a backoff must not shrink)').max(10, 'must be at most 10'),
  jitter: z.number().min(0, 'must be between 0 and 1 (a fraction of each backoff)').max(1, 'must be between 0 and 1 (a fraction of each backoff)'),
  retryableStatusCodes: z.array(StatusNameSchema),
});

const Http3HealthSchema = z.strictObject({
  initialBackoffMs: ms(),
  maxBackoffMs: ms(),
});

const HttpSchema = z.strictObject({
  connectionsPerEndpoint: wholeNumber('', 1, MAX_CONNECTIONS_PER_ENDPOINT, ' connections'),
});

/** Upper bound of `breaker.consecutiveFailures` and `breaker.minimumCalls`. */
export const MAX_BREAKER_COUNT = 100_000;

const PeerChooserSchema = z.strictObject({
  kind: z.enum(['round-robin', 'preferred', 'fewest-pending']),
  preferred: z.string().min(1, 'must be a configured endpoint name or host:port').optional(),
});

const BreakerSchema = z.strictObject({
  mode: z.enum(['consecutive', 'failure-ratio']),
  consecutiveFailures: wholeNumber('', 1, MAX_BREAKER_COUNT, ' failures'),
  failureRatio: z.number().gt(0, 'must be between 0 and 1, exclusive (a fraction of the window\'s calls)').lt(1, 'must be between 0 and 1, exclusive (a fraction of the window\'s calls)'),
  windowMs: ms(),
  minimumCalls: wholeNumber('', 1, MAX_BREAKER_COUNT, ' calls'),
  halfOpenAfterMs: ms(),
  failureStatusCodes: z.array(StatusNameSchema),
  maxEjectionPercent: wholeNumber('', 0, 100, ' (percent of a target\'s peers)'),
  whenAllOpen: z.enum(['fail-fast', 'probe-least-recently-failed']),
});

const Http3PreferenceSchema = z.enum(['prefer', 'disable', 'require']);

const profileFields = {
  http3: Http3PreferenceSchema,
  /** 0 dials HTTP/2 alongside HTTP/3 at once. */
  http3RaceDelayMs: ms(0),
  deadlineMs: ms(),
  streamDeadlineMs: z.union([ms(), z.literal('none')], { error: (issue) => `must be a whole number of ms (1 to ${MAX_MS}) or "none"; got ${describeValue(issue.input)}` }),
  connectTimeoutMs: ms(),
  /** 0 closes the old connection generation as soon as it is swapped out. */
  drainGraceMs: ms(0),
};

/** A resolved profile: every field present. */
export const ProfileOptionsSchema = z.strictObject({
  ...profileFields,
  http3Health: Http3HealthSchema,
  tls: TlsSchema,
  limits: LimitsSchema,
  keepalive: KeepaliveSchema,
  retry: RetrySchema,
  http: HttpSchema,
  peerChooser: PeerChooserSchema,
  breaker: BreakerSchema,
});

/** A profile as users write it: every field optional, plus `preset`. */
export const ProfileOptionsInputSchema = z
  .strictObject({
    preset: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]]),
    ...profileFields,
    http3Health: Http3HealthSchema.partial(),
    tls: TlsSchema.partial(),
    limits: LimitsSchema.partial(),
    keepalive: KeepaliveSchema.partial(),
    retry: RetrySchema.partial(),
    http: HttpSchema.partial(),
    peerChooser: PeerChooserSchema.partial(),
    breaker: BreakerSchema.partial(),
  })
  .partial();

const MetadataKeySchema = z
  .string()
  .regex(METADATA_KEY_PATTERN, 'metadata keys must be lowercase gRPC metadata keys: a-z, 0-9, "_", "." and "-"')
  .refine((key) => !key.startsWith('grpc-'), 'the "grpc-" metadata prefix is reserved for gRPC itself')
  .refine((key) => !key.endsWith('-bin'), 'binary ("-bin") metadata cannot be configured as text');

const MetadataSchema = z.record(MetadataKeySchema, z.string().regex(METADATA_VALUE_PATTERN, 'metadata values must be printable ASCII'));

const EndpointHintSchema = z.strictObject({
  http3: z.enum(['allow', 'deny', 'require']).optional(),
  draining: z.boolean().optional(),
});

/** A resolved endpoint. The URL's shape is checked by the cross-field rules (it depends on the profile). */
export const EndpointOptionsSchema = z.strictObject({
  url: z.string(),
  profile: z.string(),
  metadata: MetadataSchema,
  hints: EndpointHintSchema,
});

/** An endpoint as users write it. */
export const EndpointOptionsInputSchema = EndpointOptionsSchema.partial().required({ url: true });

const NameSchema = z.string().regex(NAME_PATTERN, 'names must start with a letter or digit and contain only letters, digits, ".", "_" and "-"');

/** The zod schema of what users write ({@link ControlPlaneOptionsInput}); unknown keys are errors. */
export const ControlPlaneOptionsInputSchema = z.strictObject({
  allowInsecure: z.boolean().optional(),
  profiles: z.record(NameSchema, ProfileOptionsInputSchema).optional(),
  endpoints: z.record(NameSchema, EndpointOptionsInputSchema).optional(),
});

/** The zod schema of a resolved snapshot ({@link ControlPlaneOptions}). */
export const ControlPlaneOptionsSchema = z.strictObject({
  allowInsecure: z.boolean(),
  profiles: z.record(NameSchema, ProfileOptionsSchema),
  endpoints: z.record(NameSchema, EndpointOptionsSchema),
});

// Fail to compile if the schemas drift from the fixed contract in types.ts.
const _inputMatchesContract = (value: z.output<typeof ControlPlaneOptionsInputSchema>): ControlPlaneOptionsInput => value;
const _resolvedMatchesContract = (value: z.output<typeof ControlPlaneOptionsSchema>): ControlPlaneOptions => value;

// ---------------------------------------------------------------- issue reporting

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Default messages for the issues that have no schema-level message. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    return issue.input === undefined ? 'is required' : `must be ${issue.expected === 'object' || issue.expected === 'array' ? 'an' : 'a'} ${issue.expected}, got ${describeValue(issue.input)}`;
  }
  if (issue.code === 'invalid_value') {
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}; got ${describeValue(issue.input)}`;
  }
  return undefined;
};

/** Keys the schema accepts at `path` (for "did you mean" hints). */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown = schema;
  for (const segment of [...path, undefined]) {
    while (current instanceof z.ZodOptional) current = current.unwrap();
    if (segment === undefined) break;
    if (current instanceof z.ZodObject) current = (current.shape as Record<string, unknown>)[String(segment)];
    else if (current instanceof z.ZodRecord) current = current.valueType;
    else return [];
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const close = known
    .map((candidate) => ({ candidate, distance: candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(candidate, key) }))
    .filter(({ distance }) => distance <= 2)
    .sort((a, b) => a.distance - b.distance)[0];
  if (close !== undefined) return `unknown key "${key}"; did you mean "${close.candidate}"?`;
  return known.length > 0 ? `unknown key "${key}"; known keys here: ${known.join(', ')}` : `unknown key "${key}"`;
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** One ConfigIssue per problem; an unrecognized-keys issue becomes one issue per key. */
function toConfigIssues(error: z.ZodError, schema: z.ZodType): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const key = dotted(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      for (const unknown of issue.keys) issues.push({ key: key === '' ? unknown : `${key}.${unknown}`, message: unknownKeyMessage(unknown, known) });
    } else if (issue.code === 'invalid_key') {
      issues.push({ key, message: issue.issues.map((inner) => inner.message).join('; ') });
    } else {
      issues.push({ key: key === '' ? '(root)' : key, message: issue.message });
    }
  }
  return issues;
}

/** True when `key` or one of its parents already has a field issue. */
function isTainted(key: string, failed: ReadonlySet<string>): boolean {
  for (let end = key.length; end > 0; end = key.lastIndexOf('.', end - 1)) {
    if (failed.has(key.slice(0, end))) return true;
  }
  return false;
}

// ---------------------------------------------------------------- resolution

/** Endpoint defaults applied under the user's fields. */
const ENDPOINT_DEFAULTS = { profile: 'control-plane', metadata: {}, hints: {} } as const;

/** Merges presets and defaults into the raw input, without assuming it is valid. */
function buildCandidate(input: unknown): Candidate {
  const root = isPlainObject(input) ? input : {};
  const userProfiles = isPlainObject(root['profiles']) ? root['profiles'] : {};
  const profiles: Record<string, unknown> = {};
  const presetOf: Record<string, PresetName> = {};
  const names = [...PRESET_NAMES, ...Object.keys(userProfiles).filter((name) => !isPresetName(name))];
  for (const name of names) {
    const user = Object.hasOwn(userProfiles, name) ? userProfiles[name] : undefined;
    if (user !== undefined && !isPlainObject(user)) {
      setOwn(profiles, name, user);
      continue;
    }
    const { preset: chosen, ...fields } = user ?? {};
    const preset: PresetName = isPresetName(chosen) ? chosen : isPresetName(name) ? name : 'control-plane';
    presetOf[name] = preset;
    const merged = deepMerge(PRESETS[preset], fields);
    // A deadline written below the preset's connect timeout brings the connect timeout down with it
    // (a connection may not take longer than the call that opens it); written both ways, the rule reports it.
    const deadline = fields['deadlineMs'];
    if (typeof deadline === 'number' && !Object.hasOwn(fields, 'connectTimeoutMs') && isPlainObject(merged) && typeof merged['connectTimeoutMs'] === 'number' && merged['connectTimeoutMs'] > deadline) {
      merged['connectTimeoutMs'] = deadline;
    }
    setOwn(profiles, name, merged);
  }
  const userEndpoints = isPlainObject(root['endpoints']) ? root['endpoints'] : {};
  const endpoints: Record<string, unknown> = {};
  for (const [name, endpoint] of Object.entries(userEndpoints)) {
    setOwn(endpoints, name, isPlainObject(endpoint) ? deepMerge(ENDPOINT_DEFAULTS, endpoint) : endpoint);
  }
  return { allowInsecure: root['allowInsecure'] ?? false, profiles, endpoints, userProfiles, presetOf };
}

/**
 * Validates a whole options input and resolves it into a frozen snapshot.
 *
 * Defaults: every profile is its preset (`preset`, else the profile's own name when that is
 * `control-plane`/`data-plane`, else `control-plane`) deep-merged with the user's fields; both
 * built-in profiles always exist; endpoints default to `profile: 'control-plane'`,
 * `metadata: {}`, `hints: {}`; `allowInsecure` defaults to false.
 *
 * @param source names the snapshot in the error message, e.g. `options file /etc/omnirelay.json`.
 * @throws ConfigError listing every bad key (dotted, e.g. `profiles.control-plane.keepalive.timeoutMs`).
 */
export function resolveOptions(input: unknown, source = 'options'): ControlPlaneOptions {
  const parsed = ControlPlaneOptionsInputSchema.safeParse(input, { error: errorMap });
  const fieldIssues = parsed.success ? [] : toConfigIssues(parsed.error, ControlPlaneOptionsInputSchema);
  const failed = new Set(fieldIssues.map((issue) => issue.key));
  const candidate = buildCandidate(input);
  const ruleIssues = isPlainObject(input) ? crossFieldIssues(candidate).filter((issue) => !issue.involves.some((key) => isTainted(key, failed))) : [];
  const issues = [...fieldIssues, ...ruleIssues.map(({ key, message }) => ({ key, message }))];
  if (issues.length > 0) throw new ConfigError(sortIssues(issues), source);

  const resolved = ControlPlaneOptionsSchema.safeParse(
    { allowInsecure: candidate.allowInsecure, profiles: candidate.profiles, endpoints: candidate.endpoints },
    { error: errorMap },
  );
  if (!resolved.success) throw new ConfigError(sortIssues(toConfigIssues(resolved.error, ControlPlaneOptionsSchema)), source);
  return deepFreeze(resolved.data);
}

/** Stable order: grouped by key, so one profile's problems sit together. */
function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Host (IPv6 without brackets), port and TLS flag of an endpoint URL.
 * @throws EndpointError (`ENDPOINT_INVALID`) when the URL is not `http(s)://host:port` with an explicit port.
 */
export function endpointAuthority(url: string): EndpointAuthority {
  const checked = parseEndpointUrl(url);
  if (!checked.ok) throw new EndpointError('ENDPOINT_INVALID', url, `Invalid endpoint URL ${JSON.stringify(url)}: ${checked.message}`);
  return checked.value;
}
