/**
 * gRPC over HTTP/3 under load, through the factory against our own GrpcHost (HTTP/2 and
 * HTTP/3 on one port), on 127.0.0.1 — what the QUIC driver must survive in production:
 * 1. many calls with 64 KiB requests all hitting their deadline while the server is still
 *    working (streams reset by the client while the server reads and answers them): every call
 *    ends with DEADLINE_EXCEEDED, nothing crashes, and the same factory keeps working over HTTP/3;
 * 2. 1,000 concurrent tiny calls on one HTTP/3 connection (the server grants 100 streams at a
 *    time), from a fresh connection and again on the warm one;
 * 3. 50 concurrent calls carrying 64 KiB each way, echoed back intact.
 * The breaker is out of the way (a failure count no test reaches) and nothing retries, so each
 * outcome is the transport's own; the HTTP/2 race is pushed beyond every test, so each call is
 * carried by HTTP/3 or fails.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, RpcError, type IGrpcControlPlaneClientFactory, type ServerCallInfo, type UnaryResult } from 'omnirelay';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition } = controlPlaneV1;
type PingRequest = controlPlaneV1.PingRequest;
type PingResponse = controlPlaneV1.PingResponse;

const KiB = 1024;
/** How long a `slow` ping keeps its handler busy: past the 2 s deadline of the calls that send it. */
const SLOW_HANDLER_MS = 3_000;

/** What the host's handlers saw and did. */
interface HostLog {
  /** Request payload sizes of every ping, in arrival order. */
  readonly payloadBytes: number[];
  /** Protocols of every ping. */
  readonly protocols: Set<string>;
  /** `slow` pings whose handler has returned. */
  slowDone: number;
  /** `slow` pings whose handler saw the call cancelled (client reset or server deadline). */
  slowCancelled: number;
}

/**
 * The ControlPlane service: `ping` echoes the request's sequence and payload back; a ping from
 * node `slow` first keeps its handler busy for {@link SLOW_HANDLER_MS} (ignoring cancellation,
 * as a handler that does blocking work would).
 */
function service(log: HostLog): Parameters<typeof GrpcHost.start<[typeof ControlPlaneDefinition]>>[1][number] {
  return [
    ControlPlaneDefinition,
    {
      ping: async (request: PingRequest, call: ServerCallInfo): Promise<PingResponse> => {
        log.payloadBytes.push(request.payload.length);
        log.protocols.add(call.protocol);
        if (request.fromNode === 'slow') {
          await new Promise((resolve) => setTimeout(resolve, SLOW_HANDLER_MS));
          if (call.signal.aborted) log.slowCancelled++;
          log.slowDone++;
        }
        return { node: 'load-node', sequence: request.sequence, clientIdentity: call.clientIdentity, payload: request.payload };
      },
      watch: async function* (): AsyncIterable<controlPlaneV1.MembershipEvent> {
        // not used here
      },
    },
  ] as const;
}

function ping(sequence: number, payload: Uint8Array = new Uint8Array(), fromNode = 'load'): PingRequest {
  return { fromNode, sequence, payload };
}

let pki: TestPki;
let host: GrpcHost;
const log: HostLog = { payloadBytes: [], protocols: new Set(), slowDone: 0, slowCancelled: 0 };
const containers: Container[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  host = await GrpcHost.start({ host: '127.0.0.1', port: 0, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile] } }, [service(log)]);
  expect(host.protocols).toEqual(['h2', 'h3']);
});

afterAll(async () => {
  for (const container of containers) await container.unbindAllAsync();
  await host.close(200);
  await pki.cleanup();
});

/** A factory of its own (so its own HTTP/3 connection): HTTP/3 only in practice, no retries, no breaker. */
function factoryFor(deadlineMs: number): IGrpcControlPlaneClientFactory {
  const { container, factory } = containerWith(
    mtlsOptions(pki, pki.client, {
      profiles: {
        'control-plane': {
          http3: 'prefer',
          // HTTP/2 is never raced in: a call HTTP/3 cannot carry fails instead.
          http3RaceDelayMs: 600_000,
          connectTimeoutMs: deadlineMs,
          deadlineMs,
          retry: { maxAttempts: 1 },
          breaker: { mode: 'consecutive', consecutiveFailures: 100_000 },
        },
      },
    }),
  );
  containers.push(container);
  return factory();
}

function h3Connections(factory: IGrpcControlPlaneClientFactory): number {
  return factory.connections().filter((c) => c.protocol === 'h3').length;
}

/** Outcomes of settled calls, counted. */
function tally<T>(outcomes: PromiseSettledResult<UnaryResult<T>>[]): { ok: UnaryResult<T>[]; failed: unknown[] } {
  const ok: UnaryResult<T>[] = [];
  const failed: unknown[] = [];
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') ok.push(outcome.value);
    else failed.push(outcome.reason);
  }
  return { ok, failed };
}

/** A failure for an assertion message: its error name and message. */
function describeFailure(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  return error instanceof Error ? `${error.name}: ${error.message}` : JSON.stringify(error);
}

describe('gRPC over HTTP/3 under load (factory → GrpcHost, HTTP/2 + HTTP/3 on one port)', () => {
  it('20 concurrent 64 KiB calls that all outlive their 2 s deadline each end with DEADLINE_EXCEEDED, and the factory keeps working over HTTP/3', async () => {
    const factory = factoryFor(2_000);
    // Connect first, so every deadline covers its request alone.
    expect((await factory.unary(ControlPlaneDefinition, 'ping', ping(0), { endpoint: host.url })).protocol).toBe('h3');
    const before = log.payloadBytes.length;
    const slowBefore = log.slowDone;

    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => factory.unary(ControlPlaneDefinition, 'ping', ping(i + 1, randomBytes(64 * KiB), 'slow'), { endpoint: host.url })));
    const { ok, failed } = tally(outcomes);
    expect(ok).toHaveLength(0);
    expect(failed).toHaveLength(20);
    for (const error of failed) {
      expect(error).toBeInstanceOf(RpcError);
      expect(error).toMatchObject({ statusName: 'DEADLINE_EXCEEDED' });
      expect((error as RpcError).context.protocol).toBe('h3');
    }
    // Every request reached its handler whole.
    expect(log.payloadBytes.slice(before)).toEqual(Array.from({ length: 20 }, () => 64 * KiB));

    // Right after the deadlines, with the handlers still busy: a call succeeds over HTTP/3.
    const next = await factory.unary(ControlPlaneDefinition, 'ping', ping(100), { endpoint: host.url, deadlineMs: 10_000 });
    expect(next).toMatchObject({ protocol: 'h3', message: { sequence: 100 } });

    // Once the handlers have returned (into streams the client gave up on), the process is
    // still here and the same factory still calls over HTTP/3.
    for (let i = 0; i < 200 && log.slowDone - slowBefore < 20; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(log.slowDone - slowBefore).toBe(20);
    expect(log.slowCancelled).toBe(20);
    const after = await factory.unary(ControlPlaneDefinition, 'ping', ping(101, randomBytes(64 * KiB)), { endpoint: host.url, deadlineMs: 10_000 });
    expect(after).toMatchObject({ protocol: 'h3', message: { sequence: 101 } });
    expect(after.message.payload.length).toBe(64 * KiB);
    expect(h3Connections(factory)).toBe(1);
  }, 60_000);

  it('completes 1,000 concurrent tiny calls on one HTTP/3 connection, from a fresh connection and again on the warm one', async () => {
    const factory = factoryFor(60_000);
    expect(h3Connections(factory)).toBe(0);
    for (const round of ['fresh', 'warm']) {
      const outcomes = await Promise.allSettled(Array.from({ length: 1_000 }, (_, i) => factory.unary(ControlPlaneDefinition, 'ping', ping(i), { endpoint: host.url })));
      const { ok, failed } = tally(outcomes);
      expect({ round, failed: failed.length, firstFailure: describeFailure(failed[0]) }).toEqual({ round, failed: 0, firstFailure: undefined });
      expect(ok).toHaveLength(1_000);
      expect(ok.filter((result) => result.protocol === 'h3')).toHaveLength(1_000);
      expect(ok.map((result) => Number(result.message.sequence))).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
      expect(h3Connections(factory)).toBe(1);
    }
  }, 120_000);

  it('completes 50 concurrent calls carrying 64 KiB each way, echoed intact over HTTP/3', async () => {
    const factory = factoryFor(30_000);
    const payloads = Array.from({ length: 50 }, () => randomBytes(64 * KiB));
    const outcomes = await Promise.allSettled(payloads.map((payload, i) => factory.unary(ControlPlaneDefinition, 'ping', ping(i, payload), { endpoint: host.url })));
    const { ok, failed } = tally(outcomes);
    expect({ failed: failed.length, firstFailure: describeFailure(failed[0]) }).toEqual({ failed: 0, firstFailure: undefined });
    expect(ok).toHaveLength(50);
    for (const [i, result] of ok.entries()) {
      expect(result.protocol).toBe('h3');
      expect(Number(result.message.sequence)).toBe(i);
      expect(Buffer.compare(Buffer.from(result.message.payload), payloads[i] as Buffer)).toBe(0);
    }
    expect(h3Connections(factory)).toBe(1);
  }, 60_000);
});
