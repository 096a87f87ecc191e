/**
 * The chain verifier HTTP/3 uses, against the verifier HTTP/2 uses: every case runs a real
 * TLS handshake through Node's OpenSSL (as our HTTP/2 transport and GrpcHost configure it:
 * `ca`, `crl`, the server name checked by `tls.checkServerIdentity`) and `verifyChain` on the
 * same certificates, and both must reach the same verdict — the same OpenSSL verify error.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as x509 from '@peculiar/x509';
import { MAX_PRESENTED_CERTIFICATES, TLS_ALERT, trustStoreOf, verifyChain, type PeerRole } from '../../../src/tls/chain-verifier.js';
import { createDevCertificateAuthority, type DevCertificateAuthority, type IssuedCertificate } from '../../../src/tls/dev-pki.js';
import { verifyErrorOfUnnamed } from '../../../src/transport/http2/grpc-js-failures.js';

const DAY = 24 * 60 * 60 * 1000;
const SANS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
const past = (): { notBefore: Date; notAfter: Date } => ({ notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) });
const staleCrl = (): { thisUpdate: Date; nextUpdate: Date } => ({ thisUpdate: new Date(Date.now() - 10 * DAY), nextUpdate: new Date(Date.now() - DAY) });

/** DER certificates of a PEM chain, leaf first. */
function ders(pem: string): Uint8Array[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]).raw);
}

interface Case {
  /** Whose chain: `server` is verified by a Node client, `client` by a Node server. */
  readonly role: PeerRole;
  readonly ca: string;
  readonly chain: string;
  readonly key: string;
  readonly crls?: readonly string[];
  /** Server only: check the name (127.0.0.1) too. */
  readonly checkName?: boolean;
  /** TLS 1.2 at most on the presenting side (an RSA key too small for RSA-PSS signatures). */
  readonly tls12?: boolean;
}

/** The presenting side may load weak certificates (security level 0); the verifying side keeps Node's default (level 1). */
const presenter = (c: Case): tls.SecureContextOptions => ({ ciphers: 'DEFAULT@SECLEVEL=0', ...(c.tls12 === true ? { maxVersion: 'TLSv1.2' as const } : {}) });

/** Node's (OpenSSL's) verdict: 'ok' or the verify error code. */
async function nodeVerdict(c: Case): Promise<string> {
  const helperCa = await createDevCertificateAuthority({ commonName: 'Helper CA' });
  const helper = await helperCa.issue({ commonName: 'helper', ...SANS, usage: 'both' });
  let verdict = 'ok';
  const crl = c.crls !== undefined && c.crls.length > 0 ? [...c.crls] : undefined;
  const server = tls.createServer(
    c.role === 'client' ? { cert: helper.certPem, key: helper.keyPem, ca: c.ca, crl, requestCert: true, rejectUnauthorized: false } : { ...presenter(c), cert: c.chain, key: c.key },
    (socket) => {
      if (c.role === 'client' && !socket.authorized) {
        const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
        verdict = named(String(socket.authorizationError ?? 'unauthorized'), handle?.verifyError?.()?.message ?? '');
      }
      socket.on('error', () => undefined);
      socket.end('x');
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    const socket =
      c.role === 'client'
        ? tls.connect({ host: '127.0.0.1', port, ca: helperCa.certPem, ...presenter(c), cert: c.chain, key: c.key })
        : tls.connect({ host: '127.0.0.1', port, ca: c.ca, crl, ...(c.checkName === true ? {} : { checkServerIdentity: () => undefined }) });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (c.role === 'server') verdict = named(error.code ?? error.message, error.message);
    });
    socket.on('data', () => undefined);
    socket.on('close', () => resolve());
  });
  await new Promise((resolve) => server.close(resolve));
  return verdict;
}

/**
 * Node names only the classic verify errors; the security-level ones (EE_KEY_TOO_SMALL,
 * CA_KEY_TOO_SMALL, CA_MD_TOO_WEAK) come as code UNSPECIFIED with OpenSSL's message, which
 * names them (and which our HTTP/2 classification reads, `verifyErrorOfUnnamed`).
 */
function named(code: string, message: string): string {
  return code === 'UNSPECIFIED' ? (verifyErrorOfUnnamed(message) ?? `UNSPECIFIED: ${message}`) : code;
}

function ourVerdict(c: Case): string {
  const rejection = verifyChain(ders(c.chain), trustStoreOf(c.ca, c.crls ?? []), { peer: c.role, name: c.checkName === true ? '127.0.0.1' : undefined });
  return rejection?.verifyError ?? 'ok';
}

describe('verifyChain reaches the verdict OpenSSL reaches for HTTP/2', () => {
  let root: DevCertificateAuthority;
  let inter: DevCertificateAuthority;
  let rootCrl: string;
  let interCrl: string;
  let server: IssuedCertificate;
  let client: IssuedCertificate;
  let forger: DevCertificateAuthority;
  const cases: Array<[string, () => Case | Promise<Case>, string]> = [];

  beforeAll(async () => {
    root = await createDevCertificateAuthority({ commonName: 'Root' });
    inter = await root.intermediate({ commonName: 'Intermediate' });
    forger = await createDevCertificateAuthority({ commonName: 'Root' });
    rootCrl = await root.crl([]);
    interCrl = await inter.crl([]);
    server = await inter.issue({ commonName: 'server', ...SANS, usage: 'server' });
    client = await inter.issue({ commonName: 'client', usage: 'client' });
  });

  const serverCase = (leaf: IssuedCertificate, extra: Partial<Case> = {}): Case => ({ role: 'server', ca: root.certPem, chain: leaf.chainPem, key: leaf.keyPem, crls: [rootCrl, interCrl], ...extra });
  const clientCase = (leaf: IssuedCertificate, extra: Partial<Case> = {}): Case => ({ role: 'client', ca: root.certPem, chain: leaf.chainPem, key: leaf.keyPem, crls: [rootCrl, interCrl], ...extra });

  cases.push(
    ['a good server chain through an intermediate, CRLs of root and intermediate loaded', () => serverCase(server), 'ok'],
    ['a good client chain through an intermediate', () => clientCase(client), 'ok'],
    ['a good chain without CRLs', () => serverCase(server, { crls: [] }), 'ok'],
    ['the name matches', () => serverCase(server, { checkName: true }), 'ok'],
    ['a client certificate presented as a server (EKU clientAuth only)', () => serverCase(client), 'INVALID_PURPOSE'],
    ['a server certificate presented as a client (EKU serverAuth only)', () => clientCase(server), 'INVALID_PURPOSE'],
    ['a leaf without extendedKeyUsage, as a server', async () => serverCase(await inter.issue({ commonName: 'any', usage: 'none' })), 'ok'],
    ['a leaf without extendedKeyUsage, as a client', async () => clientCase(await inter.issue({ commonName: 'any', usage: 'none' })), 'ok'],
    [
      'an intermediate whose EKU allows clientAuth only, above a server leaf',
      async () => {
        const clientOnly = await root.intermediate({ commonName: 'Client-only Intermediate', usage: 'client' });
        return serverCase(await clientOnly.issue({ commonName: 's', usage: 'server' }), { crls: [] });
      },
      'INVALID_PURPOSE',
    ],
    [
      'a root whose EKU allows clientAuth only',
      async () => {
        const clientRoot = await createDevCertificateAuthority({ commonName: 'Client-only Root', usage: 'client' });
        const leaf = await clientRoot.issue({ commonName: 's', usage: 'server' });
        return { role: 'server', ca: clientRoot.certPem, chain: leaf.chainPem, key: leaf.keyPem };
      },
      'INVALID_PURPOSE',
    ],
    [
      'an issuer that is not a CA (basicConstraints CA:FALSE)',
      async () => {
        const notCa = await root.intermediate({ commonName: 'Not a CA', ca: false });
        return serverCase(await notCa.issue({ commonName: 's', usage: 'server' }), { crls: [] });
      },
      'INVALID_PURPOSE',
    ],
    [
      'a path longer than an intermediate allows (pathLen 0 above another intermediate)',
      async () => {
        const limited = await root.intermediate({ commonName: 'Limited', pathLength: 0 });
        const below = await limited.intermediate({ commonName: 'Below' });
        return serverCase(await below.issue({ commonName: 's', usage: 'server' }), { crls: [] });
      },
      'PATH_LENGTH_EXCEEDED',
    ],
    ['an expired CRL of the intermediate', async () => serverCase(server, { crls: [rootCrl, await inter.crl([], staleCrl())] }), 'CRL_HAS_EXPIRED'],
    ['an expired CRL, client role', async () => clientCase(client, { crls: [rootCrl, await inter.crl([], staleCrl())] }), 'CRL_HAS_EXPIRED'],
    ['a CRL not valid yet', async () => serverCase(server, { crls: [rootCrl, await inter.crl([], { thisUpdate: new Date(Date.now() + DAY), nextUpdate: new Date(Date.now() + 10 * DAY) })] }), 'CRL_NOT_YET_VALID'],
    ['an older expired CRL next to a fresh one', async () => serverCase(server, { crls: [rootCrl, await inter.crl([], staleCrl()), interCrl] }), 'ok'],
    ['a CRL with the right issuer name and key id but signed by another key', async () => serverCase(server, { crls: [await root.crl([], { signedBy: forger }), interCrl] }), 'CRL_SIGNATURE_FAILURE'],
    ['a CRL of another CA with the same name (other key id) and no real one', async () => serverCase(server, { crls: [await forger.crl([]), interCrl] }), 'UNABLE_TO_GET_CRL'],
    ['a revoked intermediate', async () => serverCase(server, { crls: [await root.crl([inter.serialHex]), interCrl] }), 'CERT_REVOKED'],
    ['a revoked intermediate, client role', async () => clientCase(client, { crls: [await root.crl([inter.serialHex]), interCrl] }), 'CERT_REVOKED'],
    ['a root revoked in its own CRL', async () => serverCase(server, { crls: [await root.crl([root.serialHex]), interCrl] }), 'CERT_REVOKED'],
    [
      'a revoked leaf',
      async () => {
        const leaf = await inter.issue({ commonName: 'revoked', usage: 'server' });
        return serverCase(leaf, { crls: [rootCrl, await inter.crl([leaf.serialHex])] });
      },
      'CERT_REVOKED',
    ],
    ['no CRL of the root (the intermediate needs one)', () => serverCase(server, { crls: [interCrl] }), 'UNABLE_TO_GET_CRL'],
    ['no CRL of the intermediate (the leaf needs one)', () => serverCase(server, { crls: [rootCrl] }), 'UNABLE_TO_GET_CRL'],
    [
      'an expired leaf that is revoked too (OpenSSL reports the last failure: the dates)',
      async () => {
        const leaf = await inter.issue({ commonName: 'old', usage: 'server', ...past() });
        return serverCase(leaf, { crls: [rootCrl, await inter.crl([leaf.serialHex])] });
      },
      'CERT_HAS_EXPIRED',
    ],
    [
      'an expired intermediate',
      async () => {
        const old = await root.intermediate({ commonName: 'Old Intermediate', ...past() });
        return serverCase(await old.issue({ commonName: 's', usage: 'server', notAfter: new Date(Date.now() + DAY) }), { crls: [] });
      },
      'CERT_HAS_EXPIRED',
    ],
    [
      'an expired root',
      async () => {
        const oldRoot = await createDevCertificateAuthority({ commonName: 'Old Root', notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) });
        const leaf = await oldRoot.issue({ commonName: 's', usage: 'server', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() + DAY) });
        return { role: 'server', ca: oldRoot.certPem, chain: leaf.chainPem, key: leaf.keyPem };
      },
      'CERT_HAS_EXPIRED',
    ],
    ['a leaf sent without its intermediate', () => serverCase(server, { chain: server.certPem, crls: [] }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['a CA bundle holding only the intermediate (not self-signed: not a trust anchor)', () => serverCase(server, { ca: inter.certPem, crls: [] }), 'UNABLE_TO_GET_ISSUER_CERT'],
    ['a leaf of an unrelated CA', async () => serverCase(await forger.issue({ commonName: 'f', usage: 'server' }), { crls: [] }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['a leaf of an unrelated CA, CRLs loaded', async () => serverCase(await forger.issue({ commonName: 'f', usage: 'server' })), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    [
      'an untrusted chain that ends at its own root',
      async () => {
        const otherInter = await forger.intermediate({ commonName: 'Other Intermediate' });
        const leaf = await otherInter.issue({ commonName: 'f', usage: 'server' });
        return serverCase(leaf, { chain: leaf.chainPem + forger.certPem, crls: [] });
      },
      'SELF_SIGNED_CERT_IN_CHAIN',
    ],
    [
      'an untrusted self-signed CA certificate as a server (DEPTH_ZERO_SELF_SIGNED_CERT, then its keyUsage lacks digitalSignature: the last failure decides)',
      () => ({ role: 'server', ca: root.certPem, chain: forger.certPem, key: forger.keyPem }),
      'INVALID_PURPOSE',
    ],
    ['a leaf whose signature does not verify (right issuer name and key id, wrong key)', async () => serverCase(await forgedLeaf(inter, forger), { crls: [] }), 'CERT_SIGNATURE_FAILURE'],
    [
      'a name the certificate does not carry',
      async () => serverCase(await inter.issue({ commonName: 'wrong', dnsNames: ['wrong.example'], usage: 'server' }), { checkName: true }),
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ],
  );

  // Security level 1 (OpenSSL 3.0's default): weak digests and small keys, made with the openssl CLI.
  cases.push(
    ['a SHA-1-signed intermediate', () => weakCase({ interDigest: 'sha1' }), 'CA_MD_TOO_WEAK'],
    ['a SHA-1-signed leaf', () => weakCase({ leafDigest: 'sha1' }), 'CA_MD_TOO_WEAK'],
    ['a SHA-1-signed leaf, client role', () => weakCase({ leafDigest: 'sha1', role: 'client' }), 'CA_MD_TOO_WEAK'],
    ['an MD5-signed leaf', () => weakCase({ leafDigest: 'md5' }), 'CA_MD_TOO_WEAK'],
    ['a SHA-1 self-signed root (the trust anchor\'s own signature is not checked)', () => weakCase({ rootDigest: 'sha1' }), 'ok'],
    ['an RSA-512 leaf', () => weakCase({ leafKey: 'rsa:512', tls12: true }), 'EE_KEY_TOO_SMALL'],
    ['an RSA-512 leaf, client role', () => weakCase({ leafKey: 'rsa:512', tls12: true, role: 'client' }), 'EE_KEY_TOO_SMALL'],
    ['an RSA-768 intermediate', () => weakCase({ interKey: 'rsa:768' }), 'CA_KEY_TOO_SMALL'],
    ['an RSA-1024 leaf (80 bits: enough at level 1)', () => weakCase({ leafKey: 'rsa:1024' }), 'ok'],
    ['an intermediate on secp112r1 (56 bits)', () => weakCase({ interKey: 'ec:secp112r1' }), 'CA_KEY_TOO_SMALL'],
    ['an RSA-512 leaf signed with SHA-1 below a SHA-1 intermediate (the last failure decides)', () => weakCase({ leafKey: 'rsa:512', leafDigest: 'sha1', interDigest: 'sha1', tls12: true }), 'CA_MD_TOO_WEAK'],
  );

  it.each(cases)('%s', async (_name, make, expected) => {
    const c = await make();
    expect({ openssl: await nodeVerdict(c), ours: ourVerdict(c) }).toEqual({ openssl: expected, ours: expected });
  });
});

/** A leaf naming `issuer` (name and key identifier) but signed with `signer`'s key. */
async function forgedLeaf(issuer: DevCertificateAuthority, signer: DevCertificateAuthority): Promise<IssuedCertificate> {
  const keyId = new x509.X509Certificate(issuer.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', createPrivateKey(signer.keyPem).export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0101',
    subject: 'CN=forged',
    issuer: `CN=${issuer.commonName}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.AuthorityKeyIdentifierExtension(keyId), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])],
  });
  const certPem = `${cert.toString('pem')}\n`;
  const keyPem = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, serialHex: '0101', notAfter: cert.notAfter, chainPem: certPem + issuer.chainPem };
}

describe('verifyChain: typed reasons and alerts', () => {
  let root: DevCertificateAuthority;
  let inter: DevCertificateAuthority;
  let server: IssuedCertificate;
  let client: IssuedCertificate;

  beforeAll(async () => {
    root = await createDevCertificateAuthority({ commonName: 'Typed Root' });
    inter = await root.intermediate({ commonName: 'Typed Intermediate' });
    server = await inter.issue({ commonName: 'server', ...SANS, usage: 'server' });
    client = await inter.issue({ commonName: 'client', usage: 'client' });
  });

  const trust = async (crls: string[] | 'default' = 'default'): Promise<ReturnType<typeof trustStoreOf>> => trustStoreOf(root.certPem, crls === 'default' ? [await root.crl([]), await inter.crl([])] : crls);

  it('wrong EKU: a client certificate as a server and a server certificate as a client -> TLS_PEER_UNTRUSTED, alert unsupported_certificate', async () => {
    const store = await trust();
    expect(verifyChain(ders(client.chainPem), store, { peer: 'server', name: 'localhost' })).toMatchObject({ code: 'TLS_PEER_UNTRUSTED', verifyError: 'INVALID_PURPOSE', alert: TLS_ALERT.UNSUPPORTED_CERTIFICATE });
    expect(verifyChain(ders(server.chainPem), store, { peer: 'client' })).toMatchObject({ code: 'TLS_PEER_UNTRUSTED', verifyError: 'INVALID_PURPOSE', alert: TLS_ALERT.UNSUPPORTED_CERTIFICATE });
    expect(verifyChain(ders(server.chainPem), store, { peer: 'server', name: 'localhost' })).toBeUndefined();
    expect(verifyChain(ders(client.chainPem), store, { peer: 'client' })).toBeUndefined();
  });

  it('an expired CRL -> TLS_HANDSHAKE_FAILED CRL_HAS_EXPIRED (alert certificate_expired), naming the nextUpdate', async () => {
    const stale = await inter.crl([], staleCrl());
    const rejection = verifyChain(ders(server.chainPem), await trust([await root.crl([]), stale]), { peer: 'server', name: 'localhost' });
    expect(rejection).toMatchObject({ code: 'TLS_HANDSHAKE_FAILED', verifyError: 'CRL_HAS_EXPIRED', alert: TLS_ALERT.CERTIFICATE_EXPIRED });
    expect(rejection?.reason).toContain('nextUpdate');
    expect(rejection?.reason).toContain('CN=Typed Intermediate');
  });

  it('a CRL signed by another key -> TLS_HANDSHAKE_FAILED CRL_SIGNATURE_FAILURE (alert decrypt_error)', async () => {
    const other = await createDevCertificateAuthority({ commonName: 'Typed Intermediate' });
    const forged = await inter.crl([], { signedBy: other });
    expect(verifyChain(ders(server.chainPem), await trust([await root.crl([]), forged]), { peer: 'server' })).toMatchObject({ code: 'TLS_HANDSHAKE_FAILED', verifyError: 'CRL_SIGNATURE_FAILURE', alert: TLS_ALERT.DECRYPT_ERROR });
  });

  it('a revoked intermediate -> TLS_REVOKED at depth 1 (alert certificate_revoked)', async () => {
    const rejection = verifyChain(ders(server.chainPem), await trust([await root.crl([inter.serialHex]), await inter.crl([])]), { peer: 'server' });
    expect(rejection).toMatchObject({ code: 'TLS_REVOKED', verifyError: 'CERT_REVOKED', alert: TLS_ALERT.CERTIFICATE_REVOKED });
    expect(rejection?.problems).toEqual([expect.objectContaining({ verifyError: 'CERT_REVOKED', depth: 1, subject: 'CN=Typed Intermediate' })]);
  });

  it('a good chain through an intermediate is accepted by name and by IP; a wrong name is TLS_PEER_NAME_MISMATCH', async () => {
    const store = await trust();
    expect(verifyChain(ders(server.chainPem), store, { peer: 'server', name: 'localhost' })).toBeUndefined();
    expect(verifyChain(ders(server.chainPem), store, { peer: 'server', name: '127.0.0.1' })).toBeUndefined();
    expect(verifyChain(ders(server.chainPem), store, { peer: 'server', name: 'other.example' })).toMatchObject({ code: 'TLS_PEER_NAME_MISMATCH', verifyError: 'ERR_TLS_CERT_ALTNAME_INVALID', alert: TLS_ALERT.BAD_CERTIFICATE });
  });

  it('keeps every failure it found, the deciding one last', async () => {
    const leaf = await inter.issue({ commonName: 'old', usage: 'server', ...past() });
    const rejection = verifyChain(ders(leaf.chainPem), await trust([await root.crl([]), await inter.crl([leaf.serialHex])]), { peer: 'server' });
    expect(rejection?.problems.map((p) => p.verifyError)).toEqual(['CERT_REVOKED', 'CERT_HAS_EXPIRED']);
    expect(rejection?.code).toBe('TLS_PEER_EXPIRED');
  });

  it('an untrusted self-signed certificate is reported as such before its purpose', () => {
    const rejection = verifyChain(ders(root.certPem), trustStoreOf(inter.certPem, []), { peer: 'server' });
    expect(rejection?.problems.map((p) => p.verifyError)).toEqual(['DEPTH_ZERO_SELF_SIGNED_CERT', 'INVALID_PURPOSE']);
  });

  it('without a CA bundle, trusts Node\'s bundled roots (as Node\'s TLS does), parsed once', () => {
    const started = performance.now();
    const store = trustStoreOf(undefined, []);
    expect(store.anchors).toEqual([]);
    expect(store.roots).toBeDefined();
    expect(trustStoreOf(undefined, []).roots).toBe(store.roots);
    expect(verifyChain(ders(server.chainPem), store, { peer: 'server' })?.verifyError).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('no certificate, or garbage', async () => {
    const store = await trust();
    expect(verifyChain([], store, { peer: 'client' })).toMatchObject({ code: 'TLS_PEER_UNTRUSTED', verifyError: 'NO_CERTIFICATE' });
    expect(verifyChain([new Uint8Array([1, 2, 3])], store, { peer: 'client' })).toMatchObject({ code: 'TLS_HANDSHAKE_FAILED', verifyError: 'UNPARSABLE_CERTIFICATE' });
  });
});

interface WeakOptions {
  readonly role?: PeerRole;
  readonly rootDigest?: string;
  readonly interDigest?: string;
  readonly leafDigest?: string;
  readonly interKey?: string;
  readonly leafKey?: string;
  readonly tls12?: boolean;
}

/** root -> intermediate -> leaf with the openssl CLI (digests and key sizes Node's webcrypto does not make). */
function weakCase(options: WeakOptions): Case {
  const dir = mkdtempSync(join(tmpdir(), 'weak-pki-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const key = (name: string, spec: string): void => {
    const [type, size] = spec.split(':') as [string, string];
    if (type === 'rsa') run('genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${size}`, '-out', `${name}.key`);
    else run('genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${size}`, '-pkeyopt', 'ec_param_enc:named_curve', '-out', `${name}.key`);
  };
  const role = options.role ?? 'server';
  try {
    writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    writeFileSync(join(dir, 'leaf.ext'), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${role === 'server' ? 'serverAuth' : 'clientAuth'}\nsubjectAltName=IP:127.0.0.1\nauthorityKeyIdentifier=keyid\n`);
    key('root', 'rsa:2048');
    run('req', '-x509', '-new', '-key', 'root.key', '-subj', '/CN=Weak Root', `-${options.rootDigest ?? 'sha256'}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.pem');
    key('inter', options.interKey ?? 'rsa:2048');
    run('req', '-new', '-key', 'inter.key', '-subj', '/CN=Weak Intermediate', '-out', 'inter.csr');
    run('x509', '-req', '-in', 'inter.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '2', '-days', '2', `-${options.interDigest ?? 'sha256'}`, '-extfile', 'ca.ext', '-out', 'inter.pem');
    key('leaf', options.leafKey ?? 'rsa:2048');
    run('req', '-new', '-key', 'leaf.key', '-subj', '/CN=weak leaf', '-out', 'leaf.csr');
    run('x509', '-req', '-in', 'leaf.csr', '-CA', 'inter.pem', '-CAkey', 'inter.key', '-set_serial', '3', '-days', '2', `-${options.leafDigest ?? 'sha256'}`, '-extfile', 'leaf.ext', '-out', 'leaf.pem');
    const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
    return { role, ca: read('root.pem'), chain: read('leaf.pem') + read('inter.pem'), key: read('leaf.key'), tls12: options.tls12 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('verifyChain: presented chain length', () => {
  it(`refuses more than ${MAX_PRESENTED_CERTIFICATES} presented certificates before parsing any (CERT_CHAIN_TOO_LONG, alert unknown_ca)`, async () => {
    const root = await createDevCertificateAuthority({ commonName: 'Length Root' });
    const leaf = await root.issue({ commonName: 'c', usage: 'client' });
    const store = trustStoreOf(root.certPem, []);
    const garbage = new Uint8Array([1, 2, 3]);
    const long = [...ders(leaf.chainPem), ...Array.from({ length: MAX_PRESENTED_CERTIFICATES }, () => garbage)];
    expect(verifyChain(long, store, { peer: 'client' })).toMatchObject({ code: 'TLS_PEER_UNTRUSTED', verifyError: 'CERT_CHAIN_TOO_LONG', alert: TLS_ALERT.UNKNOWN_CA });
    // At the bound: every presented certificate is decoded (as OpenSSL decodes the message), extra ones unused.
    const atBound = [...ders(leaf.chainPem), ...Array.from({ length: MAX_PRESENTED_CERTIFICATES - 1 }, () => ders(leaf.certPem)[0] as Uint8Array)];
    expect(verifyChain(atBound, store, { peer: 'client' })).toBeUndefined();
    expect(verifyChain([...ders(leaf.chainPem), garbage], store, { peer: 'client' })).toMatchObject({ verifyError: 'UNPARSABLE_CERTIFICATE' });
  });
});
