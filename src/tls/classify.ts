import { TlsError, type TlsErrorCode } from '../errors.js';
import { VERIFY_ERRORS, verifyErrorIn } from './verify-errors.js';

interface Rule {
  readonly match: RegExp;
  readonly code: TlsErrorCode;
  readonly advice: string;
}

// Order matters: alerts sent by the server about OUR certificate come first, then our
// own verification of the server's certificate (OpenSSL's verify errors, from the table both
// transports share: `VERIFY_ERRORS`), then the rest. Patterns cover both OpenSSL's codes
// (as Node exposes them on error.code) and its messages (as gRPC puts them in details).
const ALERT_RULES: readonly Rule[] = [
  { match: /certificate.required|CERTIFICATE_REQUIRED/i, code: 'TLS_CLIENT_CERT_REQUIRED', advice: 'the server demands a client certificate: use a profile with tls.mode "mtls" and a client certificate' },
  { match: /alert.certificate.revoked|ALERT_CERTIFICATE_REVOKED/i, code: 'TLS_REVOKED', advice: 'the server says our client certificate is revoked: issue a new one' },
  { match: /alert.certificate.expired|ALERT_CERTIFICATE_EXPIRED/i, code: 'TLS_CLIENT_CERT_EXPIRED', advice: 'the server says our client certificate has expired: renew it' },
  { match: /alert.(unknown.ca|bad.certificate|decrypt.error|unsupported.certificate|access.denied|handshake.failure)|ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|DECRYPT_ERROR|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|HANDSHAKE_FAILURE)/i, code: 'TLS_CLIENT_CERT_REJECTED', advice: 'the server rejected our client certificate: it must be issued by a CA the server trusts' },
];

const NAME_RULE: Rule = { match: /ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames|altnames/i, code: 'TLS_PEER_NAME_MISMATCH', advice: 'dial the server by a name in its certificate or set tls.serverNameOverride' };

const OTHER_RULES: readonly Rule[] = [
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
  const typed = (rule: Pick<Rule, 'code' | 'advice'>, verifyError?: TlsError['verifyError']): TlsError =>
    new TlsError(rule.code, `TLS with ${context.peer} failed (profile "${context.profile}"): ${rule.advice}. Underlying error: ${text}`, { peer: context.peer, profile: context.profile, verifyError, cause: failure });
  for (const rule of ALERT_RULES) {
    if (rule.match.test(text)) return typed(rule);
  }
  const errno = failure instanceof Error ? (failure as NodeJS.ErrnoException).code : undefined;
  const verifyError = verifyErrorIn(errno, text);
  if (verifyError !== undefined) return typed(VERIFY_ERRORS[verifyError], verifyError);
  if (NAME_RULE.match.test(text)) return typed(NAME_RULE, 'ERR_TLS_CERT_ALTNAME_INVALID');
  for (const rule of OTHER_RULES) {
    if (rule.match.test(text)) return typed(rule);
  }
  return undefined;
}

/**
 * A server's verdict about our client certificate when we sent none (`tls.mode` "tls"): the
 * server demands one. Servers say so differently — TLS 1.3's certificate_required alert
 * (116: OpenSSL, BoringSSL, Node), or bad_certificate (42: Go's crypto/tls, so grpc-go) and
 * other "rejected" alerts —, but a rejection of a certificate we never sent can only mean
 * that one is required: TLS_CLIENT_CERT_REJECTED becomes TLS_CLIENT_CERT_REQUIRED.
 * `sentClientCertificate`: the profile presents one (`tls.mode` "mtls").
 */
export function clientCertificateVerdict(error: TlsError, sentClientCertificate: boolean): TlsError {
  if (sentClientCertificate || error.code !== 'TLS_CLIENT_CERT_REJECTED') return error;
  const where = error.profile !== undefined ? ` (profile "${error.profile}")` : '';
  return new TlsError(
    'TLS_CLIENT_CERT_REQUIRED',
    `TLS with ${error.peer ?? 'the server'} failed${where}: the server demands a client certificate and we sent none (tls.mode "tls"): use a profile with tls.mode "mtls" and a client certificate. The server's answer: ${error.message}`,
    { peer: error.peer, profile: error.profile, cause: error },
  );
}
