/**
 * Our HTTP/2 transport's client-streaming and bidi calls (`TransportConnection.stream()`)
 * against an independent server: grpc-go (Debian's golang-google-grpc-dev,
 * test/support/grpc-go/server.go, ControlPlaneStreams/Collect and /Chat). grpc-go has no HTTP/3.
 * The server prints how each streaming call ended ("stream <id> <method> <how>").
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { controlPlaneV1, RpcError, type TransportConnection } from 'omnirelay';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { startGrpcGoServer, type GrpcGoServer } from '../support/grpc-go.js';
import { failureOf } from '../support/failure.js';
import { openConnection } from '../support/transports.js';
import { Feed, ping, sequence } from '../support/feed.js';

const { PingResponse } = controlPlaneV1;
const COLLECT = '/omnirelay.controlplane.v1.ControlPlaneStreams/Collect';
const CHAT = '/omnirelay.controlplane.v1.ControlPlaneStreams/Chat';

let pki: TestPki;
let server: GrpcGoServer;
let connection: TransportConnection;

beforeAll(async () => {
  pki = await createTestPki();
  server = await startGrpcGoServer({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, requireClientCert: true });
  connection = openConnection('h2', server.url, pki);
});

afterAll(async () => {
  connection?.close();
  await server?.close();
  await pki?.cleanup();
});

async function responsesOf(stream: AsyncIterable<Uint8Array>): Promise<controlPlaneV1.PingResponse[]> {
  const out: controlPlaneV1.PingResponse[] = [];
  for await (const message of stream) out.push(PingResponse.decode(message));
  return out;
}

/** Waits until grpc-go reported how the call `id` ended; returns that. */
async function serverSaw(id: string): Promise<string> {
  for (let i = 0; i < 500; i++) {
    const match = new RegExp(`stream ${id} \\w+ (\\w+)`).exec(server.output());
    if (match?.[1] !== undefined) return match[1];
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`grpc-go never reported the end of ${id}: ${server.output()}`);
}

function deadline(): number {
  return Date.now() + 30_000;
}

describe('stream() over HTTP/2 against grpc-go', () => {
  it('bidi echo of 500 messages in order, with grpc-go’s headers and custom trailer', async () => {
    const stream = connection.stream({ path: CHAT, messages: sequence(500), metadata: { 'x-call-id': 'echo' }, deadline: deadline(), signal: undefined });
    const responses = await responsesOf(stream);
    expect(responses.map((r) => r.sequence)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(responses.every((r) => r.node === 'grpc-go')).toBe(true);
    expect((await stream.headers)?.['content-type']).toBe('application/grpc');
    expect((await stream.trailers)['x-count']).toBe('500');
    expect(await serverSaw('echo')).toBe('end');
  });

  it('client streaming: grpc-go sums 100 requests into one response', async () => {
    const feed = sequence(100);
    const stream = connection.stream({ path: COLLECT, messages: feed, metadata: { 'x-call-id': 'sum' }, deadline: deadline(), signal: undefined });
    expect((await responsesOf(stream)).map((r) => r.sequence)).toEqual([5_050]);
    expect((await stream.trailers)['x-count']).toBe('100');
    expect(feed.returned).toBe(false);
  });

  it.each([
    [CHAT, 'chat'],
    [COLLECT, 'collect'],
  ])('a status from grpc-go (%s) arrives with its trailers, in the error and the trailers promise', async (path, name) => {
    const stream = connection.stream({ path, messages: sequence(3), metadata: { 'x-mode': 'fail' }, deadline: deadline(), signal: undefined });
    const error = await failureOf(() => responsesOf(stream));
    expect(error).toBeInstanceOf(RpcError);
    expect({ status: (error as RpcError).statusName, details: (error as RpcError).details, reason: (error as RpcError).context.trailers?.['x-reason'] }).toEqual({
      status: 'FAILED_PRECONDITION',
      details: `${name} was asked to fail`,
      reason: 'asked-to-fail',
    });
    expect((await stream.trailers)['x-reason']).toBe('asked-to-fail');
  });

  it('a consumer that breaks cancels the call (grpc-go’s handler ends) and returns the request iterator', async () => {
    const feed = new Feed((i) => ping(i + 1));
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: { 'x-call-id': 'break' }, deadline: deadline(), signal: undefined });
    let received = 0;
    for await (const message of stream) {
      expect(PingResponse.decode(message).sequence).toBe(++received);
      if (received === 3) break;
    }
    await feed.whenReturned;
    // Canceled, or the end of the requests when the cancel caught our request side idle (see
    // the next test: Node's HTTP/2 sends END_STREAM before the RST_STREAM then).
    expect(await serverSaw('break')).toMatch(/^(end|Canceled)$/);
  });

  it('a request iterable that throws: CANCELLED naming the cause on our side, grpc-go’s handler ends', async () => {
    const feed = new Feed();
    feed.push(ping(1));
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: { 'x-call-id': 'throw' }, deadline: deadline(), signal: undefined });
    const error = await failureOf(async () => {
      for await (const message of stream) {
        expect(PingResponse.decode(message).sequence).toBe(1);
        feed.push(new Error('the producer broke'));
      }
    });
    expect((error as RpcError).statusName).toBe('CANCELLED');
    expect((error as RpcError).message).toContain('the producer broke');
    // The handler's request stream ended. Node's HTTP/2 (under grpc-js) flushes pending frames
    // before a RST_STREAM, and closing a stream whose writable side is open and idle first ends
    // it: the wire carries END_STREAM, then RST_STREAM CANCEL, and grpc-go's RecvMsg returns
    // io.EOF before the reset cancels the call. See docs/http3.md ("Client and bidi streaming").
    expect(await serverSaw('throw')).toMatch(/^(end|Canceled)$/);
  });

  it('deadline Infinity: no grpc-timeout, the stream stays open past a short wait, then completes', async () => {
    const feed = new Feed();
    const stream = connection.stream({ path: CHAT, messages: feed, metadata: {}, deadline: Infinity, signal: undefined });
    const iterator = stream[Symbol.asyncIterator]();
    feed.push(ping(1));
    expect(PingResponse.decode((await iterator.next()).value as Uint8Array).sequence).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 400));
    feed.push(ping(2));
    feed.push(null);
    expect(PingResponse.decode((await iterator.next()).value as Uint8Array).sequence).toBe(2);
    expect((await iterator.next()).done).toBe(true);
  });
});
