/**
 * Client-streaming and bidi-streaming calls through the factory (`clientStream`, `bidiStream`,
 * the typed client), over HTTP/2 and HTTP/3 against our GrpcHost, and with the default profile
 * (HTTP/3 preferred) against HTTP/2-only servers: our GrpcHost with `http3: false` and grpc-go.
 * Real sockets on 127.0.0.1; the factory from the built package.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, PeerUnavailableError, RpcError, TOKENS, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { failureOf } from '../support/failure.js';
import { startGrpcGoServer, type GrpcGoServer } from '../support/grpc-go.js';

const { ControlPlaneStreamsDefinition } = controlPlaneV1;
type Ping = controlPlaneV1.PingRequest;
type Pong = controlPlaneV1.PingResponse;

const ping = (sequence: number, payload = new Uint8Array()): Ping => ({ fromNode: 'test', sequence, payload });

/** Requests 1..count; records how many were pulled and whether the iterator was closed. */
function requests(count: number, payloadBytes = 0): AsyncIterable<Ping> & { pulled: number; closed: boolean } {
  const state = {
    pulled: 0,
    closed: false,
    async *[Symbol.asyncIterator](): AsyncGenerator<Ping> {
      try {
        for (let i = 1; i <= count; i++) {
          await Promise.resolve(); // a producer that awaits its source between messages
          state.pulled++;
          yield ping(i, new Uint8Array(payloadBytes));
        }
      } finally {
        state.closed = true;
      }
    },
  };
  return state;
}

/** Requests that never end (until the iterator is closed). */
function endless(): AsyncIterable<Ping> & { closed: boolean } {
  const state = {
    closed: false,
    async *[Symbol.asyncIterator](): AsyncGenerator<Ping> {
      try {
        for (let i = 1; ; i++) {
          yield ping(i);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        state.closed = true;
      }
    },
  };
  return state;
}

/** How each server call ended, by `x-call-id`. */
const ended = new Map<string, 'end' | 'cancelled'>();

const streamsService = [
  ControlPlaneStreamsDefinition,
  {
    collect: async (incoming: AsyncIterable<Ping>, info: ServerCallInfo): Promise<Pong> => {
      let sum = 0;
      let count = 0;
      for await (const request of incoming) {
        sum += request.sequence;
        count++;
      }
      info.setTrailer('x-count', String(count));
      if (info.metadata['x-mode'] === 'fail') throw Object.assign(new Error('collect was asked to fail'), { code: 9 });
      return { node: 'collect', sequence: sum, clientIdentity: info.clientIdentity, payload: new Uint8Array() };
    },
    chat: async function* (incoming: AsyncIterable<Ping>, info: ServerCallInfo): AsyncIterable<Pong> {
      const id = info.metadata['x-call-id'] ?? 'none';
      let count = 0;
      try {
        for await (const request of incoming) {
          count++;
          yield { node: info.deadline === undefined ? 'no-deadline' : 'deadline', sequence: request.sequence, clientIdentity: info.clientIdentity, payload: request.payload };
        }
        ended.set(id, 'end');
        info.setTrailer('x-count', String(count));
      } finally {
        if (!ended.has(id)) ended.set(id, 'cancelled');
      }
    },
  },
] as const;

/** A unary service whose failure carries a custom trailer (unary errors must bring their trailers on both protocols). */
const pingService = [
  controlPlaneV1.ControlPlaneDefinition,
  {
    ping: (request: Ping, info: ServerCallInfo): Pong => {
      info.setTrailer('x-reason', 'asked-to-fail');
      throw Object.assign(new Error(`ping ${request.sequence} was asked to fail`), { code: 9 });
    },
    watch: async function* (): AsyncIterable<controlPlaneV1.MembershipEvent> {
      await Promise.resolve();
      yield* [];
    },
  },
] as const;

async function drain<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

let pki: TestPki;
let host: GrpcHost;
let h2OnlyHost: GrpcHost;

beforeAll(async () => {
  pki = await createTestPki();
  const tls = { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile] };
  host = await GrpcHost.start({ tls }, [streamsService, pingService]);
  h2OnlyHost = await GrpcHost.start({ tls, http3: false }, [streamsService]);
});

afterAll(async () => {
  await host?.close(0);
  await h2OnlyHost?.close(0);
  await pki?.cleanup();
});

describe.each([
  ['HTTP/2', 'h2', 'disable'],
  ['HTTP/3', 'h3', 'require'],
] as const)('factory streaming over %s', (_name, protocol, http3) => {
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });

  beforeAll(() => {
    ({ container } = containerWith(mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3, deadlineMs: 300, connectTimeoutMs: 300, retry: { maxAttempts: 1 } } } }), (c) => {
      c.bind(TOKENS.Telemetry).toConstantValue({ tracerProvider });
    }));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await tracerProvider.shutdown();
  });

  it('clientStream: 200 requests summed into one response, with protocol, peer, headers and the server trailer', async () => {
    const feed = requests(200);
    const result = await factory.clientStream(ControlPlaneStreamsDefinition, 'collect', feed, { endpoint: host.url });
    expect(result.message).toMatchObject({ node: 'collect', sequence: (200 * 201) / 2, clientIdentity: 'client' });
    expect(result).toMatchObject({ protocol, endpoint: `127.0.0.1:${host.port}`, attempts: 1 });
    expect(result.trailers['x-count']).toBe('200');
    expect(result.headers['content-type']).toMatch(/^application\/grpc/);
    expect(result.peer.certificate?.subject).toContain('CN=');
    expect(feed.closed).toBe(true);
  });

  it('bidiStream: 500 messages echoed in order; no deadline by default (streamDeadlineMs "none"), though the unary deadline is 300 ms', async () => {
    const stream = factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', requests(500), { endpoint: host.url, metadata: { 'x-call-id': `echo-${protocol}` } });
    const responses = await drain(stream);
    expect(responses.map((r) => r.sequence)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(responses.every((r) => r.node === 'no-deadline')).toBe(true);
    expect((await stream.headers)?.['content-type']).toMatch(/^application\/grpc/);
    expect((await stream.trailers)['x-count']).toBe('500');
    expect(ended.get(`echo-${protocol}`)).toBe('end');
  });

  it('the typed client has collect() and chat()', async () => {
    const client = factory.client(ControlPlaneStreamsDefinition, { endpoint: host.url });
    await expect(client.collect(requests(10))).resolves.toMatchObject({ sequence: 55 });
    expect((await drain(client.chat(requests(3)))).map((r) => r.sequence)).toEqual([1, 2, 3]);
  });

  it('lives past the unary deadline, ends at its own deadline with DEADLINE_EXCEEDED', async () => {
    const feed = endless();
    const started = Date.now();
    const error = await failureOf(() => drain(factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', feed, { endpoint: host.url, deadlineMs: 800 })));
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ statusName: 'DEADLINE_EXCEEDED' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    await until(() => feed.closed, 'the request iterator to be closed');
  });

  it('a consumer that breaks cancels the call on the wire, the server sees it, and the request iterator is closed', async () => {
    const feed = endless();
    const id = `break-${protocol}`;
    let seen = 0;
    for await (const response of factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', feed, { endpoint: host.url, metadata: { 'x-call-id': id } })) {
      seen = response.sequence;
      if (seen === 5) break;
    }
    expect(seen).toBe(5);
    await until(() => ended.get(id) === 'cancelled' && feed.closed, 'the server to see the cancellation');
  });

  it('a server status arrives as RpcError with its trailers; the trailers promise has them too', async () => {
    const error = await failureOf(() => factory.clientStream(ControlPlaneStreamsDefinition, 'collect', requests(3), { endpoint: host.url, metadata: { 'x-mode': 'fail' } }));
    expect(error).toMatchObject({ statusName: 'FAILED_PRECONDITION', details: 'collect was asked to fail' });
    expect((error as RpcError).context.trailers?.['x-count']).toBe('3');
  });

  it('a failed unary call brings the server trailers with its RpcError', async () => {
    const error = await failureOf(() => factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', ping(7), { endpoint: host.url }));
    expect(error).toMatchObject({ statusName: 'FAILED_PRECONDITION', details: 'ping 7 was asked to fail', context: { protocol } });
    expect((error as RpcError).context.trailers?.['x-reason']).toBe('asked-to-fail');
  });

  it('an abort signal ends the stream with CANCELLED', async () => {
    const controller = new AbortController();
    const stream = factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', endless(), { endpoint: host.url, signal: controller.signal });
    const error = await failureOf(async () => {
      for await (const response of stream) if (response.sequence === 3) controller.abort();
    });
    expect(error).toMatchObject({ statusName: 'CANCELLED' });
  });

  it('records one span per stream, with the method, the protocol and the status', async () => {
    spans.reset();
    await drain(factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', requests(4), { endpoint: host.url }));
    await failureOf(() => factory.clientStream(ControlPlaneStreamsDefinition, 'collect', requests(2), { endpoint: host.url, metadata: { 'x-mode': 'fail' } }));
    const finished = spans.getFinishedSpans();
    expect(finished.map((s) => [s.attributes['rpc.method'], s.attributes['omnirelay.protocol'], s.attributes['rpc.grpc.status_code']])).toEqual([
      ['Chat', protocol, 0],
      ['Collect', protocol, 9],
    ]);
  });
});

describe('factory streaming with the default profile (HTTP/3 preferred) against HTTP/2-only servers', () => {
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  let grpcGo: GrpcGoServer;

  beforeAll(async () => {
    grpcGo = await startGrpcGoServer({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, requireClientCert: true });
    // A race delay far longer than the test: only the refused UDP port lets HTTP/2 carry the calls.
    ({ container } = containerWith(mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3RaceDelayMs: 600_000, breaker: { consecutiveFailures: 1, maxEjectionPercent: 100, halfOpenAfterMs: 60_000 } } } })));
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await grpcGo?.close();
  });

  it.each([
    ['our GrpcHost with http3: false', () => h2OnlyHost.url],
    ['grpc-go', () => grpcGo.url],
  ])('a bidi stream to %s falls back to HTTP/2 before taking a request, and every request arrives', async (_name, url) => {
    const feed = requests(50);
    const responses = await drain(factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', feed, { endpoint: url() }));
    expect(responses.map((r) => r.sequence)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(feed.pulled).toBe(50);
    const sum = await factory.clientStream(ControlPlaneStreamsDefinition, 'collect', requests(20), { endpoint: url() });
    expect(sum).toMatchObject({ protocol: 'h2', message: { sequence: 210 } });
  });

  it('a stream that fails before its first response counts for the breaker; the next one fails fast with CIRCUIT_OPEN', async () => {
    const dead = 'https://127.0.0.1:1';
    const first = await failureOf(() => drain(factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', requests(3), { endpoint: dead })));
    expect(first).toMatchObject({ statusName: 'UNAVAILABLE' });
    const second = await failureOf(() => factory.clientStream(ControlPlaneStreamsDefinition, 'collect', requests(3), { endpoint: dead }));
    expect(second).toBeInstanceOf(PeerUnavailableError);
    expect(second).toMatchObject({ code: 'CIRCUIT_OPEN' });
  });
});
