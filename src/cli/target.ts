/**
 * What `probe` and `bench` share: the endpoint argument, the TLS options, an options file, and
 * a factory built from them the way a program would build one (`createControlPlaneClientFactory`).
 */
import { isIP } from 'node:net';
import { mergeOptionInputs, optionsFromJsonFile } from '../config/load.js';
import type { ControlPlaneOptionsInput, ProfileOptionsInput } from '../config/types.js';
import { createControlPlaneClientFactory } from '../factory/create-factory.js';
import type { IGrpcControlPlaneClientFactory } from '../factory/types.js';
import type { EndpointHintUpdate } from '../hints/endpoint-hints.js';
import type { Observable } from 'rxjs';
import { CliError, EXIT } from './errors.js';
import type { SpanRecorder } from './span-recorder.js';

export const PROFILES = ['control-plane', 'data-plane'] as const;

/** `--cert`, `--key`, `--ca`, `--crl`, `--server-name` as commander gives them. */
export interface TlsFlags {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly ca?: string | undefined;
  readonly crl?: readonly string[] | undefined;
  readonly serverName?: string | undefined;
}

export interface Endpoint {
  /** `https://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  /** The host without brackets. */
  readonly host: string;
  readonly port: number;
}

/**
 * `https://host:port`, `host:port` or `[v6]:port`. `http://` is refused: the CLI never speaks
 * plaintext.
 */
export function parseEndpoint(text: string): Endpoint {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(EXIT.usage, `invalid endpoint ${JSON.stringify(text)}: give it as https://host:port or host:port`);
  }
  if (url.protocol === 'http:') throw new CliError(EXIT.usage, `endpoint ${text} is plaintext http://: omnirelay only speaks TLS; use https://${url.host}`);
  if (url.protocol !== 'https:') throw new CliError(EXIT.usage, `endpoint ${text} has scheme ${url.protocol}: use https://host:port or host:port`);
  if (url.port === '') throw new CliError(EXIT.usage, `endpoint ${text} has no port: give it as https://host:port`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') throw new CliError(EXIT.usage, `endpoint ${text} has a path or query: give only https://host:port`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { url: `https://${url.host}`, host, port: Number(url.port) };
}

/** `--profile`: a built-in profile, or one of `fileProfiles` (the options file's). Default: control-plane. */
export function parseProfile(text: string | undefined, fileProfiles: readonly string[] = []): string {
  const name = text ?? 'control-plane';
  const known = [...PROFILES, ...fileProfiles.filter((p) => !(PROFILES as readonly string[]).includes(p))];
  if (!known.includes(name)) throw new CliError(EXIT.usage, `unknown profile ${JSON.stringify(name)} (--profile): use one of ${known.join(', ')}`);
  return name;
}

type TlsInput = NonNullable<ProfileOptionsInput['tls']>;

/**
 * The profile's TLS options: the options file's (`base`, when given) with every TLS flag given
 * on top — --cert and --key replace the file's client identity (certificate files or PKCS#12).
 * Without a client identity from either: server-verified TLS, no client certificate. Never
 * plaintext: a profile with `tls.mode: 'insecure'` is refused.
 */
export function tlsOptions(flags: TlsFlags, base: TlsInput = {}, where = ''): TlsInput {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new CliError(EXIT.usage, `${flags.cert === undefined ? '--key' : '--cert'} was given without ${flags.cert === undefined ? '--cert' : '--key'}: give both (the client certificate and its key) or neither`);
  }
  const tls: { -readonly [K in keyof TlsInput]: TlsInput[K] } = { ...base };
  if (flags.cert !== undefined) {
    delete tls.pfxFile;
    delete tls.pfxPassword;
    tls.certFile = flags.cert;
    tls.keyFile = flags.key;
    tls.mode = 'mtls';
  }
  if (flags.ca !== undefined) tls.caFile = flags.ca;
  if (flags.crl !== undefined && flags.crl.length > 0) tls.crlFiles = [...flags.crl];
  if (flags.serverName !== undefined) tls.serverNameOverride = flags.serverName;
  if (tls.mode === 'insecure') throw new CliError(EXIT.usage, `${where}sets tls.mode "insecure" (plaintext): omnirelay only speaks TLS; use a TLS profile or give --cert, --key and --ca`);
  tls.mode ??= tls.certFile !== undefined || tls.pfxFile !== undefined ? 'mtls' : 'tls';
  return tls;
}

/** What `probe` and `bench` dial: the endpoint, the profile, the options the factory gets, and the TLS material in effect. */
export interface CliTarget {
  readonly endpoint: Endpoint;
  readonly profile: string;
  readonly options: ControlPlaneOptionsInput;
  readonly tls: TlsInput;
}

/** The TLS flags and the options file as commander gives them. */
export interface TargetFlags extends TlsFlags {
  readonly profile?: string | undefined;
  /** `--options <file>`: a JSON options file, as `optionsFromJsonFile` reads it. */
  readonly options?: string | undefined;
}

/**
 * Resolves the endpoint argument and the flags against the options file (when given): the
 * argument is `https://host:port`, `host:port`, or the name of one of the file's endpoints (its
 * URL, and its profile unless --profile names one); the file's profiles join the built-in ones;
 * the TLS flags override the chosen profile's `tls`. A file that cannot be read or parsed throws
 * its ConfigError naming the file (exit 3); invalid keys are reported by the factory (exit 3).
 */
export async function resolveTarget(argument: string, flags: TargetFlags): Promise<CliTarget> {
  const file = flags.options !== undefined ? await optionsFromJsonFile(flags.options) : {};
  const where = flags.options !== undefined ? `options file ${flags.options}: ` : '';
  const named = file.endpoints?.[argument];
  let endpoint: Endpoint;
  if (named !== undefined) {
    if (typeof named.url !== 'string') throw new CliError(EXIT.input, `${where}endpoints.${argument}.url is not a URL string`);
    endpoint = parseEndpoint(named.url);
  } else {
    endpoint = parseEndpoint(argument);
  }
  const profile = parseProfile(flags.profile ?? (typeof named?.profile === 'string' ? named.profile : undefined), Object.keys(file.profiles ?? {}));
  const tls = tlsOptions(flags, file.profiles?.[profile]?.tls, `${where}profile ${profile} `);
  return { endpoint, profile, options: mergeOptionInputs(file, { profiles: { [profile]: { tls } } }), tls };
}

/**
 * A factory with `options` (the target's, or a profile with TLS files). It loads the TLS files
 * at once, so a missing or unreadable file, or a key that does not match, throws its TlsError
 * here (exit 3); invalid options throw their ConfigError (exit 3).
 */
export function buildFactory(options: ControlPlaneOptionsInput, recorder: SpanRecorder, endpointHints?: Observable<EndpointHintUpdate>): IGrpcControlPlaneClientFactory {
  return createControlPlaneClientFactory({
    options,
    telemetry: { tracerProvider: recorder },
    ...(endpointHints !== undefined ? { endpointHints } : {}),
  });
}

/** SNI must not be an IP address (RFC 6066 §3); the certificate is still checked against the host. */
export function sniFor(host: string): string | undefined {
  return isIP(host) === 0 ? host : undefined;
}

/** Parses a positive whole number option. */
export function positiveInt(flag: string, text: string, max = 1_000_000_000): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new CliError(EXIT.usage, `${flag} ${JSON.stringify(text)} is not a whole number from 1 to ${max}`);
  }
  return value;
}
