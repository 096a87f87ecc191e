/**
 * gRPC over HTTP/3 at its edges, on real UDP sockets on 127.0.0.1:
 * 1. a GrpcH3Host that refuses our client certificate (typed TlsError as over HTTP/2, no
 *    handler reached, no fall back to HTTP/2);
 * 2. graceful shutdown (GOAWAY, grace period, then UNAVAILABLE rather than a hang);
 * 3. misbehaving raw HTTP/3 peers (their own frames and QPACK bytes on our QUIC driver), against our client and
 *    our server: each must end with the RFC 9114 / RFC 9204 error code, a typed call error,
 *    and nothing left open.
 */
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { controlPlaneV1, GrpcH3Host, GrpcHost, RpcError, TlsError, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { decodeFieldSection } from '../../dist/http3/qpack/index.js';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';
import { onOnePortNumber } from '../support/hosts.js';
import { concat, connectRawH3, frame, FRAME, frameTypes, grpcDataFrame, grpcRequest, headersFrame, okGrpcResponse, RawConnection, startRawH3Server, STREAM_TYPE, varint, type QuicStream, type RawH3Server } from '../support/raw-h3-peer.js';
import { failureOf } from '../support/failure.js';

const { ControlPlaneDefinition } = controlPlaneV1;
type Ping = controlPlaneV1.PingRequest;

/** Every handler invocation a host saw. */
interface Served {
  readonly method: 'ping' | 'watch';
  readonly identity: string;
}

/** `ping`: a payload of N bytes waits N × 10 ms. `watch`: `count` events, `intervalMs` apart. */
function service(name: string, served: Served[]): Parameters<typeof GrpcH3Host.start<[typeof ControlPlaneDefinition]>>[1][number] {
  return [
    ControlPlaneDefinition,
    {
      ping: async (request: Ping, call: ServerCallInfo): Promise<controlPlaneV1.PingResponse> => {
        served.push({ method: 'ping', identity: call.clientIdentity });
        if (request.payload.length > 0) await new Promise((resolve) => setTimeout(resolve, request.payload.length * 10));
        return { node: name, sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
      },
      watch: async function* (request: controlPlaneV1.WatchRequest, call: ServerCallInfo): AsyncIterable<controlPlaneV1.MembershipEvent> {
        served.push({ method: 'watch', identity: call.clientIdentity });
        for (let i = 1; i <= request.count && !call.signal.aborted; i++) {
          yield { node: name, sequence: i };
          await new Promise((resolve) => setTimeout(resolve, request.intervalMs));
        }
      },
    },
  ] as const;
}

function ping(sequence: number, waitTicks = 0): Ping {
  return { fromNode: 'edge', sequence, payload: new Uint8Array(waitTicks) };
}

let pki: TestPki;
const containers: Container[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  pki = await createTestPki();
});

afterAll(async () => {
  for (const container of containers) await container.unbindAllAsync();
  for (const close of closers.reverse()) await close();
  await pki.cleanup();
});

async function startH3(options: { port?: number; requireClientCertificate?: boolean } = {}): Promise<{ host: GrpcH3Host; served: Served[] }> {
  const served: Served[] = [];
  const host = await GrpcH3Host.start(
    {
      host: '127.0.0.1',
      port: options.port ?? 0,
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile], requireClientCertificate: options.requireClientCertificate },
    },
    [service('h3-node', served)],
  );
  closers.push(() => host.close(100));
  return { host, served };
}

/** An HTTP/2 host that accepts any client (no CA): a call that fell back would be served here. */
async function startOpenH2(): Promise<{ host: GrpcHost; served: Served[] }> {
  const served: Served[] = [];
  const host = await GrpcHost.start({ host: '127.0.0.1', port: 0, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile }, http3: false }, [service('h2-node', served)]);
  closers.push(() => host.close(100));
  return { host, served };
}

/**
 * A factory preferring HTTP/3, one attempt per call, presenting `client` (or no certificate).
 * The HTTP/2 race starts only after the whole connect timeout: on a loaded machine a QUIC
 * handshake slower than the default 250 ms would otherwise let HTTP/2 carry the call.
 */
function factoryFor(client: Files | undefined, profile: Record<string, unknown> = {}): IGrpcControlPlaneClientFactory {
  const base = mtlsOptions(pki, client ?? pki.client, {
    profiles: { 'control-plane': { http3: 'prefer', deadlineMs: 5_000, connectTimeoutMs: 2_000, http3RaceDelayMs: 2_000, retry: { maxAttempts: 1 }, ...profile } },
  });
  const options =
    client === undefined
      ? { ...base, profiles: { 'control-plane': { ...base.profiles?.['control-plane'], tls: { mode: 'tls', caFile: pki.caFile, crlFiles: [pki.crlFile], checkRevocation: true } } } }
      : base;
  const { container, factory } = containerWith(options);
  containers.push(container);
  return factory();
}

describe('a GrpcH3Host that refuses our client certificate', () => {
  let h2: { host: GrpcHost; served: Served[] };
  let h3: { host: GrpcH3Host; served: Served[] };

  beforeAll(async () => {
    // The HTTP/2 host on the same port number takes any client: a fall back would succeed there.
    [h2, h3] = await onOnePortNumber(startOpenH2, (open) => open.host.port, (open) => open.host.close(0), (port) => startH3({ port }));
  });

  async function refusal(client: Files | undefined): Promise<TlsError> {
    const factory = factoryFor(client);
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: h2.host.url }));
    if (!(error instanceof TlsError)) throw new Error(`expected a TlsError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    expect(h3.served).toEqual([]);
    expect(h2.served).toEqual([]);
    expect(error.peer).toBe(`127.0.0.1:${h2.host.port}`);
    expect(error.profile).toBe('control-plane');
    return error;
  }

  it('(control) a trusted client certificate is served over HTTP/3, so the empty logs below mean something', async () => {
    const factory = factoryFor(pki.client);
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: h2.host.url });
    expect(result).toMatchObject({ protocol: 'h3', message: { node: 'h3-node', clientIdentity: 'client' } });
    h3.served.length = 0;
  });

  it('a client certificate from another CA -> TLS_CLIENT_CERT_REJECTED (alert unknown_ca), as over HTTP/2; no handler ran, no fall back', async () => {
    const error = await refusal(pki.untrustedClient);
    expect(error.code).toBe('TLS_CLIENT_CERT_REJECTED');
    expect(error.message).toContain('TLS alert 48');
  });

  it('a revoked client certificate (host loaded the CRL) -> TLS_REVOKED (alert certificate_revoked), as over HTTP/2; no handler ran, no fall back', async () => {
    const error = await refusal(pki.revokedClient);
    expect(error.code).toBe('TLS_REVOKED');
    expect(error.message).toContain('our client certificate is revoked');
  });

  it('no client certificate against a host that requires one -> TLS_CLIENT_CERT_REQUIRED; no handler ran, no fall back', async () => {
    const error = await refusal(undefined);
    expect(error.code).toBe('TLS_CLIENT_CERT_REQUIRED');
  });
});

// ---------------------------------------------------------------------------------------------
// Misbehaving peers
// ---------------------------------------------------------------------------------------------

const H3 = {
  H3_STREAM_CREATION_ERROR: 0x103,
  H3_CLOSED_CRITICAL_STREAM: 0x104,
  H3_FRAME_UNEXPECTED: 0x105,
  H3_ID_ERROR: 0x108,
  QPACK_ENCODER_STREAM_ERROR: 0x201,
} as const;

/** Set Dynamic Table Capacity 4096 (RFC 9204 §4.3.1): beyond the capacity 0 we advertise. */
const SET_CAPACITY_4096 = Uint8Array.of(0x3f, 0xe1, 0x1f);
/** Insert With Literal Name "a" = "b" (RFC 9204 §4.3.3): an insert into a zero-capacity table. */
const INSERT_LITERAL = Uint8Array.of(0x41, 0x61, 0x01, 0x62);

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});
afterEach(() => {
  expect(unhandled).toEqual([]);
});

describe('a misbehaving HTTP/3 server (raw peer) against GrpcH3Transport', () => {
  async function rawServer(options: Omit<Parameters<typeof startRawH3Server>[0], 'certPem' | 'keyPem'>): Promise<RawH3Server> {
    const server = await startRawH3Server({ certPem: pki.server.certPem, keyPem: pki.server.keyPem, ...options });
    closers.push(() => server.stop());
    return server;
  }

  function endpoint(server: RawH3Server): string {
    return `https://127.0.0.1:${server.port}`;
  }

  /** The call fails with a typed RpcError over h3, and the client closed the connection with `code`. */
  async function expectConnectionError(server: RawH3Server, code: number): Promise<RpcError> {
    const factory = factoryFor(pki.client, { deadlineMs: 4_000 });
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: endpoint(server) }));
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).context.protocol).toBe('h3');
    // We closed the connection for the server's protocol error: INTERNAL, like an HTTP/2 PROTOCOL_ERROR, never a fall back.
    expect((error as RpcError).statusName).toBe('INTERNAL');
    expect((error as RpcError).failure).toBe('stream');
    const close = await (await server.connection(0)).peerClose;
    expect({ errorCode: close.errorCode, isApp: close.isApp }).toEqual({ errorCode: code, isApp: true });
    return error as RpcError;
  }

  it('(control) a well-behaved raw server answers the call over HTTP/3', async () => {
    const server = await rawServer({});
    const factory = factoryFor(pki.client);
    const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: endpoint(server) });
    expect(result.protocol).toBe('h3');
    expect(server.connections).toHaveLength(1);
  });

  it('a second control stream -> the client closes the connection with H3_STREAM_CREATION_ERROR', async () => {
    const server = await rawServer({ onRequest: async (_stream, _request, peer) => void (await peer.openControl()) });
    const error = await expectConnectionError(server, H3.H3_STREAM_CREATION_ERROR);
    expect(error.message).toContain('H3_STREAM_CREATION_ERROR');
  });

  it('a push stream (we never sent MAX_PUSH_ID) -> H3_ID_ERROR', async () => {
    const server = await rawServer({ onRequest: async (_stream, _request, peer) => void (await peer.openUni(concat(varint(STREAM_TYPE.PUSH), varint(0)))) });
    const error = await expectConnectionError(server, H3.H3_ID_ERROR);
    expect(error.message).toContain('H3_ID_ERROR');
  });

  it('a DATA frame on the control stream -> H3_FRAME_UNEXPECTED', async () => {
    const controls = new Map<RawConnection, QuicStream>();
    const server = await rawServer({
      onConnection: async (peer) => void controls.set(peer, await peer.openControl()),
      onRequest: async (_stream, _request, peer) => RawConnection.write(controls.get(peer) as QuicStream, frame(FRAME.DATA, Uint8Array.of(1, 2, 3))),
    });
    const error = await expectConnectionError(server, H3.H3_FRAME_UNEXPECTED);
    expect(error.message).toContain('H3_FRAME_UNEXPECTED');
  });

  it('a server that resets its control stream (and keeps the connection) -> H3_CLOSED_CRITICAL_STREAM', async () => {
    const controls = new Map<RawConnection, QuicStream>();
    const server = await rawServer({
      onConnection: async (peer) => void controls.set(peer, await peer.openControl()),
      onRequest: (_stream, _request, peer) => (controls.get(peer) as QuicStream).reset(0x10c),
    });
    const error = await expectConnectionError(server, H3.H3_CLOSED_CRITICAL_STREAM);
    expect(error.message).toContain('H3_CLOSED_CRITICAL_STREAM');
  });

  it.each([
    ['Set Dynamic Table Capacity 4096', SET_CAPACITY_4096],
    ['Insert With Literal Name', INSERT_LITERAL],
  ])('a QPACK encoder-stream instruction that needs the dynamic table (%s; we advertise capacity 0) -> QPACK_ENCODER_STREAM_ERROR', async (_name, instruction) => {
    const server = await rawServer({ onRequest: async (_stream, _request, peer) => void (await peer.openUni(concat(varint(STREAM_TYPE.QPACK_ENCODER), instruction))) });
    const error = await expectConnectionError(server, H3.QPACK_ENCODER_STREAM_ERROR);
    expect(error.message).toContain('QPACK_ENCODER_STREAM_ERROR');
  });

  it('a QPACK encoder stream that only sets capacity 0 is accepted (the connection stays usable)', async () => {
    const server = await rawServer({
      onConnection: async (peer) => {
        await peer.openControl();
        await peer.openUni(concat(varint(STREAM_TYPE.QPACK_ENCODER), Uint8Array.of(0x20)));
      },
    });
    const factory = factoryFor(pki.client);
    for (const sequence of [1, 2]) await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(sequence), { endpoint: endpoint(server) })).resolves.toMatchObject({ protocol: 'h3' });
    expect(server.connections).toHaveLength(1);
  });

  it('a response header section larger than our SETTINGS_MAX_FIELD_SECTION_SIZE (64 KiB) -> RESOURCE_EXHAUSTED for that call only; the connection stays usable', async () => {
    let requests = 0;
    const server = await rawServer({
      onRequest: async (stream) => {
        requests++;
        const bytes =
          requests === 1
            ? headersFrame([
                [':status', '200'],
                ['content-type', 'application/grpc'],
                ['x-huge', 'h'.repeat(100 * 1024)],
              ])
            : okGrpcResponse();
        await RawConnection.write(stream, bytes, true).catch(() => undefined);
      },
    });
    const factory = factoryFor(pki.client, { deadlineMs: 4_000 });
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: endpoint(server) }));
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ statusName: 'RESOURCE_EXHAUSTED', context: { protocol: 'h3' } });
    expect((error as RpcError).message).toContain('65536');
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: endpoint(server) })).resolves.toMatchObject({ protocol: 'h3' });
    expect(server.connections).toHaveLength(1);
  });

  it('a HEADERS frame that declares 512 MiB fails the call as soon as its frame header arrives (nothing waits for, or buffers, the payload)', async () => {
    const server = await rawServer({
      // The frame header and 1 KiB of payload, then silence: the stream stays open.
      onRequest: (stream) => RawConnection.write(stream, concat(varint(FRAME.HEADERS), varint(512 * 1024 * 1024), new Uint8Array(1024))).catch(() => undefined),
    });
    const factory = factoryFor(pki.client, { deadlineMs: 4_000 });
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: endpoint(server) }));
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ statusName: 'RESOURCE_EXHAUSTED', context: { protocol: 'h3' } });
  });

  it('unknown and reserved unidirectional stream types are ignored: calls succeed on the same connection', async () => {
    const server = await rawServer({
      onConnection: async (peer) => {
        await peer.openControl();
        await peer.openUni(concat(varint(0x21 + 0x1f * 3), new Uint8Array(100).fill(7))); // reserved (grease) type
        await peer.openUni(concat(varint(0x54), new Uint8Array(100).fill(9)), true); // unknown type, closed
      },
    });
    const factory = factoryFor(pki.client);
    for (const sequence of [1, 2, 3]) await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(sequence), { endpoint: endpoint(server) })).resolves.toMatchObject({ protocol: 'h3' });
    expect(server.connections).toHaveLength(1);
    const closed = await Promise.race([server.connections[0]?.peerClose, new Promise((resolve) => setImmediate(() => resolve('open')))]);
    expect(closed).toBe('open');
  });
});

describe('a misbehaving HTTP/3 client (raw peer) against GrpcH3Host', () => {
  let h3: { host: GrpcH3Host; served: Served[] };
  const PING_PATH = `/${ControlPlaneDefinition.fullName}/Ping`;

  beforeAll(async () => {
    h3 = await startH3();
  });

  async function rawClient(options: { initialMaxStreamsUni?: number } = {}): Promise<RawConnection> {
    const client = await connectRawH3({ port: h3.host.port, ca: await readFile(pki.caFile, 'utf8'), certPem: pki.client.certPem, keyPem: pki.client.keyPem, ...options });
    closers.push(() => client.close());
    return client.peer;
  }

  /** The host closes the connection with `code`; no handler ran; the host still serves new clients. */
  async function expectClosedWith(peer: RawConnection, code: number): Promise<void> {
    const close = await peer.peerClose;
    expect({ errorCode: close.errorCode, isApp: close.isApp }).toEqual({ errorCode: code, isApp: true });
    expect(h3.served).toEqual([]);
    const factory = factoryFor(pki.client);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: h3.host.url })).resolves.toMatchObject({ protocol: 'h3' });
    h3.served.length = 0;
  }

  it('(control) a well-behaved raw client is served: one HEADERS, one DATA, the trailers', async () => {
    const peer = await rawClient();
    await peer.openControl();
    const response = await peer.request(grpcRequest(PING_PATH));
    expect(frameTypes(response).map((f) => f.type)).toEqual([FRAME.HEADERS, FRAME.DATA, FRAME.HEADERS]);
    expect(h3.served).toEqual([{ method: 'ping', identity: 'client' }]);
    h3.served.length = 0;
  });

  it('a client that lets the host open fewer than 3 unidirectional streams -> H3_STREAM_CREATION_ERROR; the host process lives and serves on', async () => {
    // RFC 9114 §6.2: the host cannot open its control and QPACK streams. This used to throw out
    // of the handshake's completion in the packet loop and end the process.
    const peer = await rawClient({ initialMaxStreamsUni: 0 });
    await expectClosedWith(peer, H3.H3_STREAM_CREATION_ERROR);
  });

  it('a second request message for a one-message method is refused at once, before the client ends its stream (nothing is buffered until a FIN)', async () => {
    const peer = await rawClient();
    await peer.openControl();
    const stream = peer.connection.openStream(true);
    await stream.write(concat(grpcRequest(PING_PATH), grpcDataFrame(new Uint8Array(10)))); // two messages, no FIN
    const chunks: Uint8Array[] = [];
    for (let chunk = await stream.read(); chunk !== null; chunk = await stream.read()) chunks.push(chunk);
    const response = concat(...chunks);
    const frames = frameTypes(response);
    expect(frames.map((f) => f.type)).toEqual([FRAME.HEADERS]); // trailers-only
    const section = decodeFieldSection(response.subarray(response.length - (frames[0]?.length ?? 0))).headers;
    expect(section).toEqual(expect.arrayContaining([['grpc-status', '13'], ['grpc-message', 'expected one request message, got more']]));
    expect(h3.served).toEqual([]);
  });

  it('a second control stream -> H3_STREAM_CREATION_ERROR', async () => {
    const peer = await rawClient();
    await peer.openControl();
    await peer.openControl();
    await expectClosedWith(peer, H3.H3_STREAM_CREATION_ERROR);
  });

  it('a push stream from a client -> H3_STREAM_CREATION_ERROR (only servers push)', async () => {
    const peer = await rawClient();
    await peer.openControl();
    await peer.openUni(concat(varint(STREAM_TYPE.PUSH), varint(0)));
    await expectClosedWith(peer, H3.H3_STREAM_CREATION_ERROR);
  });

  it('a DATA frame on the control stream -> H3_FRAME_UNEXPECTED', async () => {
    const peer = await rawClient();
    await peer.openControl(frame(FRAME.DATA, Uint8Array.of(1, 2, 3)));
    await expectClosedWith(peer, H3.H3_FRAME_UNEXPECTED);
  });

  it('a QPACK encoder-stream instruction that needs the dynamic table -> QPACK_ENCODER_STREAM_ERROR', async () => {
    const peer = await rawClient();
    await peer.openControl();
    await peer.openUni(concat(varint(STREAM_TYPE.QPACK_ENCODER), INSERT_LITERAL));
    await expectClosedWith(peer, H3.QPACK_ENCODER_STREAM_ERROR);
  });

  it('a second QPACK decoder stream -> H3_STREAM_CREATION_ERROR (RFC 9204 §4.2)', async () => {
    const peer = await rawClient();
    await peer.openControl();
    await peer.openUni(varint(STREAM_TYPE.QPACK_DECODER));
    await peer.openUni(varint(STREAM_TYPE.QPACK_DECODER));
    await expectClosedWith(peer, H3.H3_STREAM_CREATION_ERROR);
  });

  it('a request header section above 64 KiB is answered on its stream (HEADERS, FIN), never reaches a handler, and the connection stays usable', async () => {
    const peer = await rawClient();
    await peer.openControl();
    const refused = await peer.request(grpcRequest(PING_PATH, [['x-huge', 'h'.repeat(100 * 1024)]]));
    expect(frameTypes(refused).map((f) => f.type)).toEqual([FRAME.HEADERS]);
    expect(h3.served).toEqual([]);
    const served = await peer.request(grpcRequest(PING_PATH));
    expect(frameTypes(served).map((f) => f.type)).toEqual([FRAME.HEADERS, FRAME.DATA, FRAME.HEADERS]);
    expect(h3.served).toHaveLength(1);
    h3.served.length = 0;
  });

  it('through our client: request metadata above the host limit -> RESOURCE_EXHAUSTED from the host, for that call only', async () => {
    const factory = factoryFor(pki.client);
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: h3.host.url, metadata: { 'x-huge': 'h'.repeat(100 * 1024) } }));
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ statusName: 'RESOURCE_EXHAUSTED', context: { protocol: 'h3' } });
    expect((error as RpcError).message).toContain('SETTINGS_MAX_FIELD_SECTION_SIZE (65536 bytes)');
    expect(h3.served).toEqual([]);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: h3.host.url })).resolves.toMatchObject({ protocol: 'h3' });
    expect(factory.connections().filter((c) => c.protocol === 'h3')).toHaveLength(1);
    h3.served.length = 0;
  });

  it('unknown and reserved unidirectional stream types are ignored: requests on the same connection are served', async () => {
    const peer = await rawClient();
    await peer.openControl();
    await peer.openUni(concat(varint(0x21 + 0x1f * 5), new Uint8Array(64).fill(1)));
    await peer.openUni(concat(varint(0x3a), new Uint8Array(64).fill(2)), true);
    for (let i = 0; i < 2; i++) {
      const response = await peer.request(grpcRequest(PING_PATH));
      expect(frameTypes(response).map((f) => f.type)).toEqual([FRAME.HEADERS, FRAME.DATA, FRAME.HEADERS]);
    }
    expect(h3.served).toHaveLength(2);
    h3.served.length = 0;
  });
});

// ---------------------------------------------------------------------------------------------
// GOAWAY and graceful shutdown
// ---------------------------------------------------------------------------------------------

describe('GOAWAY and graceful shutdown', () => {
  /** Collects a server stream's sequences; resolves `first` at the first event. */
  function watch(factory: IGrpcControlPlaneClientFactory, endpoint: string, count: number, intervalMs: number): { events: number[]; first: Promise<void>; done: Promise<unknown> } {
    const events: number[] = [];
    let sawFirst!: () => void;
    const first = new Promise<void>((resolve) => (sawFirst = resolve));
    const done = (async () => {
      try {
        for await (const event of factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'edge', count, intervalMs }, { endpoint })) {
          events.push(event.sequence);
          sawFirst();
        }
        return undefined;
      } catch (error) {
        sawFirst();
        return error;
      }
    })();
    return { events, first, done };
  }

  async function until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  it('GrpcH3Host.close(grace): a running unary call and server stream finish intact; a call after the GOAWAY fails UNAVAILABLE at once; close resolves', async () => {
    const { host, served } = await startH3();
    const factory = factoryFor(pki.client, { deadlineMs: 20_000 });
    await factory.unary(ControlPlaneDefinition, 'ping', ping(0), { endpoint: host.url }); // connection up
    const slow = factory.unary(ControlPlaneDefinition, 'ping', ping(1, 40), { endpoint: host.url }); // handler takes 400 ms
    const stream = watch(factory, host.url, 6, 60);
    await stream.first;
    await until(() => served.length === 3);
    const closing = host.close(20_000);
    // Started after the GOAWAY went out: never reaches a handler, and fails rather than hangs.
    const late = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: host.url }));
    expect(late).toBeInstanceOf(RpcError);
    expect((late as RpcError).statusName).toBe('UNAVAILABLE');
    await expect(slow).resolves.toMatchObject({ protocol: 'h3', message: { sequence: 1, node: 'h3-node' } });
    expect(await stream.done).toBeUndefined();
    expect(stream.events).toEqual([1, 2, 3, 4, 5, 6]);
    await closing;
    expect(served.map((s) => s.method)).toEqual(['ping', 'ping', 'watch']);
    // The host is gone: a new call fails UNAVAILABLE (a retryable status) instead of hanging.
    const gone = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(3), { endpoint: host.url }));
    expect(gone).toBeInstanceOf(RpcError);
    expect((gone as RpcError).statusName).toBe('UNAVAILABLE');
    expect(served).toHaveLength(3);
  });

  it('GrpcH3Host.close(grace): streams still running when the grace period ends are cut, and the client sees UNAVAILABLE, not a hang', async () => {
    const { host, served } = await startH3();
    const factory = factoryFor(pki.client, { deadlineMs: 30_000 });
    const slow = failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1, 250), { endpoint: host.url })); // 2.5 s handler
    const stream = watch(factory, host.url, 10, 1_000);
    await stream.first;
    await until(() => served.length === 2);
    await host.close(100);
    const unaryError = await slow;
    const streamError = await stream.done;
    for (const error of [unaryError, streamError]) {
      expect(error).toBeInstanceOf(RpcError);
      expect(error).toMatchObject({ statusName: 'UNAVAILABLE', context: { protocol: 'h3' } });
    }
    expect(stream.events).toEqual([1]);
  });

  it('client drain: after a GOAWAY our client opens no new stream on that connection; new calls go to a new connection, the running call finishes on the old one, which is then closed', async () => {
    const controls = new Map<RawConnection, QuicStream>();
    let secondConnectionServed!: () => void;
    const secondServed = new Promise<void>((resolve) => (secondConnectionServed = resolve));
    const server = await startRawH3Server({
      certPem: pki.server.certPem,
      keyPem: pki.server.keyPem,
      onConnection: async (peer) => void controls.set(peer, await peer.openControl()),
      onRequest: async (stream, _request, peer) => {
        if (peer !== server.connections[0]) {
          await RawConnection.write(stream, okGrpcResponse(), true);
          secondConnectionServed();
          return;
        }
        // The first request (stream 0) is served; GOAWAY(4) refuses any later one on this connection.
        await RawConnection.write(controls.get(peer) as QuicStream, frame(FRAME.GOAWAY, varint(4)));
        await new Promise((resolve) => setTimeout(resolve, 20));
        await RawConnection.write(stream, concat(headersFrame([[':status', '200'], ['content-type', 'application/grpc']]), grpcDataFrame(new Uint8Array())));
        await secondServed;
        await RawConnection.write(stream, concat(grpcDataFrame(new Uint8Array()), headersFrame([['grpc-status', '0']])), true);
      },
    });
    closers.push(() => server.stop());
    const endpoint = `https://127.0.0.1:${server.port}`;
    const factory = factoryFor(pki.client, { deadlineMs: 10_000 });
    const running = watch(factory, endpoint, 2, 0);
    await running.first;
    // The GOAWAY arrived before the first message: this call must not use the first connection.
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint })).resolves.toMatchObject({ protocol: 'h3' });
    expect(await running.done).toBeUndefined();
    expect(running.events).toHaveLength(2);
    expect(server.connections).toHaveLength(2);
    expect(server.connections[0]?.requests).toHaveLength(1);
    expect(server.connections[1]?.requests).toHaveLength(1);
    // Once its last request finished, the client closes the drained connection with H3_NO_ERROR.
    await expect(server.connections[0]?.peerClose).resolves.toMatchObject({ errorCode: 0x100, isApp: true });
  });
});
