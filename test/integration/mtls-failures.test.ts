/**
 * Every way mTLS can go wrong, against real gRPC servers on 127.0.0.1: each failure must be
 * the library's typed error (stable code, message naming the file or peer) and must never
 * reach a server in plaintext or unverified. The failures about the server's certificate and
 * about our client certificate run over HTTP/2 and over HTTP/3 (GrpcHost serves both on one
 * port) and must give the same TlsError code and `verifyError` on both.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { controlPlaneV1, EndpointError, OmniRelayError, TlsError, TOKENS } from 'omnirelay';
import type { DevCertificateAuthority, IssuedCertificate, IssueOptions, PeerCertificateCheck, PeerCertificateValidator, ProfileOptionsInput } from 'omnirelay';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';
import { createContainer, FAST_PROFILE, factoryOf, fastProfile, hostTls, issueToFiles, ping, startOpenSslServer, startTestHost, type OpenSslServer, type TestHost } from '../support/hosts.js';
import { failureOf } from '../support/failure.js';

const Ping = controlPlaneV1.ControlPlaneDefinition;
const SERVER_SANS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
const DEADLINE_MS = 3_000;

let pki: TestPki;
/** Trusted CA's `server` certificate; requires client certificates of `ca`; CRL loaded. */
let good: TestHost;
/** Server certificate issued by the unrelated CA. */
let otherCaServer: TestHost;
let wrongNameServer: TestHost;
let expiredServer: TestHost;
let revokedServer: TestHost;
/** Plaintext gRPC (GrpcHost tls 'insecure'). */
let plaintext: TestHost;
let otherCaServerFiles: Files;
const hosts: TestHost[] = [];
const containers: Container[] = [];

function authority(host: TestHost): string {
  return `127.0.0.1:${host.port}`;
}

function httpsUrl(host: TestHost): string {
  return `https://${authority(host)}`;
}

function asTlsError(error: unknown): TlsError {
  if (!(error instanceof TlsError)) {
    throw new Error(`expected a TlsError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
  return error;
}

/** A container for one test; disposed in afterAll (and early by the tests that can). */
function container(profile: ProfileOptionsInput, configure?: (c: Container) => void): Container {
  const c = createContainer({ profiles: { 'control-plane': profile } }, configure);
  containers.push(c);
  return c;
}

function mtls(client: Pick<Files, 'certFile' | 'keyFile'>, extra: Record<string, unknown> = {}): ProfileOptionsInput {
  return fastProfile({ mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile, ...extra });
}

async function dispose(c: Container): Promise<void> {
  await c.unbindAllAsync();
}

/** Calls `ping` on `target` through a fresh container with `profile`, expecting a TlsError. */
async function pingFailure(profile: ProfileOptionsInput, target: TestHost, configure?: (c: Container) => void): Promise<TlsError> {
  const c = container(profile, configure);
  try {
    const factory = factoryOf(c);
    const before = target.calls.length;
    const error = await failureOf(() => factory.unary(Ping, 'ping', ping(), { endpoint: httpsUrl(target), deadlineMs: DEADLINE_MS }));
    expect(target.calls.length).toBe(before);
    return asTlsError(error);
  } finally {
    await dispose(c);
  }
}

/** Resolves the factory of a fresh container with `profile`, expecting a config-time TlsError. */
async function configFailure(profile: ProfileOptionsInput): Promise<TlsError> {
  const c = container(profile);
  try {
    return asTlsError(await failureOf(() => factoryOf(c)));
  } finally {
    await dispose(c);
  }
}

function expectPeerError(error: TlsError, code: TlsError['code'], host: TestHost): void {
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.stringContaining(authority(host)) as unknown as string });
  expect(error.peer).toBe(authority(host));
  expect(error.profile).toBe('control-plane');
}

beforeAll(async () => {
  pki = await createTestPki();
  otherCaServerFiles = await issueToFiles(pki.otherCa, pki.dir, 'other-ca-server', { commonName: 'other-ca-server', ...SERVER_SANS, usage: 'server' });
  const start = async (name: string, leaf: Pick<Files, 'certFile' | 'keyFile'>): Promise<TestHost> => {
    const host = await startTestHost(name, hostTls(leaf, pki.caFile, { crlFiles: [pki.crlFile] }));
    hosts.push(host);
    return host;
  };
  good = await start('good', pki.server);
  otherCaServer = await start('other-ca', otherCaServerFiles);
  wrongNameServer = await start('wrong-name', pki.wrongNameServer);
  expiredServer = await start('expired', pki.expiredServer);
  revokedServer = await start('revoked', pki.revokedServer);
  plaintext = await startTestHost('plaintext', 'insecure');
  hosts.push(plaintext);
});

afterAll(async () => {
  await Promise.all(containers.map((c) => c.unbindAllAsync().catch(() => undefined)));
  await Promise.all(hosts.map((h) => h.close(200)));
  await pki?.cleanup();
});

describe('a working mTLS setup (control case)', () => {
  it('PEM client certificate: the call succeeds and the server sees the client identity', async () => {
    const c = container(mtls(pki.client));
    try {
      const result = await factoryOf(c).unary(Ping, 'ping', ping('pem', 7), { endpoint: httpsUrl(good), deadlineMs: DEADLINE_MS });
      expect(result.message).toMatchObject({ node: 'good', sequence: 7, clientIdentity: 'client' });
      expect(result.protocol).toBe('h2');
      expect(result.peer.certificate?.subject).toContain('CN=server');
    } finally {
      await dispose(c);
    }
  });
});

describe('client certificate problems fail at configuration time', () => {
  it('missing client certificate file -> TLS_CLIENT_CERT_MISSING naming the file', async () => {
    const missing = join(pki.dir, 'does-not-exist.pem');
    const error = await configFailure(mtls({ certFile: missing, keyFile: pki.client.keyFile }));
    expect(error.code).toBe('TLS_CLIENT_CERT_MISSING');
    expect(error.message).toContain(missing);
    expect(error.file).toBe(missing);
  });

  it('client certificate that cannot be read (a directory) -> TLS_CLIENT_CERT_UNREADABLE naming the file', async () => {
    const directory = join(pki.dir, 'a-directory.pem');
    await mkdir(directory, { recursive: true });
    const error = await configFailure(mtls({ certFile: directory, keyFile: pki.client.keyFile }));
    expect(error.code).toBe('TLS_CLIENT_CERT_UNREADABLE');
    expect(error.message).toContain(directory);
    expect(error.file).toBe(directory);
  });

  it('client certificate file with garbage -> TLS_CLIENT_CERT_UNREADABLE naming the file', async () => {
    const garbage = join(pki.dir, 'garbage.pem');
    await writeFile(garbage, 'this is not a certificate\n');
    const error = await configFailure(mtls({ certFile: garbage, keyFile: pki.client.keyFile }));
    expect(error.code).toBe('TLS_CLIENT_CERT_UNREADABLE');
    expect(error.message).toContain(garbage);
    expect(error.file).toBe(garbage);
  });

  it('key that does not belong to the certificate -> TLS_KEY_MISMATCH naming both files', async () => {
    const error = await configFailure(mtls({ certFile: pki.client.certFile, keyFile: pki.client2.keyFile }));
    expect(error.code).toBe('TLS_KEY_MISMATCH');
    expect(error.message).toContain(pki.client2.keyFile);
    expect(error.message).toContain(pki.client.certFile);
    expect(error.file).toBe(pki.client2.keyFile);
  });

  it('expired client certificate -> TLS_CLIENT_CERT_EXPIRED naming the file', async () => {
    const error = await configFailure(mtls(pki.expiredClient));
    expect(error.code).toBe('TLS_CLIENT_CERT_EXPIRED');
    expect(error.message).toContain(pki.expiredClient.certFile);
    expect(error.file).toBe(pki.expiredClient.certFile);
  });

  it('PKCS#12 with the wrong password -> TLS_CLIENT_CERT_UNREADABLE naming the file', async () => {
    const error = await configFailure(fastProfile({ mode: 'mtls', pfxFile: pki.clientPfxFile, pfxPassword: 'not-the-password', caFile: pki.caFile }));
    expect(error.code).toBe('TLS_CLIENT_CERT_UNREADABLE');
    expect(error.message).toContain(pki.clientPfxFile);
    expect(error.file).toBe(pki.clientPfxFile);
  });

  it('PKCS#12 with the right password: the call succeeds with that identity', async () => {
    const c = container(fastProfile({ mode: 'mtls', pfxFile: pki.clientPfxFile, pfxPassword: pki.clientPfxPassword, caFile: pki.caFile }));
    try {
      const result = await factoryOf(c).unary(Ping, 'ping', ping('pfx', 3), { endpoint: httpsUrl(good), deadlineMs: DEADLINE_MS });
      expect(result.message).toMatchObject({ node: 'good', sequence: 3, clientIdentity: 'client' });
    } finally {
      await dispose(c);
    }
  });
});

describe('the client rejects the server: nothing is sent to it', () => {
  it('server certificate from another CA -> TLS_PEER_UNTRUSTED', async () => {
    const error = await pingFailure(mtls(pki.client), otherCaServer);
    expectPeerError(error, 'TLS_PEER_UNTRUSTED', otherCaServer);
  });

  it('server certificate without the dialled name -> TLS_PEER_NAME_MISMATCH', async () => {
    const error = await pingFailure(mtls(pki.client), wrongNameServer);
    expectPeerError(error, 'TLS_PEER_NAME_MISMATCH', wrongNameServer);
  });

  it('expired server certificate -> TLS_PEER_EXPIRED', async () => {
    const error = await pingFailure(mtls(pki.client), expiredServer);
    expectPeerError(error, 'TLS_PEER_EXPIRED', expiredServer);
  });

  it('revoked server certificate (crlFiles + checkRevocation) -> TLS_REVOKED', async () => {
    const error = await pingFailure(mtls(pki.client, { crlFiles: [pki.crlFile], checkRevocation: true }), revokedServer);
    expectPeerError(error, 'TLS_REVOKED', revokedServer);
  });

  it('the same revoked server without CRLs is accepted (the CRL is what rejects it)', async () => {
    const c = container(mtls(pki.client));
    try {
      const result = await factoryOf(c).unary(Ping, 'ping', ping(), { endpoint: httpsUrl(revokedServer), deadlineMs: DEADLINE_MS });
      expect(result.message.node).toBe('revoked');
    } finally {
      await dispose(c);
    }
  });

  it('custom check returning a reason -> TLS_CUSTOM_CHECK_REJECTED with the reason; the validator saw the chain and endpoint', async () => {
    const seen: PeerCertificateCheck[] = [];
    const validator: PeerCertificateValidator = (check) => {
      seen.push(check);
      return 'leaf is not the pinned control-plane certificate';
    };
    const error = await pingFailure(mtls(pki.client), good, (c) => c.bind(TOKENS.PeerCertificateValidator).toConstantValue(validator));
    expectPeerError(error, 'TLS_CUSTOM_CHECK_REJECTED', good);
    expect(error.message).toContain('leaf is not the pinned control-plane certificate');
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const check = seen[0]!;
    expect(check.endpoint).toBe(authority(good));
    expect(check.profile).toBe('control-plane');
    expect(check.protocol).toBe('h2');
    expect(check.chain.length).toBeGreaterThanOrEqual(1);
    for (const cert of check.chain) expect(cert).toBeInstanceOf(X509Certificate);
    expect(check.chain[0]!.subject).toContain('CN=server');
    expect(check.chain[0]!.fingerprint256).toBe(new X509Certificate(pki.server.certPem).fingerprint256);
  });

  it('custom check returning nothing accepts the peer', async () => {
    let calls = 0;
    const validator: PeerCertificateValidator = () => {
      calls++;
      return undefined;
    };
    const c = container(mtls(pki.client), (cc) => cc.bind(TOKENS.PeerCertificateValidator).toConstantValue(validator));
    try {
      const result = await factoryOf(c).unary(Ping, 'ping', ping(), { endpoint: httpsUrl(good), deadlineMs: DEADLINE_MS });
      expect(result.message.clientIdentity).toBe('client');
      expect(calls).toBeGreaterThanOrEqual(1);
    } finally {
      await dispose(c);
    }
  });
});

describe('the server rejects the client', () => {
  it('tls mode "tls" (no client certificate) against a server requiring one -> TLS_CLIENT_CERT_REQUIRED', async () => {
    const error = await pingFailure(fastProfile({ mode: 'tls', caFile: pki.caFile }), good);
    expectPeerError(error, 'TLS_CLIENT_CERT_REQUIRED', good);
  });

  describe('by a TLS alert (an OpenSSL server, which rejects inside the handshake)', () => {
    let server: OpenSslServer;
    beforeAll(async () => {
      server = await startOpenSslServer({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFile: pki.crlFile });
    });
    afterAll(async () => {
      await server?.close();
    });

    async function failureAgainstOpenSsl(client: Files): Promise<TlsError> {
      const c = container(mtls(client));
      try {
        return asTlsError(await failureOf(() => factoryOf(c).unary(Ping, 'ping', ping(), { endpoint: server.url, deadlineMs: DEADLINE_MS })));
      } finally {
        await dispose(c);
      }
    }

    it('client certificate from another CA -> TLS_CLIENT_CERT_REJECTED (alert unknown_ca)', async () => {
      const error = await failureAgainstOpenSsl(pki.untrustedClient);
      expect(error.code).toBe('TLS_CLIENT_CERT_REJECTED');
      expect(error.peer).toBe(`127.0.0.1:${server.port}`);
      expect(error.message).toContain(`127.0.0.1:${server.port}`);
      expect(error.message).toMatch(/alert unknown ca/i);
      expect(server.output()).toContain('unable to get local issuer certificate');
    });

    it('revoked client certificate (server loaded the CRL) -> TLS_REVOKED (alert certificate_revoked)', async () => {
      const error = await failureAgainstOpenSsl(pki.revokedClient);
      expect(error.code).toBe('TLS_REVOKED');
      expect(error.peer).toBe(`127.0.0.1:${server.port}`);
      expect(error.message).toMatch(/alert certificate revoked/i);
      expect(error.message).toContain('our client certificate is revoked');
      expect(server.output()).toContain('certificate revoked');
    });
  });

  describe('by GrpcHost (Node TLS: the handshake completes, then the server closes without an alert)', () => {
    async function refusal(client: Files): Promise<unknown> {
      const c = container(mtls(client));
      try {
        const before = good.calls.length;
        const error = await failureOf(() => factoryOf(c).unary(Ping, 'ping', ping(), { endpoint: httpsUrl(good), deadlineMs: DEADLINE_MS }));
        expect(good.calls.length).toBe(before);
        return error;
      } finally {
        await dispose(c);
      }
    }

    it('client certificate from another CA is refused before any handler runs', async () => {
      const error = await refusal(pki.untrustedClient);
      expect(error).toBeInstanceOf(OmniRelayError);
    });

    it('revoked client certificate is refused before any handler runs', async () => {
      const error = await refusal(pki.revokedClient);
      expect(error).toBeInstanceOf(OmniRelayError);
    });

    // Node's TLS server verifies the client certificate after the TLS 1.3 handshake and closes
    // the socket without an alert; the transport recognises "closed right after a verified
    // handshake, before HTTP/2 settings" and says so with a typed error.
    it('client certificate from another CA -> TLS_CLIENT_CERT_REJECTED', async () => {
      const error = asTlsError(await refusal(pki.untrustedClient));
      expectPeerError(error, 'TLS_CLIENT_CERT_REJECTED', good);
    });

    it('revoked client certificate -> TLS_REVOKED or TLS_CLIENT_CERT_REJECTED', async () => {
      const error = asTlsError(await refusal(pki.revokedClient));
      expect(['TLS_REVOKED', 'TLS_CLIENT_CERT_REJECTED']).toContain(error.code);
      expect(error.peer).toBe(authority(good));
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The same failures over HTTP/2 and HTTP/3
// ---------------------------------------------------------------------------------------------

type Protocol = 'h2' | 'h3';
const PROTOCOLS: readonly Protocol[] = ['h2', 'h3'];

/**
 * A profile that uses only `protocol`: HTTP/2 (`http3: 'disable'`), or HTTP/3 with a race delay
 * as long as the connect timeout, so HTTP/3 decides (a certificate refused over HTTP/3 never
 * falls back to HTTP/2).
 */
function over(protocol: Protocol, profile: ProfileOptionsInput): ProfileOptionsInput {
  return protocol === 'h2' ? profile : { ...profile, http3: 'prefer', http3RaceDelayMs: 2_000, connectTimeoutMs: 2_000 };
}

/** A leaf written with its chain (`chainPem`) as the certificate file, as a peer presents it. */
async function chainFiles(ca: DevCertificateAuthority, name: string, options: IssueOptions): Promise<Files> {
  const issued: IssuedCertificate = await ca.issue(options);
  const certFile = join(pki.dir, `${name}.pem`);
  const keyFile = join(pki.dir, `${name}.key`);
  await writeFile(certFile, issued.chainPem);
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  return { certFile, keyFile, certPem: issued.certPem, keyPem: issued.keyPem, serialHex: issued.serialHex };
}

async function writeCrl(name: string, pem: string): Promise<string> {
  const file = join(pki.dir, name);
  await writeFile(file, pem);
  return file;
}

describe('the same failures over HTTP/2 and HTTP/3: same TlsError code, same verifyError', () => {
  const DAY = 24 * 60 * 60 * 1000;
  let intermediate: DevCertificateAuthority;
  /** Server certificate from an intermediate (chain presented); CA = the root; both CRLs in ONE file; client certificates required. */
  let chainHost: TestHost;
  /** Serves with a certificate whose EKU is clientAuth only. */
  let clientEkuHost: TestHost;
  let chainClient: Files;
  let serverOnlyClient: Files;
  /** The root's CRL and the intermediate's CRL, in one file. */
  let bothCrlsFile: string;
  let expiredCrlFile: string;
  let forgedCrlFile: string;
  let revokedIntermediateCrlFile: string;

  beforeAll(async () => {
    intermediate = await pki.ca.intermediate({ commonName: 'OmniRelay Test Intermediate' });
    const chainServer = await chainFiles(intermediate, 'chain-server', { commonName: 'chain-server', ...SERVER_SANS, usage: 'server' });
    chainClient = await chainFiles(intermediate, 'chain-client', { commonName: 'chain-client', usage: 'client' });
    serverOnlyClient = await chainFiles(pki.ca, 'server-only', { commonName: 'server-only', ...SERVER_SANS, usage: 'server' });
    const rootCrl = await pki.ca.crl([]);
    const intermediateCrl = await intermediate.crl([]);
    bothCrlsFile = await writeCrl('both.crl.pem', rootCrl + intermediateCrl);
    expiredCrlFile = await writeCrl('expired.crl.pem', await pki.ca.crl([], { thisUpdate: new Date(Date.now() - 10 * DAY), nextUpdate: new Date(Date.now() - DAY) }));
    forgedCrlFile = await writeCrl('forged.crl.pem', await pki.ca.crl([], { signedBy: pki.otherCa }));
    revokedIntermediateCrlFile = await writeCrl('revoked-intermediate.crl.pem', (await pki.ca.crl([intermediate.serialHex])) + intermediateCrl);
    chainHost = await startTestHost('chain', hostTls(chainServer, pki.caFile, { crlFiles: [bothCrlsFile] }));
    clientEkuHost = await startTestHost('client-eku', hostTls(pki.client, pki.caFile, { crlFiles: [pki.crlFile] }));
    hosts.push(chainHost, clientEkuHost);
  });

  /** The call's TlsError over `protocol`; over HTTP/3 it must be HTTP/3's own verdict (no fall back). */
  async function failureOver(protocol: Protocol, profile: ProfileOptionsInput, target: TestHost): Promise<TlsError> {
    const error = await pingFailure(over(protocol, profile), target);
    if (protocol === 'h3') expect(error.message).toContain('over HTTP/3');
    else expect(error.message).not.toContain('over HTTP/3');
    return error;
  }

  describe.each(PROTOCOLS)('over %s', (protocol) => {
    it('(control) a chain through an intermediate, both CRLs from one file on both ends: served, with the client identity', async () => {
      const c = container(over(protocol, mtls(chainClient, { crlFiles: [bothCrlsFile], checkRevocation: true })));
      try {
        const result = await factoryOf(c).unary(Ping, 'ping', ping(protocol, 1), { endpoint: httpsUrl(chainHost), deadlineMs: DEADLINE_MS });
        expect(result.protocol).toBe(protocol);
        expect(result.message).toMatchObject({ node: 'chain', clientIdentity: 'chain-client' });
        expect(result.peer.certificate?.subject).toContain('CN=chain-server');
      } finally {
        await dispose(c);
      }
    });

    it('server certificate from another CA -> TLS_PEER_UNTRUSTED', async () => {
      const error = await failureOver(protocol, mtls(pki.client), otherCaServer);
      expectPeerError(error, 'TLS_PEER_UNTRUSTED', otherCaServer);
      expect(error.verifyError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('server certificate without the dialled name -> TLS_PEER_NAME_MISMATCH', async () => {
      const error = await failureOver(protocol, mtls(pki.client), wrongNameServer);
      expectPeerError(error, 'TLS_PEER_NAME_MISMATCH', wrongNameServer);
      expect(error.verifyError).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    });

    it('expired server certificate -> TLS_PEER_EXPIRED', async () => {
      const error = await failureOver(protocol, mtls(pki.client), expiredServer);
      expectPeerError(error, 'TLS_PEER_EXPIRED', expiredServer);
      expect(error.verifyError).toBe('CERT_HAS_EXPIRED');
    });

    it('revoked server certificate -> TLS_REVOKED', async () => {
      const error = await failureOver(protocol, mtls(pki.client, { crlFiles: [pki.crlFile], checkRevocation: true }), revokedServer);
      expectPeerError(error, 'TLS_REVOKED', revokedServer);
      expect(error.verifyError).toBe('CERT_REVOKED');
    });

    it('a server certificate for clients only (extendedKeyUsage clientAuth) -> TLS_PEER_UNTRUSTED, INVALID_PURPOSE', async () => {
      const error = await failureOver(protocol, mtls(pki.client), clientEkuHost);
      expectPeerError(error, 'TLS_PEER_UNTRUSTED', clientEkuHost);
      expect(error.verifyError).toBe('INVALID_PURPOSE');
    });

    it('our CRL has expired (nextUpdate passed) -> TLS_HANDSHAKE_FAILED, CRL_HAS_EXPIRED', async () => {
      const error = await failureOver(protocol, mtls(pki.client, { crlFiles: [expiredCrlFile], checkRevocation: true }), good);
      expectPeerError(error, 'TLS_HANDSHAKE_FAILED', good);
      expect(error.verifyError).toBe('CRL_HAS_EXPIRED');
    });

    it('our CRL is not signed by the CA it names -> TLS_HANDSHAKE_FAILED, CRL_SIGNATURE_FAILURE', async () => {
      const error = await failureOver(protocol, mtls(pki.client, { crlFiles: [forgedCrlFile], checkRevocation: true }), good);
      expectPeerError(error, 'TLS_HANDSHAKE_FAILED', good);
      expect(error.verifyError).toBe('CRL_SIGNATURE_FAILURE');
    });

    it('the intermediate above the server certificate is revoked -> TLS_REVOKED', async () => {
      const error = await failureOver(protocol, mtls(pki.client, { crlFiles: [revokedIntermediateCrlFile], checkRevocation: true }), chainHost);
      expectPeerError(error, 'TLS_REVOKED', chainHost);
      expect(error.verifyError).toBe('CERT_REVOKED');
    });

    it('CRLs loaded, but none from the intermediate -> TLS_HANDSHAKE_FAILED, UNABLE_TO_GET_CRL', async () => {
      const error = await failureOver(protocol, mtls(pki.client, { crlFiles: [pki.crlFile], checkRevocation: true }), chainHost);
      expectPeerError(error, 'TLS_HANDSHAKE_FAILED', chainHost);
      expect(error.verifyError).toBe('UNABLE_TO_GET_CRL');
    });

    it('custom check returning a reason -> TLS_CUSTOM_CHECK_REJECTED; the validator saw the protocol', async () => {
      const seen: PeerCertificateCheck[] = [];
      const validator: PeerCertificateValidator = (check) => {
        seen.push(check);
        return 'not the pinned certificate';
      };
      const error = await pingFailure(over(protocol, mtls(pki.client)), good, (c) => c.bind(TOKENS.PeerCertificateValidator).toConstantValue(validator));
      expectPeerError(error, 'TLS_CUSTOM_CHECK_REJECTED', good);
      expect(seen[0]?.protocol).toBe(protocol);
    });

    it('no client certificate against a host that requires one -> TLS_CLIENT_CERT_REQUIRED', async () => {
      const error = await pingFailure(over(protocol, fastProfile({ mode: 'tls', caFile: pki.caFile })), good);
      expectPeerError(error, 'TLS_CLIENT_CERT_REQUIRED', good);
    });

    it('our client certificate from another CA -> TLS_CLIENT_CERT_REJECTED', async () => {
      const error = await pingFailure(over(protocol, mtls(pki.untrustedClient)), good);
      expectPeerError(error, 'TLS_CLIENT_CERT_REJECTED', good);
    });

    it('our client certificate is for servers only (extendedKeyUsage serverAuth) -> TLS_CLIENT_CERT_REJECTED', async () => {
      const error = await pingFailure(over(protocol, mtls(serverOnlyClient)), good);
      expectPeerError(error, 'TLS_CLIENT_CERT_REJECTED', good);
      if (protocol === 'h3') expect(error.message).toContain('TLS alert 43');
    });

    it('our client certificate is revoked -> TLS_REVOKED (HTTP/2 against GrpcHost: Node closes without an alert, so TLS_CLIENT_CERT_REJECTED may be all it can say)', async () => {
      const error = await pingFailure(over(protocol, mtls(pki.revokedClient)), good);
      expect(error.peer).toBe(authority(good));
      if (protocol === 'h3') expect(error.code).toBe('TLS_REVOKED');
      else expect(['TLS_REVOKED', 'TLS_CLIENT_CERT_REJECTED']).toContain(error.code);
    });

    it('a PKCS#12 client identity is served, with that identity', async () => {
      const c = container(over(protocol, fastProfile({ mode: 'mtls', pfxFile: pki.clientPfxFile, pfxPassword: pki.clientPfxPassword, caFile: pki.caFile })));
      try {
        const result = await factoryOf(c).unary(Ping, 'ping', ping('pfx', 5), { endpoint: httpsUrl(good), deadlineMs: DEADLINE_MS });
        expect(result.protocol).toBe(protocol);
        expect(result.message).toMatchObject({ node: 'good', sequence: 5, clientIdentity: 'client' });
      } finally {
        await dispose(c);
      }
    });
  });

  it('FAST_PROFILE keeps HTTP/3 off for the HTTP/2 runs', () => {
    expect(FAST_PROFILE.http3).toBe('disable');
  });
});

describe('never plaintext', () => {
  it('a plaintext server dialled with https:// under an mtls profile -> TLS_HANDSHAKE_FAILED; its handler never runs', async () => {
    const error = await pingFailure(mtls(pki.client), plaintext);
    expectPeerError(error, 'TLS_HANDSHAKE_FAILED', plaintext);
    expect(plaintext.calls).toHaveLength(0);
  });

  it('an http:// endpoint under an mtls profile -> ENDPOINT_INSECURE; nothing is dialled', async () => {
    const c = container(mtls(pki.client));
    try {
      const url = `http://${authority(plaintext)}`;
      const error = await failureOf(() => factoryOf(c).unary(Ping, 'ping', ping(), { endpoint: url, deadlineMs: DEADLINE_MS }));
      expect(error).toBeInstanceOf(EndpointError);
      expect((error as EndpointError).code).toBe('ENDPOINT_INSECURE');
      expect((error as EndpointError).endpoint).toBe(url);
      expect((error as EndpointError).message).toContain(url);
      expect(plaintext.calls).toHaveLength(0);
      expect(factoryOf(c).connections()).toHaveLength(0);
    } finally {
      await dispose(c);
    }
  });

  it('(control) the plaintext handler does run for an explicitly insecure profile, so the zero counts above mean something', async () => {
    const c = createContainer({ allowInsecure: true, profiles: { dev: fastProfile({ mode: 'insecure' }) } });
    containers.push(c);
    try {
      const result = await factoryOf(c).unary(Ping, 'ping', ping('dev'), { endpoint: plaintext.url, profile: 'dev', deadlineMs: DEADLINE_MS });
      expect(result.message).toMatchObject({ node: 'plaintext', clientIdentity: '' });
      expect(plaintext.calls).toEqual([{ method: 'ping', fromNode: 'dev', clientIdentity: '' }]);
    } finally {
      await dispose(c);
    }
  });
});

describe('target errors', () => {
  it('unknown profile -> PROFILE_UNKNOWN', async () => {
    const c = container(mtls(pki.client));
    try {
      const error = await failureOf(() => factoryOf(c).unary(Ping, 'ping', ping(), { endpoint: httpsUrl(good), profile: 'no-such-profile', deadlineMs: DEADLINE_MS }));
      expect(error).toBeInstanceOf(OmniRelayError);
      expect((error as OmniRelayError).code).toBe('PROFILE_UNKNOWN');
      expect((error as OmniRelayError).message).toContain('no-such-profile');
    } finally {
      await dispose(c);
    }
  });

  it.each([
    ['no port', 'https://127.0.0.1'],
    ['not a URL', 'https://exa mple:443'],
    ['unsupported scheme', 'ftp://127.0.0.1:21'],
    ['a path', 'https://127.0.0.1:7001/some/path'],
  ])('malformed endpoint (%s) -> ENDPOINT_INVALID', async (_what, endpoint) => {
    const c = container(mtls(pki.client));
    try {
      const error = await failureOf(() => factoryOf(c).unary(Ping, 'ping', ping(), { endpoint, deadlineMs: DEADLINE_MS }));
      expect(error).toBeInstanceOf(EndpointError);
      expect((error as EndpointError).code).toBe('ENDPOINT_INVALID');
      expect((error as EndpointError).message).toContain(endpoint);
    } finally {
      await dispose(c);
    }
  });
});
