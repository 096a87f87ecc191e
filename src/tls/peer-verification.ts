import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { TlsError } from '../errors.js';

/** What a custom peer check sees. */
export interface PeerCertificateCheck {
  /** The endpoint being dialled, `host:port`. */
  readonly endpoint: string;
  readonly profile: string;
  /** The peer's chain as presented, leaf first. */
  readonly chain: readonly X509Certificate[];
  /** The transport doing the handshake. */
  readonly protocol: 'h2' | 'h3';
}

/**
 * A custom validation callback (bound to `TOKENS.PeerCertificateValidator`). It runs after
 * the chain, name and revocation checks passed. Return a string (or throw) to reject the
 * peer with that reason; return nothing to accept it.
 */
export type PeerCertificateValidator = (check: PeerCertificateCheck) => string | undefined | void;

/** Walks a detailed peer certificate into a chain, leaf first. */
export function chainOf(cert: PeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: DetailedPeerCertificate | undefined = cert as DetailedPeerCertificate;
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return chain;
}

/** Runs the custom validator; returns the rejection as a TlsError, or undefined when accepted. */
export function runPeerValidator(validator: PeerCertificateValidator | undefined, facts: Omit<PeerCertificateCheck, 'chain'>, chain: () => readonly X509Certificate[]): TlsError | undefined {
  // The chain is decoded only for a validator (a few hundred µs per certificate on every handshake otherwise).
  if (validator === undefined) return undefined;
  const check: PeerCertificateCheck = { ...facts, chain: chain() };
  let reason: string | undefined;
  try {
    reason = validator(check) ?? undefined;
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
  }
  if (reason === undefined) return undefined;
  const subject = check.chain[0]?.subject.replace(/\n/g, ', ') ?? 'no certificate';
  return new TlsError('TLS_CUSTOM_CHECK_REJECTED', `Peer ${check.endpoint} (${subject}) was rejected by the custom certificate check of profile "${check.profile}": ${reason}`, { peer: check.endpoint, profile: check.profile });
}

/**
 * Builds the `checkServerIdentity` hook for Node's TLS (which replaces Node's default, so
 * the name check runs here first). Failures are handed to `onFailure` so the call that
 * hit them can surface the typed error rather than a bare UNAVAILABLE.
 */
export function serverIdentityCheck(options: {
  endpoint: string;
  profile: string;
  validator: PeerCertificateValidator | undefined;
  onFailure: (error: TlsError) => void;
  /** Called when the peer passed every check (the handshake is complete on our side). */
  onVerified?: () => void;
}): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const nameError = checkServerIdentity(host, cert);
    if (nameError !== undefined) {
      const failure = new TlsError('TLS_PEER_NAME_MISMATCH', `Peer ${options.endpoint} presented a certificate that is not valid for "${host}" (${nameError.message}). Dial it by a name in its certificate or set tls.serverNameOverride of profile "${options.profile}".`, { peer: options.endpoint, profile: options.profile, verifyError: 'ERR_TLS_CERT_ALTNAME_INVALID', cause: nameError });
      options.onFailure(failure);
      return failure;
    }
    const rejection = runPeerValidator(options.validator, { endpoint: options.endpoint, profile: options.profile, protocol: 'h2' }, () => chainOf(cert));
    if (rejection !== undefined) {
      options.onFailure(rejection);
      return rejection;
    }
    options.onVerified?.();
    return undefined;
  };
}
