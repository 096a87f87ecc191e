/**
 * What both HTTP/3 roles need besides the QUIC driver: the typed errors for the certificate
 * checks our driver runs once a handshake completes (the checks themselves are the shared
 * verifier in `src/tls/chain-verifier.ts`) and for the TLS alerts a server ends a handshake
 * with.
 */
import { TlsError, type TlsErrorCode } from '../../errors.js';
import type { ChainRejection } from '../../tls/chain-verifier.js';
import { VERIFY_ERRORS } from '../../tls/verify-errors.js';

// The verifier used to live here; its names stay importable from this module.
export { TLS_ALERT, trustStoreOf, verifyChain, type ChainRejection, type TrustStore } from '../../tls/chain-verifier.js';

const ADVICE: Partial<Record<ChainRejection['verifyError'], string>> = {
  ERR_TLS_CERT_ALTNAME_INVALID: 'dial the server by a name in its certificate or set tls.serverNameOverride',
  NO_CERTIFICATE: 'the server presented no certificate',
  UNPARSABLE_CERTIFICATE: 'the server presented a certificate that cannot be parsed',
};

/** A client-side rejection as the TlsError the HTTP/2 transport would raise (same code, same `verifyError`). */
export function serverRejectionError(rejection: ChainRejection, context: { peer: string; profile: string }): TlsError {
  const known = rejection.verifyError in VERIFY_ERRORS ? VERIFY_ERRORS[rejection.verifyError as keyof typeof VERIFY_ERRORS].advice : undefined;
  const advice = known ?? ADVICE[rejection.verifyError] ?? 'the server certificate was rejected';
  const verifyError = rejection.verifyError === 'NO_CERTIFICATE' || rejection.verifyError === 'UNPARSABLE_CERTIFICATE' ? undefined : rejection.verifyError;
  return new TlsError(rejection.code, `TLS with ${context.peer} failed over HTTP/3 (profile "${context.profile}"): ${advice}. Underlying error: ${rejection.reason}`, { ...context, verifyError });
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes the original rejection through
        reject(error);
      },
    );
  });
}

/**
 * TLS alerts a server ends the handshake with (QUIC crypto error = 0x100 + alert), as our
 * typed errors: most are about our client certificate.
 */
const SERVER_ALERTS: Readonly<Record<number, readonly [TlsErrorCode, string]>> = {
  116: ['TLS_CLIENT_CERT_REQUIRED', 'the server demands a client certificate: use a profile with tls.mode "mtls" and a client certificate'],
  40: ['TLS_HANDSHAKE_FAILED', 'the server ended the handshake (handshake_failure); it may demand a client certificate'],
  42: ['TLS_CLIENT_CERT_REJECTED', 'the server rejected our client certificate: it must be issued by a CA the server trusts'],
  43: ['TLS_CLIENT_CERT_REJECTED', 'the server rejected our client certificate (unsupported certificate)'],
  44: ['TLS_REVOKED', 'the server says our client certificate is revoked: issue a new one'],
  45: ['TLS_CLIENT_CERT_EXPIRED', 'the server says our client certificate has expired: renew it (OpenSSL sends the same alert when the CRL the server checks it with has expired)'],
  46: ['TLS_CLIENT_CERT_REJECTED', 'the server rejected our client certificate: it must be issued by a CA the server trusts'],
  51: ['TLS_CLIENT_CERT_REJECTED', 'the server rejected our client certificate (decrypt_error: a signature in our chain, or in the CRL it checks it with, does not verify)'],
  48: ['TLS_CLIENT_CERT_REJECTED', 'the server rejected our client certificate: it must be issued by a CA the server trusts'],
  49: ['TLS_CLIENT_CERT_REJECTED', 'the server refused access with our client certificate'],
};

/** The typed error for a TLS alert the server sent (`alert` = crypto error code - 0x100), or undefined for an alert we do not map. */
export function serverAlertError(alert: number, context: { peer: string; profile?: string | undefined }, cause?: unknown): TlsError | undefined {
  const entry = SERVER_ALERTS[alert];
  if (entry === undefined) return undefined;
  const where = context.profile !== undefined ? ` (profile "${context.profile}")` : '';
  return new TlsError(entry[0], `TLS with ${context.peer} failed over HTTP/3${where}: ${entry[1]}. Underlying error: TLS alert ${alert}`, { peer: context.peer, profile: context.profile, cause });
}
