/**
 * HTTP/3 through a network that delays and reorders datagrams (`tc netem` is not available on
 * these kernels, so test/support/udp-relay.ts does it with real sockets on 127.0.0.1): every
 * datagram, both ways, is held for its own uniformly random 20–80 ms, so datagrams in flight
 * overtake each other. The peer is one `https://127.0.0.1:P` — HTTP/2 on TCP P (a GrpcHost with
 * `http3: false`), HTTP/3 behind the relay on UDP P (a GrpcH3Host on another port) — called
 * through the public factory (mTLS, HTTP/3 preferred, HTTP/2 the fallback).
 *
 * Asserted:
 * - unary calls and bidi streams carrying 1 MiB messages of random bytes come back byte for byte
 *   (echoed by the server; SHA-256 compared), several in flight at once;
 * - they stay on HTTP/3: every unary result says `h3`, the HTTP/2 side served nothing, the
 *   factory holds no HTTP/2 connection;
 * - the relay really delayed and reordered: `relay.reordered` > 0 (with the delay removed it is 0
 *   and this test fails).
 *
 * The profile raises `http3RaceDelayMs` to 5 s, as a user on a path with this latency would: with
 * 20–80 ms per datagram the QUIC handshake takes longer than the default 250 ms, so the first
 * call would race HTTP/2 (and could be answered over it) while HTTP/3 is still dialling.
 * Deadlines are liveness bounds (60 s), not speed targets; the time taken is printed.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import type { Container } from 'inversify';
import { controlPlaneV1, GrpcH3Host, GrpcHost, type GrpcHostTls, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { onOnePortNumber } from '../support/hosts.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.js';

const { ControlPlaneDefinition, ControlPlaneStreamsDefinition } = controlPlaneV1;
type Ping = controlPlaneV1.PingRequest;
type Pong = controlPlaneV1.PingResponse;
type Protocol = 'h2' | 'h3';

const MiB = 1024 * 1024;
const DELAY = { minMs: 20, maxMs: 80 };
const UNARY_CALLS = 4;
const UNARY_IN_FLIGHT = 3;
const STREAMS = 2;
const MESSAGES_PER_STREAM = 3;
const DEADLINE_MS = 60_000;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function services(served: Record<Protocol, number>): Parameters<typeof GrpcHost.start>[1] {
  return [
    [
      ControlPlaneDefinition,
      {
        ping: (request: Ping, info: ServerCallInfo): Pong => {
          served[info.protocol]++;
          return { node: 'echo', sequence: request.sequence, clientIdentity: info.clientIdentity, payload: request.payload };
        },
        watch: async function* (): AsyncIterable<controlPlaneV1.MembershipEvent> {
          await Promise.resolve();
          yield* [];
        },
      },
    ],
    [
      ControlPlaneStreamsDefinition,
      {
        collect: async (incoming: AsyncIterable<Ping>, info: ServerCallInfo): Promise<Pong> => {
          served[info.protocol]++;
          let count = 0;
          for await (const _ of incoming) count++;
          return { node: 'collect', sequence: count, clientIdentity: info.clientIdentity, payload: new Uint8Array() };
        },
        chat: async function* (incoming: AsyncIterable<Ping>, info: ServerCallInfo): AsyncIterable<Pong> {
          served[info.protocol]++;
          for await (const request of incoming) yield { node: 'chat', sequence: request.sequence, clientIdentity: info.clientIdentity, payload: request.payload };
        },
      },
    ],
  ] as Parameters<typeof GrpcHost.start>[1];
}

describe(`HTTP/3 through a relay that delays every datagram ${DELAY.minMs}–${DELAY.maxMs} ms (so reorders them)`, () => {
  const served: Record<Protocol, number> = { h2: 0, h3: 0 };
  let pki: TestPki;
  let h3: GrpcH3Host | undefined;
  let h2: GrpcHost | undefined;
  let relay: UdpRelay | undefined;
  let container: Container | undefined;
  let factory: IGrpcControlPlaneClientFactory;
  let endpoint = '';

  beforeAll(async () => {
    pki = await createTestPki();
    const tls: GrpcHostTls = { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile };
    h3 = await GrpcH3Host.start({ host: '127.0.0.1', port: 0, tls }, services(served));
    // The relay takes UDP on the HTTP/2 host's port number (another one when something holds it).
    [h2, relay] = await onOnePortNumber(
      () => GrpcHost.start({ host: '127.0.0.1', port: 0, tls, http3: false }, services(served)),
      (host) => host.port,
      (host) => host.close(0),
      (port) => startUdpRelay(port, h3!.port, { delay: DELAY }),
    );
    endpoint = h2.url;
    const made = containerWith(mtlsOptions(pki, pki.client, { profiles: { 'control-plane': { http3: 'prefer', http3RaceDelayMs: 5_000, deadlineMs: DEADLINE_MS, connectTimeoutMs: 10_000 } } }));
    container = made.container;
    factory = made.factory();
  }, 60_000);

  afterAll(async () => {
    await container?.unbindAllAsync();
    await relay?.close();
    expect(relay?.held ?? 0).toBe(0); // every delay timer cleared
    await h2?.close(0);
    await h3?.close(0);
    await pki?.cleanup();
  }, 60_000);

  it('1 MiB unary calls and bidi streams arrive intact, all over HTTP/3, while datagrams are reordered', async () => {
    const startedAt = Date.now();
    // Unary: UNARY_CALLS echoes of 1 MiB of random bytes, UNARY_IN_FLIGHT at a time.
    const protocols: string[] = [];
    let next = 0;
    const unaryWorker = async (): Promise<void> => {
      while (next < UNARY_CALLS) {
        const sequence = ++next;
        const payload = randomBytes(MiB);
        const result = await factory.unary(ControlPlaneDefinition, 'ping', { fromNode: 'test', sequence, payload }, { endpoint, deadlineMs: DEADLINE_MS });
        protocols.push(result.protocol);
        expect(result.message.sequence).toBe(sequence);
        expect(result.message.payload.length).toBe(MiB);
        expect(sha256(result.message.payload)).toBe(sha256(payload));
      }
    };
    await unaryWorker(); // the first call alone: it dials HTTP/3
    await Promise.all(Array.from({ length: UNARY_IN_FLIGHT }, unaryWorker));
    const unaryMs = Date.now() - startedAt;

    // Bidi streams, side by side: each sends MESSAGES_PER_STREAM messages of 1 MiB; each is echoed.
    const streamsStartedAt = Date.now();
    await Promise.all(
      Array.from({ length: STREAMS }, async (_, stream) => {
        const sent = Array.from({ length: MESSAGES_PER_STREAM }, () => randomBytes(MiB));
        async function* requests(): AsyncGenerator<Ping> {
          for (const [index, payload] of sent.entries()) {
            await Promise.resolve(); // a producer that awaits its source between messages
            yield { fromNode: `stream-${stream}`, sequence: index + 1, payload };
          }
        }
        const received: Pong[] = [];
        for await (const response of factory.bidiStream(ControlPlaneStreamsDefinition, 'chat', requests(), { endpoint, deadlineMs: DEADLINE_MS })) received.push(response);
        expect(received.map((r) => r.sequence)).toEqual(sent.map((_, index) => index + 1));
        expect(received.map((r) => sha256(r.payload))).toEqual(sent.map(sha256));
      }),
    );
    const streamsMs = Date.now() - streamsStartedAt;

    expect(protocols).toEqual(Array.from({ length: UNARY_CALLS }, () => 'h3'));
    expect(served).toEqual({ h2: 0, h3: UNARY_CALLS + STREAMS });
    expect(factory.connections().filter((c) => c.protocol === 'h2')).toEqual([]);
    // The relay really held and reordered datagrams, both ways, during these calls.
    const stats = { relayed: relay!.relayed, delayed: relay!.delayed, reordered: relay!.reordered };
    expect(stats.delayed).toBeGreaterThan(0);
    expect(stats.reordered).toBeGreaterThan(0);
    console.info(
      `h3 through a ${DELAY.minMs}–${DELAY.maxMs} ms delaying relay: ${UNARY_CALLS} × 1 MiB unary echoes in ${unaryMs} ms, ${STREAMS} bidi streams × ${MESSAGES_PER_STREAM} × 1 MiB in ${streamsMs} ms; ` +
        `relay forwarded ${stats.relayed} datagrams (${stats.delayed} held), ${stats.reordered} of them reordered (${((100 * stats.reordered) / stats.relayed).toFixed(1)} %)`,
    );
  }, 180_000);
});
