import { TlsError, type TlsErrorCode } from '../errors.js';

interface Rule {
  readonly match: RegExp;
  readonly code: TlsErrorCode;
  readonly advice: string;
}

// Order matters: alerts sent by the server about OUR certificate come first, then our
// own verification of the server's certificate. Patterns cover both OpenSSL's codes
// (as Node exposes them on error.code) and its messages (as gRPC puts them in details).
const RULES: readonly Rule[] = [
  { match: /certificate.required|CERTIFICATE_REQUIRED/i, code: 'TLS_CLIENT_CERT_REQUIRED', advice: 'the server demands a client certificate: use a profile with tls.mode "mtls" and a client certificate' },
  { match: /alert.certificate.revoked|ALERT_CERTIFICATE_REVOKED/i, code: 'TLS_REVOKED', advice: 'the server says our client certificate is revoked: issue a new one' },
  { match: /alert.certificate.expired|ALERT_CERTIFICATE_EXPIRED/i, code: 'TLS_CLIENT_CERT_EXPIRED', advice: 'the server says our client certificate has expired: renew it' },
  { match: /alert.(unknown.ca|bad.certificate|decrypt.error|unsupported.certificate|access.denied|handshake.failure)|ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|DECRYPT_ERROR|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|HANDSHAKE_FAILURE)/i, code: 'TLS_CLIENT_CERT_REJECTED', advice: 'the server rejected our client certificate: it must be issued by a CA the server trusts' },
  { match: /CERT_HAS_EXPIRED|certificate has expired|CERT_NOT_YET_VALID|certificate is not yet valid/i, code: 'TLS_PEER_EXPIRED', advice: 'the server certificate is expired (or not yet valid): renew it on the server' },
  { match: /CERT_REVOKED|certificate revoked/i, code: 'TLS_REVOKED', advice: 'the server certificate is listed in our CRL: the server must get a new certificate' },
  { match: /ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames|altnames/i, code: 'TLS_PEER_NAME_MISMATCH', advice: 'dial the server by a name in its certificate or set tls.serverNameOverride' },
  { match: /UNABLE_TO_GET_CRL|unable to get certificate CRL/i, code: 'TLS_HANDSHAKE_FAILED', advice: 'revocation checking is on but no CRL from the issuer of the server certificate is loaded: add it to tls.crlFiles' },
  { match: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|self.signed certificate|UNABLE_TO_GET_ISSUER_CERT|unable to get (local )?issuer certificate|CERT_SIGNATURE_FAILURE|certificate signature failure|CERT_UNTRUSTED|INVALID_CA|CERT_CHAIN_TOO_LONG/i, code: 'TLS_PEER_UNTRUSTED', advice: 'the server certificate does not chain to the CA bundle of the profile (tls.caFile)' },
  { match: /wrong version number|WRONG_VERSION_NUMBER|packet length too long|unknown protocol|ssl3_get_record|record layer failure|http request/i, code: 'TLS_HANDSHAKE_FAILED', advice: 'the peer did not answer with TLS (is it a plaintext endpoint?); OmniRelay never falls back to plaintext' },
];

/**
 * Turns a TLS failure (a Node TLS error, or the text gRPC reports for it) into a typed
 * TlsError naming the peer, or returns undefined when the text is not about TLS.
 */
export function classifyTlsFailure(failure: unknown, context: { peer: string; profile: string }): TlsError | undefined {
  if (failure instanceof TlsError) return failure;
  const parts: string[] = [];
  if (failure instanceof Error) {
    const errno = (failure as NodeJS.ErrnoException).code;
    if (typeof errno === 'string') parts.push(errno);
    parts.push(failure.message);
  } else {
    parts.push(String(failure));
  }
  const text = parts.join(' ');
  for (const rule of RULES) {
    if (rule.match.test(text)) {
      return new TlsError(rule.code, `TLS with ${context.peer} failed (profile "${context.profile}"): ${rule.advice}. Underlying error: ${text}`, { peer: context.peer, profile: context.profile, cause: failure });
    }
  }
  return undefined;
}
