/**
 * An in-process certificate authority for development and tests.
 *
 * Everything is ECDSA P-256 signed with SHA-256, produced by `@peculiar/x509` on top of
 * Node's WebCrypto, and shaped so that Node's OpenSSL-based TLS accepts it:
 *
 * - CA: basicConstraints cA=TRUE (critical), keyUsage keyCertSign+cRLSign (critical),
 *   subjectKeyIdentifier.
 * - Intermediates ({@link DevCertificateAuthority.intermediate}): like the CA, issued by its
 *   parent (authorityKeyIdentifier), optionally with an extendedKeyUsage; they issue leaves
 *   and CRLs exactly like the root, and `chainPem` is what a peer presents above its leaf.
 * - Leaves: basicConstraints cA=FALSE (critical), keyUsage digitalSignature (critical),
 *   extendedKeyUsage serverAuth/clientAuth (or none), authorityKeyIdentifier,
 *   subjectKeyIdentifier, subjectAltName (DNS and IP entries).
 * - CRLs: v2, with nextUpdate, authorityKeyIdentifier and a monotonically increasing
 *   cRLNumber, signed by the CA key (or, for tests, by another CA's key: `signedBy`).
 *
 * Serial numbers are 16 random bytes from `crypto.getRandomValues` with the top bit cleared
 * (always positive) and the next bit set (never a leading zero byte), so their DER encoding
 * is exactly 16 bytes and their hex form is always 32 digits. `serialHex` is that value as
 * **lowercase** hex without separators; Node's `X509Certificate#serialNumber` prints the
 * same digits in uppercase, so `serialHex.toUpperCase() === new X509Certificate(pem).serialNumber`.
 * {@link DevCertificateAuthority.crl} accepts either case (and `:` separators).
 *
 * Not for production: the CA key only lives in memory and nothing here is hardened.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata polyfill loaded before it is evaluated.
import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export interface IssuedCertificate {
  /** The certificate, PEM. */
  certPem: string;
  /** The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /**
   * The serial number as lowercase hex without separators or leading zeros (always 32
   * digits). Node's `X509Certificate#serialNumber` shows the same value in uppercase.
   */
  serialHex: string;
  notAfter: Date;
  /**
   * What a peer presents: this certificate followed by the intermediates between it and the
   * root (the root itself is left out). Equal to `certPem` for a leaf of a root CA.
   */
  chainPem: string;
}

export interface IssueOptions {
  commonName: string;
  /** DNS subjectAltName entries. */
  dnsNames?: string[];
  /** IP subjectAltName entries, e.g. `'127.0.0.1'`, `'::1'`. */
  ipAddresses?: string[];
  /** extendedKeyUsage: serverAuth, clientAuth, or both; `none` leaves the extension out. */
  usage: CertificateUsage;
  /** Default: one hour ago. */
  notBefore?: Date;
  /** Default: 30 days from now. */
  notAfter?: Date;
}

/** extendedKeyUsage of a certificate: serverAuth, clientAuth, both, or no extension at all. */
export type CertificateUsage = 'server' | 'client' | 'both' | 'none';

export interface IntermediateOptions {
  commonName: string;
  /** Default: one hour ago. */
  notBefore?: Date;
  /** Default: 180 days from now. */
  notAfter?: Date;
  /** extendedKeyUsage of the intermediate itself. Default `none` (no extension: any use). */
  usage?: CertificateUsage;
  /**
   * basicConstraints cA. Default true; `false` makes a certificate that is not allowed to
   * issue anything (for tests of verifiers: OpenSSL refuses it as INVALID_CA).
   */
  ca?: boolean;
  /** basicConstraints pathLenConstraint: how many intermediates may follow this one. Default: none. */
  pathLength?: number;
}

export interface CrlOptions {
  /** Default: one hour ago. */
  thisUpdate?: Date;
  /** Default: 30 days from now. */
  nextUpdate?: Date;
  /**
   * Sign with this other authority's key while keeping this authority's issuer name and key
   * identifier: a CRL whose signature does not verify (for tests of verifiers).
   */
  signedBy?: DevCertificateAuthority;
}

export interface DevCertificateAuthority {
  readonly certPem: string;
  /** The CA private key, PKCS#8 PEM. */
  readonly keyPem: string;
  readonly commonName: string;
  /** The serial number of the CA's own certificate (lowercase hex), e.g. to revoke an intermediate. */
  readonly serialHex: string;
  /**
   * The intermediates a peer presents above a leaf of this authority, PEM: empty for a root,
   * this certificate followed by its parent's `chainPem` for an intermediate.
   */
  readonly chainPem: string;
  issue(options: IssueOptions): Promise<IssuedCertificate>;
  /** An intermediate CA issued by this authority (it can issue leaves, intermediates and CRLs itself). */
  intermediate(options: IntermediateOptions): Promise<DevCertificateAuthority>;
  /**
   * A PEM CRL (v2, with nextUpdate) revoking the given serials (as returned in serialHex;
   * either case is accepted). Defaults: thisUpdate one hour ago, nextUpdate 30 days from now.
   */
  crl(revokedSerialHex: readonly string[], options?: CrlOptions): Promise<string>;
}

export interface DevCertificateAuthorityOptions {
  /** Default: `'OmniRelay Dev CA'`. */
  commonName?: string;
  /** Validity from notBefore when notAfter is not given. Default: 365. */
  validDays?: number;
  /** Default: one hour ago. */
  notBefore?: Date;
  notAfter?: Date;
  /** extendedKeyUsage of the CA certificate itself. Default `none` (no extension: any use). */
  usage?: CertificateUsage;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
const DEFAULT_LEAF_DAYS = 30;
const DEFAULT_CA_DAYS = 365;
const DEFAULT_INTERMEDIATE_DAYS = 180;
const DEFAULT_CRL_DAYS = 30;
const SERIAL_BYTES = 16;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** id-ce-cRLNumber (RFC 5280 §5.2.3). */
const CRL_NUMBER_OID = '2.5.29.20';

async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

function privateKeyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** PEM with 64-column base64 and a trailing newline (files can be concatenated safely). */
function toPem(der: ArrayBuffer, label: 'CERTIFICATE' | 'X509 CRL'): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** 16 random bytes, top bit clear (positive) and second bit set (no leading zero byte). */
function randomSerialHex(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(SERIAL_BYTES));
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return toHex(bytes);
}

/** Lowercase hex, no separators, no leading zeros (keeps at least one digit), even length. */
function normalizeSerialHex(serial: string): string {
  const hex = serial.replace(/:/g, '').trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) {
    throw new TypeError(`Not a hexadecimal serial number: ${JSON.stringify(serial)}`);
  }
  const stripped = hex.replace(/^0+/, '') || '0';
  return stripped.length % 2 === 0 ? stripped : `0${stripped}`;
}

/** DER INTEGER for a non-negative safe integer. */
function derInteger(value: number): Uint8Array<ArrayBuffer> {
  const bytes: number[] = [];
  let rest = value;
  do {
    bytes.unshift(rest % 256);
    rest = Math.floor(rest / 256);
  } while (rest > 0);
  if (bytes[0]! > 0x7f) bytes.unshift(0);
  return Uint8Array.from([0x02, bytes.length, ...bytes]);
}

function dnName(commonName: string): x509.JsonName {
  if (commonName.length === 0) throw new TypeError('commonName must not be empty');
  return [{ CN: [commonName] }];
}

function checkValidity(notBefore: Date, notAfter: Date, what: string): void {
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new TypeError(`${what}: invalid date`);
  }
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new RangeError(`${what}: notAfter must be after notBefore`);
  }
}

function extendedKeyUsages(usage: CertificateUsage): string[] {
  switch (usage) {
    case 'none':
      return [];
    case 'server':
      return [x509.ExtendedKeyUsage.serverAuth];
    case 'client':
      return [x509.ExtendedKeyUsage.clientAuth];
    case 'both':
      return [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
    default: {
      const never: never = usage;
      throw new TypeError(`Unknown usage: ${String(never)}`);
    }
  }
}

class InMemoryCertificateAuthority implements DevCertificateAuthority {
  private readonly issuedSerials = new Set<string>();
  private crlNumber = 0;

  constructor(
    readonly commonName: string,
    readonly certPem: string,
    readonly keyPem: string,
    private readonly keys: webcrypto.CryptoKeyPair,
    private readonly keyId: string,
    readonly serialHex: string,
    readonly chainPem: string,
  ) {
    this.issuedSerials.add(serialHex);
  }

  async issue(options: IssueOptions): Promise<IssuedCertificate> {
    const now = Date.now();
    const notBefore = options.notBefore ?? new Date(now - HOUR_MS);
    const notAfter = options.notAfter ?? new Date(now + DEFAULT_LEAF_DAYS * DAY_MS);
    checkValidity(notBefore, notAfter, `certificate ${options.commonName}`);

    const sans: x509.JsonGeneralNames = [
      ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    const leafKeys = await generateKeyPair();
    const serialHex = this.nextSerial();

    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.AuthorityKeyIdentifierExtension(this.keyId, false),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey, false),
    ];
    const usages = extendedKeyUsages(options.usage);
    if (usages.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(usages, false));
    if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));

    const cert = await this.#sign({ serialHex, commonName: options.commonName, notBefore, notAfter, publicKey: leafKeys.publicKey, extensions });
    const certPem = toPem(cert.rawData, 'CERTIFICATE');
    return { certPem, keyPem: privateKeyPem(leafKeys.privateKey), serialHex, notAfter, chainPem: certPem + this.chainPem };
  }

  async intermediate(options: IntermediateOptions): Promise<DevCertificateAuthority> {
    const now = Date.now();
    const notBefore = options.notBefore ?? new Date(now - HOUR_MS);
    const notAfter = options.notAfter ?? new Date(now + DEFAULT_INTERMEDIATE_DAYS * DAY_MS);
    checkValidity(notBefore, notAfter, `intermediate ${options.commonName}`);
    const keys = await generateKeyPair();
    const serialHex = this.nextSerial();
    const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false);
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(options.ca ?? true, options.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(this.keyId, false),
    ];
    const usages = extendedKeyUsages(options.usage ?? 'none');
    if (usages.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(usages, false));
    const cert = await this.#sign({ serialHex, commonName: options.commonName, notBefore, notAfter, publicKey: keys.publicKey, extensions });
    const certPem = toPem(cert.rawData, 'CERTIFICATE');
    return new InMemoryCertificateAuthority(options.commonName, certPem, privateKeyPem(keys.privateKey), keys, ski.keyId, serialHex, certPem + this.chainPem);
  }

  async crl(revokedSerialHex: readonly string[], options?: CrlOptions): Promise<string> {
    const now = Date.now();
    const thisUpdate = options?.thisUpdate ?? new Date(now - HOUR_MS);
    const nextUpdate = options?.nextUpdate ?? new Date(now + DEFAULT_CRL_DAYS * DAY_MS);
    checkValidity(thisUpdate, nextUpdate, 'CRL');

    const serials = [...new Set(revokedSerialHex.map(normalizeSerialHex))];
    let signingKey = this.keys.privateKey;
    if (options?.signedBy !== undefined) {
      if (!(options.signedBy instanceof InMemoryCertificateAuthority)) throw new TypeError('signedBy must come from createDevCertificateAuthority');
      signingKey = options.signedBy.keys.privateKey;
    }
    this.crlNumber += 1;
    const crl = await x509.X509CrlGenerator.create({
      issuer: dnName(this.commonName),
      thisUpdate,
      nextUpdate,
      signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(this.keyId, false),
        new x509.Extension(CRL_NUMBER_OID, false, derInteger(this.crlNumber)),
      ],
      // A reason code is set on purpose: without any entry extension @peculiar/x509 encodes an
      // empty crlEntryExtensions SEQUENCE, which is not valid DER (SIZE (1..MAX)).
      entries: serials.map((serialNumber) => ({
        serialNumber,
        revocationDate: thisUpdate,
        reason: x509.X509CrlReason.cessationOfOperation,
      })),
    });
    // OpenSSL only reads the `X509 CRL` PEM label; @peculiar/x509 writes `CRL`.
    return toPem(crl.rawData, 'X509 CRL');
  }

  /** A certificate for `commonName` signed by this authority. */
  #sign(c: { serialHex: string; commonName: string; notBefore: Date; notAfter: Date; publicKey: webcrypto.CryptoKey; extensions: x509.Extension[] }): Promise<x509.X509Certificate> {
    return x509.X509CertificateGenerator.create({
      serialNumber: c.serialHex,
      subject: dnName(c.commonName),
      issuer: dnName(this.commonName),
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      publicKey: c.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: c.extensions,
    });
  }

  private nextSerial(): string {
    for (;;) {
      const serial = randomSerialHex();
      if (!this.issuedSerials.has(serial)) {
        this.issuedSerials.add(serial);
        return serial;
      }
    }
  }
}

export async function createDevCertificateAuthority(
  options: DevCertificateAuthorityOptions = {},
): Promise<DevCertificateAuthority> {
  const commonName = options.commonName ?? 'OmniRelay Dev CA';
  const validDays = options.validDays ?? DEFAULT_CA_DAYS;
  if (!(validDays > 0)) throw new RangeError('validDays must be positive');
  const notBefore = options.notBefore ?? new Date(Date.now() - HOUR_MS);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + validDays * DAY_MS);
  checkValidity(notBefore, notAfter, `CA ${commonName}`);

  const keys = await generateKeyPair();
  const serialHex = randomSerialHex();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex,
    name: dnName(commonName),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId, false),
      ...(options.usage !== undefined && options.usage !== 'none' ? [new x509.ExtendedKeyUsageExtension(extendedKeyUsages(options.usage), false)] : []),
    ],
  });
  return new InMemoryCertificateAuthority(
    commonName,
    toPem(cert.rawData, 'CERTIFICATE'),
    privateKeyPem(keys.privateKey),
    keys,
    ski.keyId,
    serialHex,
    '',
  );
}

export interface DevPkiFiles {
  caFile: string;
  crlFile: string;
  files: Record<string, { certFile: string; keyFile: string }>;
}

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Writes a ready-to-use set for local development into `dir` (created if missing):
 * `ca.pem`, `ca.crl.pem` (an empty CRL), and for each name in `nodes` `<name>.pem` +
 * `<name>.key` (PKCS#8, mode 0600), usable as both server (SANs localhost, 127.0.0.1, ::1)
 * and client. The CA key is not written. Returns the paths.
 */
export async function writeDevPki(dir: string, nodes: readonly string[]): Promise<DevPkiFiles> {
  const seen = new Set<string>();
  for (const name of nodes) {
    if (!NODE_NAME.test(name) || name === 'ca' || name.endsWith('.crl')) {
      throw new TypeError(`Invalid node name for writeDevPki: ${JSON.stringify(name)}`);
    }
    if (seen.has(name)) throw new TypeError(`Duplicate node name for writeDevPki: ${JSON.stringify(name)}`);
    seen.add(name);
  }

  const ca = await createDevCertificateAuthority();
  await mkdir(dir, { recursive: true });
  const caFile = join(dir, 'ca.pem');
  const crlFile = join(dir, 'ca.crl.pem');
  await writeFile(caFile, ca.certPem);
  await writeFile(crlFile, await ca.crl([]));

  const files: Record<string, { certFile: string; keyFile: string }> = {};
  for (const name of nodes) {
    const issued = await ca.issue({
      commonName: name,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      usage: 'both',
    });
    const certFile = join(dir, `${name}.pem`);
    const keyFile = join(dir, `${name}.key`);
    await writeFile(certFile, issued.certPem);
    await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
    await chmod(keyFile, 0o600); // `mode` only applies when the file is created
    files[name] = { certFile, keyFile };
  }
  return { caFile, crlFile, files };
}
