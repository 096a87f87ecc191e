/**
 * What both HTTP/3 roles need from `@matrixai/quic` besides streams: a WARN-level logger,
 * crypto ops (a real HMAC for the server), the mapping between stream cancellation reasons
 * and HTTP/3 error codes, access to the few native-handle facts the typings hide, and the
 * certificate checks we run in `verifyCallback` (the library turns BoringSSL's own chain
 * verification off as soon as a callback is set, so the callback does all of it).
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata polyfill loaded before it is evaluated.
import 'reflect-metadata';
import { createHmac, randomFillSync, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import Logger, { LogLevel } from '@matrixai/logger';
import { native, type QUICConnection, type QUICStream } from '@matrixai/quic';
import * as x509 from '@peculiar/x509';
import { TlsError, type TlsErrorCode } from '../../errors.js';
import { H3_ERROR_CODES, http3ErrorCodeName } from './error-codes.js';

/** A logger for the library at WARN: its default logs every connection event at INFO. */
export function quicLogger(name: string): Logger {
  return new Logger(name, LogLevel.WARN);
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Client crypto ops: random connection ids. */
export const clientCrypto = {
  ops: {
    randomBytes: (data: ArrayBuffer): Promise<void> => {
      randomFillSync(new Uint8Array(data));
      return Promise.resolve();
    },
  },
};

/**
 * Server crypto ops: HMAC-SHA256 under a fresh random key. The server derives connection ids
 * and signs Retry tokens with it, so it must be a real MAC (a constant would give every
 * connection the same id).
 */
export function serverCrypto(): { key: ArrayBuffer; ops: { sign(key: ArrayBuffer, data: ArrayBuffer): Promise<ArrayBuffer>; verify(key: ArrayBuffer, data: ArrayBuffer, sig: ArrayBuffer): Promise<boolean> } } {
  const mac = (key: ArrayBuffer, data: ArrayBuffer): Buffer => createHmac('sha256', Buffer.from(key)).update(Buffer.from(data)).digest();
  return {
    key: toArrayBuffer(randomBytes(32)),
    ops: {
      sign: (key, data) => Promise.resolve(toArrayBuffer(mac(key, data))),
      verify: (key, data, sig) => {
        const expected = mac(key, data);
        const given = Buffer.from(sig);
        return Promise.resolve(given.length === expected.length && timingSafeEqual(given, expected));
      },
    },
  };
}

/**
 * The reason a stream was cancelled or reset, with its HTTP/3 error code: what we pass to
 * `QUICStream.cancel` and what the library hands us (through `codeToReason`) when the peer
 * resets or stops a stream.
 */
export class H3StreamAbort extends Error {
  override readonly name = 'H3StreamAbort';
  constructor(
    readonly code: number,
    message: string,
    readonly byPeer = false,
  ) {
    super(message);
  }
}

/** `reasonToCode` for the library: our H3StreamAbort code, else H3_REQUEST_CANCELLED. */
export function reasonToCode(_type: 'read' | 'write', reason?: unknown): number {
  return reason instanceof H3StreamAbort ? reason.code : H3_ERROR_CODES.H3_REQUEST_CANCELLED;
}

/** `codeToReason` for the library: the peer's code as an H3StreamAbort. */
export function codeToReason(type: 'read' | 'write', code: number): H3StreamAbort {
  return new H3StreamAbort(code, `the peer ${type === 'read' ? 'reset' : 'stopped'} the stream with ${http3ErrorCodeName(code)}`, true);
}

/** The native quiche connection behind a QUICConnection (typed internal by the library). */
interface NativeConnection {
  peerStreamsLeftBidi(): number;
}

/** Bidirectional streams the peer still lets us open (its MAX_STREAMS credit). */
export function peerStreamsLeftBidi(connection: QUICConnection): number {
  return (connection as unknown as { conn: NativeConnection }).conn.peerStreamsLeftBidi();
}

/** Every stream the library has created for the connection (including ones announced before we listened). */
export function knownStreams(connection: QUICConnection): Iterable<QUICStream> {
  return (connection as unknown as { streamMap: Map<number, QUICStream> }).streamMap.values();
}

// ---------------------------------------------------------------------------------------------
// Certificate verification
// ---------------------------------------------------------------------------------------------

/** TLS alerts as QUIC crypto errors (0x100 + alert), what a verifyCallback returns to refuse. */
export const CRYPTO_ALERT = {
  BAD_CERTIFICATE: native.CryptoError.BadCertificate,
  CERTIFICATE_REVOKED: native.CryptoError.CertificateRevoked,
  CERTIFICATE_EXPIRED: native.CryptoError.CertificateExpired,
  UNKNOWN_CA: native.CryptoError.UnknownCA,
  ACCESS_DENIED: native.CryptoError.AccessDenied,
  HANDSHAKE_FAILURE: native.CryptoError.HandshakeFailure,
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
  if (now < from) return { code: 'TLS_PEER_EXPIRED', reason: `the ${what} certificate is not valid before ${from.toISOString()}`, alert: CRYPTO_ALERT.CERTIFICATE_EXPIRED };
  if (now > to) return { code: 'TLS_PEER_EXPIRED', reason: `the ${what} certificate expired on ${to.toISOString()}`, alert: CRYPTO_ALERT.CERTIFICATE_EXPIRED };
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
  if (first === undefined) return { code: 'TLS_PEER_UNTRUSTED', reason: 'no certificate was presented', alert: CRYPTO_ALERT.BAD_CERTIFICATE };
  let chain: X509Certificate[];
  try {
    chain = chainDer.map((der) => new X509Certificate(Buffer.from(der)));
  } catch (error) {
    return { code: 'TLS_HANDSHAKE_FAILED', reason: `an unparsable certificate was presented (${(error as Error).message})`, alert: CRYPTO_ALERT.BAD_CERTIFICATE };
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
      return { code: 'TLS_PEER_UNTRUSTED', reason: `unable to get local issuer certificate for "${current.subject.replace(/\n/g, ', ')}"`, alert: CRYPTO_ALERT.UNKNOWN_CA };
    }
    const intermediateExpired = expiry(intermediate, now, 'intermediate');
    if (intermediateExpired !== undefined) return intermediateExpired;
    issuer ??= intermediate;
    current = intermediate;
    if (depth === 9) return { code: 'TLS_PEER_UNTRUSTED', reason: 'certificate chain too long', alert: CRYPTO_ALERT.UNKNOWN_CA };
  }

  if (trust.crls.length > 0 && issuer !== undefined) {
    const issuerName = new x509.X509Certificate(issuer.raw).subjectName.toString();
    const crls = trust.crls.filter((crl) => crl.issuerName.toString() === issuerName);
    if (crls.length === 0) return { code: 'TLS_HANDSHAKE_FAILED', reason: 'unable to get certificate CRL for the issuer of the peer certificate', alert: CRYPTO_ALERT.HANDSHAKE_FAILURE };
    const peculiarLeaf = new x509.X509Certificate(leaf.raw);
    if (crls.some((crl) => crl.findRevoked(peculiarLeaf) !== null)) {
      return { code: 'TLS_REVOKED', reason: `certificate revoked (serial ${leaf.serialNumber})`, alert: CRYPTO_ALERT.CERTIFICATE_REVOKED };
    }
  }

  if (options.name !== undefined) {
    const name = options.name;
    const matched = isIP(name) !== 0 ? leaf.checkIP(name) : leaf.checkHost(name);
    if (matched === undefined) {
      return { code: 'TLS_PEER_NAME_MISMATCH', reason: `the certificate is not valid for "${name}" (subject alternative names: ${leaf.subjectAltName ?? 'none'})`, alert: CRYPTO_ALERT.BAD_CERTIFICATE };
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
