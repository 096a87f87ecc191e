/**
 * A PKCS#12 (`tls.pfxFile`) client identity as PEM, for the transport that takes PEM only: our
 * QUIC configuration (quiche's binding loads a PEM chain and a PEM key). HTTP/2 hands the
 * bundle to Node's OpenSSL as it is.
 *
 * node:crypto cannot read PKCS#12 and @peculiar/x509 has no PKCS#12 either; this uses
 * node-forge, which decrypts every format Node's OpenSSL 3 opens with its default provider —
 * PBES2 (PBKDF2 + AES, OpenSSL 3's and current Java's default) and the legacy PKCS#12 PBEs
 * (3DES, as Windows exports; RC2-40, older OpenSSL's default, which Node itself no longer
 * opens) — and verifies the MAC (SHA-1/SHA-2). pkijs, the other maintained pure-JS option,
 * decrypts PBES2 only, so a 3DES bundle that works over HTTP/2 would fail over HTTP/3.
 *
 * What comes out mirrors what Node does with the bundle (`SecureContext::LoadPKCS12`): the
 * first private key; the certificate matching it as the leaf; every other certificate sent
 * after it as the chain AND trusted for verifying the peer (Node adds them to the context's
 * trust store) — so `caPems` must join the HTTP/3 trust store for the same verdict.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type * as ForgeModule from 'node-forge';
import { TlsError } from '../errors.js';
import type { TlsMaterial } from './material.js';

export interface PemIdentity {
  /** The leaf certificate followed by the bundle's other certificates, PEM. */
  readonly certPem: string;
  /** The private key, PKCS#8 PEM. */
  readonly keyPem: string;
  /** The bundle's certificates other than the leaf (Node trusts them as CA certificates). */
  readonly caPems: readonly string[];
}

type Forge = typeof ForgeModule;

let forgeModule: Promise<Forge> | undefined;

/** node-forge is loaded on first use: only PKCS#12 profiles that dial HTTP/3 need it. */
function loadForge(): Promise<Forge> {
  forgeModule ??= import('node-forge').then((module) => (module as unknown as { default: Forge }).default);
  return forgeModule;
}

/**
 * Opens a PKCS#12 bundle and returns its identity as PEM. Like OpenSSL's `PKCS12_parse`, an
 * empty or missing password is tried both as the empty string and as no password.
 */
export async function pemIdentityFromPkcs12(pfx: Buffer, passphrase: string | undefined): Promise<PemIdentity> {
  const forge = await loadForge();
  const asn1 = forge.asn1.fromDer(forge.util.createBuffer(pfx.toString('binary')));
  const passwords: (string | null)[] = passphrase === undefined || passphrase === '' ? ['', null] : [passphrase];
  let bundle: ReturnType<Forge['pkcs12']['pkcs12FromAsn1']> | undefined;
  let failure: unknown;
  for (const password of passwords) {
    try {
      bundle = forge.pkcs12.pkcs12FromAsn1(asn1, true, password as string);
      break;
    } catch (error) {
      failure = error;
    }
  }
  if (bundle === undefined) throw failure instanceof Error ? failure : new Error(String(failure));

  const bagsOf = (type: string): NonNullable<ReturnType<typeof bundle.getBags>[string]> => bundle.getBags({ bagType: type })[type] ?? [];
  const der = (node: ReturnType<Forge['asn1']['fromDer']>): Buffer => Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary');

  const { oids } = forge.pki as unknown as { oids: Record<'pkcs8ShroudedKeyBag' | 'keyBag' | 'certBag', string> };
  const keyBag = [...bagsOf(oids.pkcs8ShroudedKeyBag), ...bagsOf(oids.keyBag)][0];
  if (keyBag === undefined) throw new Error('the bundle holds no private key');
  // forge keeps RSA keys as objects and other keys (EC, Ed25519) as their PKCS#8 structure.
  const keyInfo = keyBag.key !== undefined && keyBag.key !== null ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(keyBag.key)) : keyBag.asn1;
  const key = createPrivateKey({ key: der(keyInfo), format: 'der', type: 'pkcs8' });

  const certificates = bagsOf(oids.certBag).map((bag) => new X509Certificate(der(bag.cert !== undefined && bag.cert !== null ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1)));
  const leaf = certificates.find((certificate) => certificate.checkPrivateKey(key));
  if (leaf === undefined) throw new Error('no certificate in the bundle belongs to its private key');
  const caPems = certificates.filter((certificate) => certificate !== leaf).map((certificate) => certificate.toString());
  return {
    certPem: [leaf.toString(), ...caPems].join(''),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    caPems,
  };
}

const identities = new WeakMap<TlsMaterial, Promise<PemIdentity>>();

/**
 * The PEM identity of a profile whose client certificate is a PKCS#12 bundle, extracted once
 * per TLS generation (material is immutable; a rotation makes new material). Rejects with a
 * TlsError `TLS_CLIENT_CERT_UNREADABLE` naming the profile.
 */
export function pemIdentityOf(material: TlsMaterial): Promise<PemIdentity> {
  let identity = identities.get(material);
  if (identity === undefined) {
    const pfx = material.pfx;
    identity =
      pfx === undefined
        ? Promise.reject(new TlsError('TLS_CLIENT_CERT_MISSING', `Profile "${material.profile}" has no PKCS#12 client certificate.`, { profile: material.profile }))
        : pemIdentityFromPkcs12(pfx, material.passphrase).catch((error: unknown) => {
            throw new TlsError('TLS_CLIENT_CERT_UNREADABLE', `Profile "${material.profile}": the PKCS#12 client certificate cannot be converted to PEM for HTTP/3 (${error instanceof Error ? error.message : String(error)}).`, {
              profile: material.profile,
              cause: error,
            });
          });
    identity.catch(() => undefined);
    identities.set(material, identity);
  }
  return identity;
}
