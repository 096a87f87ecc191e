/**
 * What both HTTP/3 roles need besides the QUIC driver: the certificate checks our driver runs
 * once a handshake completes (BoringSSL's own verdict is allowed to fail, so these checks do all
 * of it), and the typed errors for TLS alerts.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata polyfill loaded before it is evaluated.
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { TlsError, type TlsErrorCode } from '../../errors.js';

// ---------------------------------------------------------------------------------------------
// Certificate verification
// ---------------------------------------------------------------------------------------------

/** TLS alerts (RFC 8446 §6.2) a verify function refuses a chain with (QUIC sends 0x100 + alert). */
export const TLS_ALERT = {
  HANDSHAKE_FAILURE: 40,
  BAD_CERTIFICATE: 42,
  CERTIFICATE_REVOKED: 44,
  CERTIFICATE_EXPIRED: 45,
  UNKNOWN_CA: 48,
  ACCESS_DENIED: 49,
} as const;

/** Trust inputs parsed once: CA certificates and CRLs. */
export interface TrustStore {
  readonly cas: readonly X509Certificate[];
  readonly crls: readonly x509.X509Crl[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

function pemBlocks(pem: string | Buffer | undefined, label: string): string[] {
  if (pem === undefined) return [];
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  return [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === label).map((m) => m[0]);
}

/** Parses a PEM CA bundle (undefined: Node's bundled roots) and PEM CRLs. */
export function trustStoreOf(ca: string | Buffer | undefined, crls: readonly (string | Buffer)[]): TrustStore {
  const caPems = ca === undefined ? [...rootCertificates] : pemBlocks(ca, 'CERTIFICATE');
  return {
    cas: caPems.map((pem) => new X509Certificate(pem)),
    crls: crls.flatMap((crl) => pemBlocks(crl, 'X509 CRL')).map((pem) => new x509.X509Crl(pem)),
  };
}

/** Why a presented chain was refused. */
export interface ChainRejection {
  readonly code: TlsErrorCode;
  /** What went wrong, without advice. */
  readonly reason: string;
  /** The TLS alert to close with. */
  readonly alert: number;
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function expiry(cert: X509Certificate, now: Date, what: string): ChainRejection | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from) return { code: 'TLS_PEER_EXPIRED', reason: `the ${what} certificate is not valid before ${from.toISOString()}`, alert: TLS_ALERT.CERTIFICATE_EXPIRED };
  if (now > to) return { code: 'TLS_PEER_EXPIRED', reason: `the ${what} certificate expired on ${to.toISOString()}`, alert: TLS_ALERT.CERTIFICATE_EXPIRED };
  return undefined;
}

/**
 * Checks a presented chain (leaf first, DER) like OpenSSL would for our HTTP/2 transport:
 * validity dates, a path to a trusted CA (intermediates from the chain, signatures checked),
 * CRL revocation of the leaf when CRLs are loaded (a missing CRL for its issuer is then a
 * failure, as with OpenSSL's CRL_CHECK), and, when `name` is given, the host name or IP.
 */
export function verifyChain(chainDer: readonly Uint8Array[], trust: TrustStore, options: { name?: string | undefined; now?: Date } = {}): ChainRejection | undefined {
  const now = options.now ?? new Date();
  const first = chainDer[0];
  if (first === undefined) return { code: 'TLS_PEER_UNTRUSTED', reason: 'no certificate was presented', alert: TLS_ALERT.BAD_CERTIFICATE };
  let chain: X509Certificate[];
  try {
    chain = chainDer.map((der) => new X509Certificate(Buffer.from(der)));
  } catch (error) {
    return { code: 'TLS_HANDSHAKE_FAILED', reason: `an unparsable certificate was presented (${(error as Error).message})`, alert: TLS_ALERT.BAD_CERTIFICATE };
  }
  const leaf = chain[0] as X509Certificate;
  const expired = expiry(leaf, now, 'peer');
  if (expired !== undefined) return expired;

  let current = leaf;
  let issuer: X509Certificate | undefined;
  for (let depth = 0; depth < 10; depth++) {
    const anchor = trust.cas.find((ca) => issuedBy(current, ca));
    if (anchor !== undefined) {
      issuer ??= anchor;
      break;
    }
    const intermediate = chain.slice(1).find((c) => c !== current && c.ca && issuedBy(current, c));
    if (intermediate === undefined) {
      return { code: 'TLS_PEER_UNTRUSTED', reason: `unable to get local issuer certificate for "${current.subject.replace(/\n/g, ', ')}"`, alert: TLS_ALERT.UNKNOWN_CA };
    }
    const intermediateExpired = expiry(intermediate, now, 'intermediate');
    if (intermediateExpired !== undefined) return intermediateExpired;
    issuer ??= intermediate;
    current = intermediate;
    if (depth === 9) return { code: 'TLS_PEER_UNTRUSTED', reason: 'certificate chain too long', alert: TLS_ALERT.UNKNOWN_CA };
  }

  if (trust.crls.length > 0 && issuer !== undefined) {
    const issuerName = new x509.X509Certificate(issuer.raw).subjectName.toString();
    const crls = trust.crls.filter((crl) => crl.issuerName.toString() === issuerName);
    if (crls.length === 0) return { code: 'TLS_HANDSHAKE_FAILED', reason: 'unable to get certificate CRL for the issuer of the peer certificate', alert: TLS_ALERT.HANDSHAKE_FAILURE };
    const peculiarLeaf = new x509.X509Certificate(leaf.raw);
    if (crls.some((crl) => crl.findRevoked(peculiarLeaf) !== null)) {
      return { code: 'TLS_REVOKED', reason: `certificate revoked (serial ${leaf.serialNumber})`, alert: TLS_ALERT.CERTIFICATE_REVOKED };
    }
  }

  if (options.name !== undefined) {
    const name = options.name;
    const matched = isIP(name) !== 0 ? leaf.checkIP(name) : leaf.checkHost(name);
    if (matched === undefined) {
      return { code: 'TLS_PEER_NAME_MISMATCH', reason: `the certificate is not valid for "${name}" (subject alternative names: ${leaf.subjectAltName ?? 'none'})`, alert: TLS_ALERT.BAD_CERTIFICATE };
    }
  }
  return undefined;
}

const ADVICE: Partial<Record<TlsErrorCode, string>> = {
  TLS_PEER_UNTRUSTED: 'the server certificate does not chain to the CA bundle of the profile (tls.caFile)',
  TLS_PEER_EXPIRED: 'the server certificate is expired (or not yet valid): renew it on the server',
  TLS_REVOKED: 'the server certificate is listed in our CRL: the server must get a new certificate',
  TLS_PEER_NAME_MISMATCH: 'dial the server by a name in its certificate or set tls.serverNameOverride',
  TLS_HANDSHAKE_FAILED: 'revocation checking is on but no CRL from the issuer of the server certificate is loaded: add it to tls.crlFiles',
};

/** A client-side rejection as the TlsError the HTTP/2 transport would raise. */
export function serverRejectionError(rejection: ChainRejection, context: { peer: string; profile: string }): TlsError {
  const advice = ADVICE[rejection.code] ?? 'the server certificate was rejected';
  return new TlsError(rejection.code, `TLS with ${context.peer} failed over HTTP/3 (profile "${context.profile}"): ${advice}. Underlying error: ${rejection.reason}`, context);
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
  45: ['TLS_CLIENT_CERT_EXPIRED', 'the server says our client certificate has expired: renew it'],
  46: ['TLS_CLIENT_CERT_REJECTED', 'the server rejected our client certificate: it must be issued by a CA the server trusts'],
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
