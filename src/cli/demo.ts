/**
 * `npm start`: the main job on built-in defaults. Brings up local gRPC hosts with a freshly
 * generated development CA and mTLS, calls them from node-a through the control-plane
 * client factory (HTTP/3 preferred, HTTP/2 alongside), flips endpoint hints live (no HTTP/3
 * for node-c, then node-b draining), and prints one line per call:
 * endpoint, protocol, TLS peer, the identity the server saw, latency.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Container } from 'inversify';
import { ControlPlaneDefinition, type PingRequest, type PingResponse } from '../gen/omnirelay/controlplane/v1/gossip.js';
import type { IGrpcControlPlaneClientFactory } from '../factory/types.js';
import { commonNameOf } from '../grpc/peer-identity.js';
import { createEndpointHintSubject } from '../hints/endpoint-hints.js';
import { grpcControlPlaneModule } from '../module.js';
import { GrpcHost, type ServerCallInfo } from '../server/grpc-host.js';
import { writeDevPki } from '../tls/dev-pki.js';
import { TOKENS } from '../tokens.js';
import 'reflect-metadata';

const CALLS = 12;

function subjectCn(subject: string | undefined): string {
  return commonNameOf(subject) || '-';
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-demo-'));
  const hosts: GrpcHost[] = [];
  const container = new Container();
  try {
    const pki = await writeDevPki(dir, ['node-a', 'node-b', 'node-c']);
    const serve = async (name: 'node-b' | 'node-c'): Promise<GrpcHost> => {
      const files = pki.files[name];
      if (files === undefined) throw new Error(`no certificate for ${name}`);
      return GrpcHost.start({ tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile] } }, [
        [
          ControlPlaneDefinition,
          {
            ping: (request: PingRequest, call: ServerCallInfo): PingResponse => ({ node: name, sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() }),
            watch: async function* () {},
          },
        ],
      ]);
    };
    const nodeB = await serve('node-b');
    hosts.push(nodeB);
    const nodeC = await serve('node-c');
    hosts.push(nodeC);
    const client = pki.files['node-a'];
    if (client === undefined) throw new Error('no certificate for node-a');

    const hints = createEndpointHintSubject();
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
      profiles: {
        'control-plane': { tls: { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile], checkRevocation: true } },
      },
      endpoints: {
        'node-b': { url: nodeB.url },
        'node-c': { url: nodeC.url },
      },
    });
    container.bind(TOKENS.EndpointHints).toConstantValue(hints);
    container.load(grpcControlPlaneModule);
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);

    console.log(`OmniRelay demo: node-a calls node-b (${nodeB.url}) and node-c (${nodeC.url}) over mTLS with a dev CA in ${dir}`);
    console.log('call  endpoint          protocol  tls-peer  server-saw  attempts  latency');
    for (let i = 1; i <= CALLS; i++) {
      if (i === CALLS / 3 + 1) {
        hints.next({ endpoint: 'node-c', http3: 'deny' });
        console.log('-- hint: no HTTP/3 for node-c (applied live, no restart) --');
      }
      if (i === (2 * CALLS) / 3 + 1) {
        hints.next({ endpoint: 'node-b', draining: true });
        console.log('-- hint: node-b draining (applied live, no restart) --');
      }
      const started = performance.now();
      const result = await factory.unary(ControlPlaneDefinition, 'ping', { fromNode: 'node-a', sequence: i, payload: new Uint8Array() }, { peers: ['node-b', 'node-c'] });
      const ms = (performance.now() - started).toFixed(2);
      console.log(
        `${String(i).padStart(4)}  ${result.endpoint.padEnd(16)}  ${result.protocol.padEnd(8)}  ${subjectCn(result.peer.certificate?.subject).padEnd(8)}  ${result.message.clientIdentity.padEnd(10)}  ${String(result.attempts).padStart(8)}  ${ms} ms`,
      );
    }
    console.log(`connections held by the factory: ${factory.connections().map((c) => `${c.authority}/${c.protocol}/${c.state}`).join(', ')}`);
  } finally {
    await container.unbindAllAsync();
    await Promise.all(hosts.map((h) => h.close(1000)));
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
