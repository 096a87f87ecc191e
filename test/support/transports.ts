/**
 * Transport connections opened directly (no factory): the HTTP/2 (grpc-js) or HTTP/3 transport
 * of the built `dist/` with the control-plane preset and mTLS material from the test PKI, for
 * tests of `TransportConnection` itself.
 */
import { GrpcH3Transport, type TransportConnection, type WireProtocol } from 'omnirelay';
import { GrpcJsTransport } from '../../dist/transport/http2/grpc-js-transport.js';
import { PRESETS } from '../../dist/config/presets.js';
import { loadTlsMaterial } from '../../dist/tls/material.js';
import { parseEndpoint } from '../../dist/transport/endpoint.js';
import type { TestPki } from './pki-files.js';

/** Opens a connection to `url` over `protocol` with `pki.client` as the client certificate; `limits` replace the preset's message limits. */
export function openConnection(protocol: WireProtocol, url: string, pki: TestPki, limits?: { maxSendMessageBytes: number; maxReceiveMessageBytes: number }): TransportConnection {
  const tlsOptions = { mode: 'mtls' as const, certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile, crlFiles: [], checkRevocation: false, reloadPollMs: 60_000 };
  const tls = { ...loadTlsMaterial('control-plane', tlsOptions, new Date()), generation: 1 };
  const target = { endpoint: parseEndpoint(url), profileName: 'control-plane', profile: { ...PRESETS['control-plane'], limits: limits ?? PRESETS['control-plane'].limits }, tls, peerValidator: undefined };
  return protocol === 'h2' ? new GrpcJsTransport().open(target) : new GrpcH3Transport().open(target);
}
