import { describe, expect, it } from '@jest/globals';
import { TlsError } from '../../../src/errors.js';
import { classifyTlsFailure, clientCertificateVerdict } from '../../../src/tls/classify.js';
import { serverAlertError } from '../../../src/transport/http3/quic-support.js';

const ctx = { peer: '127.0.0.1:7001', profile: 'control-plane' };

function codeOf(failure: unknown): string | undefined {
  return classifyTlsFailure(failure, ctx)?.code;
}

function nodeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyTlsFailure', () => {
  it.each([
    ['CERT_HAS_EXPIRED', 'certificate has expired', 'TLS_PEER_EXPIRED'],
    ['CERT_REVOKED', 'certificate revoked', 'TLS_REVOKED'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: ", 'TLS_PEER_NAME_MISMATCH'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate', 'TLS_PEER_UNTRUSTED'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain', 'TLS_PEER_UNTRUSTED'],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'error:0A00045C:SSL routines::tlsv13 alert certificate required', 'TLS_CLIENT_CERT_REQUIRED'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'error:0A000418:SSL routines::tlsv1 alert unknown ca', 'TLS_CLIENT_CERT_REJECTED'],
    ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'error:0A00042C:SSL routines::sslv3 alert certificate revoked', 'TLS_REVOKED'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'error:0A00010B:SSL routines::wrong version number', 'TLS_HANDSHAKE_FAILED'],
  ])('maps Node error %s to %s', (code, message, expected) => {
    expect(codeOf(nodeError(code, message))).toBe(expected);
  });

  it.each([
    ['CRL_HAS_EXPIRED', 'CRL has expired', 'TLS_HANDSHAKE_FAILED'],
    ['CRL_NOT_YET_VALID', 'CRL is not yet valid', 'TLS_HANDSHAKE_FAILED'],
    ['CRL_SIGNATURE_FAILURE', 'CRL signature failure', 'TLS_HANDSHAKE_FAILED'],
    ['UNABLE_TO_GET_CRL', 'unable to get certificate CRL', 'TLS_HANDSHAKE_FAILED'],
    ['INVALID_PURPOSE', 'unsuitable certificate purpose', 'TLS_PEER_UNTRUSTED'],
    ['INVALID_CA', 'invalid CA certificate', 'TLS_PEER_UNTRUSTED'],
    ['CERT_SIGNATURE_FAILURE', 'certificate signature failure', 'TLS_PEER_UNTRUSTED'],
    ['UNSPECIFIED', 'Different CRL scope', 'TLS_HANDSHAKE_FAILED'],
  ])('maps OpenSSL verify error %s (%s) to %s, with verifyError set, as the HTTP/3 verifier names it', (code, message, expected) => {
    const error = classifyTlsFailure(nodeError(code, message), ctx);
    expect(error?.code).toBe(expected);
    expect(error?.verifyError).toBe(code === 'UNSPECIFIED' ? 'DIFFERENT_CRL_SCOPE' : code);
  });

  it('an alert about our certificate wins over the verify error its words resemble', () => {
    expect(classifyTlsFailure(nodeError('ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'error:0A00042C:SSL routines::sslv3 alert certificate revoked'), ctx)).toMatchObject({ code: 'TLS_REVOKED', verifyError: undefined });
  });

  it('reads the reason out of the message only for a verify error Node has no code for (UNSPECIFIED)', () => {
    expect(classifyTlsFailure(nodeError('UNSPECIFIED', 'CA signature digest algorithm too weak'), ctx)).toMatchObject({ code: 'TLS_PEER_UNTRUSTED', verifyError: 'CA_MD_TOO_WEAK' });
    expect(classifyTlsFailure(nodeError('UNSPECIFIED', 'self signed certificate in certificate chain'), ctx)?.verifyError).toBe('SELF_SIGNED_CERT_IN_CHAIN');
    expect(codeOf(nodeError('UNSPECIFIED', 'something OpenSSL has not said before'))).toBeUndefined();
  });

  it('classifies by code, never by text: gRPC status details and code-less errors are not classified', () => {
    expect(codeOf('No connection established. Last error: Error: certificate has expired')).toBeUndefined();
    expect(codeOf(new Error('certificate has expired'))).toBeUndefined();
    expect(codeOf(nodeError('ECONNRESET', 'sslv3 alert bad certificate'))).toBeUndefined();
  });

  it('names the peer and profile and keeps the cause', () => {
    const cause = nodeError('CERT_REVOKED', 'certificate revoked');
    const error = classifyTlsFailure(cause, ctx);
    expect(error).toBeInstanceOf(TlsError);
    expect(error?.peer).toBe('127.0.0.1:7001');
    expect(error?.message).toContain('127.0.0.1:7001');
    expect(error?.message).toContain('control-plane');
    expect(error?.cause).toBe(cause);
  });

  it('leaves errors that are not about TLS alone', () => {
    expect(codeOf(nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:7001'))).toBeUndefined();
    expect(codeOf('Deadline exceeded')).toBeUndefined();
  });
});

describe('clientCertificateVerdict (we sent no client certificate)', () => {
  const rejected = new TlsError('TLS_CLIENT_CERT_REJECTED', 'TLS with 127.0.0.1:7001 failed: alert bad certificate', { peer: ctx.peer, profile: ctx.profile });

  it('turns a rejection of the certificate we never sent (grpc-go: alert 42 bad_certificate) into TLS_CLIENT_CERT_REQUIRED', () => {
    const error = clientCertificateVerdict(classifyTlsFailure(nodeError('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'error:0A000412:SSL routines::sslv3 alert bad certificate'), ctx) as TlsError, false);
    expect({ code: error.code, peer: error.peer, profile: error.profile }).toEqual({ code: 'TLS_CLIENT_CERT_REQUIRED', ...ctx });
    expect(error.message).toMatch(/we sent none/);
    expect(clientCertificateVerdict(serverAlertError(42, ctx) as TlsError, false).code).toBe('TLS_CLIENT_CERT_REQUIRED');
    expect(clientCertificateVerdict(serverAlertError(116, ctx) as TlsError, false).code).toBe('TLS_CLIENT_CERT_REQUIRED');
  });

  it('keeps the verdict when we sent a certificate, or when it is about something else', () => {
    expect(clientCertificateVerdict(rejected, true)).toBe(rejected);
    const expired = new TlsError('TLS_PEER_EXPIRED', 'expired', ctx);
    expect(clientCertificateVerdict(expired, false)).toBe(expired);
  });
});
