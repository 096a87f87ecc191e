import { TlsError, type TlsErrorCode } from '../errors.js';
import { NODE_UNNAMED_VERIFY_ERROR, verifyErrorOfUnnamed } from '../transport/http2/grpc-js-failures.js';
import { VERIFY_ERRORS, type CertificateVerifyError } from './verify-errors.js';

interface Rule {
  readonly code: TlsErrorCode;
  readonly advice: string;
}

const REJECTED: Rule = { code: 'TLS_CLIENT_CERT_REJECTED', advice: 'the server rejected our client certificate: it must be issued by a CA the server trusts' };

/**
 * TLS alerts the server sent about OUR certificate, by the code Node gives the error
 * (`ERR_SSL_` + OpenSSL's reason): certificate_required (116), certificate_revoked (44),
 * certificate_expired (45), and the alerts that reject a certificate (unknown_ca 48,
 * bad_certificate 42, decrypt_error 51, unsupported_certificate 43, access_denied 49,
 * handshake_failure 40).
 */
const ALERTS: Readonly<Record<string, Rule>> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: { code: 'TLS_CLIENT_CERT_REQUIRED', advice: 'the server demands a client certificate: use a profile with tls.mode "mtls" and a client certificate' },
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: { code: 'TLS_REVOKED', advice: 'the server says our client certificate is revoked: issue a new one' },
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: { code: 'TLS_CLIENT_CERT_EXPIRED', advice: 'the server says our client certificate has expired: renew it' },
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: REJECTED,
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: REJECTED,
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: REJECTED,
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: REJECTED,
  ERR_SSL_TLSV1_ALERT_ACCESS_DENIED: REJECTED,
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: REJECTED,
};

const NAME_RULE: Rule = { code: 'TLS_PEER_NAME_MISMATCH', advice: 'dial the server by a name in its certificate or set tls.serverNameOverride' };

const NOT_TLS: Rule = { code: 'TLS_HANDSHAKE_FAILED', advice: 'the peer did not answer with TLS (is it a plaintext endpoint?); OmniRelay never falls back to plaintext' };

/** What OpenSSL says (as Node's error code) when the peer's bytes are not a TLS record. */
const NOT_TLS_CODES: ReadonlySet<string> = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_RECORD_LAYER_FAILURE']);

/**
 * Turns a Node TLS error into a typed TlsError naming the peer, by its `code`: an alert the
 * server sent about our certificate (`ERR_SSL_*ALERT*`), OpenSSL's verify error for the
 * server's certificate (from the table both transports share: `VERIFY_ERRORS`; an error Node
 * has no code for comes as `UNSPECIFIED` and is read from OpenSSL's message), Node's name
 * check, or a peer that does not speak TLS. Returns undefined when it is not about TLS.
 */
export function classifyTlsFailure(failure: unknown, context: { peer: string; profile: string }): TlsError | undefined {
  if (failure instanceof TlsError) return failure;
  // Read structurally, not by `instanceof Error`: Node's errors may come from another realm (a VM context).
  if (typeof failure !== 'object' || failure === null) return undefined;
  const { code, message } = failure as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  const typed = (rule: Rule, verifyError?: TlsError['verifyError']): TlsError =>
    new TlsError(rule.code, `TLS with ${context.peer} failed (profile "${context.profile}"): ${rule.advice}. Underlying error: ${code} ${message}`, { peer: context.peer, profile: context.profile, verifyError, cause: failure });
  const alert = ALERTS[code];
  if (alert !== undefined) return typed(alert);
  const verifyError: CertificateVerifyError | undefined = Object.hasOwn(VERIFY_ERRORS, code) ? (code as CertificateVerifyError) : code === NODE_UNNAMED_VERIFY_ERROR ? verifyErrorOfUnnamed(message) : undefined;
  if (verifyError !== undefined) return typed(VERIFY_ERRORS[verifyError], verifyError);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return typed(NAME_RULE, 'ERR_TLS_CERT_ALTNAME_INVALID');
  if (NOT_TLS_CODES.has(code)) return typed(NOT_TLS);
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
