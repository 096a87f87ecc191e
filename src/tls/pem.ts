/** PEM blocks, and CRL files as OpenSSL takes them from Node. */

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** The PEM blocks with `label` in `pem`, in order. */
export function pemBlocks(pem: string | Buffer | undefined, label: string): string[] {
  if (pem === undefined) return [];
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  return [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === label).map((m) => m[0]);
}

/**
 * One Buffer per CRL of a CRL file. Node's `crl` option reads ONE CRL from each entry it is
 * given (`SecureContext::AddCRL`), so a file holding several (a root's and an intermediate's)
 * must be split, or every CRL after the first is silently left out. A file without any PEM
 * CRL is passed on whole, so OpenSSL still rejects it by name.
 */
export function splitCrlFile(bytes: Buffer): Buffer[] {
  const blocks = pemBlocks(bytes, 'X509 CRL');
  return blocks.length > 0 ? blocks.map((block) => Buffer.from(`${block}\n`)) : [bytes];
}
