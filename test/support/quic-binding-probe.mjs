// Run by test/integration/quic-binding.test.ts in a child process (so a faked platform and the
// binding's load state start fresh): `node quic-binding-probe.mjs <h2-only|no-binding>`.
// Prints one JSON line: protocols of the calls, the host's protocols, the QUIC addon loads seen
// by process.dlopen, and the process warnings.
//   h2-only     GrpcHost with http3: false, profile http3 'disable': HTTP/2 users never load the addon.
//   no-binding  process.arch faked to arm64 (no binding is published for it): GrpcHost and the
//               default profile (http3 'prefer') still work, over HTTP/2, with one warning.
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scenario = process.argv[2];
if (scenario === 'no-binding') Object.defineProperty(process, 'arch', { value: 'arm64' });
const addonLoads = [];
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (/quic/i.test(String(filename))) addonLoads.push(String(filename));
  return dlopen.call(this, module, filename, ...rest);
};
const warnings = [];
// grpc-js's own DEP0123 (an IP address as TLS server name) is not ours: left out.
process.on('warning', (warning) => {
  if (warning.name !== 'DeprecationWarning') warnings.push(`${warning.code ?? warning.name}: ${warning.message}`);
});

const { Container } = await import('inversify');
const { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS, writeDevPki } = await import('../../dist/index.js');

const dir = await mkdtemp(join(tmpdir(), 'omnirelay-binding-probe-'));
const pki = await writeDevPki(dir, ['server', 'client']);
const server = pki.files.server;
const client = pki.files.client;
const host = await GrpcHost.start(
  { host: '127.0.0.1', tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile }, ...(scenario === 'h2-only' ? { http3: false } : {}) },
  [[controlPlaneV1.ControlPlaneDefinition, { ping: (request) => ({ node: 'probe', sequence: request.sequence, clientIdentity: '', payload: new Uint8Array() }), watch: async function* () {} }]],
);
const container = new Container();
container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
  profiles: { 'control-plane': { ...(scenario === 'h2-only' ? { http3: 'disable' } : {}), tls: { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile } } },
  endpoints: { probe: { url: host.url } },
});
container.load(grpcControlPlaneModule);
const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
const protocols = [];
for (let i = 0; i < 3; i++) {
  const result = await factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', { fromNode: 'probe', sequence: i, payload: new Uint8Array() }, { endpoint: 'probe' });
  protocols.push(result.protocol);
}
await container.unbindAllAsync();
await host.close(100);
await rm(dir, { recursive: true, force: true });
console.log(JSON.stringify({ protocols, hostProtocols: host.protocols, addonLoads, warnings }));
