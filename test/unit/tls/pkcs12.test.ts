/**
 * PKCS#12 client identities over HTTP/3: converted to PEM in-process (node:crypto cannot read
 * PKCS#12), every format Node's OpenSSL opens, and the bundle's CA certificates trusted for the
 * peer as Node's OpenSSL trusts them on HTTP/2.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TlsError } from '../../../src/errors.js';
import { trustStoreOf, verifyChain } from '../../../src/tls/chain-verifier.js';
import { createDevCertificateAuthority, type DevCertificateAuthority, type IssuedCertificate } from '../../../src/tls/dev-pki.js';
import { pemIdentityFromPkcs12, pemIdentityOf } from '../../../src/tls/pkcs12.js';
import type { TlsMaterial } from '../../../src/tls/material.js';
import { ders, http2Verdict, loadMaterial, tlsOptions } from '../../support/tls-verdicts.js';

const execFileAsync = promisify(execFile);

let dir: string;
let root: DevCertificateAuthority;
let inter: DevCertificateAuthority;
let client: IssuedCertificate;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnirelay-pkcs12-'));
  root = await createDevCertificateAuthority({ commonName: 'Material Root' });
  inter = await root.intermediate({ commonName: 'Material Intermediate' });
  client = await inter.issue({ commonName: 'client', usage: 'client' });
  await writeFile(join(dir, 'root.pem'), root.certPem);
  await writeFile(join(dir, 'client.key'), client.keyPem);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PKCS#12', () => {
  const password = 'correct horse';
  let extraCa: DevCertificateAuthority;
  let pfxFile: string;

  beforeAll(async () => {
    extraCa = await createDevCertificateAuthority({ commonName: 'Bundled CA' });
    await writeFile(join(dir, 'extra-ca.pem'), extraCa.certPem);
    await writeFile(join(dir, 'inter.pem'), inter.certPem);
    await writeFile(join(dir, 'leaf.pem'), client.certPem);
    pfxFile = join(dir, 'client.p12');
    // OpenSSL 3's defaults: PBES2 (PBKDF2, AES-256-CBC), MAC SHA-256; the intermediate and an extra CA in the bundle.
    await execFileAsync('openssl', ['pkcs12', '-export', '-inkey', join(dir, 'client.key'), '-in', join(dir, 'leaf.pem'), '-certfile', join(dir, 'inter.pem'), '-passout', `pass:${password}`, '-out', pfxFile]);
    const both = join(dir, 'inter-and-extra.pem');
    await writeFile(both, inter.certPem + extraCa.certPem);
    await execFileAsync('openssl', ['pkcs12', '-export', '-inkey', join(dir, 'client.key'), '-in', join(dir, 'leaf.pem'), '-certfile', both, '-passout', `pass:${password}`, '-out', join(dir, 'with-ca.p12')]);
    // The legacy 3DES format (Windows exports it): Node's OpenSSL 3 still opens it.
    await execFileAsync('openssl', ['pkcs12', '-export', '-inkey', join(dir, 'client.key'), '-in', join(dir, 'leaf.pem'), '-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1', '-passout', `pass:${password}`, '-out', join(dir, '3des.p12')]);
    await execFileAsync('openssl', ['pkcs12', '-export', '-inkey', join(dir, 'client.key'), '-in', join(dir, 'leaf.pem'), '-passout', 'pass:', '-out', join(dir, 'no-password.p12')]);
  });

  it('extracts the key, the leaf first and the rest of the chain, as PEM', async () => {
    const identity = await pemIdentityFromPkcs12(await readFile(pfxFile), password);
    expect(ders(identity.certPem).map((d) => new X509Certificate(d).subject)).toEqual(['CN=client', 'CN=Material Intermediate']);
    expect(new X509Certificate(identity.certPem).checkPrivateKey(createPrivateKey(identity.keyPem))).toBe(true);
    expect(identity.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(identity.caPems.map((pem) => new X509Certificate(pem).subject)).toEqual(['CN=Material Intermediate']);
  });

  it.each([['3des.p12', password], ['no-password.p12', undefined], ['no-password.p12', '']])('opens %s (password %p) like Node does', async (file, pass) => {
    const bytes = await readFile(join(dir, file));
    expect(() => tls.createSecureContext({ pfx: bytes, passphrase: pass })).not.toThrow();
    const identity = await pemIdentityFromPkcs12(bytes, pass);
    expect(new X509Certificate(identity.certPem).subject).toBe('CN=client');
  });

  it('a wrong password fails (the MAC does not verify)', async () => {
    await expect(pemIdentityFromPkcs12(await readFile(pfxFile), 'wrong')).rejects.toThrow(/MAC|password/i);
  });

  it('once per TLS generation: the same material gives the same extraction; a failure is a TlsError naming the profile', async () => {
    const material = loadMaterial('pfx-profile', tlsOptions({ caFile: join(dir, 'root.pem'), pfxFile, pfxPassword: password }));
    expect(material.pfx).toBeDefined();
    const first = pemIdentityOf(material);
    expect(pemIdentityOf(material)).toBe(first);
    expect(new X509Certificate((await first).certPem).subject).toBe('CN=client');
    const broken = { ...material, pfx: Buffer.from('not a pkcs12') } as TlsMaterial;
    await expect(pemIdentityOf(broken)).rejects.toMatchObject({ code: 'TLS_CLIENT_CERT_UNREADABLE', profile: 'pfx-profile' });
    await expect(pemIdentityOf(broken)).rejects.toBeInstanceOf(TlsError);
  });

  it('CA certificates inside the bundle are trusted for the peer on HTTP/2 (Node adds them to its store), and so on HTTP/3', async () => {
    const stranger = await extraCa.issue({ commonName: 'stranger', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const withCa = loadMaterial('p', tlsOptions({ caFile: join(dir, 'root.pem'), pfxFile: join(dir, 'with-ca.p12'), pfxPassword: password }));
    const withoutCa = loadMaterial('p', tlsOptions({ caFile: join(dir, 'root.pem'), pfxFile, pfxPassword: password }));
    expect(await http2Verdict(withCa, stranger)).toBe('ok');
    expect(await http2Verdict(withoutCa, stranger)).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const identity = await pemIdentityOf(withCa);
    expect(verifyChain(ders(stranger.chainPem), trustStoreOf(withCa.ca, withCa.crl, identity.caPems), { peer: 'server' })).toBeUndefined();
    const plain = await pemIdentityOf(withoutCa);
    expect(verifyChain(ders(stranger.chainPem), trustStoreOf(withoutCa.ca, withoutCa.crl, plain.caPems), { peer: 'server' })?.verifyError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});
