/**
 * Message size limits over HTTP/3 behave as over HTTP/2: a message above a limit fails its own
 * call with RESOURCE_EXHAUSTED (refused from the DATA frame's header, nothing buffered), never
 * the connection, and never as a peer failure that trips the breaker. Each case runs over
 * HTTP/3 ('require') and over HTTP/2 ('disable') against one GrpcHost on 127.0.0.1.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, RpcError, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;
const MiB = 1024 * 1024;
/** The host accepts request messages up to this size. */
const HOST_LIMIT = MiB;
/** The client accepts response messages up to this size. */
const CLIENT_LIMIT = MiB;

let pki: TestPki;
let host: GrpcHost;
const containers: Container[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  host = await GrpcHost.start(
    { host: '127.0.0.1', port: 0, maxReceiveMessageBytes: HOST_LIMIT, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile } },
    [
      [
        ControlPlaneDefinition,
        {
          ping: (request: controlPlaneV1.PingRequest, call: ServerCallInfo) => ({ node: 'limits', sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() }),
          // `bulk`: `count` events of 60 KB each; otherwise one event whose node name alone is
          // twice the client's limit.
          watch: async function* (request: controlPlaneV1.WatchRequest): AsyncIterable<controlPlaneV1.MembershipEvent> {
            await Promise.resolve();
            if (request.fromNode === 'bulk') {
              for (let i = 0; i < request.count; i++) yield { node: 'b'.repeat(60_000), sequence: i };
              return;
            }
            yield { node: 'x'.repeat(2 * CLIENT_LIMIT), sequence: 1 };
          },
        },
      ],
    ],
  );
});

afterAll(async () => {
  for (const container of containers) await container.unbindAllAsync();
  await host.close(200);
  await pki.cleanup();
});

function factoryFor(http3: 'require' | 'disable'): IGrpcControlPlaneClientFactory {
  const { container, factory } = containerWith(
    mtlsOptions(pki, pki.client, {
      profiles: {
        'control-plane': {
          http3,
          deadlineMs: 10_000,
          retry: { maxAttempts: 1 },
          // The default breaker: a peer failure would open it after a few calls.
          limits: { maxSendMessageBytes: 16 * MiB, maxReceiveMessageBytes: CLIENT_LIMIT },
        },
      },
    }),
  );
  containers.push(container);
  return factory();
}

async function failureOf(run: () => Promise<unknown>): Promise<RpcError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

const ping = (sequence: number, payloadBytes = 0): controlPlaneV1.PingRequest => ({ fromNode: 'limits', sequence, payload: new Uint8Array(payloadBytes) });

describe.each(['require', 'disable'] as const)('message limits with http3 %s', (http3) => {
  const protocol = http3 === 'require' ? 'h3' : 'h2';

  it('a request message above the host limit fails that call with RESOURCE_EXHAUSTED, five times in a row without opening the circuit; the next call succeeds', async () => {
    const factory = factoryFor(http3);
    for (let i = 0; i < 5; i++) {
      const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(i, HOST_LIMIT + 200_000), { endpoint: host.url }));
      expect(error.statusName).toBe('RESOURCE_EXHAUSTED');
      expect(error.context.protocol).toBe(protocol);
    }
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(9), { endpoint: host.url })).resolves.toMatchObject({ protocol });
  });

  it('a response message above the client limit fails its stream with RESOURCE_EXHAUSTED while a concurrent call on the same connection succeeds', async () => {
    const factory = factoryFor(http3);
    await factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: host.url }); // connection up
    const concurrent = factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: host.url });
    const error = await failureOf(async () => {
      for await (const event of factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'limits', count: 1, intervalMs: 0 }, { endpoint: host.url })) void event;
    });
    expect(error.statusName).toBe('RESOURCE_EXHAUSTED');
    expect(error.context.protocol).toBe(protocol);
    await expect(concurrent).resolves.toMatchObject({ protocol });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(3), { endpoint: host.url })).resolves.toMatchObject({ protocol });
    expect(factory.connections().filter((c) => c.protocol === protocol)).toHaveLength(1);
  });

  it('server streams whose consumers stall (one event read, 6 MB more sent) do not block other calls on the connection', async () => {
    // Each stalled stream holds at most its flow-control window; over HTTP/3 all calls to an
    // endpoint share one QUIC connection, whose window must outlast a dozen such streams.
    const factory = factoryFor(http3);
    const held: AsyncIterator<controlPlaneV1.MembershipEvent>[] = [];
    for (let i = 0; i < 12; i++) {
      const events = factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'bulk', count: 100, intervalMs: 0 }, { endpoint: host.url, deadlineMs: 60_000 })[Symbol.asyncIterator]();
      await events.next();
      held.push(events);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the servers fill every window they are given
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(4), { endpoint: host.url, deadlineMs: 5_000 })).resolves.toMatchObject({ protocol });
    for (const events of held) await events.return?.();
  });
});
