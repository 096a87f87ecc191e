/**
 * What the unit tests of the TLS layer compare: the verdict of Node's own TLS (OpenSSL, what
 * HTTP/2 uses) with the same material, and helpers to feed our verifier the same chains.
 */
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import type { TlsOptions } from '../../src/config/types.js';
import type { IssuedCertificate } from '../../src/tls/dev-pki.js';
import { loadTlsMaterial, type TlsMaterial } from '../../src/tls/material.js';

/** The DER certificates of a PEM bundle, in order. */
export function ders(pem: string): Uint8Array[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]).raw);
}

/** An mTLS profile's TLS options with `extra` on top. */
export function tlsOptions(extra: Partial<TlsOptions>): TlsOptions {
  return { mode: 'mtls', crlFiles: [], checkRevocation: false, reloadPollMs: 60_000, ...extra };
}

/** Material as a provider hands it out (generation 1). */
export function loadMaterial(profile: string, options: TlsOptions): TlsMaterial {
  return { ...loadTlsMaterial(profile, options, new Date()), generation: 1 };
}

/** The verdict of Node's TLS client using `material.secureContext` (what HTTP/2 uses) against a server presenting `server`: 'ok' or OpenSSL's error code. */
export async function http2Verdict(material: TlsMaterial, server: IssuedCertificate): Promise<string> {
  const srv = tls.createServer({ cert: server.chainPem, key: server.keyPem }, (socket) => {
    socket.on('error', () => undefined);
    socket.end('x');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  let verdict = 'ok';
  await new Promise<void>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, secureContext: material.secureContext, checkServerIdentity: () => undefined });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      verdict = error.code ?? error.message;
    });
    socket.on('data', () => undefined);
    socket.on('close', () => resolve());
  });
  await new Promise((resolve) => srv.close(resolve));
  return verdict;
}
