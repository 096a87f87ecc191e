import { X509Certificate } from 'node:crypto';

/**
 * Parses DER certificates once: a connection presents the same certificate on every call,
 * and parsing one costs more than a whole loopback RPC. Bounded; oldest entries go first.
 */
export class CertificateCache {
  readonly #entries = new Map<string, X509Certificate>();

  constructor(private readonly capacity = 256) {}

  get(raw: Buffer): X509Certificate {
    const key = raw.toString('base64');
    let certificate = this.#entries.get(key);
    if (certificate === undefined) {
      certificate = new X509Certificate(raw);
      if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
      this.#entries.set(key, certificate);
    }
    return certificate;
  }
}
