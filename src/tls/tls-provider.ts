import type { Observable } from 'rxjs';
import type { TlsError } from '../errors.js';
import type { TlsMaterial } from './material.js';
import type { PeerCertificateValidator } from './peer-verification.js';

/**
 * The one place every transport (HTTP/2, HTTP/3, undici) takes TLS material from
 * (bound to `TOKENS.TlsProvider`).
 */
export interface ITlsProvider {
  /** The live material of a profile, loading it on first use. Throws a TlsError naming the file at fault. */
  current(profile: string): TlsMaterial;
  /** Every new generation of any profile's material, after its first load. */
  readonly changes$: Observable<TlsMaterial>;
  /** Reloads that were rejected; the previous generation stays live. */
  readonly rejections$: Observable<TlsError>;
  /** The custom peer check every transport runs after chain, name and revocation checks. */
  readonly peerValidator: PeerCertificateValidator | undefined;
  dispose(): void;
}
