import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsMode, TlsOptions } from '../config/types.js';
import { TlsError, type TlsErrorCode } from '../errors.js';
import { splitCrlFile } from './pem.js';

/**
 * One generation of TLS material for one profile: the bytes every transport (HTTP/2,
 * HTTP/3, undici) takes its TLS settings from. Immutable; a reload makes a new one.
 */
export interface TlsMaterial {
  readonly profile: string;
  /** Increments each time the provider loads material that differs from the previous. */
  readonly generation: number;
  readonly mode: TlsMode;
  /** PEM CA bundle; undefined means the system roots. */
  readonly ca: Buffer | undefined;
  /** PEM client certificate chain (mtls with certFile/keyFile). */
  readonly cert: Buffer | undefined;
  /** PEM client key. */
  readonly key: Buffer | undefined;
  /** PKCS#12 bundle (mtls with pfxFile). */
  readonly pfx: Buffer | undefined;
  readonly passphrase: string | undefined;
  /** PEM CRLs enforced during the handshake, one per entry (a file holding several is split). */
  readonly crl: readonly Buffer[];
  readonly checkRevocation: boolean;
  readonly serverNameOverride: string | undefined;
  /** The client leaf certificate when it was given as PEM. */
  readonly clientCertificate: X509Certificate | undefined;
  /** SHA-256 over every input byte and setting: equal fingerprints mean equal material. */
  readonly fingerprint: string;
  /** Node's secure context built from this material (undefined for `insecure`). */
  readonly secureContext: SecureContext | undefined;
}

export type TlsMaterialWithoutGeneration = Omit<TlsMaterial, 'generation'>;

function readFile(path: string, profile: string, missingCode: TlsErrorCode, unreadableCode: TlsErrorCode, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT') {
      throw new TlsError(missingCode, `Profile "${profile}": the ${what} file "${path}" does not exist. Fix tls settings of the profile or create the file.`, { file: path, profile, cause: error });
    }
    throw new TlsError(unreadableCode, `Profile "${profile}": the ${what} file "${path}" cannot be read (${errno ?? String(error)}). Check its permissions.`, { file: path, profile, cause: error });
  }
}

function parseCertificate(pem: Buffer, path: string, profile: string, code: TlsErrorCode, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new TlsError(code, `Profile "${profile}": the ${what} file "${path}" is not a PEM certificate (${(error as Error).message}).`, { file: path, profile, cause: error });
  }
}

/**
 * Reads and checks the files named by a profile's TLS options. Everything that can be
 * checked before dialling is checked here, so a bad setup fails at configuration time
 * with the file named: missing or unreadable files, a key that does not match the
 * certificate, an expired client certificate, a CRL or PKCS#12 bundle OpenSSL rejects.
 */
export function loadTlsMaterial(profile: string, options: TlsOptions, now: Date): TlsMaterialWithoutGeneration {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ mode: options.mode, sn: options.serverNameOverride ?? null, rev: options.checkRevocation }));
  if (options.mode === 'insecure') {
    return {
      profile, mode: 'insecure', ca: undefined, cert: undefined, key: undefined, pfx: undefined, passphrase: undefined, crl: [],
      checkRevocation: false, serverNameOverride: undefined, clientCertificate: undefined, fingerprint: hash.digest('hex'), secureContext: undefined,
    };
  }

  let ca: Buffer | undefined;
  if (options.caFile !== undefined) {
    ca = readFile(options.caFile, profile, 'TLS_CA_UNREADABLE', 'TLS_CA_UNREADABLE', 'CA bundle');
    parseCertificate(ca, options.caFile, profile, 'TLS_CA_UNREADABLE', 'CA bundle');
    hash.update('ca').update(ca);
  }

  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  let pfx: Buffer | undefined;
  let clientCertificate: X509Certificate | undefined;
  if (options.mode === 'mtls') {
    if (options.pfxFile !== undefined) {
      pfx = readFile(options.pfxFile, profile, 'TLS_CLIENT_CERT_MISSING', 'TLS_CLIENT_CERT_UNREADABLE', 'PKCS#12 client certificate');
      hash.update('pfx').update(pfx).update(options.pfxPassword ?? '');
    } else if (options.certFile !== undefined && options.keyFile !== undefined) {
      cert = readFile(options.certFile, profile, 'TLS_CLIENT_CERT_MISSING', 'TLS_CLIENT_CERT_UNREADABLE', 'client certificate');
      key = readFile(options.keyFile, profile, 'TLS_CLIENT_CERT_MISSING', 'TLS_CLIENT_CERT_UNREADABLE', 'client key');
      clientCertificate = parseCertificate(cert, options.certFile, profile, 'TLS_CLIENT_CERT_UNREADABLE', 'client certificate');
      let privateKey;
      try {
        privateKey = createPrivateKey(key);
      } catch (error) {
        throw new TlsError('TLS_CLIENT_CERT_UNREADABLE', `Profile "${profile}": the client key file "${options.keyFile}" is not a PEM private key (${(error as Error).message}).`, { file: options.keyFile, profile, cause: error });
      }
      if (!clientCertificate.checkPrivateKey(privateKey)) {
        throw new TlsError('TLS_KEY_MISMATCH', `Profile "${profile}": the key in "${options.keyFile}" does not belong to the certificate in "${options.certFile}". Install the matching key (during a rotation, write the key before the certificate or both at once).`, { file: options.keyFile, profile });
      }
      const validTo = new Date(clientCertificate.validTo);
      if (validTo.getTime() <= now.getTime()) {
        throw new TlsError('TLS_CLIENT_CERT_EXPIRED', `Profile "${profile}": the client certificate "${options.certFile}" (${clientCertificate.subject.replace(/\n/g, ', ')}) expired on ${validTo.toISOString()}. Renew it.`, { file: options.certFile, profile });
      }
      hash.update('cert').update(cert).update('key').update(key);
    } else {
      throw new TlsError('TLS_CLIENT_CERT_MISSING', `Profile "${profile}" uses mtls but names no client certificate: set tls.certFile and tls.keyFile, or tls.pfxFile.`, { profile });
    }
  }

  const crl: Buffer[] = [];
  for (const file of options.crlFiles) {
    const bytes = readFile(file, profile, 'TLS_CRL_UNREADABLE', 'TLS_CRL_UNREADABLE', 'CRL');
    crl.push(...splitCrlFile(bytes));
    hash.update('crl').update(bytes);
  }

  let secureContext: SecureContext;
  try {
    secureContext = createSecureContext({ ca, cert, key, pfx, passphrase: options.pfxPassword, crl: crl.length > 0 ? crl : undefined });
  } catch (error) {
    const message = (error as Error).message;
    if (pfx !== undefined && options.pfxFile !== undefined && /mac verify|pkcs12|asn1|decode/i.test(message)) {
      throw new TlsError('TLS_CLIENT_CERT_UNREADABLE', `Profile "${profile}": the PKCS#12 file "${options.pfxFile}" cannot be opened (${message}). Check tls.pfxPassword and the file.`, { file: options.pfxFile, profile, cause: error });
    }
    if (crl.length > 0 && /crl/i.test(message)) {
      throw new TlsError('TLS_CRL_UNREADABLE', `Profile "${profile}": a CRL file (${options.crlFiles.join(', ')}) is not a valid PEM CRL (${message}).`, { file: options.crlFiles[0], profile, cause: error });
    }
    throw new TlsError('TLS_CLIENT_CERT_UNREADABLE', `Profile "${profile}": OpenSSL rejected the TLS material (${message}).`, { profile, cause: error });
  }

  return {
    profile, mode: options.mode, ca, cert, key, pfx, passphrase: options.pfxPassword, crl, checkRevocation: options.checkRevocation,
    serverNameOverride: options.serverNameOverride, clientCertificate, fingerprint: hash.digest('hex'), secureContext,
  };
}
