/**
 * Certificate chain verification that reaches the verdict OpenSSL reaches for our HTTP/2
 * transport, for the transports that do not run OpenSSL's verifier (HTTP/3: quiche's
 * BoringSSL verdict is allowed to fail and this decides).
 *
 * What Node's TLS does, and so what HTTP/2 does (Node 20, OpenSSL 3.0): OpenSSL's
 * `X509_verify_cert` with purpose `ssl_server` (we verify a server) or `ssl_client` (a server
 * verifies its clients), the CA bundle as the trust store (plus the CA certificates of a
 * PKCS#12 identity: Node adds those to the same store), and, when CRLs are loaded,
 * `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL` (every certificate of the path, the root
 * included, needs a CRL from its issuer). Node's verify callback lets every check run and
 * reports the **last** error found, then checks the server name (`tls.checkServerIdentity`)
 * only if there was none. This module runs the same steps in the same order and reports the
 * same last error:
 *
 * 1. Path building, trusted first: issuers are found by name, authority key identifier and
 *    key type (not by signature); a path is trusted when it ends at a self-signed certificate
 *    of the trust store (`UNABLE_TO_GET_ISSUER_CERT[_LOCALLY]`, `SELF_SIGNED_CERT_IN_CHAIN`,
 *    `DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_CHAIN_TOO_LONG`).
 * 0. At most MAX_PRESENTED_CERTIFICATES (10) presented certificates, else `CERT_CHAIN_TOO_LONG`
 *    before any is parsed (OpenSSL's bound is its verify depth, 100: a deliberate difference);
 *    then security level 1 (OpenSSL 3.0's default): the peer's key first (`EE_KEY_TOO_SMALL`),
 *    after the extensions every CA key (`CA_KEY_TOO_SMALL`) and every signature but the top
 *    certificate's (`CA_MD_TOO_WEAK`: SHA-1, MD5) — 80 security bits (RSA >= ~920 bits by
 *    OpenSSL's formula, DSA >= 1024, EC orders >= 160 bits).
 * 2. Extensions of every certificate of the path: unknown critical extensions, CA
 *    certificates (`INVALID_CA`: basicConstraints CA:TRUE, keyUsage keyCertSign if present),
 *    purpose (`INVALID_PURPOSE`: extendedKeyUsage, when present, must list serverAuth —
 *    or Netscape/Microsoft SGC — for a server, clientAuth for a client, on the leaf AND on
 *    every CA including the root; the leaf's keyUsage, when present, must allow
 *    digitalSignature/keyEncipherment/keyAgreement for a server, digitalSignature/keyAgreement
 *    for a client), path length (`PATH_LENGTH_EXCEEDED`).
 * 3. Revocation, when CRLs are loaded, for every certificate of the path: a CRL with the
 *    certificate's issuer name whose authority key identifier matches a certificate of the
 *    path, in scope (issuingDistributionPoint) and, among several, the best then the newest
 *    (`UNABLE_TO_GET_CRL` when there is none); its issuer's keyUsage must allow cRLSign
 *    (`KEYUSAGE_NO_CRL_SIGN`), its dates must hold (`CRL_NOT_YET_VALID`, `CRL_HAS_EXPIRED`:
 *    nextUpdate passed), its signature must verify with the issuer's key
 *    (`CRL_SIGNATURE_FAILURE`), then the serial is looked up (`CERT_REVOKED`; an entry with
 *    reason removeFromCRL does not count).
 * 4. Signatures and dates, from the root down (`KEYUSAGE_NO_CERTSIGN`,
 *    `CERT_SIGNATURE_FAILURE`, `CERT_NOT_YET_VALID`, `CERT_HAS_EXPIRED`; the root's own
 *    signature is not checked, its dates are).
 * 5. Only when verifying a server, and only when 1-4 found nothing: the name, with Node's own
 *    `tls.checkServerIdentity` (DNS or IP subjectAltName; the CN only without DNS SANs).
 *
 * Not modelled (OpenSSL checks them; none occurs in our PKI or the profiles we configure):
 * name constraints, Netscape certificate types, explicit EC parameters, indirect and
 * reason-partitioned CRLs (OpenSSL does not use those without extended CRL support either),
 * delta CRLs, and OpenSSL's store order between two equally new CRLs of one issuer.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata polyfill loaded before it is evaluated.
import 'reflect-metadata';
import { constants, verify as verifySignature, X509Certificate } from 'node:crypto';
import { checkServerIdentity, rootCertificates } from 'node:tls';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate as CertificateSchema, CertificateList, IssuingDistributionPoint, type DistributionPoint, type DistributionPointName } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import type { TlsErrorCode } from '../errors.js';
import { pemBlocks } from './pem.js';
import { TLS_ALERT, VERIFY_ERRORS, type CertificateFailure, type CertificateVerifyError } from './verify-errors.js';

export { TLS_ALERT } from './verify-errors.js';

/** Which end the presented chain belongs to: the purpose OpenSSL checks it for. */
export type PeerRole = 'server' | 'client';

/** One failure found on the way, as OpenSSL's verify callback would see it. */
export interface ChainProblem {
  readonly verifyError: CertificateVerifyError;
  /** Position in the verified path: 0 is the peer's own certificate. */
  readonly depth: number;
  /** Subject of the certificate at fault (comma-separated). */
  readonly subject: string;
  readonly detail?: string | undefined;
}

/** Why a presented chain was refused. */
export interface ChainRejection {
  readonly code: TlsErrorCode;
  /** The reason as OpenSSL names it (the last failure found, as Node reports it), or Node's name check. */
  readonly verifyError: CertificateFailure | 'NO_CERTIFICATE' | 'UNPARSABLE_CERTIFICATE';
  /** What went wrong, without advice. */
  readonly reason: string;
  /** The TLS alert to close with (OpenSSL's for this verify error). */
  readonly alert: number;
  /** Every failure found, in the order found (the last one decided). */
  readonly problems: readonly ChainProblem[];
}

// ---------------------------------------------------------------------------------------------
// Parsed certificates and CRLs
// ---------------------------------------------------------------------------------------------

const OID = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  nsSGC: '2.16.840.1.113730.4.1',
  msSGC: '1.3.6.1.4.1.311.10.3.3',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  authorityKeyIdentifier: '2.5.29.35',
  subjectKeyIdentifier: '2.5.29.14',
  crlDistributionPoints: '2.5.29.31',
  issuingDistributionPoint: '2.5.29.28',
  deltaCrlIndicator: '2.5.29.27',
  certificateIssuer: '2.5.29.29',
} as const;

/** Critical certificate extensions OpenSSL 3.0 handles (`X509_supported_extension`); any other critical one fails. */
const SUPPORTED_CRITICAL = new Set([
  '2.16.840.1.113730.1.1', // nsCertType
  OID.keyUsage,
  '2.5.29.17', // subjectAltName
  OID.basicConstraints,
  '2.5.29.32', // certificatePolicies
  OID.crlDistributionPoints,
  OID.extKeyUsage,
  '1.3.6.1.5.5.7.1.7', // sbgp-ipAddrBlock
  '1.3.6.1.5.5.7.1.8', // sbgp-autonomousSysNum
  '1.3.6.1.5.5.7.48.1.5', // OCSP noCheck
  '2.5.29.36', // policyConstraints
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '2.5.29.30', // nameConstraints
  '2.5.29.33', // policyMappings
  '2.5.29.54', // inhibitAnyPolicy
]);

/** Critical CRL extensions OpenSSL handles; any other marks the CRL unusable for revocation. */
const SUPPORTED_CRITICAL_CRL: ReadonlySet<string> = new Set([OID.issuingDistributionPoint, OID.authorityKeyIdentifier, OID.deltaCrlIndicator]);

/** CRL reason bits (ReasonFlags), all of them: a CRL in scope without onlySomeReasons covers these. */
const REASON_BITS: Readonly<Record<string, number>> = {
  unused: 0x1,
  keyCompromise: 0x2,
  cACompromise: 0x4,
  affiliationChanged: 0x8,
  superseded: 0x10,
  cessationOfOperation: 0x20,
  certificateHold: 0x40,
  privilegeWithdrawn: 0x80,
  aACompromise: 0x100,
};
const ALL_REASONS = 0x1ff;

function reasonsOf(reason: { toJSON(): string[] } | undefined): number {
  if (reason === undefined) return ALL_REASONS;
  return reason.toJSON().reduce((bits, name) => bits | (REASON_BITS[name] ?? 0), 0);
}

/** OpenSSL compares names by a canonical form: types, values trimmed, inner spaces folded, lowercased. */
function canonicalName(name: x509.Name): string {
  return JSON.stringify(
    name.toJSON().map((rdn) =>
      Object.entries(rdn)
        .map(([type, values]) => [type, values.map((v) => v.trim().replace(/\s+/g, ' ').toLowerCase())] as const)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ),
  );
}

function normalizeSerial(hex: string): string {
  return hex.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');
}

function bytesEqual(a: ArrayBuffer, b: ArrayBuffer): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/** The key type a signature algorithm OID needs (`check_sig_alg_match`); undefined when unknown. */
function keyTypeForSignature(oid: string): readonly string[] | undefined {
  if (oid.startsWith('1.2.840.10045.4.')) return ['ec'];
  if (oid === '1.2.840.113549.1.1.10') return ['rsa', 'rsa-pss'];
  if (oid.startsWith('1.2.840.113549.1.1.')) return ['rsa'];
  if (oid === '1.3.101.112') return ['ed25519'];
  if (oid === '1.3.101.113') return ['ed448'];
  if (oid.startsWith('1.2.840.10040.4.') || oid.startsWith('2.16.840.1.101.3.4.3.')) return ['dsa'];
  return undefined;
}

/**
 * A coarse key of a printed name (Node's multi-line form): lowercased, whitespace and escapes
 * dropped, the values of a multi-valued RDN sorted. Names OpenSSL's canonical form finds equal
 * always get the same key, so comparing keys finds every candidate issuer; candidates are then
 * fully parsed and compared as OpenSSL does (`likelyIssued`).
 */
function nameKey(printed: string): string {
  return printed
    .split('\n')
    .map((rdn) => rdn.toLowerCase().replace(/[\s\\]+/g, '').split('+').sort().join('+'))
    .join('\n');
}

/** `ossl_ifc_ffc_compute_security_bits` (OpenSSL 3.0, RSA: NIST SP 800-56B rev 2 Appendix D), in OpenSSL's fixed point. */
function ifcSecurityBits(n: number): number {
  const canonical: Readonly<Record<number, number>> = { 2048: 112, 3072: 128, 4096: 152, 6144: 176, 7680: 192, 8192: 200, 15360: 256 };
  if (canonical[n] !== undefined) return canonical[n];
  if (n >= 687737) return 1200;
  if (n < 8) return 0;
  const cap = n <= 7680 ? 192 : n <= 15360 ? 256 : 1200;
  const scale = 1n << 18n;
  const mul = (a: bigint, b: bigint): bigint => (a * b) / scale;
  const cbrt = (value: bigint): bigint => {
    let x = value;
    let r = 0n;
    for (let s = 63n; s >= 0n; s -= 3n) {
      r <<= 1n;
      const b = 3n * r * (r + 1n) + 1n;
      if (x >> s >= b) {
        x -= b << s;
        r++;
      }
    }
    return r * (1n << 12n);
  };
  const ln = (value: bigint): bigint => {
    let v = value;
    let r = 0n;
    while (v >= 2n * scale) {
      v >>= 1n;
      r += scale;
    }
    for (let i = scale / 2n; i !== 0n; i /= 2n) {
      v = mul(v, v);
      if (v >= 2n * scale) {
        v >>= 1n;
        r += i;
      }
    }
    return (r * scale) / 0x05c551n;
  };
  const log2 = 0x02c5c8n;
  const x = BigInt(n) * log2;
  const lx = ln(x);
  const estimate = mul(0x07b126n, cbrt(mul(mul(x, lx), lx))) - 0x12c28fn;
  if (estimate < 0n) return 0;
  const y = (Number(estimate / log2) + 4) & ~7;
  return Math.min(y, cap);
}

/** `BN_security_bits` (DSA: p and q sizes). */
function ffcSecurityBits(l: number, n: number | undefined): number {
  const bits = l >= 15360 ? 256 : l >= 7680 ? 192 : l >= 3072 ? 128 : l >= 2048 ? 112 : l >= 1024 ? 80 : 0;
  if (bits === 0 || n === undefined) return bits;
  return n / 2 < 80 ? 0 : Math.min(bits, Math.floor(n / 2));
}

/** Order sizes (bits) of the named curves whose name does not give it. */
const CURVE_ORDER_BITS: Readonly<Record<string, number>> = {
  prime256v1: 256,
  prime192v1: 192,
  secp112r2: 110,
  secp128r2: 126,
  sect113r2: 113,
  'wap-wsg-idm-ecid-wtls1': 112,
  'wap-wsg-idm-ecid-wtls3': 163,
  'wap-wsg-idm-ecid-wtls4': 113,
  'wap-wsg-idm-ecid-wtls5': 163,
  'wap-wsg-idm-ecid-wtls6': 112,
  'wap-wsg-idm-ecid-wtls7': 161,
  'wap-wsg-idm-ecid-wtls8': 112,
  'wap-wsg-idm-ecid-wtls9': 161,
  'wap-wsg-idm-ecid-wtls10': 233,
  'wap-wsg-idm-ecid-wtls11': 233,
  'wap-wsg-idm-ecid-wtls12': 224,
  'Oakley-EC2N-3': 152,
  'Oakley-EC2N-4': 184,
};

/** `EVP_PKEY_get_security_bits` of a certificate's key, as OpenSSL 3.0 computes it; 0 when unknown. */
function keySecurityBits(node: X509Certificate): number {
  const key = node.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return details.modulusLength === undefined ? 0 : ifcSecurityBits(details.modulusLength);
    case 'dsa':
      return details.modulusLength === undefined ? 0 : ffcSecurityBits(details.modulusLength, details.divisorLength);
    case 'ec': {
      // `ec_security_bits`: from the size of the group order.
      const curve = details.namedCurve ?? '';
      const order = CURVE_ORDER_BITS[curve] ?? Number(/(\d{3})/.exec(curve)?.[1] ?? 0);
      return order >= 512 ? 256 : order >= 384 ? 192 : order >= 256 ? 128 : order >= 224 ? 112 : order >= 160 ? 80 : Math.floor(order / 2);
    }
    case 'ed25519':
    case 'x25519':
      return 128;
    case 'ed448':
    case 'x448':
      return 224;
    default:
      return 0;
  }
}

/** Digest security bits (`x509_sig_info_init`): half the digest size, SHA-1 63, MD5 39. */
const SIGNATURE_BITS: Readonly<Record<string, number>> = {
  '1.2.840.113549.1.1.2': 64, // md2WithRSAEncryption
  '1.2.840.113549.1.1.3': 64, // md4WithRSAEncryption
  '1.2.840.113549.1.1.4': 39, // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 63, // sha1WithRSAEncryption
  '1.3.14.3.2.29': 63, // sha1WithRSA (OIW)
  '1.2.840.113549.1.1.14': 112,
  '1.2.840.113549.1.1.11': 128,
  '1.2.840.113549.1.1.12': 192,
  '1.2.840.113549.1.1.13': 256,
  '1.2.840.113549.1.1.15': 112,
  '1.2.840.113549.1.1.16': 128,
  '1.2.840.10045.4.1': 63, // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 112,
  '1.2.840.10045.4.3.2': 128,
  '1.2.840.10045.4.3.3': 192,
  '1.2.840.10045.4.3.4': 256,
  '1.2.840.10040.4.3': 63, // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 112,
  '2.16.840.1.101.3.4.3.2': 128,
  '2.16.840.1.101.3.4.3.3': 192,
  '2.16.840.1.101.3.4.3.4': 256,
  '2.16.840.1.101.3.4.3.9': 112,
  '2.16.840.1.101.3.4.3.10': 128,
  '2.16.840.1.101.3.4.3.11': 192,
  '2.16.840.1.101.3.4.3.12': 256,
  '2.16.840.1.101.3.4.3.13': 112,
  '2.16.840.1.101.3.4.3.14': 128,
  '2.16.840.1.101.3.4.3.15': 192,
  '2.16.840.1.101.3.4.3.16': 256,
  '1.3.101.112': 128, // Ed25519
  '1.3.101.113': 224, // Ed448
};

/** RSA-PSS (`rsa_pss_siginf_set`): half the digest size of its hash, SHA-1 64, MD5 39. */
const PSS_HASH_BITS: Readonly<Record<string, number>> = { 'SHA-1': 64, 'SHA-256': 128, 'SHA-384': 192, 'SHA-512': 256 };

function signatureSecurityBits(oid: string, cert: x509.X509Certificate): number {
  if (oid !== '1.2.840.113549.1.1.10') return SIGNATURE_BITS[oid] ?? -1;
  try {
    const algorithm = cert.signatureAlgorithm as unknown as { hash?: { name?: string } | string };
    const hash = typeof algorithm.hash === 'string' ? algorithm.hash : (algorithm.hash?.name ?? 'SHA-1');
    return PSS_HASH_BITS[hash.toUpperCase()] ?? -1;
  } catch {
    return -1;
  }
}

/** Security level 1 (OpenSSL 3.0's default, Node 20's): 80 bits for keys and signatures. */
const SECURITY_BITS = 80;

/** One certificate with what OpenSSL caches of it (`ossl_x509v3_cache_extensions`). */
interface Cert {
  readonly der: Buffer;
  readonly node: X509Certificate;
  readonly subject: string;
  readonly issuer: string;
  readonly subjectText: string;
  readonly serial: string;
  readonly version: number;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyType: string;
  readonly signatureKeyTypes: readonly string[] | undefined;
  /** `EVP_PKEY_get_security_bits` of the public key (0: unknown or unusable). */
  readonly keyBits: number;
  /** Security bits of the signature (`X509_get_signature_info`); -1 when unknown. */
  readonly signatureBits: number;
  readonly signatureOid: string;
  /** Coarse keys of the printed names, to find issuer candidates before parsing (see `nameKey`). */
  readonly subjectKey: string;
  readonly issuerKey: string;
  readonly skid: string | undefined;
  readonly akid: { readonly keyId: string | undefined; readonly issuers: readonly string[]; readonly serial: string | undefined } | undefined;
  /** basicConstraints, when present. */
  readonly basic: { readonly ca: boolean; readonly pathLength: number | undefined } | undefined;
  /** keyUsage flags (`x509.KeyUsageFlags`), when present. */
  readonly keyUsage: number | undefined;
  /** extendedKeyUsage OIDs, when present. */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly unhandledCritical: string | undefined;
  readonly distributionPoints: readonly DistributionPoint[];
  /** Subject equals issuer (EXFLAG_SI). */
  readonly selfIssued: boolean;
  /** Self-issued, its own AKID matches and its key type fits its signature (EXFLAG_SS). */
  readonly selfSigned: boolean;
}

function parseCertificate(der: Buffer, parsedNode?: X509Certificate): Cert {
  const node = parsedNode ?? new X509Certificate(der);
  const cert = new x509.X509Certificate(der);
  const ext = <T extends x509.Extension>(type: new (raw: ArrayBuffer) => T): T | null => cert.getExtension(type);
  const basic = ext(x509.BasicConstraintsExtension);
  const usage = ext(x509.KeyUsagesExtension);
  const eku = ext(x509.ExtendedKeyUsageExtension);
  const ski = ext(x509.SubjectKeyIdentifierExtension);
  const aki = ext(x509.AuthorityKeyIdentifierExtension);
  const cdp = ext(x509.CRLDistributionPointsExtension);
  const subject = canonicalName(cert.subjectName);
  const issuer = canonicalName(cert.issuerName);
  const akid = authorityKeyIdOf(aki);
  const skid = ski?.keyId.toLowerCase();
  const keyType = node.publicKey.asymmetricKeyType ?? 'unknown';
  const schema = AsnConvert.parse(der, CertificateSchema);
  const signatureKeyTypes = keyTypeForSignature(schema.signatureAlgorithm.algorithm);
  const parsed: Omit<Cert, 'selfSigned'> = {
    der,
    node,
    subject,
    issuer,
    subjectText: node.subject.replace(/\n/g, ', '),
    serial: normalizeSerial(cert.serialNumber),
    version: schema.tbsCertificate.version + 1,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    keyType,
    signatureKeyTypes,
    keyBits: keySecurityBits(node),
    signatureBits: signatureSecurityBits(schema.signatureAlgorithm.algorithm, cert),
    signatureOid: schema.signatureAlgorithm.algorithm,
    subjectKey: nameKey(node.subject),
    issuerKey: nameKey(node.issuer),
    skid,
    akid,
    basic: basic === null ? undefined : { ca: basic.ca, pathLength: basic.pathLength },
    keyUsage: usage === null ? undefined : usage.usages,
    extKeyUsage: eku === null ? undefined : eku.usages.map(String),
    unhandledCritical: cert.extensions.find((e) => e.critical && !SUPPORTED_CRITICAL.has(e.type))?.type,
    distributionPoints: cdp?.distributionPoints ?? [],
    selfIssued: subject === issuer,
  };
  return { ...parsed, selfSigned: parsed.selfIssued && akidMatches(parsed, parsed.akid) && signatureFitsKey(parsed, parsed) };
}

function authorityKeyIdOf(aki: x509.AuthorityKeyIdentifierExtension | null): Cert['akid'] {
  if (aki === null) return undefined;
  const names = aki.certId?.name;
  const issuers = names instanceof x509.GeneralNames ? names.items.filter((n) => n.type === 'dn').map((n) => canonicalName(new x509.Name(n.value))) : [];
  return { keyId: aki.keyId?.toLowerCase(), issuers, serial: aki.certId !== undefined ? normalizeSerial(aki.certId.serialNumber) : undefined };
}

/** `X509_check_akid`: does `issuer` fit the authority key identifier `akid`? */
function akidMatches(issuer: Pick<Cert, 'skid' | 'serial' | 'issuer'>, akid: Cert['akid']): boolean {
  if (akid === undefined) return true;
  if (akid.keyId !== undefined && issuer.skid !== undefined && akid.keyId !== issuer.skid) return false;
  if (akid.serial !== undefined && akid.serial !== issuer.serial) return false;
  if (akid.issuers.length > 0 && !akid.issuers.includes(issuer.issuer)) return false;
  return true;
}

function signatureFitsKey(issuer: Pick<Cert, 'keyType'>, subject: Pick<Cert, 'signatureKeyTypes'>): boolean {
  return subject.signatureKeyTypes === undefined || subject.signatureKeyTypes.includes(issuer.keyType);
}

/** `ossl_x509_likely_issued`: names, AKID and key type fit (no signature check). */
function likelyIssued(issuer: Cert, subject: Cert): boolean {
  return issuer.subject === subject.issuer && akidMatches(issuer, subject.akid) && signatureFitsKey(issuer, subject);
}

interface Crl {
  readonly parsed: x509.X509Crl;
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly akid: Cert['akid'];
  readonly idp: IssuingDistributionPoint | undefined;
  /** Unknown critical extension on the CRL or one of its entries (EXFLAG_CRITICAL). */
  readonly unhandledCritical: boolean;
  /** Revoked serials and their reason codes. */
  readonly revoked: ReadonlyMap<string, number | undefined>;
  readonly tbs: Buffer;
  readonly signature: Buffer;
  readonly algorithm: x509.HashedAlgorithm;
  /** Signature verdicts by issuer certificate (DER, base64). */
  readonly verdicts: Map<string, boolean>;
}

function parseCrl(pem: string): Crl {
  const parsed = new x509.X509Crl(pem);
  const list = AsnConvert.parse(parsed.rawData, CertificateList);
  const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
  const idpExtension = parsed.getExtension(OID.issuingDistributionPoint);
  const entries = parsed.entries;
  return {
    parsed,
    issuer: canonicalName(parsed.issuerName),
    thisUpdate: parsed.thisUpdate,
    nextUpdate: parsed.nextUpdate,
    akid: authorityKeyIdOf(aki),
    idp: idpExtension === null ? undefined : AsnConvert.parse(idpExtension.value, IssuingDistributionPoint),
    unhandledCritical:
      parsed.extensions.some((e) => e.critical && !SUPPORTED_CRITICAL_CRL.has(e.type)) ||
      entries.some((entry) => entry.extensions.some((e) => e.critical && e.type !== OID.certificateIssuer)),
    revoked: new Map(entries.map((entry) => [normalizeSerial(entry.serialNumber), entry.reason])),
    tbs: Buffer.from(list.tbsCertListRaw ?? AsnConvert.serialize(list.tbsCertList)),
    signature: Buffer.from(list.signature),
    algorithm: parsed.signatureAlgorithm,
    verdicts: new Map(),
  };
}

/** `X509_CRL_verify` with node:crypto (synchronous: our QUIC driver verifies inside its packet loop). */
function crlSignatureValid(crl: Crl, issuer: Cert): boolean {
  const key = issuer.der.toString('base64');
  let verdict = crl.verdicts.get(key);
  if (verdict === undefined) {
    verdict = checkCrlSignature(crl, issuer);
    crl.verdicts.set(key, verdict);
  }
  return verdict;
}

function checkCrlSignature(crl: Crl, issuer: Cert): boolean {
  const algorithm = crl.algorithm as unknown as { name?: string; hash?: { name?: string } | string; saltLength?: number };
  const hash = typeof algorithm.hash === 'string' ? algorithm.hash : algorithm.hash?.name;
  const digest = hash !== undefined ? hash.replace('-', '').toLowerCase() : null;
  try {
    switch (algorithm.name) {
      case 'ECDSA':
        return verifySignature(digest, crl.tbs, { key: issuer.node.publicKey, dsaEncoding: 'der' }, crl.signature);
      case 'RSASSA-PKCS1-v1_5':
        return verifySignature(digest, crl.tbs, issuer.node.publicKey, crl.signature);
      case 'RSA-PSS':
        return verifySignature(digest, crl.tbs, { key: issuer.node.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength ?? constants.RSA_PSS_SALTLEN_AUTO }, crl.signature);
      case 'Ed25519':
      case 'Ed448':
        return verifySignature(null, crl.tbs, issuer.node.publicKey, crl.signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/** Parsed presented certificates, shared by every verification (a peer presents the same chain on each handshake). */
class ParsedCertificates {
  readonly #entries = new Map<string, Cert>();

  constructor(private readonly capacity = 256) {}

  peek(key: string): Cert | undefined {
    return this.#entries.get(key);
  }

  get(der: Buffer, node?: X509Certificate, key = der.toString('base64')): Cert {
    let cert = this.#entries.get(key);
    if (cert === undefined) {
      cert = parseCertificate(der, node);
      if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
      this.#entries.set(key, cert);
    }
    return cert;
  }
}

/**
 * A presented certificate before path building needs it: decoded by Node (as OpenSSL decodes
 * every certificate of the message), its names keyed, fully parsed only once it is a candidate.
 */
class Presented {
  readonly der: Buffer;
  readonly subjectKey: string;
  #node: X509Certificate | undefined;
  #cert: Cert | undefined;
  readonly #key: string;

  constructor(raw: Uint8Array) {
    this.der = Buffer.from(raw);
    this.#key = this.der.toString('base64');
    this.#cert = presented.peek(this.#key);
    if (this.#cert !== undefined) {
      this.subjectKey = this.#cert.subjectKey;
    } else {
      this.#node = new X509Certificate(this.der);
      this.subjectKey = nameKey(this.#node.subject);
    }
  }

  get cert(): Cert {
    this.#cert ??= presented.get(this.der, this.#node, this.#key);
    return this.#cert;
  }

  /** Node's decoding, without the full parse when it is not cached yet. */
  get node(): X509Certificate {
    return this.#cert?.node ?? this.#node!;
  }
}

const presented = new ParsedCertificates();

/**
 * A presented certificate as Node's X509Certificate, from the cache the verifier fills (a peer
 * presents the same certificate on every handshake, so a reconnect decodes nothing again).
 */
export function presentedCertificate(der: Uint8Array): X509Certificate {
  return new Presented(der).node;
}

// ---------------------------------------------------------------------------------------------
// Trust store
// ---------------------------------------------------------------------------------------------

/** Trust inputs parsed once per TLS generation: trusted certificates and CRLs. */
export interface TrustStore {
  /** The CA bundle (and a PKCS#12 identity's CA certificates). */
  readonly anchors: readonly Cert[];
  /** Node's bundled roots when no CA bundle is configured, parsed as they are needed. */
  readonly roots?: BundledRoots | undefined;
  readonly crls: readonly Crl[];
}

/**
 * Parses a PEM CA bundle (undefined: Node's bundled roots, as Node's TLS uses without `ca`),
 * PEM CRLs, and extra trusted PEM certificates (the CA certificates of a PKCS#12 identity,
 * which Node adds to the same store).
 */
export function trustStoreOf(ca: string | Buffer | undefined, crls: readonly (string | Buffer)[], extraTrusted: readonly string[] = []): TrustStore {
  const bundle = ca === undefined ? [] : pemBlocks(ca, 'CERTIFICATE');
  return {
    anchors: [...bundle, ...extraTrusted].map((pem) => parseCertificate(new X509Certificate(pem).raw)),
    roots: ca === undefined ? bundledRoots() : undefined,
    crls: crls.flatMap((crl) => pemBlocks(crl, 'X509 CRL')).map(parseCrl),
  };
}

/** Node's ~150 bundled roots: looked up by issuer name, fully parsed only when one is a candidate. */
class BundledRoots {
  readonly #bySubject = new Map<string, { readonly der: Buffer; parsed?: Cert }[]>();

  constructor(pems: readonly string[]) {
    for (const pem of pems) {
      const certificate = new X509Certificate(pem);
      const key = looseName(certificate.subject);
      const entries = this.#bySubject.get(key) ?? [];
      entries.push({ der: certificate.raw });
      this.#bySubject.set(key, entries);
    }
  }

  /** The roots whose subject prints like `cert`'s issuer. */
  candidatesFor(cert: Cert): Cert[] {
    return (this.#bySubject.get(looseName(cert.node.issuer)) ?? []).map((entry) => (entry.parsed ??= parseCertificate(entry.der)));
  }
}

function looseName(printed: string): string {
  return printed.replace(/\s+/g, ' ').trim().toLowerCase();
}

let roots: BundledRoots | undefined;

function bundledRoots(): BundledRoots {
  roots ??= new BundledRoots(rootCertificates);
  return roots;
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/** OpenSSL's default verify depth (100) plus one. */
const MAX_DEPTH = 101;

/**
 * The most certificates a peer may present. OpenSSL takes up to its verify depth (100) and
 * parses every one; our verifier runs synchronously in the QUIC packet loop, so a peer with
 * no valid certificate could make each handshake cost tens of milliseconds of event-loop time
 * with a long chain of fresh certificates. No chain of ours (leaf, intermediates, at most a
 * cross-certificate and the root) comes near 10; longer ones are refused as
 * `CERT_CHAIN_TOO_LONG` before any certificate is parsed (OpenSSL would refuse them only
 * beyond depth 100: a deliberate difference, documented in docs/http3.md).
 */
export const MAX_PRESENTED_CERTIFICATES = 10;

const CRL_SCORE = {
  NOCRITICAL: 0x100,
  SCOPE: 0x080,
  TIME: 0x040,
  ISSUER_NAME: 0x020,
  ISSUER_CERT: 0x018,
  SAME_PATH: 0x008,
  AKID: 0x004,
} as const;

/** keyUsage OpenSSL wants on a leaf for each purpose (`ku_reject`). */
const LEAF_KEY_USAGE: Readonly<Record<PeerRole, number>> = {
  server: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement,
  client: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
};

/** extendedKeyUsage OIDs OpenSSL accepts for each purpose (`xku_reject`; anyExtendedKeyUsage is not one). */
const EXTENDED_KEY_USAGE: Readonly<Record<PeerRole, readonly string[]>> = {
  server: [OID.serverAuth, OID.nsSGC, OID.msSGC],
  client: [OID.clientAuth],
};

/** `X509_check_ca`: 1 CA by basicConstraints, 3 a v1 self-signed root, 4 keyUsage keyCertSign only, 0 not a CA. */
function caKind(cert: Cert): number {
  if (cert.keyUsage !== undefined && (cert.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0) return 0;
  if (cert.basic !== undefined) return cert.basic.ca ? 1 : 0;
  if (cert.version === 1 && cert.selfSigned) return 3;
  if (cert.keyUsage !== undefined) return 4;
  return 0;
}

/** `X509_check_purpose` for ssl_server / ssl_client. */
function purposeAllows(cert: Cert, role: PeerRole, asCa: boolean): boolean {
  if (cert.extKeyUsage !== undefined && !cert.extKeyUsage.some((oid) => EXTENDED_KEY_USAGE[role].includes(oid))) return false;
  if (asCa) return caKind(cert) !== 0;
  return cert.keyUsage === undefined || (cert.keyUsage & LEAF_KEY_USAGE[role]) !== 0;
}

function timeValid(cert: Cert, now: Date): boolean {
  return now >= cert.notBefore && now <= cert.notAfter;
}

/** `get0_best_issuer_sk`: the first fitting issuer that is valid now, else the fitting one that expires last. */
function bestIssuer(candidates: readonly Cert[], subject: Cert, now: Date, exclude: readonly Cert[] | undefined): Cert | undefined {
  let best: Cert | undefined;
  for (const candidate of candidates) {
    if (exclude !== undefined && !(subject.selfIssued && exclude.length === 1) && exclude.some((c) => c.der.equals(candidate.der))) continue;
    if (!likelyIssued(candidate, subject)) continue;
    if (timeValid(candidate, now)) return candidate;
    if (best === undefined || candidate.notAfter > best.notAfter) best = candidate;
  }
  return best;
}

/** One verification: the path and every failure found on it. */
class Verification {
  readonly problems: ChainProblem[] = [];
  chain: Cert[];
  untrusted = 1;

  constructor(
    private readonly peer: readonly Presented[],
    private readonly trust: TrustStore,
    private readonly role: PeerRole,
    private readonly now: Date,
  ) {
    this.chain = [(peer[0] as Presented).cert];
  }

  fail(verifyError: CertificateVerifyError, depth: number, detail?: string, cert?: Cert): void {
    const subject = (cert ?? this.chain[depth])?.subjectText ?? '';
    this.problems.push({ verifyError, depth, subject, detail });
  }

  run(): void {
    // `X509_verify_cert`: a peer key below the security level is reported first.
    const leaf = this.chain[0] as Cert;
    if (leaf.keyBits < SECURITY_BITS) this.fail('EE_KEY_TOO_SMALL', 0, keyText(leaf));
    this.buildChain();
    this.checkExtensions();
    this.checkAuthLevel();
    if (this.trust.crls.length > 0) {
      for (let depth = 0; depth < this.chain.length; depth++) this.checkRevocation(depth);
    }
    this.checkSignaturesAndDates();
  }

  /** `build_chain`, trusted first. */
  buildChain(): void {
    const pool = this.peer.slice(1);
    let searchTrusted = true;
    let searchUntrusted = true;
    let trusted = false;
    for (;;) {
      if (!searchTrusted && !searchUntrusted) break;
      const top = this.chain[this.chain.length - 1] as Cert;
      if (searchTrusted) {
        const anchors = this.trust.roots === undefined ? this.trust.anchors : [...this.trust.anchors, ...this.trust.roots.candidatesFor(top)];
        const issuer = this.chain.length > MAX_DEPTH ? undefined : bestIssuer(anchors, top, this.now, undefined);
        let ok = issuer !== undefined;
        let selfSigned = false;
        if (issuer !== undefined) {
          if (!top.selfSigned) {
            this.chain.push(issuer);
            selfSigned = issuer.selfSigned;
          } else if (!top.der.equals(issuer.der)) {
            ok = false; // a self-signed certificate mimicking a trusted one
          } else {
            this.untrusted = this.chain.length - 1;
            this.chain[this.chain.length - 1] = issuer;
            selfSigned = true;
          }
        }
        if (ok) {
          searchUntrusted = false;
          // `check_trust`: without auxiliary trust settings only a self-signed store certificate is trusted.
          trusted = this.chain.slice(this.untrusted).some((c) => c.selfSigned);
          if (trusted) break;
          if (!selfSigned) continue;
        }
        if (!searchUntrusted) break;
      }
      const current = this.chain[this.chain.length - 1] as Cert;
      // Only the presented certificates whose subject fits the issuer name are parsed.
      const candidates = current.selfSigned || this.chain.length > MAX_DEPTH ? [] : pool.filter((p) => p.subjectKey === current.issuerKey);
      const issuer = bestIssuer(
        candidates.map((p) => p.cert),
        current,
        this.now,
        this.chain,
      );
      if (issuer === undefined) {
        searchUntrusted = false;
        searchTrusted = true;
        continue;
      }
      pool.splice(
        pool.findIndex((p) => p.der.equals(issuer.der)),
        1,
      );
      this.chain.push(issuer);
      this.untrusted++;
    }
    if (trusted) return;
    const depth = this.chain.length - 1;
    if (this.chain.length > MAX_DEPTH) this.fail('CERT_CHAIN_TOO_LONG', depth);
    if ((this.chain[depth] as Cert).selfSigned) {
      this.fail(this.chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN', depth);
    } else {
      this.fail(this.untrusted < this.chain.length ? 'UNABLE_TO_GET_ISSUER_CERT' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', depth, `issuer "${issuerText(this.chain[depth] as Cert)}" not found`);
    }
  }

  /** `check_extensions`: critical extensions, CA flags, purpose, path length, for every certificate of the path. */
  checkExtensions(): void {
    let pathLength = 0;
    this.chain.forEach((cert, depth) => {
      if (cert.unhandledCritical !== undefined) this.fail('UNHANDLED_CRITICAL_EXTENSION', depth, cert.unhandledCritical);
      const asCa = depth > 0;
      if (asCa) {
        const kind = caKind(cert);
        if (kind === 0 || (depth + 1 < this.chain.length && kind !== 1)) this.fail('INVALID_CA', depth);
      }
      if (!purposeAllows(cert, this.role, asCa)) {
        this.fail('INVALID_PURPOSE', depth, `extendedKeyUsage ${cert.extKeyUsage?.join(', ') ?? 'absent'}, ${this.role === 'server' ? 'serverAuth' : 'clientAuth'} needed`);
      }
      const limit = cert.basic?.pathLength;
      if (depth > 1 && limit !== undefined && pathLength > limit) this.fail('PATH_LENGTH_EXCEEDED', depth);
      if (depth > 0 && !cert.selfIssued) pathLength++;
    });
  }

  /** `check_auth_level`: CA keys, and every signature but the top certificate's, at the security level. */
  checkAuthLevel(): void {
    this.chain.forEach((cert, depth) => {
      if (depth > 0 && cert.keyBits < SECURITY_BITS) this.fail('CA_KEY_TOO_SMALL', depth, keyText(cert));
      if (depth < this.chain.length - 1 && cert.signatureBits < SECURITY_BITS) this.fail('CA_MD_TOO_WEAK', depth, `signature ${cert.signatureOid}`);
    });
  }

  /** `check_cert` (CRL_CHECK_ALL: every depth, the root's own CRL included). */
  checkRevocation(depth: number): void {
    const cert = this.chain[depth] as Cert;
    let reasons = 0;
    while (reasons !== ALL_REASONS) {
      const previous = reasons;
      const pick = this.bestCrl(depth, reasons);
      if (pick === undefined) {
        this.fail('UNABLE_TO_GET_CRL', depth, `no CRL from "${issuerText(cert)}" is loaded`);
        return;
      }
      reasons = pick.reasons;
      this.checkCrl(pick, depth);
      const revoked = pick.crl.revoked.get(cert.serial);
      if (pick.crl.unhandledCritical) this.fail('UNHANDLED_CRITICAL_CRL_EXTENSION', depth);
      if (pick.crl.revoked.has(cert.serial) && revoked !== x509.X509CrlReason.removeFromCRL) this.fail('CERT_REVOKED', depth, `serial ${cert.serial.toUpperCase()}`);
      if (previous === reasons) {
        this.fail('UNABLE_TO_GET_CRL', depth, 'no CRL in scope');
        return;
      }
    }
  }

  /** `get_crl_sk` over the CRLs named after the certificate's issuer: the best score, then the newest. */
  bestCrl(depth: number, reasons: number): { crl: Crl; score: number; issuer: Cert; reasons: number } | undefined {
    const cert = this.chain[depth] as Cert;
    let best: { crl: Crl; score: number; issuer: Cert; reasons: number } | undefined;
    for (const crl of this.trust.crls) {
      if (crl.issuer !== cert.issuer) continue;
      const scored = this.score(crl, depth, reasons);
      if (scored === undefined) continue;
      if (best !== undefined && (scored.score < best.score || (scored.score === best.score && crl.thisUpdate <= best.crl.thisUpdate))) continue;
      best = { crl, ...scored };
    }
    return best;
  }

  /** `get_crl_score` (no extended CRL support: indirect and reason-partitioned CRLs are never used). */
  score(crl: Crl, depth: number, reasons: number): { score: number; issuer: Cert; reasons: number } | undefined {
    const cert = this.chain[depth] as Cert;
    const idp = crl.idp;
    if (idp !== undefined && [idp.onlyContainsUserCerts, idp.onlyContainsCACerts, idp.onlyContainsAttributeCerts].filter(Boolean).length > 1) return undefined;
    if (idp !== undefined && (idp.indirectCRL || idp.onlySomeReasons !== undefined)) return undefined;
    let score = CRL_SCORE.ISSUER_NAME;
    if (!crl.unhandledCritical) score |= CRL_SCORE.NOCRITICAL;
    if (this.now >= crl.thisUpdate && (crl.nextUpdate === undefined || this.now <= crl.nextUpdate)) score |= CRL_SCORE.TIME;
    // `crl_akid_check`: the certificate's issuer on the path, else a certificate higher up.
    let index = depth === this.chain.length - 1 ? depth : depth + 1;
    let issuer: Cert | undefined;
    const fits = (candidate: Cert): boolean => candidate.subject === crl.issuer && akidMatches(candidate, crl.akid);
    const direct = this.chain[index] as Cert;
    if (fits(direct)) {
      issuer = direct;
      score |= CRL_SCORE.AKID | CRL_SCORE.ISSUER_CERT;
    } else {
      for (index++; index < this.chain.length; index++) {
        const candidate = this.chain[index] as Cert;
        if (fits(candidate)) {
          issuer = candidate;
          score |= CRL_SCORE.AKID | CRL_SCORE.SAME_PATH;
          break;
        }
      }
    }
    if (issuer === undefined) return undefined;
    const scope = this.scope(crl, cert);
    let covered = reasons;
    if (scope !== undefined) {
      if ((scope & ~reasons) === 0) return undefined;
      covered |= scope;
      score |= CRL_SCORE.SCOPE;
    }
    return { score, issuer, reasons: covered };
  }

  /** `crl_crldp_check`: the reasons the CRL covers for this certificate, or undefined when out of scope. */
  scope(crl: Crl, cert: Cert): number | undefined {
    const idp = crl.idp;
    if (idp?.onlyContainsAttributeCerts === true) return undefined;
    const isCa = cert.basic?.ca === true;
    if (isCa && idp?.onlyContainsUserCerts === true) return undefined;
    if (!isCa && idp?.onlyContainsCACerts === true) return undefined;
    let reasons = reasonsOf(idp?.onlySomeReasons);
    for (const point of cert.distributionPoints) {
      const issuerFits = point.cRLIssuer === undefined || point.cRLIssuer.some((name) => name.directoryName !== undefined && canonicalName(new x509.Name(name.directoryName)) === crl.issuer);
      if (issuerFits && (idp === undefined || distributionPointsMatch(point.distributionPoint, idp.distributionPoint))) {
        reasons &= reasonsOf(point.reasons);
        return reasons;
      }
    }
    return idp === undefined || idp.distributionPoint === undefined ? reasons : undefined;
  }

  /** `check_crl`: the issuer may sign CRLs, scope, dates, signature. */
  checkCrl(pick: { crl: Crl; score: number; issuer: Cert }, depth: number): void {
    const { crl, score, issuer } = pick;
    if (issuer.keyUsage !== undefined && (issuer.keyUsage & x509.KeyUsageFlags.cRLSign) === 0) this.fail('KEYUSAGE_NO_CRL_SIGN', depth, issuer.subjectText);
    if ((score & CRL_SCORE.SCOPE) === 0) this.fail('DIFFERENT_CRL_SCOPE', depth);
    if ((score & CRL_SCORE.TIME) === 0) {
      if (this.now < crl.thisUpdate) this.fail('CRL_NOT_YET_VALID', depth, `the CRL of "${issuer.subjectText}" is valid from ${crl.thisUpdate.toISOString()}`);
      if (crl.nextUpdate !== undefined && this.now > crl.nextUpdate) this.fail('CRL_HAS_EXPIRED', depth, `the CRL of "${issuer.subjectText}" expired on ${crl.nextUpdate.toISOString()} (nextUpdate)`);
    }
    if (!crlSignatureValid(crl, issuer)) this.fail('CRL_SIGNATURE_FAILURE', depth, `the CRL naming "${issuer.subjectText}" is not signed by its key`);
  }

  /** `internal_verify`: from the top down, the issuer may sign, the signature holds, the dates hold. */
  checkSignaturesAndDates(): void {
    let n = this.chain.length - 1;
    let issuer = this.chain[n] as Cert;
    let subject = issuer;
    if (!likelyIssued(issuer, issuer)) {
      if (n > 0) {
        n--;
        subject = this.chain[n] as Cert;
      } else {
        this.fail('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 0);
      }
    }
    for (;;) {
      if (subject !== issuer) {
        if (issuer.keyUsage !== undefined && (issuer.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0) this.fail('KEYUSAGE_NO_CERTSIGN', n + 1);
        let valid: boolean;
        try {
          valid = subject.node.verify(issuer.node.publicKey);
        } catch {
          valid = false;
        }
        if (!valid) this.fail('CERT_SIGNATURE_FAILURE', n, `not signed by "${issuer.subjectText}"`);
      }
      if (this.now < subject.notBefore) this.fail('CERT_NOT_YET_VALID', n, `valid from ${subject.notBefore.toISOString()}`);
      else if (this.now > subject.notAfter) this.fail('CERT_HAS_EXPIRED', n, `expired on ${subject.notAfter.toISOString()}`);
      if (--n < 0) break;
      issuer = subject;
      subject = this.chain[n] as Cert;
    }
  }
}

function keyText(cert: Cert): string {
  const details = cert.node.publicKey.asymmetricKeyDetails;
  const size = details?.namedCurve ?? (details?.modulusLength !== undefined ? `${details.modulusLength} bits` : undefined);
  return `${cert.keyType} key${size !== undefined ? ` (${size})` : ''}, ${cert.keyBits} security bits, ${SECURITY_BITS} needed`;
}

function issuerText(cert: Cert): string {
  return cert.node.issuer.replace(/\n/g, ', ');
}

/** `idp_check_dp` for full names (any common name matches; an absent one matches anything). */
function distributionPointsMatch(a: DistributionPointName | undefined, b: DistributionPointName | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  if (a.fullName !== undefined && b.fullName !== undefined) {
    const encoded = new Set(a.fullName.map((name) => Buffer.from(AsnConvert.serialize(name)).toString('base64')));
    return b.fullName.some((name) => encoded.has(Buffer.from(AsnConvert.serialize(name)).toString('base64')));
  }
  if (a.nameRelativeToCRLIssuer !== undefined && b.nameRelativeToCRLIssuer !== undefined) {
    return bytesEqual(AsnConvert.serialize(a.nameRelativeToCRLIssuer), AsnConvert.serialize(b.nameRelativeToCRLIssuer));
  }
  return false;
}

function describe(problem: ChainProblem): string {
  const where = problem.depth === 0 ? 'the peer certificate' : `the certificate at depth ${problem.depth}`;
  const detail = problem.detail !== undefined ? `: ${problem.detail}` : '';
  return `${VERIFY_ERRORS[problem.verifyError].message} (${where}, "${problem.subject}"${detail})`;
}

export interface VerifyOptions {
  /** Whose chain this is: `server` checks serverAuth (and the name), `client` checks clientAuth. */
  readonly peer: PeerRole;
  /** Server only: the host name or IP the certificate must be valid for (as `tls.checkServerIdentity`). */
  readonly name?: string | undefined;
  /** Default: now. */
  readonly now?: Date | undefined;
}

/**
 * Checks a presented chain (leaf first, DER) as OpenSSL does for our HTTP/2 transport (see
 * the module comment); returns why it is refused, or undefined when it is accepted.
 */
export function verifyChain(chainDer: readonly Uint8Array[], trust: TrustStore, options: VerifyOptions): ChainRejection | undefined {
  if (chainDer.length === 0) {
    return { code: 'TLS_PEER_UNTRUSTED', verifyError: 'NO_CERTIFICATE', reason: 'no certificate was presented', alert: TLS_ALERT.BAD_CERTIFICATE, problems: [] };
  }
  if (chainDer.length > MAX_PRESENTED_CERTIFICATES) {
    const info = VERIFY_ERRORS.CERT_CHAIN_TOO_LONG;
    const detail = `${chainDer.length} certificates presented, at most ${MAX_PRESENTED_CERTIFICATES} are accepted`;
    return { code: info.code, verifyError: 'CERT_CHAIN_TOO_LONG', reason: `${info.message} (${detail})`, alert: info.alert, problems: [{ verifyError: 'CERT_CHAIN_TOO_LONG', depth: 0, subject: '', detail }] };
  }
  let peer: Presented[];
  let verification: Verification;
  try {
    peer = chainDer.map((der) => new Presented(der));
    verification = new Verification(peer, trust, options.peer, options.now ?? new Date());
    verification.run();
  } catch (error) {
    return { code: 'TLS_HANDSHAKE_FAILED', verifyError: 'UNPARSABLE_CERTIFICATE', reason: `an unparsable certificate was presented (${(error as Error).message})`, alert: TLS_ALERT.BAD_CERTIFICATE, problems: [] };
  }
  const last = verification.problems[verification.problems.length - 1];
  if (last !== undefined) {
    const info = VERIFY_ERRORS[last.verifyError];
    const others = verification.problems.length > 1 ? `; also found: ${verification.problems.slice(0, -1).map(describe).join('; ')}` : '';
    return { code: info.code, verifyError: last.verifyError, reason: `${describe(last)}${others}`, alert: info.alert, problems: verification.problems };
  }
  if (options.peer === 'server' && options.name !== undefined) {
    const leaf = (peer[0] as Presented).cert;
    const mismatch = checkServerIdentity(options.name, leaf.node.toLegacyObject());
    if (mismatch !== undefined) {
      return { code: 'TLS_PEER_NAME_MISMATCH', verifyError: 'ERR_TLS_CERT_ALTNAME_INVALID', reason: mismatch.message, alert: TLS_ALERT.BAD_CERTIFICATE, problems: [] };
    }
  }
  return undefined;
}
