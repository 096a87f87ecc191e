/**
 * The certificate verification failures both transports report, one table: OpenSSL's verify
 * error names (as Node puts them on `error.code`), OpenSSL's message for each (what grpc-js
 * puts in a status' details), the TLS alert OpenSSL sends for it (`ssl_x509err2alert`), and
 * our typed error code with what to do about it.
 *
 * The HTTP/2 transport meets these through OpenSSL (`classifyTlsFailure` reads the code Node
 * gives the error; for the few Node has no code for, `verifyErrorOfUnnamed` in
 * transport/http2/grpc-js-failures.ts reads the message); the HTTP/3 transport through our own
 * verifier (`verifyChain`), which reports the same names. So one failure has one code on both
 * protocols.
 */
import type { TlsErrorCode } from '../errors.js';

/** TLS alerts (RFC 8446 §6.2) a verifier refuses a chain with (QUIC sends 0x100 + alert). */
export const TLS_ALERT = {
  HANDSHAKE_FAILURE: 40,
  BAD_CERTIFICATE: 42,
  UNSUPPORTED_CERTIFICATE: 43,
  CERTIFICATE_REVOKED: 44,
  CERTIFICATE_EXPIRED: 45,
  CERTIFICATE_UNKNOWN: 46,
  UNKNOWN_CA: 48,
  ACCESS_DENIED: 49,
  DECRYPT_ERROR: 51,
} as const;

interface VerifyErrorInfo {
  /** OpenSSL's `X509_verify_cert_error_string` (3.0). */
  readonly message: string;
  /** The alert OpenSSL sends when it refuses a peer for this reason. */
  readonly alert: number;
  /** Our code when we refuse a server's certificate for this reason. */
  readonly code: TlsErrorCode;
  /** What to do about it, seen from a client that refused the server's certificate. */
  readonly advice: string;
}

const UNTRUSTED = 'the server certificate does not chain to the CA bundle of the profile (tls.caFile)';
const CRL_ADVICE = 'revocation checking is on (tls.crlFiles)';

/**
 * Every verify error our verifier can report, and the ones OpenSSL reports that HTTP/2 may
 * meet. Keys are OpenSSL's `X509_V_ERR_*` names without the prefix.
 */
export const VERIFY_ERRORS = {
  UNABLE_TO_GET_ISSUER_CERT: { message: 'unable to get issuer certificate', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: { message: 'unable to get local issuer certificate', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: { message: 'unable to verify the first certificate', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  DEPTH_ZERO_SELF_SIGNED_CERT: { message: 'self-signed certificate', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  SELF_SIGNED_CERT_IN_CHAIN: { message: 'self-signed certificate in certificate chain', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  CERT_CHAIN_TOO_LONG: { message: 'certificate chain too long', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  EE_KEY_TOO_SMALL: { message: 'EE certificate key too weak', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_UNTRUSTED', advice: 'the server certificate key is below OpenSSL security level 1 (RSA/DSA under ~1024 bits, EC under 160 bits)' },
  CA_KEY_TOO_SMALL: { message: 'CA certificate key too weak', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_UNTRUSTED', advice: 'a CA key in the server chain is below OpenSSL security level 1 (RSA/DSA under ~1024 bits, EC under 160 bits)' },
  CA_MD_TOO_WEAK: { message: 'CA signature digest algorithm too weak', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_UNTRUSTED', advice: 'a certificate in the server chain is signed with SHA-1 or MD5 (OpenSSL security level 1 refuses them): reissue it with SHA-256' },
  CERT_SIGNATURE_FAILURE: { message: 'certificate signature failure', alert: TLS_ALERT.DECRYPT_ERROR, code: 'TLS_PEER_UNTRUSTED', advice: 'a certificate in the server chain is not signed by its issuer' },
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: { message: 'unable to decode issuer public key', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  INVALID_CA: { message: 'invalid CA certificate', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: 'a certificate that issues others in the server chain is not a CA certificate (basicConstraints CA:TRUE, keyUsage keyCertSign)' },
  PATH_LENGTH_EXCEEDED: { message: 'path length constraint exceeded', alert: TLS_ALERT.UNKNOWN_CA, code: 'TLS_PEER_UNTRUSTED', advice: 'the server chain is longer than a CA in it allows (basicConstraints pathLen)' },
  INVALID_PURPOSE: {
    message: 'unsuitable certificate purpose',
    alert: TLS_ALERT.UNSUPPORTED_CERTIFICATE,
    code: 'TLS_PEER_UNTRUSTED',
    advice: 'a certificate in the server chain is not for TLS server use (its extendedKeyUsage lacks serverAuth, or its keyUsage does not allow it)',
  },
  KEYUSAGE_NO_CERTSIGN: { message: 'key usage does not include certificate signing', alert: TLS_ALERT.CERTIFICATE_UNKNOWN, code: 'TLS_PEER_UNTRUSTED', advice: 'an issuer in the server chain may not sign certificates (keyUsage lacks keyCertSign)' },
  UNHANDLED_CRITICAL_EXTENSION: { message: 'unhandled critical extension', alert: TLS_ALERT.CERTIFICATE_UNKNOWN, code: 'TLS_PEER_UNTRUSTED', advice: 'a certificate in the server chain has a critical extension OpenSSL does not know' },
  CERT_UNTRUSTED: { message: 'certificate not trusted', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  CERT_REJECTED: { message: 'certificate rejected', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_UNTRUSTED', advice: UNTRUSTED },
  CERT_NOT_YET_VALID: { message: 'certificate is not yet valid', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_PEER_EXPIRED', advice: 'the server certificate is expired (or not yet valid): renew it on the server' },
  CERT_HAS_EXPIRED: { message: 'certificate has expired', alert: TLS_ALERT.CERTIFICATE_EXPIRED, code: 'TLS_PEER_EXPIRED', advice: 'the server certificate is expired (or not yet valid): renew it on the server' },
  CERT_REVOKED: { message: 'certificate revoked', alert: TLS_ALERT.CERTIFICATE_REVOKED, code: 'TLS_REVOKED', advice: 'the server certificate is listed in our CRL: the server must get a new certificate' },
  UNABLE_TO_GET_CRL: {
    message: 'unable to get certificate CRL',
    alert: TLS_ALERT.UNKNOWN_CA,
    code: 'TLS_HANDSHAKE_FAILED',
    advice: `${CRL_ADVICE} but no CRL from the issuer of a certificate in the server chain is loaded (the root's own CRL included): add it to tls.crlFiles`,
  },
  CRL_HAS_EXPIRED: { message: 'CRL has expired', alert: TLS_ALERT.CERTIFICATE_EXPIRED, code: 'TLS_HANDSHAKE_FAILED', advice: `${CRL_ADVICE} and the CRL for a certificate in the server chain is past its nextUpdate: install a fresh CRL` },
  CRL_NOT_YET_VALID: { message: 'CRL is not yet valid', alert: TLS_ALERT.BAD_CERTIFICATE, code: 'TLS_HANDSHAKE_FAILED', advice: `${CRL_ADVICE} and the CRL for a certificate in the server chain is not valid yet (thisUpdate in the future): check the clock` },
  CRL_SIGNATURE_FAILURE: { message: 'CRL signature failure', alert: TLS_ALERT.DECRYPT_ERROR, code: 'TLS_HANDSHAKE_FAILED', advice: `${CRL_ADVICE} and a CRL in tls.crlFiles is not signed by the CA it names: replace it` },
  DIFFERENT_CRL_SCOPE: { message: 'Different CRL scope', alert: TLS_ALERT.CERTIFICATE_UNKNOWN, code: 'TLS_HANDSHAKE_FAILED', advice: `${CRL_ADVICE} and the CRL of an issuer in the server chain does not cover this certificate (issuingDistributionPoint)` },
  KEYUSAGE_NO_CRL_SIGN: { message: 'key usage does not include CRL signing', alert: TLS_ALERT.CERTIFICATE_UNKNOWN, code: 'TLS_HANDSHAKE_FAILED', advice: `${CRL_ADVICE} and a CRL is issued by a CA whose keyUsage lacks cRLSign` },
  UNHANDLED_CRITICAL_CRL_EXTENSION: { message: 'unhandled critical CRL extension', alert: TLS_ALERT.CERTIFICATE_UNKNOWN, code: 'TLS_HANDSHAKE_FAILED', advice: `${CRL_ADVICE} and a CRL has a critical extension OpenSSL does not know` },
} as const satisfies Readonly<Record<string, VerifyErrorInfo>>;

/** OpenSSL's name of a verification failure (`X509_V_ERR_` left out). */
export type CertificateVerifyError = keyof typeof VERIFY_ERRORS;

/**
 * What a TlsError about a certificate carries in `verifyError`: an OpenSSL verify error, or
 * Node's name check (`ERR_TLS_CERT_ALTNAME_INVALID`).
 */
export type CertificateFailure = CertificateVerifyError | 'ERR_TLS_CERT_ALTNAME_INVALID';
