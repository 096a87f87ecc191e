import type { EndpointHint, ProfileOptions } from '../config/types.js';
import type { WireProtocol } from './types.js';

/** Why a call did not use HTTP/3 (for spans and the fallback counter). */
export type Http2Reason = 'profile-disabled' | 'hint-denied' | 'http3-broken' | 'no-http3-transport' | 'insecure';

/** Who required HTTP/3 only: the profile (`http3: 'require'`) or the endpoint's hint. */
export type Http3Requirement = 'profile' | 'hint';

/** Why HTTP/3 is required but cannot be used: the call fails with a ConfigError naming both sides. */
export type Http3RequirementConflict = 'profile-disabled' | 'insecure' | 'hint-denied' | 'no-http3-transport';

export interface ProtocolChoice {
  readonly protocol: WireProtocol;
  /** Set when HTTP/2 was chosen although HTTP/3 could have been wanted, or `required` (HTTP/3 only). */
  readonly reason: Http2Reason | 'required' | undefined;
  /** HTTP/3 only — no race, no fallback to HTTP/2 — and who asked for it. */
  readonly required?: Http3Requirement;
  /** HTTP/3 is required but something rules it out. */
  readonly conflict?: Http3RequirementConflict;
}

/**
 * HTTP/3 only when the profile or the endpoint's hint requires it (whatever the HTTP/3 backoff
 * memory says: there is nothing to fall back to). Otherwise HTTP/3 when the profile prefers
 * it, the endpoint's hint does not deny it, a transport for it is registered and the endpoint
 * is not inside an HTTP/3 backoff window; otherwise HTTP/2. HTTP/3 always needs TLS, so an
 * insecure profile is HTTP/2.
 */
export function chooseProtocol(input: {
  readonly profile: ProfileOptions;
  readonly hint: EndpointHint;
  readonly http3Registered: boolean;
  readonly http3Broken: boolean;
}): ProtocolChoice {
  const required: Http3Requirement | undefined = input.profile.http3 === 'require' ? 'profile' : input.hint.http3 === 'require' ? 'hint' : undefined;
  if (required !== undefined) {
    const conflict: Http3RequirementConflict | undefined =
      input.profile.http3 === 'disable'
        ? 'profile-disabled'
        : input.profile.tls.mode === 'insecure'
          ? 'insecure'
          : input.hint.http3 === 'deny'
            ? 'hint-denied'
            : !input.http3Registered
              ? 'no-http3-transport'
              : undefined;
    return conflict === undefined ? { protocol: 'h3', reason: 'required', required } : { protocol: 'h3', reason: 'required', required, conflict };
  }
  if (input.profile.http3 === 'disable') return HTTP2_BECAUSE['profile-disabled'];
  if (input.profile.tls.mode === 'insecure') return HTTP2_BECAUSE.insecure;
  if (input.hint.http3 === 'deny') return HTTP2_BECAUSE['hint-denied'];
  if (!input.http3Registered) return HTTP2_BECAUSE['no-http3-transport'];
  if (input.http3Broken) return HTTP2_BECAUSE['http3-broken'];
  return HTTP3;
}

/** The choices every call of the common cases gets: one frozen object each, nothing allocated per call. */
const HTTP3: ProtocolChoice = Object.freeze({ protocol: 'h3', reason: undefined });
const HTTP2_BECAUSE: Readonly<Record<Http2Reason, ProtocolChoice>> = Object.freeze({
  'profile-disabled': Object.freeze({ protocol: 'h2', reason: 'profile-disabled' }),
  insecure: Object.freeze({ protocol: 'h2', reason: 'insecure' }),
  'hint-denied': Object.freeze({ protocol: 'h2', reason: 'hint-denied' }),
  'no-http3-transport': Object.freeze({ protocol: 'h2', reason: 'no-http3-transport' }),
  'http3-broken': Object.freeze({ protocol: 'h2', reason: 'http3-broken' }),
});
