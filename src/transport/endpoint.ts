import { EndpointError } from '../errors.js';
import type { ParsedEndpoint } from './types.js';

/**
 * Parses `https://host:port` (or `http://` for insecure profiles) or a bare `host:port`
 * (taken as https). Throws EndpointError naming the endpoint when it cannot be dialled.
 */
export function parseEndpoint(endpoint: string): ParsedEndpoint {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new EndpointError('ENDPOINT_INVALID', endpoint, `Endpoint "${endpoint}" is not a valid URL; write it as https://host:port.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new EndpointError('ENDPOINT_INVALID', endpoint, `Endpoint "${endpoint}" uses scheme "${url.protocol}"; use https:// (or http:// only for an insecure development profile).`);
  }
  if (url.hostname === '' || url.port === '') {
    throw new EndpointError('ENDPOINT_INVALID', endpoint, `Endpoint "${endpoint}" must name a host and an explicit port, e.g. https://10.0.0.5:7443.`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new EndpointError('ENDPOINT_INVALID', endpoint, `Endpoint "${endpoint}" must be only scheme, host and port (no path, query, fragment or credentials).`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port);
  return { url: `${url.protocol}//${url.host}`, host, port, authority: url.host, secure: url.protocol === 'https:' };
}
