/**
 * Against an independent HTTP/2-only gRPC server: grpc-go (Debian's golang-google-grpc-dev,
 * test/support/grpc-go/server.go). With the default profile (HTTP/3 preferred), the HTTP/3
 * attempt has no server: its UDP port is either closed (ICMP port unreachable, ECONNREFUSED
 * in milliseconds) or swallows datagrams (as a firewall that drops them would), so HTTP/3
 * hears nothing until the connect timeout. HTTP/2's answer must decide the call.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { controlPlaneV1, RpcError, TOKENS } from 'omnirelay';
import type { ProfileOptionsInput, TlsError } from 'omnirelay';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';
import { createContainer, factoryOf, onOnePortNumber, ping } from '../support/hosts.js';
import { silentTcp, startGrpcGoServer, swallowUdp, type GrpcGoServer, type SilentTcp, type UdpSink } from '../support/grpc-go.js';

const Ping = controlPlaneV1.ControlPlaneDefinition;
/** Far above what a definite HTTP/2 answer takes, so "quickly" is unambiguous. */
const CONNECT_TIMEOUT_MS = 8_000;

let pki: TestPki;
const servers: GrpcGoServer[] = [];
const sinks: UdpSink[] = [];
const containers: Container[] = [];

beforeAll(async () => {
  pki = await createTestPki();
});

afterAll(async () => {
  for (const c of containers) await c.unbindAllAsync();
  for (const s of servers) await s.close();
  for (const s of sinks) await s.close();
  await pki?.cleanup();
});

function mtls(client: Pick<Files, 'certFile' | 'keyFile'>, extra: Record<string, unknown> = {}): NonNullable<ProfileOptionsInput['tls']> {
  return { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile, ...extra };
}

/** The default control-plane profile (http3 'prefer'), one attempt, a long connect timeout. */
function preferProfile(tls: NonNullable<ProfileOptionsInput['tls']>, extra: ProfileOptionsInput = {}): ProfileOptionsInput {
  return { tls, retry: { maxAttempts: 1 }, connectTimeoutMs: CONNECT_TIMEOUT_MS, deadlineMs: CONNECT_TIMEOUT_MS + 2_000, ...extra };
}

async function grpcGo(leaf: Pick<Files, 'certFile' | 'keyFile'>, udp: 'closed' | 'swallowed', requireClientCert = true): Promise<GrpcGoServer> {
  const start = (): Promise<GrpcGoServer> => startGrpcGoServer({ certFile: leaf.certFile, keyFile: leaf.keyFile, caFile: pki.caFile, requireClientCert });
  if (udp === 'closed') {
    const server = await start();
    servers.push(server);
    return server;
  }
  const [server, sink] = await onOnePortNumber(start, (s) => s.port, (s) => s.close(), swallowUdp);
  servers.push(server);
  sinks.push(sink);
  return server;
}

function factory(profile: ProfileOptionsInput, meterProvider?: MeterProvider) {
  const c = createContainer({ profiles: { 'control-plane': profile } }, (container) => {
    if (meterProvider !== undefined) container.bind(TOKENS.Telemetry).toConstantValue({ meterProvider });
  });
  containers.push(c);
  return factoryOf(c);
}

async function failureOf(run: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await run();
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error('expected a failure, but the call succeeded');
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name} ${String((error as { code?: unknown }).code)}: ${error.message}` : String(error);
}

describe('grpc-go, HTTP/2 only (control)', () => {
  it.each(['closed', 'swallowed'] as const)('an mTLS ping is served over HTTP/2 with our identity (UDP %s)', async (udp) => {
    const server = await grpcGo(pki.server, udp);
    const result = await factory(preferProfile(mtls(pki.client))).unary(Ping, 'ping', ping('node-a', 7), { endpoint: server.url });
    expect({ protocol: result.protocol, node: result.message.node, sequence: result.message.sequence, identity: result.message.clientIdentity }).toEqual({
      protocol: 'h2',
      node: 'grpc-go',
      sequence: 7,
      identity: 'client',
    });
  });
});

/** Each TLS failure against grpc-go: the TlsError code HTTP/2's handshake gives. */
const TLS_CASES: ReadonlyArray<readonly [string, () => Pick<Files, 'certFile' | 'keyFile'>, () => NonNullable<ProfileOptionsInput['tls']>, TlsError['code']]> = [
  ['server certificate from a CA we do not trust', () => pki.server, () => mtls(pki.client, { caFile: pki.otherCaFile }), 'TLS_PEER_UNTRUSTED'],
  ['server certificate without the dialled name', () => pki.wrongNameServer, () => mtls(pki.client), 'TLS_PEER_NAME_MISMATCH'],
  ['expired server certificate', () => pki.expiredServer, () => mtls(pki.client), 'TLS_PEER_EXPIRED'],
  ['revoked server certificate (our CRL)', () => pki.revokedServer, () => mtls(pki.client, { crlFiles: [pki.crlFile] }), 'TLS_REVOKED'],
  ['our client certificate from another CA (grpc-go rejects it)', () => pki.server, () => mtls(pki.untrustedClient), 'TLS_CLIENT_CERT_REJECTED'],
  ['no client certificate (tls.mode "tls") where grpc-go requires one', () => pki.server, () => ({ mode: 'tls', caFile: pki.caFile }), 'TLS_CLIENT_CERT_REQUIRED'],
];

describe('TLS failures with HTTP/3 preferred (defect 1): HTTP/2 answers definitely, so the call fails with its TlsError at once', () => {
  for (const udp of ['closed', 'swallowed'] as const) {
    it.each(TLS_CASES)(`%s (UDP ${udp}) -> %#`, async (_name, leaf, tls, code) => {
      const server = await grpcGo(leaf(), udp);
      const { error, ms } = await failureOf(() => factory(preferProfile(tls())).unary(Ping, 'ping', ping(), { endpoint: server.url }));
      expect(describeError(error)).toMatch(new RegExp(`^TlsError ${code}: `));
      expect((error as TlsError).peer).toBe(`127.0.0.1:${server.port}`);
      // The HTTP/2 handshake takes milliseconds; waiting for HTTP/3 would take the connect timeout.
      expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS / 4);
    });
  }
});

describe('no client certificate against grpc-go requiring one (defect 6): TLS_CLIENT_CERT_REQUIRED, not REJECTED', () => {
  it.each(['disable', 'prefer'] as const)('http3 %s', async (http3) => {
    const server = await grpcGo(pki.server, 'closed');
    const { error } = await failureOf(() => factory(preferProfile({ mode: 'tls', caFile: pki.caFile }, { http3 })).unary(Ping, 'ping', ping(), { endpoint: server.url }));
    expect(describeError(error)).toMatch(/^TlsError TLS_CLIENT_CERT_REQUIRED: .*we sent none/);
  });
});

describe('HTTP/2 connected, HTTP/3 still pending (defect 2): calls use HTTP/2 at once', () => {
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  afterAll(async () => {
    await meterProvider.shutdown();
  });

  /** Calls that waited the race delay and then went to HTTP/2 (the fallback counter, reason race-delay). */
  async function raceFallbacks(): Promise<number> {
    await reader.forceFlush();
    const metric = metrics
      .getMetrics()
      .at(-1)
      ?.scopeMetrics.flatMap((m) => m.metrics)
      .find((m) => m.descriptor.name === 'grpc_outbound_protocol_fallbacks');
    return (metric?.dataPoints ?? []).filter((p) => p.attributes['omnirelay.fallback.reason'] === 'race-delay').reduce((sum, p) => sum + (p.value as number), 0);
  }

  it('12 calls in a row against grpc-go whose UDP port swallows datagrams: only the first waits the race delay', async () => {
    const server = await grpcGo(pki.server, 'swallowed');
    // The QUIC dial hears nothing for 8 s: every call below happens while it is pending.
    const f = factory(preferProfile(mtls(pki.client)), meterProvider);
    for (let i = 1; i <= 12; i++) {
      const result = await f.unary(Ping, 'ping', ping('node-a', i), { endpoint: server.url });
      expect({ protocol: result.protocol, sequence: result.message.sequence }).toEqual({ protocol: 'h2', sequence: i });
    }
    expect(await raceFallbacks()).toBe(1);
    const h3 = f.connections().filter((c) => c.protocol === 'h3');
    expect(h3).toHaveLength(1); // still dialling in the background, one dial for all 12 calls

    // The firewall goes away: the next QUIC retransmission meets ICMP port unreachable, which
    // ends the pending dial at once (not at the 8 s connect timeout) and is remembered.
    const started = performance.now();
    await sinks.pop()?.close();
    while (f.connections().some((c) => c.protocol === 'h3') && performance.now() - started < CONNECT_TIMEOUT_MS) await new Promise((resolve) => setTimeout(resolve, 20));
    const ended = performance.now() - started;
    expect(f.connections().filter((c) => c.protocol === 'h3')).toHaveLength(0);
    expect(ended).toBeLessThan(CONNECT_TIMEOUT_MS / 2);
    console.log(`pending HTTP/3 dial ended ${Math.round(ended)} ms after UDP started refusing`);
    const next = await f.unary(Ping, 'ping', ping('node-a', 13), { endpoint: server.url });
    expect(next.protocol).toBe('h2');
    expect(await raceFallbacks()).toBe(1);
  });
});

describe('no call outlives its deadline (defect 3)', () => {
  const DEADLINE_MS = 500;
  /** Generous: timers on a loaded machine; the connect timeout (8 s) is far beyond it. */
  const SETTLED_WITHIN_MS = DEADLINE_MS + 1_500;
  let silent: SilentTcp;
  beforeAll(async () => {
    let sink: UdpSink;
    [silent, sink] = await onOnePortNumber(() => silentTcp(), (s) => s.port, (s) => s.close(), swallowUdp);
    sinks.push(sink);
  });
  afterAll(async () => {
    await silent?.close();
  });

  const profiles: ReadonlyArray<readonly [string, ProfileOptionsInput]> = [
    ['http3 prefer', {}],
    ['http3 disable', { http3: 'disable' }],
    ['http3 require', { http3: 'require' }],
  ];

  async function expectWithinDeadline(f: ReturnType<typeof factory>, url: string): Promise<void> {
    const { error, ms } = await failureOf(() => f.unary(Ping, 'ping', ping(), { endpoint: url, deadlineMs: DEADLINE_MS }));
    expect(error).toBeInstanceOf(RpcError);
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED']).toContain((error as RpcError).statusName);
    expect(ms).toBeLessThan(SETTLED_WITHIN_MS);
  }

  for (const [name, extra] of profiles) {
    it(`${name}: https://127.0.0.1:1 (nothing listens), twice (fresh, then with what the first call left behind)`, async () => {
      const f = factory(preferProfile(mtls(pki.client), extra));
      await expectWithinDeadline(f, 'https://127.0.0.1:1');
      await expectWithinDeadline(f, 'https://127.0.0.1:1');
    });

    it(`${name}: UDP swallowed + a TCP port that accepts and never answers TLS, three times`, async () => {
      const f = factory(preferProfile(mtls(pki.client), extra));
      for (let i = 0; i < 3; i++) await expectWithinDeadline(f, `https://127.0.0.1:${silent.port}`);
    });
  }
});
