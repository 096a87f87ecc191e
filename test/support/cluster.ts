import 'reflect-metadata';
import { Container } from 'inversify';
import {
  controlPlaneV1,
  GrpcHost,
  grpcControlPlaneModule,
  TOKENS,
  type ControlPlaneOptionsInput,
  type IGrpcControlPlaneClientFactory,
  type ServerCallInfo,
} from 'omnirelay';
import type { Files, TestPki } from './pki-files.js';

type PingRequest = controlPlaneV1.PingRequest;
type PingResponse = controlPlaneV1.PingResponse;

export interface TestNode {
  readonly name: string;
  readonly host: GrpcHost;
  readonly url: string;
  /** Client identities (certificate CN) the node saw, one per call, in order. */
  readonly seen: string[];
  /** Pings currently being served. */
  inFlight: number;
  /** Request metadata of each ping, in order. */
  readonly metadata: Readonly<Record<string, string>>[];
}

/**
 * Starts a ControlPlane host with mTLS. A ping whose payload is N bytes long waits N × 10 ms.
 * `port` restarts a node on the port it had (default: an ephemeral port).
 */
export async function startNode(name: string, pki: TestPki, files: Files = pki.server, port?: number): Promise<TestNode> {
  const node: { -readonly [K in keyof TestNode]: TestNode[K] } = { name, host: undefined as unknown as GrpcHost, url: '', seen: [], inFlight: 0, metadata: [] };
  node.host = await GrpcHost.start({ port, tls: { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile] } }, [
    [
      controlPlaneV1.ControlPlaneDefinition,
      {
        ping: async (request: PingRequest, call: ServerCallInfo): Promise<PingResponse> => {
          node.seen.push(call.clientIdentity);
          node.metadata.push(call.metadata);
          node.inFlight++;
          try {
            if (request.payload.length > 0) await new Promise((resolve) => setTimeout(resolve, request.payload.length * 10));
            return { node: name, sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
          } finally {
            node.inFlight--;
          }
        },
        watch: async function* (request: controlPlaneV1.WatchRequest, call: ServerCallInfo) {
          for (let i = 1; i <= request.count && !call.signal.aborted; i++) {
            await new Promise((resolve) => setTimeout(resolve, request.intervalMs));
            yield { node: name, sequence: i };
          }
        },
      },
    ],
  ]);
  node.url = node.host.url;
  return node;
}

/** mTLS client options for `files`, with the test CA and CRL. */
export function mtlsOptions(pki: TestPki, files: Files, extra: ControlPlaneOptionsInput = {}): ControlPlaneOptionsInput {
  return {
    ...extra,
    profiles: {
      'control-plane': {
        tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile], checkRevocation: true, reloadPollMs: 100 },
        ...extra.profiles?.['control-plane'],
      },
      ...Object.fromEntries(Object.entries(extra.profiles ?? {}).filter(([name]) => name !== 'control-plane')),
    },
  };
}

/** A container with the module loaded; `bind` adds bindings before the module loads. */
export function containerWith(options: unknown, bind: (container: Container) => void = () => undefined): { container: Container; factory: () => IGrpcControlPlaneClientFactory } {
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue(options);
  bind(container);
  container.load(grpcControlPlaneModule);
  return { container, factory: () => container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory) };
}

export function ping(sequence: number, waitTicks = 0): PingRequest {
  return { fromNode: 'test', sequence, payload: new Uint8Array(waitTicks) };
}
