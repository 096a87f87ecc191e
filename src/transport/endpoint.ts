import { parseEndpointUrl } from '../config/rules.js';
import { EndpointError } from '../errors.js';
import type { ParsedEndpoint } from './types.js';

/**
 * Parses `https://host:port` (or `http://` for insecure profiles) or a bare `host:port`
 * (taken as https), with the same rules as endpoint URLs in the options. Throws
 * EndpointError naming the endpoint when it cannot be dialled.
 */
export function parseEndpoint(endpoint: string): ParsedEndpoint {
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
