/**
 * Cross-field rules: the checks that involve more than one key, or a key and a preset
 * default. They run on the merged (preset + user) snapshot even when other keys failed
 * field validation, so one pass reports every problem.
 */
import type { ConfigIssue } from '../errors.js';
import { isPlainObject } from './merge.js';
import type { PresetName } from './presets.js';

/** Host (IPv6 without brackets), port and whether TLS is used, as parsed from an endpoint URL. */
export interface EndpointAuthority {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
}

export type EndpointUrlCheck = { readonly ok: true; readonly value: EndpointAuthority } | { readonly ok: false; readonly message: string };

/**
 * Checks an endpoint URL: `https://host:port` (or `http://`), explicit host and port, no
 * credentials, no path other than `/`, no query or fragment. `message` reads after the key,
 * e.g. `endpoints.a.url: must include an explicit port …`.
 */
export function parseEndpointUrl(raw: string): EndpointUrlCheck {
  const fail = (message: string): EndpointUrlCheck => ({ ok: false, message });
  if (raw === '') return fail('must not be empty; expected https://host:port');
  if (raw.trim() !== raw) return fail(`must not have leading or trailing whitespace (got ${JSON.stringify(raw)})`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(`${JSON.stringify(raw)} is not a valid URL; expected https://host:port`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return fail(`scheme "${url.protocol}" is not supported; use https://host:port (http:// only with a profile whose tls.mode is "insecure")`);
  }
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(raw)?.[1];
  if (authority === undefined) return fail(`must be written as ${url.protocol}//host:port`);
  if (url.username !== '' || url.password !== '') return fail('must not contain credentials (user:password@); use endpoint metadata for auth headers');
  if (url.hostname === '') return fail('must name a host, e.g. https://10.0.0.1:7001');
  const portText = /:(\d+)$/.exec(authority.slice(authority.lastIndexOf('@') + 1))?.[1];
  if (portText === undefined) return fail(`must include an explicit port, e.g. ${url.protocol}//${url.hostname}:443`);
  const port = Number(portText);
  if (port < 1 || port > 65535) return fail(`port ${portText} is out of range 1..65535`);
  if (url.pathname !== '/' && url.pathname !== '') {
    return fail(`must not have a path (got "${url.pathname}"); method paths come from the service definition`);
  }
  if (url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) return fail('must not have a query string or fragment');
  const host = url.hostname.startsWith('[') && url.hostname.endsWith(']') ? url.hostname.slice(1, -1) : url.hostname;
  return { ok: true, value: { host, port, secure: url.protocol === 'https:' } };
}

/** The merged (preset + user) snapshot before typing, plus what the rules need to word messages. */
export interface Candidate {
  readonly allowInsecure: unknown;
  readonly profiles: Readonly<Record<string, unknown>>;
  readonly endpoints: Readonly<Record<string, unknown>>;
  /** The profiles exactly as the user wrote them (only those the user wrote). */
  readonly userProfiles: Readonly<Record<string, unknown>>;
  /** The preset each profile started from. */
  readonly presetOf: Readonly<Record<string, PresetName>>;
}

/** A cross-field issue and every key it depends on; it is dropped when one of those already failed. */
export interface RuleIssue extends ConfigIssue {
  readonly involves: readonly string[];
}

/** Walks plain objects by own keys; `undefined` when any step is missing or not an object. */
function at(value: unknown, ...path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (!isPlainObject(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

interface ProfileContext {
  readonly profile: Record<string, unknown>;
  readonly preset: PresetName;
  readonly key: (...path: readonly string[]) => string;
  readonly userWrote: (...path: readonly string[]) => boolean;
}

/**
 * `low` must be below (`strict`) or at most `high`. The issue goes to the key the user wrote,
 * so a user who only lowered `maxBackoffMs` is pointed at `maxBackoffMs`, not at a preset value.
 */
function orderRule(ctx: ProfileContext, group: string, lowKey: string, highKey: string, strict: boolean): RuleIssue | undefined {
  const low = at(ctx.profile, group, lowKey);
  const high = at(ctx.profile, group, highKey);
  if (typeof low !== 'number' || typeof high !== 'number' || (strict ? low < high : low <= high)) return undefined;
  const userLow = ctx.userWrote(group, lowKey);
  const userHigh = ctx.userWrote(group, highKey);
  const origin = (userWrote: boolean): string => (userWrote ? '' : `, the "${ctx.preset}" preset default`);
  const involves = [ctx.key(group, lowKey), ctx.key(group, highKey)];
  if (userHigh && !userLow) {
    return { key: ctx.key(group, highKey), message: `must be ${strict ? 'greater than' : 'at least'} ${group}.${lowKey} (${low}${origin(false)})`, involves };
  }
  return { key: ctx.key(group, lowKey), message: `must be ${strict ? 'less than' : 'at most'} ${group}.${highKey} (${high}${origin(userHigh)})`, involves };
}

function tlsRules(ctx: ProfileContext, allowInsecure: unknown, active: boolean): RuleIssue[] {
  const tls = ctx.profile['tls'];
  if (!isPlainObject(tls)) return [];
  const issues: RuleIssue[] = [];
  const k = (name: string): string => ctx.key('tls', name);
  const cert = nonEmptyString(tls['certFile']);
  const key = nonEmptyString(tls['keyFile']);
  const pfx = nonEmptyString(tls['pfxFile']);
  const files = [k('certFile'), k('keyFile'), k('pfxFile')];
  if (pfx && (cert || key)) {
    issues.push({ key: k('pfxFile'), message: 'set either pfxFile or certFile/keyFile, not both', involves: files });
  } else if (key && !cert) {
    issues.push({ key: k('certFile'), message: 'keyFile is set but certFile is missing; set both (PEM), or use pfxFile instead', involves: files });
  } else if (cert && !key) {
    issues.push({ key: k('keyFile'), message: 'certFile is set but keyFile is missing; set both (PEM), or use pfxFile instead', involves: files });
  } else if (tls['mode'] === 'mtls' && !cert && !key && !pfx && active) {
    issues.push({
      key: k('certFile'),
      message: 'tls.mode "mtls" needs a client certificate: set certFile and keyFile (PEM), or pfxFile (PKCS#12)',
      involves: [...files, k('mode')],
    });
  }
  if (tls['pfxPassword'] !== undefined && !pfx) {
    issues.push({ key: k('pfxPassword'), message: 'pfxPassword is only used with pfxFile; set pfxFile or remove pfxPassword', involves: [k('pfxPassword'), k('pfxFile')] });
  }
  const crl = tls['crlFiles'];
  if (tls['checkRevocation'] === true && Array.isArray(crl) && crl.length === 0) {
    const onCrl = ctx.userWrote('tls', 'crlFiles') && !ctx.userWrote('tls', 'checkRevocation');
    issues.push({
      key: onCrl ? k('crlFiles') : k('checkRevocation'),
      message: onCrl
        ? 'must list at least one CRL file because tls.checkRevocation is true'
        : 'checkRevocation: true needs at least one CRL file in tls.crlFiles',
      involves: [k('checkRevocation'), k('crlFiles')],
    });
  }
  if (tls['mode'] === 'insecure' && allowInsecure !== true) {
    issues.push({
      key: k('mode'),
      message: 'tls.mode "insecure" sends plaintext and is refused unless you set allowInsecure: true at the top level (for local development only)',
      involves: [k('mode'), 'allowInsecure'],
    });
  }
  return issues;
}

/** `preferred` goes with `kind: 'preferred'` and nothing else; it names an endpoint or a host:port. */
function peerChooserRules(ctx: ProfileContext, endpoints: Readonly<Record<string, unknown>>): RuleIssue[] {
  const kind = at(ctx.profile, 'peerChooser', 'kind');
  const preferred = at(ctx.profile, 'peerChooser', 'preferred');
  const involves = [ctx.key('peerChooser', 'kind'), ctx.key('peerChooser', 'preferred')];
  if (kind === 'preferred' && preferred === undefined) {
    return [{ key: ctx.key('peerChooser', 'preferred'), message: 'peerChooser.kind "preferred" needs the peer to prefer: a configured endpoint name or host:port', involves }];
  }
  if (kind !== 'preferred' && preferred !== undefined) {
    return [{ key: ctx.key('peerChooser', 'preferred'), message: `is only used with peerChooser.kind "preferred" (kind is ${JSON.stringify(kind)}); set kind: "preferred" or remove preferred`, involves }];
  }
  if (typeof preferred === 'string' && !Object.hasOwn(endpoints, preferred) && !/^(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/.test(preferred)) {
    return [{ key: ctx.key('peerChooser', 'preferred'), message: `${JSON.stringify(preferred)} is neither a configured endpoint name nor host:port`, involves }];
  }
  return [];
}

/** A failure-ratio window shorter than two deadlines would miss the calls that time out. */
function breakerRules(ctx: ProfileContext): RuleIssue[] {
  const mode = at(ctx.profile, 'breaker', 'mode');
  const windowMs = at(ctx.profile, 'breaker', 'windowMs');
  const deadlineMs = at(ctx.profile, 'deadlineMs');
  if (mode !== 'failure-ratio' || typeof windowMs !== 'number' || typeof deadlineMs !== 'number' || windowMs >= 2 * deadlineMs) return [];
  const onDeadline = ctx.userWrote('deadlineMs') && !ctx.userWrote('breaker', 'windowMs');
  return [
    {
      key: onDeadline ? ctx.key('deadlineMs') : ctx.key('breaker', 'windowMs'),
      message: onDeadline
        ? `must be at most half of breaker.windowMs (${windowMs}) in failure-ratio mode, so calls that time out land inside the window`
        : `must be at least 2 × deadlineMs (${2 * deadlineMs}) in failure-ratio mode, so calls that time out land inside the window`,
      involves: [ctx.key('breaker', 'windowMs'), ctx.key('deadlineMs'), ctx.key('breaker', 'mode')],
    },
  ];
}

/**
 * A connection that may take longer to set up than a call's default deadline would fail the
 * very call that opened it with DEADLINE_EXCEEDED while the dial is still allowed to go on:
 * `connectTimeoutMs` is at most `deadlineMs`. (A profile that writes only `deadlineMs` below
 * the preset's connect timeout gets the connect timeout lowered to it when resolved.)
 */
function connectTimeoutRules(ctx: ProfileContext): RuleIssue[] {
  const connect = ctx.profile['connectTimeoutMs'];
  const deadline = ctx.profile['deadlineMs'];
  if (typeof connect !== 'number' || typeof deadline !== 'number' || connect <= deadline) return [];
  const involves = [ctx.key('connectTimeoutMs'), ctx.key('deadlineMs')];
  return [{ key: ctx.key('connectTimeoutMs'), message: `must be at most deadlineMs (${deadline}${ctx.userWrote('deadlineMs') ? '' : `, the "${ctx.preset}" preset default`}): a call would time out before its connection is allowed to`, involves }];
}

/** HTTP/3 is TLS-only: `http3: 'require'` on an insecure profile leaves its calls no protocol. */
function http3Rules(ctx: ProfileContext): RuleIssue[] {
  if (ctx.profile['http3'] !== 'require' || at(ctx.profile, 'tls', 'mode') !== 'insecure') return [];
  return [
    {
      key: ctx.key('http3'),
      message: 'http3 "require" needs TLS (HTTP/3 has no plaintext form) but tls.mode is "insecure"; use "prefer"/"disable", or a tls or mtls profile',
      involves: [ctx.key('http3'), ctx.key('tls', 'mode')],
    },
  ];
}

function profileRules(ctx: ProfileContext, allowInsecure: unknown, active: boolean, endpoints: Readonly<Record<string, unknown>>): RuleIssue[] {
  return [
    ...http3Rules(ctx),
    ...peerChooserRules(ctx, endpoints),
    ...breakerRules(ctx),
    ...connectTimeoutRules(ctx),
    orderRule(ctx, 'keepalive', 'timeoutMs', 'timeMs', true),
    orderRule(ctx, 'retry', 'initialBackoffMs', 'maxBackoffMs', false),
    orderRule(ctx, 'http3Health', 'initialBackoffMs', 'maxBackoffMs', false),
    ...tlsRules(ctx, allowInsecure, active),
  ].filter((issue): issue is RuleIssue => issue !== undefined);
}

/**
 * An endpoint's HTTP/3 hint must leave its profile's calls a protocol: `require` under a
 * profile that disables HTTP/3 or is insecure, or `deny` under one that requires it, is
 * refused here rather than silently overriding either side (a live hint that does the same
 * fails the call with a ConfigError naming both).
 */
function hintRules(name: string, endpoint: Record<string, unknown>, profileName: string, profile: unknown): RuleIssue[] {
  const hint = at(endpoint, 'hints', 'http3');
  const key = `endpoints.${name}.hints.http3`;
  const preference = at(profile, 'http3');
  const involves = [key, `endpoints.${name}.profile`, `profiles.${profileName}.http3`];
  if (hint === 'require' && preference === 'disable') {
    return [{ key, message: `"require" (HTTP/3 only) contradicts its profile "${profileName}", which has http3 "disable" (HTTP/2 only); no protocol would be left. Remove the hint or let the profile use HTTP/3`, involves }];
  }
  if (hint === 'require' && at(profile, 'tls', 'mode') === 'insecure') {
    return [{ key, message: `"require" (HTTP/3 only) needs TLS but its profile "${profileName}" has tls.mode "insecure"`, involves: [...involves, `profiles.${profileName}.tls.mode`] }];
  }
  if (hint === 'deny' && preference === 'require') {
    return [{ key, message: `"deny" (HTTP/2 only) contradicts its profile "${profileName}", which has http3 "require" (HTTP/3 only); no protocol would be left. Remove the hint or use a profile that allows HTTP/2`, involves }];
  }
  return [];
}

function endpointRules(name: string, endpoint: Record<string, unknown>, profiles: Readonly<Record<string, unknown>>): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const base = `endpoints.${name}`;
  const profile = endpoint['profile'];
  const knownProfile = typeof profile === 'string' && Object.hasOwn(profiles, profile);
  if (typeof profile === 'string' && !knownProfile) {
    issues.push({
      key: `${base}.profile`,
      message: `names unknown profile "${profile}"; defined profiles: ${Object.keys(profiles).join(', ')}. Add it under "profiles" or use one of those`,
      involves: [`${base}.profile`],
    });
  }
  if (knownProfile) issues.push(...hintRules(name, endpoint, profile, profiles[profile]));
  const url = endpoint['url'];
  if (typeof url !== 'string') return issues;
  const parsed = parseEndpointUrl(url);
  if (!parsed.ok) {
    issues.push({ key: `${base}.url`, message: parsed.message, involves: [`${base}.url`] });
  } else if (!parsed.value.secure && knownProfile) {
    const mode = at(profiles, profile, 'tls', 'mode');
    if (mode !== 'insecure') {
      issues.push({
        key: `${base}.url`,
        message:
          `endpoint "${name}" uses plaintext http:// but its profile "${profile}" has tls.mode "${String(mode)}"; ` +
          'plaintext is not allowed for a TLS/mTLS profile. Use https://, or (local development only) a profile with tls.mode "insecure"',
        involves: [`${base}.url`, `${base}.profile`, `profiles.${profile}.tls.mode`],
      });
    }
  } else if (parsed.value.secure && knownProfile && at(profiles, profile, 'tls', 'mode') === 'insecure') {
    issues.push({
      key: `${base}.url`,
      message: `endpoint "${name}" uses https:// but its profile "${profile}" has tls.mode "insecure" (plaintext); use a tls or mtls profile for an https endpoint, or http:// for a local plaintext one`,
      involves: [`${base}.url`, `${base}.profile`, `profiles.${profile}.tls.mode`],
    });
  }
  return issues;
}

/**
 * Every cross-field problem of a merged snapshot. The "mtls needs a client certificate" rule
 * applies only to profiles the user declared or an endpoint uses, so the untouched built-in
 * profiles (mtls without files) never make an otherwise valid snapshot fail.
 */
export function crossFieldIssues(candidate: Candidate): RuleIssue[] {
  const used = new Set(Object.keys(candidate.userProfiles));
  for (const endpoint of Object.values(candidate.endpoints)) {
    const profile = at(endpoint, 'profile');
    if (typeof profile === 'string') used.add(profile);
  }
  const issues: RuleIssue[] = [];
  for (const [name, profile] of Object.entries(candidate.profiles)) {
    if (!isPlainObject(profile)) continue;
    const user = candidate.userProfiles[name];
    const ctx: ProfileContext = {
      profile,
      preset: candidate.presetOf[name] ?? 'control-plane',
      key: (...path) => ['profiles', name, ...path].join('.'),
      userWrote: (...path) => at(user, ...path) !== undefined,
    };
    issues.push(...profileRules(ctx, candidate.allowInsecure, used.has(name), candidate.endpoints));
  }
  for (const [name, endpoint] of Object.entries(candidate.endpoints)) {
    if (isPlainObject(endpoint)) issues.push(...endpointRules(name, endpoint, candidate.profiles));
  }
  return issues;
}
