/**
 * A replica that drains (GrpcHost.close(grace): GOAWAY, new requests refused, running calls
 * finish) while a burst of calls arrives, on real sockets on 127.0.0.1, over HTTP/3 and over
 * HTTP/2: requests the server refused without processing them are retried transparently (on
 * the other replica), no call fails, and the draining replica's circuit breaker records no
 * failure. Plus a raw HTTP/3 server that refuses every request: the call ends UNAVAILABLE
 * within its deadline after a bounded number of requests.
 */
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { controlPlaneV1, RpcError, TOKENS, type BreakerChange, type ICircuitBreaker, type IGrpcControlPlaneClientFactory, type OmniRelayError } from 'omnirelay';
import { containerWith, mtlsOptions, ping, startNode, type TestNode } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { frame, FRAME, okGrpcResponse, RawConnection, startRawH3Server, varint, type QuicStream } from '../support/raw-h3-peer.js';

const { ControlPlaneDefinition } = controlPlaneV1;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** H3_REQUEST_REJECTED (RFC 9114 §8.1): the server did not process the request. */
const H3_REQUEST_REJECTED = 0x10b;

let pki: TestPki;
const containers: Container[] = [];

beforeAll(async () => {
  pki = await createTestPki();
});

afterAll(async () => {
  for (const container of containers) await container.unbindAllAsync();
  await pki.cleanup();
});

/** How each call of a burst ended: `ok`, or the error's code / status name. */
function outcomeOf(result: PromiseSettledResult<unknown>): string {
  if (result.status === 'fulfilled') return 'ok';
  const error = result.reason as OmniRelayError;
  return error instanceof RpcError ? `${error.statusName} (${error.details})` : (error.code ?? String(error));
}

function tally(outcomes: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

describe.each([
  ['HTTP/3', 'prefer', 'h3'],
  ['HTTP/2', 'disable', 'h2'],
] as const)('a replica draining during a burst of 20 calls (%s)', (_name, http3, protocol) => {
  let nodes: TestNode[];
  let container: Container;
  let factory: IGrpcControlPlaneClientFactory;
  let breaker: ICircuitBreaker;
  const changes: BreakerChange[] = [];

  beforeAll(async () => {
    nodes = [await startNode('drainer', pki), await startNode('stayer', pki)];
    // The presets' breaker (5 failures in a row) and retry policy (3 attempts); a long race
    // delay so the burst is not decided by a slow QUIC handshake on a loaded machine.
    ({ container } = containerWith(
      mtlsOptions(pki, pki.client, {
        profiles: { 'control-plane': { http3, http3RaceDelayMs: 2_000, deadlineMs: 5_000 } },
        endpoints: { drainer: { url: nodes[0]!.url }, stayer: { url: nodes[1]!.url } },
      }),
    ));
    containers.push(container);
    factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    breaker = container.get<ICircuitBreaker>(TOKENS.CircuitBreaker);
    breaker.changes$.subscribe((change) => changes.push(change));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.host.close(0)));
  });

  it(`all 20 calls succeed over ${protocol}, none fails with CIRCUIT_OPEN, and the draining replica's breaker records no failure`, async () => {
    const peers = ['drainer', 'stayer'];
    const drainer = new URL(nodes[0]!.url).host;
    // Both connections up, over the protocol under test.
    for (let n = 0; n < 4; n++) {
      const result = await factory.unary(ControlPlaneDefinition, 'ping', ping(n), { peers });
      expect(result.protocol).toBe(protocol);
    }
    // Calls running on the drainer when it starts closing (each 200 ms): they must finish.
    const running = [0, 1, 2].map((n) => factory.unary(ControlPlaneDefinition, 'ping', ping(100 + n, 20), { endpoint: 'drainer' }));
    while (nodes[0]!.inFlight < 3) await pause(2);

    const closing = nodes[0]!.host.close(3_000);
    // The burst: 20 calls over both replicas in four waves 15 ms apart, so some go out before
    // the client has seen the GOAWAY and some after.
    const burst: Promise<controlPlaneV1.PingResponse>[] = [];
    for (let wave = 0; wave < 4; wave++) {
      if (wave > 0) await pause(15);
      for (let n = 0; n < 5; n++) burst.push(factory.unary(ControlPlaneDefinition, 'ping', ping(1_000 + wave * 5 + n), { peers }).then((r) => r.message));
    }
    const outcomes = (await Promise.allSettled(burst)).map(outcomeOf);
    expect(tally(outcomes)).toEqual({ ok: 20 });
    await expect(Promise.all(running)).resolves.toHaveLength(3);
    await closing;

    const drainerChanges = changes.filter((c) => c.peer === drainer);
    expect(drainerChanges).toEqual([]);
    expect(breaker.state(drainer)).toBe('closed');
    expect(breaker.lastFailureAt?.(drainer)).toBeUndefined();
  });
});

describe('a raw HTTP/3 server that refuses every request (H3_REQUEST_REJECTED)', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  afterEach(() => expect(unhandled).toEqual([]));

  it('the call ends UNAVAILABLE within its deadline after a bounded number of requests, never over HTTP/2, and the breaker counts none of them', async () => {
    const requests: QuicStream[] = [];
    const server = await startRawH3Server({
      certPem: pki.server.certPem,
      keyPem: pki.server.keyPem,
      onRequest: (stream) => {
        requests.push(stream);
        stream.reset(H3_REQUEST_REJECTED);
      },
    });
    try {
      const endpoint = `https://127.0.0.1:${server.port}`;
      const { container } = containerWith(
        mtlsOptions(pki, pki.client, {
          profiles: { 'control-plane': { http3: 'prefer', http3RaceDelayMs: 2_000, deadlineMs: 4_000, retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 20 } } },
        }),
      );
      containers.push(container);
      const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
      const breaker = container.get<ICircuitBreaker>(TOKENS.CircuitBreaker);
      const started = performance.now();
      let error: unknown;
      try {
        await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint });
      } catch (caught) {
        error = caught;
      }
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(RpcError);
      expect(error).toMatchObject({ statusName: 'UNAVAILABLE', failure: 'refused', context: { protocol: 'h3' } });
      expect((error as RpcError).details).toContain('H3_REQUEST_REJECTED');
      expect(elapsed).toBeLessThan(4_000);
      // 3 transparent retries, then the policy's 3 attempts (refusals are UNAVAILABLE, retryable): 6 requests.
      expect(requests).toHaveLength(6);
      const authority = `127.0.0.1:${server.port}`;
      expect(breaker.state(authority)).toBe('closed');
      expect(breaker.lastFailureAt?.(authority)).toBeUndefined();
    } finally {
      await server.stop();
    }
  });

  it('a request on a stream at or above the GOAWAY id, left unanswered, is refused at once and sent again on a new connection (one attempt)', async () => {
    const controls = new Map<RawConnection, QuicStream>();
    const server = await startRawH3Server({
      certPem: pki.server.certPem,
      keyPem: pki.server.keyPem,
      onConnection: async (peer) => void controls.set(peer, await peer.openControl()),
      onRequest: async (stream, _request, peer) => {
        if (peer === server.connections[0] && peer.requests.length > 1) {
          // The second request (stream 4): GOAWAY(4) says it will not be processed; no answer, no reset.
          await RawConnection.write(controls.get(peer) as QuicStream, frame(FRAME.GOAWAY, varint(4)));
          return;
        }
        await RawConnection.write(stream, okGrpcResponse(), true);
      },
    });
    try {
      const endpoint = `https://127.0.0.1:${server.port}`;
      const { container } = containerWith(
        mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3: 'prefer', http3RaceDelayMs: 2_000, deadlineMs: 5_000, retry: { maxAttempts: 1 } } } }),
      );
      containers.push(container);
      const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
      await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint })).resolves.toMatchObject({ protocol: 'h3' });
      const started = performance.now();
      const second = await factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint });
      expect(second).toMatchObject({ protocol: 'h3', attempts: 1 });
      // Not the 5 s deadline: the GOAWAY ended the call's wait.
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(server.connections).toHaveLength(2);
      expect(server.connections[0]?.requests.map((r) => r.id)).toEqual([0, 4]);
      expect(server.connections[1]?.requests.map((r) => r.id)).toEqual([0]);
    } finally {
      await server.stop();
    }
  });
});
