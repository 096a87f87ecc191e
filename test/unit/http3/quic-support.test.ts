import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createDevCertificateAuthority, type DevCertificateAuthority } from '../../../src/tls/dev-pki.js';
import { localSettings } from '../../../src/transport/http3/h3-session.js';
import { SETTINGS_ID } from '../../../src/transport/http3/frames.js';
import { TLS_ALERT, trustStoreOf, verifyChain } from '../../../src/transport/http3/quic-support.js';

const DAY = 24 * 60 * 60 * 1000;

function der(pem: string): Uint8Array {
  return new X509Certificate(pem).raw;
}

describe('verifyChain (the checks our QUIC driver runs once a handshake completes)', () => {
  let ca: DevCertificateAuthority;
  let other: DevCertificateAuthority;
  let good: string;
  let revoked: { certPem: string; serialHex: string };
  let expired: string;
  let rogue: string;
  let crl: string;

  beforeAll(async () => {
    ca = await createDevCertificateAuthority({ commonName: 'Unit CA' });
    other = await createDevCertificateAuthority({ commonName: 'Other CA' });
    good = (await ca.issue({ commonName: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' })).certPem;
    revoked = await ca.issue({ commonName: 'revoked', dnsNames: ['localhost'], usage: 'server' });
    expired = (await ca.issue({ commonName: 'old', dnsNames: ['localhost'], usage: 'server', notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) })).certPem;
    rogue = (await other.issue({ commonName: 'rogue', dnsNames: ['localhost'], usage: 'server' })).certPem;
    crl = await ca.crl([revoked.serialHex]);
  });

  it('accepts a leaf issued by a trusted CA, by DNS name and by IP', () => {
    const trust = trustStoreOf(ca.certPem, [crl]);
    expect(verifyChain([der(good)], trust, { name: 'localhost' })).toBeUndefined();
    expect(verifyChain([der(good)], trust, { name: '127.0.0.1' })).toBeUndefined();
  });

  it('names each failure like the HTTP/2 transport and picks the TLS alert', () => {
    const trust = trustStoreOf(ca.certPem, [crl]);
    expect(verifyChain([der(rogue)], trust)).toMatchObject({ code: 'TLS_PEER_UNTRUSTED', alert: TLS_ALERT.UNKNOWN_CA });
    expect(verifyChain([der(expired)], trust)).toMatchObject({ code: 'TLS_PEER_EXPIRED', alert: TLS_ALERT.CERTIFICATE_EXPIRED });
    expect(verifyChain([der(revoked.certPem)], trust)).toMatchObject({ code: 'TLS_REVOKED', alert: TLS_ALERT.CERTIFICATE_REVOKED });
    expect(verifyChain([der(good)], trust, { name: 'wrong.example' })).toMatchObject({ code: 'TLS_PEER_NAME_MISMATCH' });
    expect(verifyChain([], trust)).toMatchObject({ code: 'TLS_PEER_UNTRUSTED' });
  });

  it('requires a CRL from the issuer once CRLs are loaded, and skips revocation without CRLs', async () => {
    const otherCrl = await other.crl([]);
    expect(verifyChain([der(good)], trustStoreOf(ca.certPem, [otherCrl]))).toMatchObject({ code: 'TLS_HANDSHAKE_FAILED' });
    expect(verifyChain([der(revoked.certPem)], trustStoreOf(ca.certPem, []))).toBeUndefined();
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
