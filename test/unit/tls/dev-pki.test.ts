import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import {
  createDevCertificateAuthority,
  writeDevPki,
  type DevCertificateAuthority,
  type IssuedCertificate,
} from '../../../src/tls/dev-pki.js';

const SERVER_SANS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
const DAY_MS = 24 * 60 * 60 * 1000;

interface ServerSide {
  ca: string;
  cert: string;
  key: string;
  crl?: string | string[];
  /** Default true. With false the test decides, so `authorizationError` can be observed. */
  rejectUnauthorized?: boolean;
}

interface ClientSide {
  ca: string;
  cert?: string;
  key?: string;
  crl?: string | string[];
  servername?: string;
}

interface Outcome {
  /** `err.code` of the client socket's error, if any. */
  clientError: string | undefined;
  /** What the server wrote after accepting the connection. */
  received: string;
  /** Client certificate CN as seen by the server (only when the server accepted the TLS session). */
  serverPeerCN: string | undefined;
  /** `authorizationError` seen by the server (only with rejectUnauthorized: false). */
  serverAuthError: string | undefined;
}

/** Duck-typed: under jest's VM modules, errors from node core fail `instanceof Error`. */
function errorCode(err: unknown): string {
  const { code, message } = err as Partial<NodeJS.ErrnoException>;
  return code ?? message ?? String(err);
}

/** One real TLS handshake over 127.0.0.1; closes the server and every socket before returning. */
async function handshake(server: ServerSide, client: ClientSide): Promise<Outcome> {
  const outcome: Outcome = { clientError: undefined, received: '', serverPeerCN: undefined, serverAuthError: undefined };
  const serverSockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer(
    {
      ca: server.ca,
      cert: server.cert,
      key: server.key,
      ...(server.crl === undefined ? {} : { crl: server.crl }),
      requestCert: true,
      rejectUnauthorized: server.rejectUnauthorized ?? true,
    },
    (socket) => {
      serverSockets.add(socket);
      socket.on('close', () => serverSockets.delete(socket));
      socket.on('error', () => undefined);
      if (!socket.authorized) {
        outcome.serverAuthError = String(socket.authorizationError);
        socket.destroy();
        return;
      }
      const cn = socket.getPeerCertificate().subject?.CN;
      outcome.serverPeerCN = Array.isArray(cn) ? cn.join('+') : cn;
      socket.end('hello');
    },
  );
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: client.ca,
        ...(client.cert === undefined ? {} : { cert: client.cert }),
        ...(client.key === undefined ? {} : { key: client.key }),
        ...(client.crl === undefined ? {} : { crl: client.crl }),
        ...(client.servername === undefined ? {} : { servername: client.servername }),
      });
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        outcome.received += chunk;
      });
      socket.on('error', (err) => {
        outcome.clientError ??= errorCode(err);
      });
      socket.on('end', () => socket.end());
      socket.on('close', () => resolve());
    });
  } finally {
    for (const socket of serverSockets) socket.destroy();
    await new Promise<void>((resolve, reject) => srv.close((err) => (err ? reject(err) : resolve())));
  }
  return outcome;
}

describe('dev PKI', () => {
  let ca: DevCertificateAuthority;
  let otherCa: DevCertificateAuthority;
  let server: IssuedCertificate;
  let client: IssuedCertificate;
  let expiredServer: IssuedCertificate;
  let expiredClient: IssuedCertificate;
  let revokedServer: IssuedCertificate;
  let revokedClient: IssuedCertificate;
  let wrongNameServer: IssuedCertificate;
  let foreignServer: IssuedCertificate;
  let foreignClient: IssuedCertificate;
  let crl: string;
  let emptyCrl: string;

  const expired = { notBefore: new Date(Date.now() - 30 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) };

  beforeAll(async () => {
    ca = await createDevCertificateAuthority({ commonName: 'Test CA' });
    otherCa = await createDevCertificateAuthority({ commonName: 'Other CA' });
    server = await ca.issue({ commonName: 'server', ...SERVER_SANS, usage: 'server' });
    client = await ca.issue({ commonName: 'client-one', usage: 'client' });
    expiredServer = await ca.issue({ commonName: 'expired-server', ...SERVER_SANS, usage: 'server', ...expired });
    expiredClient = await ca.issue({ commonName: 'expired-client', usage: 'client', ...expired });
    revokedServer = await ca.issue({ commonName: 'revoked-server', ...SERVER_SANS, usage: 'server' });
    revokedClient = await ca.issue({ commonName: 'revoked-client', usage: 'client' });
    wrongNameServer = await ca.issue({ commonName: 'wrong', dnsNames: ['wrong.example'], usage: 'server' });
    foreignServer = await otherCa.issue({ commonName: 'foreign-server', ...SERVER_SANS, usage: 'server' });
    foreignClient = await otherCa.issue({ commonName: 'foreign-client', usage: 'client' });
    crl = await ca.crl([revokedServer.serialHex, revokedClient.serialHex]);
    emptyCrl = await ca.crl([]);
  });

  const serverSide = (leaf: IssuedCertificate, extra: Partial<ServerSide> = {}): ServerSide => ({
    ca: ca.certPem,
    cert: leaf.certPem,
    key: leaf.keyPem,
    ...extra,
  });
  const clientSide = (leaf: IssuedCertificate, extra: Partial<ClientSide> = {}): ClientSide => ({
    ca: ca.certPem,
    cert: leaf.certPem,
    key: leaf.keyPem,
    ...extra,
  });

  describe('certificates', () => {
    it('have the CA and leaf shapes OpenSSL expects', () => {
      const caCert = new X509Certificate(ca.certPem);
      expect(caCert.ca).toBe(true);
      expect(caCert.subject).toBe('CN=Test CA');
      expect(caCert.checkIssued(caCert)).toBe(true);

      const leaf = new X509Certificate(server.certPem);
      expect(leaf.ca).toBe(false);
      expect(leaf.issuer).toBe('CN=Test CA');
      expect(leaf.checkIssued(caCert)).toBe(true);
      expect(leaf.verify(caCert.publicKey)).toBe(true);
      expect(leaf.checkHost('localhost')).toBe('localhost');
      expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(leaf.checkIP('::1')).toBe('::1');
      expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
      expect(leaf.publicKey.asymmetricKeyType).toBe('ec');
      expect(new X509Certificate(client.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(server.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    });

    it('uses lowercase hex serials that match Node (uppercase) and never repeat', async () => {
      expect(server.serialHex.toUpperCase()).toBe(new X509Certificate(server.certPem).serialNumber);
      const serials = [server, client, expiredServer, revokedServer, revokedClient, wrongNameServer].map((c) => c.serialHex);
      for (let i = 0; i < 20; i += 1) {
        serials.push((await ca.issue({ commonName: `n${i}`, usage: 'client' })).serialHex);
      }
      for (const serial of serials) expect(serial).toMatch(/^[4-7][0-9a-f]{31}$/);
      expect(new Set(serials).size).toBe(serials.length);
    });

    it('reports notAfter', () => {
      expect(expiredClient.notAfter.getTime()).toBe(expired.notAfter.getTime());
      expect(new Date(new X509Certificate(server.certPem).validTo).getTime()).toBe(
        Math.floor(server.notAfter.getTime() / 1000) * 1000,
      );
    });

    it('builds v2 CRLs with authorityKeyIdentifier, increasing cRLNumber and nextUpdate', async () => {
      const caCert = new x509.X509Certificate(ca.certPem);
      const parsed = new x509.X509Crl(crl);
      expect(parsed.version).toBe(1); // v2 is encoded as 1
      expect(parsed.nextUpdate).toBeInstanceOf(Date);
      expect(parsed.issuer).toBe('CN=Test CA');
      expect(await parsed.verify({ publicKey: caCert })).toBe(true);
      expect(parsed.entries.map((e) => e.serialNumber).sort()).toEqual(
        [revokedServer.serialHex, revokedClient.serialHex].sort(),
      );
      expect(parsed.findRevoked(revokedServer.serialHex.toUpperCase())).not.toBeNull();

      const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
      const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
      expect(aki?.keyId).toBeDefined();
      expect(aki?.keyId).toBe(ski?.keyId);

      const crlNumber = (pem: string): string =>
        Buffer.from(new x509.X509Crl(pem).getExtension('2.5.29.20')!.value).toString('hex');
      expect(crlNumber(crl)).toBe('020101');
      expect(crlNumber(emptyCrl)).toBe('020102');
      expect(new x509.X509Crl(emptyCrl).entries).toHaveLength(0);
    });

    it('issues intermediates that issue leaves and CRLs; chainPem is what a peer presents', async () => {
      const inter = await ca.intermediate({ commonName: 'Test Intermediate', usage: 'server', pathLength: 0 });
      const interCert = new X509Certificate(inter.certPem);
      expect(interCert.ca).toBe(true);
      expect(interCert.issuer).toBe('CN=Test CA');
      expect(interCert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
      expect(interCert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
      expect(new x509.X509Certificate(inter.certPem).getExtension(x509.BasicConstraintsExtension)?.pathLength).toBe(0);
      expect(inter.serialHex.toUpperCase()).toBe(interCert.serialNumber);
      expect(inter.chainPem).toBe(inter.certPem);
      expect(ca.chainPem).toBe('');

      const leaf = await inter.issue({ commonName: 'below', usage: 'none' });
      expect(leaf.chainPem).toBe(leaf.certPem + inter.certPem);
      expect(new X509Certificate(leaf.certPem).issuer).toBe('CN=Test Intermediate');
      expect(new X509Certificate(leaf.certPem).keyUsage).toBeUndefined();
      const interCrl = new x509.X509Crl(await inter.crl([leaf.serialHex]));
      expect(interCrl.issuer).toBe('CN=Test Intermediate');
      expect(await interCrl.verify({ publicKey: new x509.X509Certificate(inter.certPem) })).toBe(true);

      const notCa = await ca.intermediate({ commonName: 'Not a CA', ca: false });
      expect(new X509Certificate(notCa.certPem).ca).toBe(false);
    });

    it('signs a CRL with another authority\'s key on request (same issuer name and key id, a signature that does not verify)', async () => {
      const forged = new x509.X509Crl(await ca.crl([], { signedBy: otherCa }));
      expect(forged.issuer).toBe('CN=Test CA');
      expect(forged.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
      expect(await forged.verify({ publicKey: new x509.X509Certificate(ca.certPem) })).toBe(false);
      expect(await forged.verify({ publicKey: new x509.X509Certificate(otherCa.certPem) })).toBe(true);
    });

    it('rejects malformed serials given to crl()', async () => {
      await expect(ca.crl(['not-hex'])).rejects.toThrow(TypeError);
    });
  });

  describe('TLS handshakes', () => {
    it('connects a valid pair and the server sees the client CN', async () => {
      const outcome = await handshake(serverSide(server), clientSide(client));
      expect(outcome.clientError).toBeUndefined();
      expect(outcome.received).toBe('hello');
      expect(outcome.serverPeerCN).toBe('client-one');
    });

    it('verifies the server name via SNI/hostname as well as IP', async () => {
      const outcome = await handshake(serverSide(server), clientSide(client, { servername: 'localhost' }));
      expect(outcome.clientError).toBeUndefined();
      expect(outcome.received).toBe('hello');
    });

    it('accepts valid leaves when both sides check a CRL that does not revoke them', async () => {
      const outcome = await handshake(serverSide(server, { crl }), clientSide(client, { crl: emptyCrl }));
      expect(outcome.clientError).toBeUndefined();
      expect(outcome.received).toBe('hello');
      expect(outcome.serverPeerCN).toBe('client-one');
    });

    it('rejects an expired server leaf with CERT_HAS_EXPIRED', async () => {
      const outcome = await handshake(serverSide(expiredServer), clientSide(client));
      expect(outcome.clientError).toBe('CERT_HAS_EXPIRED');
      expect(outcome.received).toBe('');
    });

    it('rejects an expired client leaf with CERT_HAS_EXPIRED', async () => {
      const rejected = await handshake(serverSide(server), clientSide(expiredClient));
      expect(rejected.received).toBe('');
      expect(rejected.serverPeerCN).toBeUndefined();

      const observed = await handshake(serverSide(server, { rejectUnauthorized: false }), clientSide(expiredClient));
      expect(observed.serverAuthError).toBe('CERT_HAS_EXPIRED');
    });

    it('rejects a revoked server leaf with CERT_REVOKED only when the client passes the CRL', async () => {
      const withoutCrl = await handshake(serverSide(revokedServer), clientSide(client));
      expect(withoutCrl.clientError).toBeUndefined();
      expect(withoutCrl.received).toBe('hello');

      const withCrl = await handshake(serverSide(revokedServer), clientSide(client, { crl }));
      expect(withCrl.clientError).toBe('CERT_REVOKED');
      expect(withCrl.received).toBe('');
    });

    it('rejects a revoked client leaf with CERT_REVOKED when the server passes the CRL', async () => {
      const rejected = await handshake(serverSide(server, { crl }), clientSide(revokedClient));
      expect(rejected.received).toBe('');
      expect(rejected.serverPeerCN).toBeUndefined();

      const observed = await handshake(
        serverSide(server, { crl, rejectUnauthorized: false }),
        clientSide(revokedClient),
      );
      expect(observed.serverAuthError).toBe('CERT_REVOKED');
    });

    it('rejects an expired CRL with CRL_HAS_EXPIRED', async () => {
      const stale = await ca.crl([], {
        thisUpdate: new Date(Date.now() - 10 * DAY_MS),
        nextUpdate: new Date(Date.now() - DAY_MS),
      });
      const outcome = await handshake(serverSide(server), clientSide(client, { crl: stale }));
      expect(outcome.clientError).toBe('CRL_HAS_EXPIRED');
    });

    it('rejects a server whose SANs do not cover the host with ERR_TLS_CERT_ALTNAME_INVALID', async () => {
      const byIp = await handshake(serverSide(wrongNameServer), clientSide(client));
      expect(byIp.clientError).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      const byName = await handshake(serverSide(wrongNameServer), clientSide(client, { servername: 'localhost' }));
      expect(byName.clientError).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(byName.received).toBe('');
    });

    it('rejects a server leaf issued by another CA', async () => {
      const outcome = await handshake(serverSide(foreignServer), clientSide(client));
      expect(outcome.clientError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      expect(outcome.received).toBe('');
    });

    it('rejects a client leaf issued by another CA', async () => {
      const rejected = await handshake(serverSide(server), clientSide(foreignClient));
      expect(rejected.received).toBe('');
      expect(rejected.serverPeerCN).toBeUndefined();

      const observed = await handshake(serverSide(server, { rejectUnauthorized: false }), clientSide(foreignClient));
      expect(observed.serverAuthError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('connects a pair whose certificates come from an intermediate, presented as chainPem', async () => {
      const inter = await ca.intermediate({ commonName: 'TLS Intermediate' });
      const leafServer = await inter.issue({ commonName: 'chained-server', ...SERVER_SANS, usage: 'server' });
      const leafClient = await inter.issue({ commonName: 'chained-client', usage: 'client' });
      const crls = [await ca.crl([]), await inter.crl([])];
      const outcome = await handshake(
        { ca: ca.certPem, cert: leafServer.chainPem, key: leafServer.keyPem, crl: crls },
        { ca: ca.certPem, cert: leafClient.chainPem, key: leafClient.keyPem, crl: crls },
      );
      expect(outcome.clientError).toBeUndefined();
      expect(outcome.serverPeerCN).toBe('chained-client');
      // Node reads ONE CRL from each entry: the intermediate's CRL, second in one string, is left out.
      const joined = await handshake(
        { ca: ca.certPem, cert: leafServer.chainPem, key: leafServer.keyPem },
        { ca: ca.certPem, cert: leafClient.chainPem, key: leafClient.keyPem, crl: crls.join('') },
      );
      expect(joined.clientError).toBe('UNABLE_TO_GET_CRL');
    });

    it('rejects a client that presents no certificate', async () => {
      const outcome = await handshake(serverSide(server), { ca: ca.certPem });
      expect(outcome.received).toBe('');
      expect(outcome.serverPeerCN).toBeUndefined();
    });
  });

  describe('writeDevPki', () => {
    let dir: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'omnirelay-dev-pki-'));
    });

    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('writes a CA, an empty CRL and dual-use node certificates that work together', async () => {
      const out = await writeDevPki(join(dir, 'pki'), ['node-a', 'node-b']);
      expect(out.caFile).toBe(join(dir, 'pki', 'ca.pem'));
      expect(out.crlFile).toBe(join(dir, 'pki', 'ca.crl.pem'));
      expect(Object.keys(out.files).sort()).toEqual(['node-a', 'node-b']);
      expect(out.files['node-a']).toEqual({
        certFile: join(dir, 'pki', 'node-a.pem'),
        keyFile: join(dir, 'pki', 'node-a.key'),
      });
      expect((await stat(out.files['node-a']!.keyFile)).mode & 0o777).toBe(0o600);

      const [caPem, crlPem, aCert, aKey, bCert, bKey] = await Promise.all([
        readFile(out.caFile, 'utf8'),
        readFile(out.crlFile, 'utf8'),
        readFile(out.files['node-a']!.certFile, 'utf8'),
        readFile(out.files['node-a']!.keyFile, 'utf8'),
        readFile(out.files['node-b']!.certFile, 'utf8'),
        readFile(out.files['node-b']!.keyFile, 'utf8'),
      ]);
      expect(new x509.X509Crl(crlPem).entries).toHaveLength(0);

      // node-a serves, node-b is the client, and the other way round; both sides check the CRL.
      const ab = await handshake(
        { ca: caPem, cert: aCert, key: aKey, crl: crlPem },
        { ca: caPem, cert: bCert, key: bKey, crl: crlPem, servername: 'localhost' },
      );
      expect(ab.clientError).toBeUndefined();
      expect(ab.serverPeerCN).toBe('node-b');
      const ba = await handshake(
        { ca: caPem, cert: bCert, key: bKey, crl: crlPem },
        { ca: caPem, cert: aCert, key: aKey, crl: crlPem },
      );
      expect(ba.clientError).toBeUndefined();
      expect(ba.serverPeerCN).toBe('node-a');
    });

    it('refuses node names that would escape the directory or clash with the CA files', async () => {
      await expect(writeDevPki(join(dir, 'bad1'), ['../x'])).rejects.toThrow(TypeError);
      await expect(writeDevPki(join(dir, 'bad2'), ['ca'])).rejects.toThrow(TypeError);
      await expect(writeDevPki(join(dir, 'bad3'), ['a', 'a'])).rejects.toThrow(TypeError);
    });
  });
});
