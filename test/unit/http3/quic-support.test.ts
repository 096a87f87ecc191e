import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createDevCertificateAuthority, type DevCertificateAuthority } from '../../../src/tls/dev-pki.js';
import { localSettings } from '../../../src/http3/session.js';
import { SETTINGS_ID } from '../../../src/http3/frames.js';
import { TlsError } from '../../../src/errors.js';
import { serverAlertError, serverRejectionError, TLS_ALERT, trustStoreOf, verifyChain } from '../../../src/transport/http3/quic-support.js';

const DAY = 24 * 60 * 60 * 1000;

function der(pem: string): Uint8Array {
  return new X509Certificate(pem).raw;
}

describe('HTTP/3 certificate errors (the checks are the shared verifier, test/unit/tls/chain-verifier.test.ts)', () => {
  let ca: DevCertificateAuthority;
  let inter: DevCertificateAuthority;

  beforeAll(async () => {
    ca = await createDevCertificateAuthority({ commonName: 'Unit CA' });
    inter = await ca.intermediate({ commonName: 'Unit Intermediate' });
  });

  it('a refused server certificate becomes the TlsError HTTP/2 raises: same code, same verifyError, advice and reason', async () => {
    const leaf = await inter.issue({ commonName: 'server', dnsNames: ['localhost'], usage: 'server' });
    const stale = await inter.crl([], { thisUpdate: new Date(Date.now() - 10 * DAY), nextUpdate: new Date(Date.now() - DAY) });
    const rejection = verifyChain([der(leaf.certPem), der(inter.certPem)], trustStoreOf(ca.certPem, [await ca.crl([]), stale]), { peer: 'server', name: 'localhost' });
    expect(rejection).toBeDefined();
    const error = serverRejectionError(rejection!, { peer: '127.0.0.1:7443', profile: 'control-plane' });
    expect(error).toBeInstanceOf(TlsError);
    expect(error).toMatchObject({ code: 'TLS_HANDSHAKE_FAILED', verifyError: 'CRL_HAS_EXPIRED', peer: '127.0.0.1:7443', profile: 'control-plane' });
    expect(error.message).toContain('over HTTP/3');
    expect(error.message).toContain('install a fresh CRL');
    expect(error.message).toContain('CRL has expired');
    expect(rejection!.alert).toBe(TLS_ALERT.CERTIFICATE_EXPIRED);
  });

  it('maps the alerts a server refuses our client certificate with, decrypt_error included', () => {
    expect(serverAlertError(44, { peer: 'p' })?.code).toBe('TLS_REVOKED');
    expect(serverAlertError(43, { peer: 'p' })?.code).toBe('TLS_CLIENT_CERT_REJECTED');
    expect(serverAlertError(51, { peer: 'p' })?.code).toBe('TLS_CLIENT_CERT_REJECTED');
    expect(serverAlertError(116, { peer: 'p' })?.code).toBe('TLS_CLIENT_CERT_REQUIRED');
    expect(serverAlertError(80, { peer: 'p' })).toBeUndefined();
  });
});

describe('HTTP/3 settings', () => {
  it('advertises no QPACK dynamic table and our field section limit', () => {
    expect([...localSettings(65_536)]).toEqual([
      [SETTINGS_ID.QPACK_MAX_TABLE_CAPACITY, 0n],
      [SETTINGS_ID.QPACK_BLOCKED_STREAMS, 0n],
      [SETTINGS_ID.MAX_FIELD_SECTION_SIZE, 65_536n],
    ]);
  });
});
