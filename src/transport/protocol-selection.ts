import type { EndpointHint, ProfileOptions } from '../config/types.js';
import type { WireProtocol } from './types.js';

/** Why a call did not use HTTP/3 (for spans and the fallback counter). */
export type Http2Reason = 'profile-disabled' | 'hint-denied' | 'http3-broken' | 'no-http3-transport' | 'insecure';

export interface ProtocolChoice {
  readonly protocol: WireProtocol;
  /** Set when HTTP/2 was chosen although HTTP/3 could have been wanted. */
  readonly reason: Http2Reason | undefined;
}

/**
 * HTTP/3 when the profile prefers it, the endpoint's hint does not deny it, a transport
 * for it is registered and the endpoint is not inside an HTTP/3 backoff window;
 * otherwise HTTP/2. HTTP/3 always needs TLS, so an insecure profile is HTTP/2.
 */
export function chooseProtocol(input: {
  readonly profile: ProfileOptions;
  readonly hint: EndpointHint;
  readonly http3Registered: boolean;
  readonly http3Broken: boolean;
}): ProtocolChoice {
  if (input.profile.http3 === 'disable') return { protocol: 'h2', reason: 'profile-disabled' };
  if (input.profile.tls.mode === 'insecure') return { protocol: 'h2', reason: 'insecure' };
  if (input.hint.http3 === 'deny') return { protocol: 'h2', reason: 'hint-denied' };
  if (!input.http3Registered) return { protocol: 'h2', reason: 'no-http3-transport' };
  if (input.http3Broken) return { protocol: 'h2', reason: 'http3-broken' };
  return { protocol: 'h3', reason: undefined };
}
