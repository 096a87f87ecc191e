/**
 * CRL files holding several CRLs (a root's and an intermediate's): Node's OpenSSL reads one CRL
 * per `crl` entry, so the material splits them, and both protocols see every CRL.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TlsOptions } from '../../../src/config/types.js';
import { trustStoreOf, verifyChain } from '../../../src/tls/chain-verifier.js';
import { createDevCertificateAuthority, type DevCertificateAuthority, type IssuedCertificate } from '../../../src/tls/dev-pki.js';
import { loadTlsMaterial, type TlsMaterial } from '../../../src/tls/material.js';

function ders(pem: string): Uint8Array[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]).raw);
}

function tlsOptions(extra: Partial<TlsOptions>): TlsOptions {
  return { mode: 'mtls', crlFiles: [], checkRevocation: false, reloadPollMs: 60_000, ...extra };
}

/** Material as a provider hands it out (generation 1). */
function load(profile: string, options: TlsOptions): TlsMaterial {
  return { ...loadTlsMaterial(profile, options, new Date()), generation: 1 };
}

/** The verdict of Node's TLS client using `material.secureContext` (what HTTP/2 uses) against a server presenting `server`. */
async function http2Verdict(material: TlsMaterial, server: IssuedCertificate): Promise<string> {
  const srv = tls.createServer({ cert: server.chainPem, key: server.keyPem }, (socket) => {
    socket.on('error', () => undefined);
    socket.end('x');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  let verdict = 'ok';
  await new Promise<void>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, secureContext: material.secureContext, checkServerIdentity: () => undefined });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      verdict = error.code ?? error.message;
    });
    socket.on('data', () => undefined);
    socket.on('close', () => resolve());
  });
  await new Promise((resolve) => srv.close(resolve));
  return verdict;
}

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
    const material = load('p', tlsOptions({ caFile: join(dir, 'root.pem'), certFile: join(dir, 'client.pem'), keyFile: join(dir, 'client.key'), crlFiles: [revoking] }));
    expect(material.crl).toHaveLength(2);
    expect(await http2Verdict(material, server)).toBe('CERT_REVOKED');
    expect(verifyChain(ders(server.chainPem), trustStoreOf(material.ca, material.crl), { peer: 'server' })?.verifyError).toBe('CERT_REVOKED');
  });
});
