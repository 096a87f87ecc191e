// The cost of refusing an over-long presented chain (docs/http3.md, "What HTTP/3 needs"): a
// client without a valid certificate presents N certificates, fresh each handshake (so the
// parsed-certificate cache does not help), and verifyChain runs synchronously in the QUIC
// packet loop. Prints the event-loop time per verification (min / median / p95 / max).
// Usage: node bench/verify-chain-dos.js [distDir]   (default ../dist)
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
const x509 = await import('@peculiar/x509');

const dist = process.argv[2] ?? new URL('../dist', import.meta.url).pathname;
const { verifyChain, trustStoreOf } = await import(`${dist}/tls/chain-verifier.js`);
const { createDevCertificateAuthority } = await import(`${dist}/tls/dev-pki.js`);

x509.cryptoProvider.set(webcrypto);
const alg = { name: 'ECDSA', namedCurve: 'P-256' };
const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
const trusted = await createDevCertificateAuthority({ commonName: 'Bench Root' });
const trust = trustStoreOf(trusted.certPem, []);

/** N certificates of an untrusted, made-up hierarchy: a leaf, then "intermediates" naming each other. */
async function chain(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (1000 + i).toString(16).padStart(4, '0'),
      subject: i === 0 ? 'CN=attacker' : `CN=Fake CA ${i}`,
      issuer: `CN=Fake CA ${i + 1}`,
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 86_400_000),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(i > 0, undefined, true), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
    });
    out.push(new Uint8Array(cert.rawData));
  }
  return out;
}

/** A copy whose last byte (inside the signature) differs: the same work, but never cached. */
function fresh(ders, round) {
  return ders.map((der) => {
    const copy = Uint8Array.from(der);
    copy[copy.length - 1] = (copy[copy.length - 1] + round) & 0xff;
    return copy;
  });
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(2);
  return `min ${at(0)} ms, median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${s[s.length - 1].toFixed(2)} ms`;
};

for (const n of [150, 16, 10, 3]) {
  const base = await chain(n);
  verifyChain(fresh(base, 255), trust, { peer: 'client' }); // warm up
  const times = [];
  let verdict;
  for (let round = 1; round <= 60; round++) {
    const ders = fresh(base, round);
    const started = performance.now();
    verdict = verifyChain(ders, trust, { peer: 'client' });
    times.push(performance.now() - started);
  }
  console.log(`${String(n).padStart(3)} certificates: ${stats(times)} -> ${verdict?.verifyError ?? 'ok'}`);
}
