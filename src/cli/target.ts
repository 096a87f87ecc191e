/**
 * What `probe` and `bench` share: the endpoint argument, the TLS options, and a factory built
 * from them the way a program would build one (`createControlPlaneClientFactory`).
 */
import { isIP } from 'node:net';
import type { ProfileOptionsInput } from '../config/types.js';
import { createControlPlaneClientFactory } from '../factory/create-factory.js';
import type { IGrpcControlPlaneClientFactory } from '../factory/types.js';
import type { EndpointHintUpdate } from '../hints/endpoint-hints.js';
import type { Observable } from 'rxjs';
import { CliError, EXIT } from './errors.js';
import type { SpanRecorder } from './span-recorder.js';

export const PROFILES = ['control-plane', 'data-plane'] as const;
export type ProfileName = (typeof PROFILES)[number];

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

export function parseProfile(text: string | undefined): ProfileName {
  const name = text ?? 'control-plane';
  if (!(PROFILES as readonly string[]).includes(name)) throw new CliError(EXIT.usage, `unknown profile ${JSON.stringify(name)} (--profile): use one of ${PROFILES.join(', ')}`);
  return name as ProfileName;
}

/** The profile's TLS options: mTLS with --cert and --key, server-verified TLS without them; never plaintext. */
export function tlsOptions(flags: TlsFlags): NonNullable<ProfileOptionsInput['tls']> {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new CliError(EXIT.usage, `${flags.cert === undefined ? '--key' : '--cert'} was given without ${flags.cert === undefined ? '--cert' : '--key'}: give both (the client certificate and its key) or neither`);
  }
  return {
    mode: flags.cert !== undefined ? 'mtls' : 'tls',
    ...(flags.cert !== undefined ? { certFile: flags.cert, keyFile: flags.key } : {}),
    ...(flags.ca !== undefined ? { caFile: flags.ca } : {}),
    ...(flags.crl !== undefined && flags.crl.length > 0 ? { crlFiles: [...flags.crl] } : {}),
    ...(flags.serverName !== undefined ? { serverNameOverride: flags.serverName } : {}),
  };
}

/**
 * A factory whose `profile` uses the given TLS files. It loads them at once, so a missing or
 * unreadable file, or a key that does not match, throws its TlsError here (exit 3).
 */
export function buildFactory(profile: ProfileName, flags: TlsFlags, recorder: SpanRecorder, endpointHints?: Observable<EndpointHintUpdate>): IGrpcControlPlaneClientFactory {
  return createControlPlaneClientFactory({
    options: { profiles: { [profile]: { tls: tlsOptions(flags) } } },
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
