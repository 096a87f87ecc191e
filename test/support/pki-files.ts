/**
 * Certificates on disk for integration/feature tests: one trusted CA with a set of good and
 * bad leaves, an unrelated CA, CRLs and a PKCS#12 bundle made with the `openssl` CLI.
 *
 * Imports the library only as `omnirelay` (the built `dist/`), like every tier above `unit`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDevCertificateAuthority } from 'omnirelay';
import type { DevCertificateAuthority, IssueOptions, IssuedCertificate } from 'omnirelay';

const execFileAsync = promisify(execFile);

const DAY_MS = 24 * 60 * 60 * 1000;
const SERVER_SANS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };

export type Files = { certFile: string; keyFile: string; certPem: string; keyPem: string; serialHex: string };

export interface TestPki {
  /** The fresh temporary directory everything was written to. */
  dir: string;
  /** The trusted CA (issues server, client, client2, expired*, wrongNameServer, revoked*). */
  ca: DevCertificateAuthority;
  caFile: string;
  /** A second, unrelated CA (issues untrustedClient). */
  otherCa: DevCertificateAuthority;
  otherCaFile: string;
  /** CN `server`; SANs localhost, 127.0.0.1, ::1; serverAuth. */
  server: Files;
  /** CN `client`; clientAuth. */
  client: Files;
  /** CN `client-2`; a second valid client certificate with its own serial. */
  client2: Files;
  /** CN `expired-client`; expired yesterday. */
  expiredClient: Files;
  /** CN `expired-server`; server SANs; expired yesterday. */
  expiredServer: Files;
  /** CN `wrong-name-server`; the only SAN is DNS wrong.example. */
  wrongNameServer: Files;
  /** CN `revoked-server`; server SANs; listed in crlFile. */
  revokedServer: Files;
  /** CN `revoked-client`; listed in crlFile. */
  revokedClient: Files;
  /** CN `untrusted-client`; issued by otherCa. */
  untrustedClient: Files;
  /** CRL of `ca` revoking revokedServer and revokedClient. */
  crlFile: string;
  /** CRL of `ca` revoking nothing. */
  emptyCrlFile: string;
  /** PKCS#12 of `client` (certificate + key, no CA), made by `openssl pkcs12 -export`. */
  clientPfxFile: string;
  clientPfxPassword: string;
  /** Removes `dir`. */
  cleanup(): Promise<void>;
}

async function writeLeaf(dir: string, name: string, issued: IssuedCertificate): Promise<Files> {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, issued.certPem);
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  return { certFile, keyFile, certPem: issued.certPem, keyPem: issued.keyPem, serialHex: issued.serialHex };
}

/** Writes a complete test PKI into a fresh `mkdtemp` directory under `os.tmpdir()`. */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-pki-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const now = Date.now();
    const expired = { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) };
    const ca = await createDevCertificateAuthority({ commonName: 'OmniRelay Test CA' });
    const otherCa = await createDevCertificateAuthority({ commonName: 'OmniRelay Untrusted CA' });

    const leaf = async (name: string, options: IssueOptions, issuer = ca): Promise<Files> =>
      writeLeaf(dir, name, await issuer.issue(options));

    const server = await leaf('server', { commonName: 'server', ...SERVER_SANS, usage: 'server' });
    const client = await leaf('client', { commonName: 'client', usage: 'client' });
    const client2 = await leaf('client-2', { commonName: 'client-2', usage: 'client' });
    const expiredClient = await leaf('expired-client', { commonName: 'expired-client', usage: 'client', ...expired });
    const expiredServer = await leaf('expired-server', {
      commonName: 'expired-server',
      ...SERVER_SANS,
      usage: 'server',
      ...expired,
    });
    const wrongNameServer = await leaf('wrong-name-server', {
      commonName: 'wrong-name-server',
      dnsNames: ['wrong.example'],
      usage: 'server',
    });
    const revokedServer = await leaf('revoked-server', { commonName: 'revoked-server', ...SERVER_SANS, usage: 'server' });
    const revokedClient = await leaf('revoked-client', { commonName: 'revoked-client', usage: 'client' });
    const untrustedClient = await leaf('untrusted-client', { commonName: 'untrusted-client', usage: 'client' }, otherCa);

    const caFile = join(dir, 'ca.pem');
    const otherCaFile = join(dir, 'other-ca.pem');
    const crlFile = join(dir, 'ca.crl.pem');
    const emptyCrlFile = join(dir, 'ca.empty.crl.pem');
    await writeFile(caFile, ca.certPem);
    await writeFile(otherCaFile, otherCa.certPem);
    await writeFile(crlFile, await ca.crl([revokedServer.serialHex, revokedClient.serialHex]));
    await writeFile(emptyCrlFile, await ca.crl([]));

    const clientPfxFile = join(dir, 'client.p12');
    const clientPfxPassword = randomBytes(12).toString('hex');
    await execFileAsync('openssl', [
      'pkcs12',
      '-export',
      '-inkey',
      client.keyFile,
      '-in',
      client.certFile,
      '-name',
      'client',
      '-passout',
      `pass:${clientPfxPassword}`,
      '-out',
      clientPfxFile,
    ]);

    return {
      dir,
      ca,
      caFile,
      otherCa,
      otherCaFile,
      server,
      client,
      client2,
      expiredClient,
      expiredServer,
      wrongNameServer,
      revokedServer,
      revokedClient,
      untrustedClient,
      crlFile,
      emptyCrlFile,
      clientPfxFile,
      clientPfxPassword,
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
