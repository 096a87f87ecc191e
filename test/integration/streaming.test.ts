/**
 * Client-streaming and bidi-streaming calls at the transport level, over HTTP/2 (grpc-js) and
 * HTTP/3 (our QUIC stack), against our GrpcHost on real sockets on 127.0.0.1:
 * `TransportConnection.stream()` driven directly (no factory), with the host's handlers
 * recording what they saw (messages in order, end of stream, cancellation).
 */
import 'reflect-metadata';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { controlPlaneV1, GrpcHost, RpcError, type ServerCallInfo, type TransportConnection, type WireProtocol } from 'omnirelay';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { failureOf } from '../support/failure.js';
import { openConnection } from '../support/transports.js';
import { Feed, ping, sequence } from '../support/feed.js';

const { ControlPlaneDefinition, ControlPlaneStreamsDefinition, PingResponse } = controlPlaneV1;
type Ping = controlPlaneV1.PingRequest;
type Pong = controlPlaneV1.PingResponse;

const COLLECT = '/omnirelay.controlplane.v1.ControlPlaneStreams/Collect';
const CHAT = '/omnirelay.controlplane.v1.ControlPlaneStreams/Chat';
const MiB = 1024 * 1024;

/** What one handler invocation saw, keyed by the client's `x-call-id`. */
interface Observation {
  readonly received: number[];
  /** How the request stream ended for the handler, and whether its signal was aborted then. */
  readonly ended: Promise<{ how: 'end' | 'cancelled'; signalAborted: boolean }>;
  finish(how: 'end' | 'cancelled', signalAborted: boolean): void;
}

const observations = new Map<string, Observation>();
/** Back-pressure test: the `hold` handler waits on this after its first message. */
const gates = new Map<string, Promise<void>>();

function observe(info: ServerCallInfo): Observation {
  const id = info.metadata['x-call-id'] ?? 'none';
  let finish!: Observation['finish'];
  const ended = new Promise<{ how: 'end' | 'cancelled'; signalAborted: boolean }>((resolve) => {
    let done = false;
    finish = (how, signalAborted) => {
      if (done) return;
      done = true;
      resolve({ how, signalAborted });
    };
  });
  const observation: Observation = { received: [], ended, finish };
  observations.set(id, observation);
  return observation;
}

function failure(message: string): Error {
  return Object.assign(new Error(message), { code: 9 }); // FAILED_PRECONDITION
}

const streamsService = [
  ControlPlaneStreamsDefinition,
  {
    collect: async (requests: AsyncIterable<Ping>, info: ServerCallInfo): Promise<Pong> => {
      const seen = observe(info);
      const mode = info.metadata['x-mode'];
      let sum = 0;
      let bytes = 0;
      try {
        for await (const request of requests) {
          seen.received.push(request.sequence);
          sum += request.sequence;
          bytes += request.payload.length;
          if (mode === 'hold' && seen.received.length === 1) await gates.get(info.metadata['x-call-id'] ?? '');
        }
      } catch (error) {
        seen.finish('cancelled', info.signal.aborted);
        throw error;
      }
      seen.finish('end', info.signal.aborted);
      if (mode === 'fail') {
        info.setTrailer('x-reason', 'asked-to-fail');
        throw failure('collect was asked to fail');
      }
      info.setTrailer('x-count', String(seen.received.length));
      return { node: 'collect', sequence: sum, clientIdentity: info.clientIdentity, payload: new Uint8Array(bytes > 0 ? 1 : 0) };
    },
    chat: async function* (requests: AsyncIterable<Ping>, info: ServerCallInfo): AsyncIterable<Pong> {
      const seen = observe(info);
      const mode = info.metadata['x-mode'];
      let ended = false;
      try {
        for await (const request of requests) {
          seen.received.push(request.sequence);
          if (mode === 'fail' && seen.received.length === 2) {
            ended = true;
            seen.finish('end', info.signal.aborted);
            info.setTrailer('x-reason', 'asked-to-fail');
            throw failure('chat was asked to fail');
          }
          yield { node: info.deadline === undefined ? 'no-deadline' : 'deadline', sequence: request.sequence, clientIdentity: info.clientIdentity, payload: request.payload };
        }
        ended = true;
        seen.finish('end', info.signal.aborted);
        info.setTrailer('x-count', String(seen.received.length));
      } finally {
        // A cancelled call ends the handler through a throwing request iterable or through
        // the host leaving its response loop (return()).
        if (!ended) seen.finish('cancelled', info.signal.aborted);
      }
    },
  },
] as const;

const pingService = [
  ControlPlaneDefinition,
  {
    ping: (request: Ping, info: ServerCallInfo): Pong => ({ node: info.deadline === undefined ? 'no-deadline' : 'deadline', sequence: request.sequence, clientIdentity: info.clientIdentity, payload: new Uint8Array() }),
    watch: async function* (request: controlPlaneV1.WatchRequest, info: ServerCallInfo): AsyncIterable<controlPlaneV1.MembershipEvent> {
      for (let i = 1; i <= request.count; i++) yield { node: 'watch', sequence: i };
      await Promise.resolve();
      if (info.metadata['x-mode'] === 'fail') {
        info.setTrailer('x-reason', 'asked-to-fail');
        throw failure('watch was asked to fail');
      }
      info.setTrailer('x-count', String(request.count));
    },
  },
] as const;

let pki: TestPki;
let host: GrpcHost;
const connections: TransportConnection[] = [];
let callCounter = 0;

beforeAll(async () => {
  pki = await createTestPki();
  host = await GrpcHost.start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile } }, [streamsService, pingService] as never);
});

afterAll(async () => {
  for (const connection of connections) connection.close();
  await host?.close(1_000);
  await pki?.cleanup();
});

function connect(protocol: WireProtocol): TransportConnection {
  const connection = openConnection(protocol, host.url, pki);
  connections.push(connection);
  return connection;
}

function callId(): string {
  return `call-${++callCounter}`;
}

/** The observation of `id`, once its handler started. */
async function observed(id: string): Promise<Observation> {
  for (let i = 0; i < 500; i++) {
    const found = observations.get(id);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the handler for ${id} never ran`);
}

async function collectAll(stream: AsyncIterable<Uint8Array>): Promise<Pong[]> {
  const out: Pong[] = [];
  for await (const message of stream) out.push(PingResponse.decode(message));
  return out;
}

describe.each(['h2', 'h3'] as const)('streaming calls over %s against GrpcHost', (protocol) => {
  let connection: TransportConnection;
  beforeAll(() => {
    connection = connect(protocol);
  });

  it('bidi echo of 1,000 messages, in order; headers, custom trailers; the handler saw every message and the end', async () => {
    const id = callId();
    const stream = connection.stream({ path: CHAT, messages: sequence(1_000), metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: undefined });
    const responses = await collectAll(stream);
    expect(responses.map((r) => r.sequence)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    expect(responses[0]?.clientIdentity).toBe('client');
    expect(responses[0]?.node).toBe('deadline');
    expect(await stream.headers).toBeDefined();
    expect((await stream.trailers)['x-count']).toBe('1000');
    expect(stream.peer.certificate?.subject).toContain('CN=server');
    const seen = await observed(id);
    expect(seen.received).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    expect(await seen.ended).toEqual({ how: 'end', signalAborted: false });
  });

  it('client streaming: the sum of 100 requests in one response', async () => {
    const id = callId();
    const feed = sequence(100);
    const stream = connection.stream({ path: COLLECT, messages: feed, metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: undefined });
    const responses = await collectAll(stream);
    expect(responses.map((r) => r.sequence)).toEqual([5_050]);
    expect((await stream.trailers)['x-count']).toBe('100');
    expect(feed.pulled).toBe(101); // 100 messages and the end
    expect(feed.returned).toBe(false); // it ended by itself
    expect((await observed(id)).received).toHaveLength(100);
  });

  it('back-pressure: against a server that stops reading, the client pulls a bounded number of messages ahead', async () => {
    const id = callId();
    let release!: () => void;
    gates.set(id, new Promise<void>((resolve) => (release = resolve)));
    const count = 400;
    const feed = sequence(count, 64 * 1024); // 25 MiB in all
    const stream = connection.stream({ path: COLLECT, messages: feed, metadata: { 'x-call-id': id, 'x-mode': 'hold' }, deadline: Date.now() + 60_000, signal: undefined });
    const responses = collectAll(stream);
    const seen = await observed(id);
    // Give the producer every chance to run ahead while the handler holds its first message.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const ahead = feed.pulled;
    expect(seen.received).toEqual([1]);
    expect(ahead).toBeLessThan(100); // under 6.4 MiB of the 25 MiB were pulled
    release();
    expect((await responses).map((r) => r.sequence)).toEqual([(count * (count + 1)) / 2]);
    expect(feed.pulled).toBe(count + 1);
  });

  it('messages of almost 4 MiB both ways; one above the limit fails that call only (RESOURCE_EXHAUSTED)', async () => {
    const big = new Uint8Array(4 * MiB - 64).fill(7);
    const stream = connection.stream({ path: CHAT, messages: new Feed((i) => (i < 2 ? ping(i + 1, big) : null)), metadata: { 'x-call-id': callId() }, deadline: Date.now() + 60_000, signal: undefined });
    const responses = await collectAll(stream);
    expect(responses.map((r) => [r.sequence, r.payload.length])).toEqual([
      [1, big.length],
      [2, big.length],
    ]);

    const tooBig = new Feed((i) => (i === 0 ? ping(1, new Uint8Array(4 * MiB + 1)) : null));
    const error = await failureOf(() => collectAll(connection.stream({ path: CHAT, messages: tooBig, metadata: {}, deadline: Date.now() + 30_000, signal: undefined })));
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).statusName).toBe('RESOURCE_EXHAUSTED');
    // The connection still carries calls.
    expect((await collectAll(connection.stream({ path: COLLECT, messages: sequence(3), metadata: {}, deadline: Date.now() + 30_000, signal: undefined }))).map((r) => r.sequence)).toEqual([6]);
  });

  it('message limits both ways: a request above the server’s limit and a response above ours fail that call only (RESOURCE_EXHAUSTED)', async () => {
    const loose = openConnection(protocol, host.url, pki, { maxSendMessageBytes: 16 * MiB, maxReceiveMessageBytes: 1 * MiB });
    connections.push(loose);
    const id = callId();
    const tooBigForServer = new Feed();
    tooBigForServer.push(ping(1));
    tooBigForServer.push(ping(2, new Uint8Array(4 * MiB + 1)));
    const error = await failureOf(() => collectAll(loose.stream({ path: CHAT, messages: tooBigForServer, metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: undefined })));
    expect((error as RpcError).statusName).toBe('RESOURCE_EXHAUSTED');
    expect((await (await observed(id)).ended).how).toBe('cancelled');
    await tooBigForServer.whenReturned;

    const tooBigForUs = new Feed((i) => (i === 0 ? ping(1, new Uint8Array(2 * MiB)) : null));
    const response = await failureOf(() => collectAll(loose.stream({ path: CHAT, messages: tooBigForUs, metadata: {}, deadline: Date.now() + 30_000, signal: undefined })));
    expect((response as RpcError).statusName).toBe('RESOURCE_EXHAUSTED');
    // The connection still carries calls.
    expect((await collectAll(loose.stream({ path: CHAT, messages: sequence(2), metadata: {}, deadline: Date.now() + 30_000, signal: undefined }))).map((r) => r.sequence)).toEqual([1, 2]);
  });

  it('a request iterable that throws cancels the call: CANCELLED naming the cause, and the handler sees the cancellation', async () => {
    const id = callId();
    const feed = new Feed();
    feed.push(ping(1));
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: undefined });
    const error = await failureOf(async () => {
      for await (const message of stream) {
        expect(PingResponse.decode(message).sequence).toBe(1);
        feed.push(new Error('the producer broke'));
      }
    });
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).statusName).toBe('CANCELLED');
    expect((error as RpcError).message).toContain('the producer broke');
    expect(await (await observed(id)).ended).toEqual({ how: 'cancelled', signalAborted: true });
    expect(await stream.trailers).toBeDefined();
  });

  it('a consumer that breaks cancels the call on the wire and returns the request iterator', async () => {
    const id = callId();
    const feed = new Feed((i) => ping(i + 1)); // never ends by itself
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: undefined });
    let received = 0;
    for await (const message of stream) {
      expect(PingResponse.decode(message).sequence).toBe(++received);
      if (received === 5) break;
    }
    await feed.whenReturned;
    expect(feed.returned).toBe(true);
    const seen = await observed(id);
    expect((await seen.ended).how).toBe('cancelled');
    await stream.trailers; // settles once the call is over
  });

  it('a finite deadline ends an open stream with DEADLINE_EXCEEDED and returns the request iterator', async () => {
    const feed = new Feed();
    feed.push(ping(1));
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: {}, deadline: Date.now() + 300, signal: undefined });
    const error = await failureOf(() => collectAll(stream));
    expect((error as RpcError).statusName).toBe('DEADLINE_EXCEEDED');
    await feed.whenReturned;
  });

  it('deadline Infinity: no timer, no grpc-timeout; the stream outlives what a 300 ms deadline allows', async () => {
    const feed = new Feed();
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: {}, deadline: Infinity, signal: undefined });
    const iterator = stream[Symbol.asyncIterator]();
    feed.push(ping(1));
    const first = PingResponse.decode((await iterator.next()).value as Uint8Array);
    expect(first).toMatchObject({ sequence: 1, node: 'no-deadline' });
    await new Promise((resolve) => setTimeout(resolve, 600));
    feed.push(ping(2));
    expect(PingResponse.decode((await iterator.next()).value as Uint8Array).sequence).toBe(2);
    feed.push(null);
    expect((await iterator.next()).done).toBe(true);
    expect((await stream.trailers)['x-count']).toBe('2');
  });

  it('deadline Infinity on unary and server-streaming calls: served without a deadline', async () => {
    const result = await connection.unary({ path: '/omnirelay.controlplane.v1.ControlPlane/Ping', message: ping(3), metadata: {}, deadline: Infinity, signal: undefined });
    expect(PingResponse.decode(result.message)).toMatchObject({ sequence: 3, node: 'no-deadline' });
    const events = [];
    for await (const event of connection.serverStream({ path: '/omnirelay.controlplane.v1.ControlPlane/Watch', message: new Uint8Array(), metadata: {}, deadline: Infinity, signal: undefined })) events.push(event);
    expect(events).toEqual([]);
  });

  it('an aborted signal cancels the call (CANCELLED), the handler sees it, the request iterator is returned', async () => {
    const id = callId();
    const feed = new Feed();
    feed.push(ping(1));
    const controller = new AbortController();
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: controller.signal });
    const error = await failureOf(async () => {
      for await (const message of stream) {
        expect(PingResponse.decode(message).sequence).toBe(1);
        controller.abort();
      }
    });
    expect((error as RpcError).statusName).toBe('CANCELLED');
    await feed.whenReturned;
    expect((await (await observed(id)).ended).how).toBe('cancelled');
  });

  it('a handler that throws a status: the client gets it with the custom trailers, in the error and the trailers promise', async () => {
    for (const path of [CHAT, COLLECT]) {
      const feed = sequence(3);
      const stream = connection.stream({ path, messages: feed, metadata: { 'x-mode': 'fail' }, deadline: Date.now() + 30_000, signal: undefined });
      const error = await failureOf(() => collectAll(stream));
      expect(error).toBeInstanceOf(RpcError);
      expect({ status: (error as RpcError).statusName, details: (error as RpcError).details }).toEqual({ status: 'FAILED_PRECONDITION', details: `${path === CHAT ? 'chat' : 'collect'} was asked to fail` });
      expect((error as RpcError).context.trailers?.['x-reason']).toBe('asked-to-fail');
      expect((await stream.trailers)['x-reason']).toBe('asked-to-fail');
      // Chat answered once before failing (headers, then trailers); Collect failed before any
      // response: a trailers-only response, so no headers.
      if (path === CHAT) expect((await stream.headers)?.['content-type']).toMatch(/^application\/grpc/);
      else expect(await stream.headers).toBeUndefined();
    }
  });

  it('a server-streaming handler: custom trailers on success; a status thrown after a message reaches the client with its trailers', async () => {
    const watch = (mode: string): AsyncIterable<Uint8Array> =>
      connection.serverStream({ path: '/omnirelay.controlplane.v1.ControlPlane/Watch', message: controlPlaneV1.WatchRequest.encode({ fromNode: 't', count: 2, intervalMs: 0 }).finish(), metadata: { 'x-mode': mode }, deadline: Date.now() + 30_000, signal: undefined });
    const events: number[] = [];
    const error = await failureOf(async () => {
      for await (const event of watch('fail')) events.push(controlPlaneV1.MembershipEvent.decode(event).sequence);
    });
    expect(events).toEqual([1, 2]);
    expect({ status: (error as RpcError).statusName, details: (error as RpcError).details, reason: (error as RpcError).context.trailers?.['x-reason'] }).toEqual({
      status: 'FAILED_PRECONDITION',
      details: 'watch was asked to fail',
      reason: 'asked-to-fail',
    });
    let count = 0;
    for await (const event of watch('ok')) count += event.length > 0 ? 1 : 0;
    expect(count).toBe(2);
  });

  it('close() of the connection cancels a running stream and returns its request iterator', async () => {
    const own = connect(protocol);
    const feed = new Feed();
    feed.push(ping(1));
    const stream = own.stream({ path: CHAT, messages: feed, metadata: {}, deadline: Date.now() + 30_000, signal: undefined });
    const error = await failureOf(async () => {
      for await (const message of stream) {
        expect(PingResponse.decode(message).sequence).toBe(1);
        own.close();
      }
    });
    expect(error).toBeInstanceOf(RpcError);
    await feed.whenReturned;
    await stream.trailers;
    // A closed connection refuses new streams at once.
    expect(await failureOf(() => collectAll(own.stream({ path: CHAT, messages: sequence(1), metadata: {}, deadline: Date.now() + 5_000, signal: undefined })))).toBeInstanceOf(RpcError);
  });
});

describe.each(['h2', 'h3'] as const)('a stream to an endpoint with nothing listening, over %s', (protocol) => {
  it('fails with the typed error unary calls get (failure connect); over HTTP/3 the request iterable was not touched', async () => {
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    const connection = openConnection(protocol, `https://127.0.0.1:${port}`, pki);
    connections.push(connection);
    const feed = sequence(3);
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: {}, deadline: Date.now() + 10_000, signal: undefined });
    const error = await failureOf(() => collectAll(stream));
    expect(error).toBeInstanceOf(RpcError);
    expect({ status: (error as RpcError).statusName, failure: (error as RpcError).failure, protocol: (error as RpcError).context.protocol }).toEqual({ status: 'UNAVAILABLE', failure: 'connect', protocol });
    expect(await stream.headers).toBeUndefined();
    if (protocol === 'h3') expect({ pulled: feed.pulled, returned: feed.returned }).toEqual({ pulled: 0, returned: false });
  });
});

describe.each(['h2', 'h3'] as const)('GrpcHost.close(grace) with a bidi stream running over %s', (protocol) => {
  async function running(): Promise<{ own: GrpcHost; connection: TransportConnection; feed: Feed; id: string; iterator: AsyncIterator<Uint8Array>; stream: ReturnType<TransportConnection['stream']> }> {
    const own = await GrpcHost.start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile } }, [streamsService] as never);
    const connection = openConnection(protocol, own.url, pki);
    connections.push(connection);
    const id = callId();
    const feed = new Feed();
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: { 'x-call-id': id }, deadline: Date.now() + 30_000, signal: undefined });
    const iterator = stream[Symbol.asyncIterator]();
    feed.push(ping(1));
    expect(PingResponse.decode((await iterator.next()).value as Uint8Array).sequence).toBe(1);
    return { own, connection, feed, id, iterator, stream };
  }

  it('a stream running when the host starts closing finishes within the grace period', async () => {
    const { own, feed, id, iterator, stream } = await running();
    const closing = own.close(10_000);
    feed.push(ping(2));
    expect(PingResponse.decode((await iterator.next()).value as Uint8Array).sequence).toBe(2);
    feed.push(null);
    expect((await iterator.next()).done).toBe(true);
    expect((await stream.trailers)['x-count']).toBe('2');
    await closing;
    expect(await (await observed(id)).ended).toEqual({ how: 'end', signalAborted: false });
  });

  it('a stream still open when the grace period ends is cut: an RpcError for the client, cancellation for the handler', async () => {
    const { own, feed, id, iterator } = await running();
    await own.close(200);
    const error = await failureOf(() => iterator.next());
    expect(error).toBeInstanceOf(RpcError);
    expect((await (await observed(id)).ended).how).toBe('cancelled');
    await feed.whenReturned;
  });
});
