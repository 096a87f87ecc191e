/**
 * CRL files holding several CRLs (a root's and an intermediate's): Node's OpenSSL reads one CRL
 * per `crl` entry, so the material splits them, and both protocols see every CRL.
 */
import 'reflect-metadata';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { trustStoreOf, verifyChain } from '../../../src/tls/chain-verifier.js';
import { createDevCertificateAuthority, type DevCertificateAuthority, type IssuedCertificate } from '../../../src/tls/dev-pki.js';
import { ders, http2Verdict, loadMaterial, tlsOptions } from '../../support/tls-verdicts.js';

describe('CRL files in the TLS material', () => {
  let dir: string;
  let root: DevCertificateAuthority;
  let inter: DevCertificateAuthority;
  let server: IssuedCertificate;
  let client: IssuedCertificate;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-material-'));
    root = await createDevCertificateAuthority({ commonName: 'Material Root' });
    inter = await root.intermediate({ commonName: 'Material Intermediate' });
    server = await inter.issue({ commonName: 'server', ipAddresses: ['127.0.0.1'], usage: 'server' });
    client = await inter.issue({ commonName: 'client', usage: 'client' });
    await writeFile(join(dir, 'root.pem'), root.certPem);
    await writeFile(join(dir, 'client.pem'), client.chainPem);
    await writeFile(join(dir, 'client.key'), client.keyPem);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a CRL file holding two CRLs: both reach OpenSSL (HTTP/2) and the HTTP/3 verifier', async () => {
    const revoking = join(dir, 'two.crl.pem');
    await writeFile(revoking, (await root.crl([])) + (await inter.crl([server.serialHex])));
    const material = loadMaterial('p', tlsOptions({ caFile: join(dir, 'root.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key'), crlFiles: [revoking] }));
    expect(material.crl).toHaveLength(2);
    expect(await http2Verdict(material, server)).toBe('CERT_REVOKED');
    expect(verifyChain(ders(server.chainPem), trustStoreOf(material.ca, material.crl), { peer: 'server' })?.verifyError).toBe('CERT_REVOKED');
  });
});
