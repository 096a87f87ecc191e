import { parseEndpointUrl } from '../config/rules.js';
import { EndpointError } from '../errors.js';
import type { ControlPlaneOptions } from '../config/types.js';
import type { ParsedEndpoint } from './types.js';

/**
 * An endpoint as calls, hints and `Http3Health` take it: a configured endpoint's name, a URL
 * (`https://host:port`) or `host:port`. A string without `:` can only be a name (names have
 * no `:`, and a URL or `host:port` needs an explicit port), so a name that is not configured
 * is an EndpointError `ENDPOINT_UNKNOWN` naming it and listing the configured endpoints,
 * rather than a complaint about a missing port.
 */
export function resolveEndpoint(endpoint: string, options: ControlPlaneOptions): ParsedEndpoint {
  const configured = Object.hasOwn(options.endpoints, endpoint) ? options.endpoints[endpoint] : undefined;
  if (configured !== undefined) return parseEndpoint(configured.url);
  if (typeof endpoint === 'string' && !endpoint.includes(':')) throw unknownEndpoint(endpoint, Object.keys(options.endpoints));
  return parseEndpoint(endpoint);
}

/** EndpointError `ENDPOINT_UNKNOWN` for a name no configured endpoint has. */
export function unknownEndpoint(name: string, known: readonly string[]): EndpointError {
  const listed = known.length === 0 ? 'no endpoint is configured' : `configured endpoints: ${known.join(', ')}`;
  return new EndpointError(
    'ENDPOINT_UNKNOWN',
    name,
    `Endpoint "${name}" is not configured (${listed}). Name a configured endpoint, or give a URL (https://host:port) or host:port.`,
    known,
  );
}

/**
 * Parses `https://host:port` (or `http://` for insecure profiles) or a bare `host:port`
 * (taken as https), with the same rules as endpoint URLs in the options. Throws
 * EndpointError naming the endpoint when it cannot be dialled.
 */
export function parseEndpoint(endpoint: string): ParsedEndpoint {
  if (typeof endpoint !== 'string') throw new EndpointError('ENDPOINT_INVALID', String(endpoint), `An endpoint must be a string (a configured endpoint's name, https://host:port or host:port), not ${endpoint === null ? 'null' : typeof endpoint}.`);
  const known = parsed.get(endpoint);
  if (known !== undefined) return known;
  const result = parseUncached(endpoint);
  if (parsed.size >= 4096) parsed.clear();
  parsed.set(endpoint, result);
  return result;
}

/** Endpoints are parsed once: calls name the same few endpoints over and over. */
const parsed = new Map<string, ParsedEndpoint>();

function parseUncached(endpoint: string): ParsedEndpoint {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
  const checked = parseEndpointUrl(withScheme);
  if (!checked.ok) throw new EndpointError('ENDPOINT_INVALID', endpoint, `Endpoint "${endpoint}" cannot be dialled: ${checked.message}.`);
  const { host, port, secure } = checked.value;
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return Object.freeze({ url: `${secure ? 'https' : 'http'}://${authority}`, host, port, authority, secure });
}
