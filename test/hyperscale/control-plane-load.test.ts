/**
 * Hyperscale tier (issue 16 part 3): rapid control-plane calls through the factory (default
 * `control-plane` profile, mTLS) over 8 peers in this process — 4 serving HTTP/3 and HTTP/2 on
 * one port number, 4 HTTP/2 only — spread by the round-robin chooser over a `peers` list, 64
 * calls in flight. Halfway, UDP to two of the HTTP/3 peers is blocked with real sockets: one
 * behind a relay that starts dropping every datagram (a firewall that drops), one behind a
 * relay whose port closes (the kernel answers ICMP port unreachable: a firewall that rejects).
 *
 * Asserted (behaviour, never timing):
 * - every call succeeds, except during the block phase calls to the dropped peer, which may fail
 *   with a typed RpcError (DEADLINE_EXCEEDED / UNAVAILABLE) — never EMFILE, EADDRNOTAVAIL or an
 *   untyped error — and no call outlives its deadline (none hangs);
 * - sockets stay bounded by the design: the channel cache keeps one connection per (profile,
 *   endpoint, protocol), so at most one HTTP/2 (TCP) connection per peer and one QUIC (UDP)
 *   connection per HTTP/3 peer, plus one HTTP/3 connection being replaced per blocked peer;
 *   counted from /proc/self/fd joined with /proc/net/{tcp,udp}* and from the hosts' own
 *   HTTP/3 connection counters (open and accepted: no reconnect churn);
 * - after the block the protocol mix is: the two blocked peers over HTTP/2 only, the two other
 *   HTTP/3 peers over HTTP/3 only, the HTTP/2-only peers over HTTP/2 only;
 * - the heap after the calls and after dispose is back near its baseline (after forced GCs);
 * - after dispose no client socket is left, and once the hosts are closed no socket or timer
 *   of this test is left (the suite also runs under --detectOpenHandles).
 *
 * Printed (figures, not assertions): calls/s, p50/p99 latency per protocol, peak sockets,
 * peak heap.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  controlPlaneV1,
  createControlPlaneClientFactory,
  GrpcH3Host,
  GrpcHost,
  RpcError,
  type GrpcHostTls,
  type Http3ConnectionStats,
  type IGrpcControlPlaneClientFactory,
  type ServerCallInfo,
} from 'omnirelay';
import { onOnePortNumber } from '../support/hosts.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { collectGarbage, ownSockets } from '../support/sockets.js';
import { startUdpRelay, type UdpRelay } from '../support/udp-relay.js';

const { ControlPlaneDefinition } = controlPlaneV1;
type Protocol = 'h2' | 'h3';
type PeerKind = 'h3' | 'h3-dropped' | 'h3-refused' | 'h2';

const MiB = 1024 * 1024;
/** Calls in flight at once: rapid, yet on a loaded 2-core machine far from the 2 s deadline. */
const IN_FLIGHT = 64;
const CALLS_BEFORE_BLOCK = 5_000;
/** At least this many calls in the block phase, and more until both blocked peers are served over HTTP/2. */
const CALLS_DURING_BLOCK = 5_000;
const CALLS_AFTER_BLOCK = 2_000;
/**
 * Each call's deadline. The control-plane preset's 2 s is a latency target for a healthy
 * machine; this tier runs on a shared 2-core machine where other suites starve the process for
 * seconds at a time (healthy calls then missed 2 s), so calls set a longer one. It still bounds
 * every call: none may hang.
 */
const DEADLINE_MS = 10_000;
/** How late a call may end past its deadline on a busy 2-core machine before it counts as hung. */
const HANG_SLACK_MS = 3_000;
/** The block phase ends once both blocked peers answer over HTTP/2, or fails after this long (the QUIC idle timeout is 15 s). */
const BLOCK_PHASE_LIMIT_MS = 60_000;

interface Peer {
  readonly name: string;
  readonly kind: PeerKind;
  readonly url: string;
  readonly port: number;
  /** Calls the peer's handlers served, by protocol. */
  readonly served: Record<Protocol, number>;
  /** The peer's HTTP/3 side: open and accepted QUIC connections (zeros for HTTP/2-only peers). */
  http3(): Http3ConnectionStats;
  readonly relay?: UdpRelay | undefined;
  close(): Promise<void>;
}

function service(name: string, served: Record<Protocol, number>): Parameters<typeof GrpcHost.start<[typeof ControlPlaneDefinition]>>[1][number] {
  return [
    ControlPlaneDefinition,
    {
      ping: (request: controlPlaneV1.PingRequest, call: ServerCallInfo): controlPlaneV1.PingResponse => {
        served[call.protocol]++;
        return { node: name, sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
      },
      watch: async function* () {},
    },
  ];
}

async function startPeer(name: string, kind: 'h3' | 'h2', tls: GrpcHostTls): Promise<Peer> {
  const served = { h2: 0, h3: 0 };
  const host = await GrpcHost.start({ host: '127.0.0.1', port: 0, tls, http3: kind === 'h3' }, [service(name, served)]);
  return { name, kind, url: host.url, port: host.port, served, http3: () => host.http3Connections, close: () => host.close(500) };
}

/**
 * An HTTP/3 peer whose UDP goes through a relay: HTTP/2 on TCP port P (a GrpcHost with
 * http3: false), HTTP/3 served by a GrpcH3Host on another port, and the relay on UDP port P —
 * so to the client it is one `https://127.0.0.1:P` serving both, until the relay fails.
 */
async function startRelayedPeer(name: string, kind: 'h3-dropped' | 'h3-refused', tls: GrpcHostTls): Promise<Peer> {
  const served = { h2: 0, h3: 0 };
  const h3 = await GrpcH3Host.start({ host: '127.0.0.1', port: 0, tls }, [service(name, served)]);
  try {
    const [h2, relay] = await onOnePortNumber(
      () => GrpcHost.start({ host: '127.0.0.1', port: 0, tls, http3: false }, [service(name, served)]),
      (host) => host.port,
      (host) => host.close(0),
      (port) => startUdpRelay(port, h3.port),
    );
    return {
      name, kind, url: h2.url, port: h2.port, served, relay,
      http3: () => h3.connectionStats,
      close: async () => {
        await relay.close();
        await Promise.all([h2.close(500), h3.close(500)]);
      },
    };
  } catch (error) {
    await h3.close(0);
    throw error;
  }
}

/** The port of an endpoint as the factory reports it (`127.0.0.1:port` or a URL). */
function portOf(endpoint: string): number {
  return Number(/:(\d+)\/?$/.exec(endpoint)?.[1] ?? Number.NaN);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** What one phase of calls did. */
interface Phase {
  calls: number;
  ok: number;
  /** Per peer port: calls answered, by protocol. */
  readonly byPeer: Map<number, Record<Protocol, number>>;
  readonly latencyMs: Record<Protocol, number[]>;
  readonly failures: unknown[];
  /** The longest call, successful or not. */
  slowestMs: number;
  elapsedMs: number;
}

/** Peaks over the whole run, sampled every SAMPLE_EVERY completed calls. */
interface Peaks {
  /** Our TCP connections to the peers' ports (ESTABLISHED): HTTP/2 client side. */
  clientTcp: number;
  /** The peers' accepted TCP connections (local port = a peer's port, ESTABLISHED): HTTP/2 server side. */
  serverTcp: number;
  /** Our UDP sockets connected to an HTTP/3 peer's port: one per QUIC client connection. */
  clientUdp: number;
  /** Open QUIC connections on the hosts (their counters). */
  serverQuic: number;
  /** Socket descriptors of the process above the baseline before the factory existed. */
  socketsAboveBaseline: number;
  heapUsedBytes: number;
}
const SAMPLE_EVERY = 200;

describe('hyperscale: rapid control-plane calls over 8 peers, HTTP/3 blocked halfway', () => {
  let pki: TestPki;
  const peers: Peer[] = [];
  let closed = false;

  const closeAll = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(peers.map((peer) => peer.close()));
  };

  beforeAll(async () => {
    pki = await createTestPki();
    const tls: GrpcHostTls = { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, requireClientCertificate: true };
    peers.push(
      await startPeer('h3-a', 'h3', tls),
      await startPeer('h3-b', 'h3', tls),
      await startRelayedPeer('h3-dropped', 'h3-dropped', tls),
      await startRelayedPeer('h3-refused', 'h3-refused', tls),
      ...(await Promise.all(['h2-a', 'h2-b', 'h2-c', 'h2-d'].map((name) => startPeer(name, 'h2', tls)))),
    );
  });

  afterAll(async () => {
    await closeAll();
    await pki.cleanup();
  });

  it('keeps sockets, QUIC connections and heap bounded over 12,000+ calls and moves blocked HTTP/3 peers to HTTP/2', async () => {
    const urls = peers.map((peer) => peer.url);
    const peerPorts = new Set(peers.map((peer) => peer.port));
    const h3Ports = new Set(peers.filter((peer) => peer.kind !== 'h2').map((peer) => peer.port));
    const byKind = (kind: PeerKind): Peer => peers.find((peer) => peer.kind === kind)!;
    const dropped = byKind('h3-dropped');
    const refused = byKind('h3-refused');
    const options = { profiles: { 'control-plane': { tls: { mode: 'mtls' as const, certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile } } } };

    // Warm-up with a throw-away factory: lazily loaded code (the QUIC binding, TLS parsing) and
    // JIT output are part of the process, not of the calls, so the baseline is taken after it.
    const warmup = createControlPlaneClientFactory({ options });
    for (let i = 0; i < 64; i++) await warmup.unary(ControlPlaneDefinition, 'ping', { fromNode: 'warmup', sequence: i, payload: new Uint8Array() }, { peers: urls });
    await warmup.dispose();
    await settle(() => clientSockets(peerPorts, h3Ports).tcp + clientSockets(peerPorts, h3Ports).udp === 0);
    await collectGarbage();
    const baselineHeap = process.memoryUsage().heapUsed;
    const baselineSockets = ownSockets().total;
    const timersBefore = countTimers();
    const acceptedBefore = new Map(peers.map((peer) => [peer.name, peer.http3().accepted]));

    const factory = createControlPlaneClientFactory({ options });
    const peaks: Peaks = { clientTcp: 0, serverTcp: 0, clientUdp: 0, serverQuic: 0, socketsAboveBaseline: 0, heapUsedBytes: 0 };
    const sample = (): void => {
      const census = ownSockets();
      const client = clientSockets(peerPorts, h3Ports, census.sockets);
      peaks.clientTcp = Math.max(peaks.clientTcp, client.tcp);
      peaks.clientUdp = Math.max(peaks.clientUdp, client.udp);
      peaks.serverTcp = Math.max(peaks.serverTcp, census.sockets.filter((s) => s.protocol === 'tcp' && s.state === '01' && peerPorts.has(s.localPort)).length);
      peaks.serverQuic = Math.max(peaks.serverQuic, peers.reduce((sum, peer) => sum + peer.http3().open, 0));
      peaks.socketsAboveBaseline = Math.max(peaks.socketsAboveBaseline, census.total - baselineSockets);
      peaks.heapUsedBytes = Math.max(peaks.heapUsedBytes, process.memoryUsage().heapUsed);
    };

    // 1. Every peer healthy.
    const before = await drive(factory, urls, { calls: CALLS_BEFORE_BLOCK, sample });
    expect(before.failures).toEqual([]);
    expect(before.ok).toBe(CALLS_BEFORE_BLOCK);
    // Round robin over 8 peers: each gets its eighth (give or take the calls in flight).
    for (const peer of peers) {
      const served = before.byPeer.get(peer.port) ?? { h2: 0, h3: 0 };
      expect(served.h2 + served.h3).toBeGreaterThan(CALLS_BEFORE_BLOCK / 8 / 2);
      // HTTP/2-only peers are never reached over HTTP/3; HTTP/3 peers carry their calls over HTTP/3
      // (the first calls may go over HTTP/2 while the QUIC handshake races it).
      if (peer.kind === 'h2') expect(served.h3).toBe(0);
      else expect(served.h3).toBeGreaterThan(served.h2);
    }
    expect(clientSockets(peerPorts, h3Ports).tcp).toBeGreaterThan(0); // the counters see our connections

    // 2. Block UDP to two HTTP/3 peers, under load.
    dropped.relay!.drop();
    await refused.relay!.refuse();
    const servedBeforeBlock = { dropped: { ...dropped.served }, refused: { ...refused.served } };
    const blockStarted = performance.now();
    const during = await drive(factory, urls, {
      calls: CALLS_DURING_BLOCK,
      // Both blocked peers answer over HTTP/2 again (the dropped one once its QUIC connection hit
      // the idle timeout or its dial lost the race), and no HTTP/3 entry of theirs is active.
      until: () =>
        dropped.served.h2 - servedBeforeBlock.dropped.h2 >= 50 &&
        refused.served.h2 - servedBeforeBlock.refused.h2 >= 50 &&
        !factory.connections().some((c) => c.protocol === 'h3' && c.state === 'active' && (portOf(c.authority) === dropped.port || portOf(c.authority) === refused.port)),
      limitMs: BLOCK_PHASE_LIMIT_MS,
      sample,
    });
    const blockPhaseMs = performance.now() - blockStarted;
    // Only calls to the dropped peer may fail, only with a typed error, and none with a socket
    // exhaustion error (EMFILE, EADDRNOTAVAIL) anywhere in it.
    // A call whose attempt at the dropped peer failed retryably late may retry elsewhere with the
    // little time left and end DEADLINE_EXCEEDED there, marked `callerDeadline` (the attempt had
    // less than the profile's deadline); before and after the block no call fails at all.
    const nameOf = (endpoint: string): string => peers.find((peer) => peer.port === portOf(endpoint))?.name ?? endpoint;
    const kinds = new Map<string, number>();
    const unexpected: string[] = [];
    for (const failure of during.failures) {
      const described = failure instanceof RpcError ? `${nameOf(failure.context.endpoint)}: ${failure.statusName} over ${failure.context.protocol}${failure.context.failure !== undefined ? ` (${failure.context.failure})` : ''}${failure.context.callerDeadline === true ? ' (retry with the rest of the deadline)' : ''}` : String(failure);
      kinds.set(described, (kinds.get(described) ?? 0) + 1);
      const atDroppedPeer = failure instanceof RpcError && portOf(failure.context.endpoint) === dropped.port && ['DEADLINE_EXCEEDED', 'UNAVAILABLE'].includes(failure.statusName);
      const retryOutOfTime = failure instanceof RpcError && failure.statusName === 'DEADLINE_EXCEEDED' && failure.context.callerDeadline === true;
      if (!atDroppedPeer && !retryOutOfTime) unexpected.push(failure instanceof RpcError ? `${nameOf(failure.context.endpoint)}: ${failure.message}` : String(failure));
    }
    console.log(`hyperscale: failures during the block: ${JSON.stringify(Object.fromEntries(kinds))}`);
    expect(unexpected).toEqual([]);
    expect(during.ok + during.failures.length).toBe(during.calls);
    expect(during.calls).toBeGreaterThanOrEqual(CALLS_DURING_BLOCK);

    // 3. After the block: the expected protocol mix, every call succeeding.
    const after = await drive(factory, urls, { calls: CALLS_AFTER_BLOCK, sample });
    expect(after.failures).toEqual([]);
    for (const peer of peers) {
      const served = after.byPeer.get(peer.port) ?? { h2: 0, h3: 0 };
      expect({ peer: peer.name, total: served.h2 + served.h3 > 0 }).toEqual({ peer: peer.name, total: true });
      // blocked peers and HTTP/2-only peers: HTTP/2 only; the two unblocked HTTP/3 peers: HTTP/3 only.
      const expected = peer.kind === 'h3' ? { h2: 0, h3: served.h3 } : { h2: served.h2, h3: 0 };
      expect({ peer: peer.name, ...served }).toEqual({ peer: peer.name, ...expected });
    }

    for (const phase of [before, during, after]) expect(phase.slowestMs).toBeLessThanOrEqual(DEADLINE_MS + HANG_SLACK_MS);
    const text = JSON.stringify([...before.failures, ...during.failures, ...after.failures].map(String));
    expect(text).not.toMatch(/EMFILE|EADDRNOTAVAIL|ENOBUFS/);

    // Bounds that follow from the design: one HTTP/2 connection per peer (8), one QUIC connection
    // per HTTP/3 peer (4) plus, per blocked peer, the one being replaced (its socket lives until the
    // connection ends); the hosts accepted no more QUIC connections than that (no reconnect churn:
    // the blocked peers' redials never reach their hosts).
    expect(peaks.clientTcp).toBeLessThanOrEqual(peers.length);
    expect(peaks.serverTcp).toBeLessThanOrEqual(peers.length);
    expect(peaks.clientUdp).toBeLessThanOrEqual(h3Ports.size + 2);
    expect(peaks.serverQuic).toBeLessThanOrEqual(h3Ports.size);
    // One QUIC connection per HTTP/3 peer for the whole run (a second only if a dial failed on the
    // loaded machine); a reconnect loop would show dozens.
    for (const peer of peers.filter((p) => p.kind !== 'h2')) {
      const accepted = peer.http3().accepted - acceptedBefore.get(peer.name)!;
      expect({ peer: peer.name, acceptedAtLeastOne: accepted >= 1, acceptedAtMostTwo: accepted <= 2 }).toEqual({ peer: peer.name, acceptedAtLeastOne: true, acceptedAtMostTwo: true });
    }
    // Every socket the process opened beyond the baseline: 8 HTTP/2 client + 8 server ends, the
    // QUIC sockets, the relays' upstream sockets (one per QUIC client connection they carried).
    expect(peaks.socketsAboveBaseline).toBeLessThanOrEqual(2 * peers.length + 2 * (h3Ports.size + 2));

    // Heap: the calls themselves leave nothing behind (12,000+ calls; a leak of 1 KiB per call is 12 MiB).
    await collectGarbage();
    const heapAfterCalls = process.memoryUsage().heapUsed;
    await factory.dispose();
    await settle(() => {
      const client = clientSockets(peerPorts, h3Ports);
      return client.tcp + client.udp === 0;
    });
    const leftAfterDispose = clientSockets(peerPorts, h3Ports);
    await collectGarbage();
    const heapAfterDispose = process.memoryUsage().heapUsed;

    const total = before.calls + during.calls + after.calls;
    const all = { h2: [...before.latencyMs.h2, ...during.latencyMs.h2, ...after.latencyMs.h2].sort((a, b) => a - b), h3: [...before.latencyMs.h3, ...during.latencyMs.h3, ...after.latencyMs.h3].sort((a, b) => a - b) };
    const figure = (values: readonly number[], p: number): string => percentile(values, p).toFixed(1);
    const rate = (phase: Phase): string => ((phase.calls / phase.elapsedMs) * 1000).toFixed(0);
    console.log(
      [
        `hyperscale: ${total} calls over ${peers.length} peers (${h3Ports.size} HTTP/3, ${peers.length - h3Ports.size} HTTP/2 only), ${IN_FLIGHT} in flight`,
        `  calls/s: before block ${rate(before)}, during block ${rate(during)} (${during.calls} calls, ${(blockPhaseMs / 1000).toFixed(1)} s, ${during.failures.length} failed at the dropped peer), after ${rate(after)}`,
        `  latency ms: h3 p50 ${figure(all.h3, 50)} p99 ${figure(all.h3, 99)} (${all.h3.length} calls); h2 p50 ${figure(all.h2, 50)} p99 ${figure(all.h2, 99)} (${all.h2.length} calls); slowest ${Math.max(before.slowestMs, during.slowestMs, after.slowestMs).toFixed(0)}`,
        `  peak sockets: client TCP ${peaks.clientTcp}, server TCP ${peaks.serverTcp}, client UDP (QUIC) ${peaks.clientUdp}, server QUIC ${peaks.serverQuic}, all sockets +${peaks.socketsAboveBaseline} over baseline; QUIC connections accepted per HTTP/3 host ${peers.filter((p) => p.kind !== 'h2').map((p) => `${p.name} ${p.http3().accepted - acceptedBefore.get(p.name)!}`).join(', ')}`,
        `  heap MiB: baseline ${(baselineHeap / MiB).toFixed(1)}, peak ${(peaks.heapUsedBytes / MiB).toFixed(1)} (no GC), after calls ${(heapAfterCalls / MiB).toFixed(1)}, after dispose ${(heapAfterDispose / MiB).toFixed(1)} (after GC)`,
      ].join('\n'),
    );

    expect(heapAfterCalls - baselineHeap).toBeLessThanOrEqual(16 * MiB);
    expect(heapAfterDispose - baselineHeap).toBeLessThanOrEqual(8 * MiB);
    expect(leftAfterDispose).toEqual({ tcp: 0, udp: 0 });

    // Hosts and relays closed too: no socket and no timer above what the process had before.
    await closeAll();
    await settle(() => ownSockets().total <= baselineSockets && countTimers() <= timersBefore);
    expect(ownSockets().total).toBeLessThanOrEqual(baselineSockets);
    expect(countTimers()).toBeLessThanOrEqual(timersBefore);
  }, 150_000);
});

/** Our client-side sockets to the peers: ESTABLISHED TCP to a peer's port, UDP connected to an HTTP/3 peer's port. */
function clientSockets(peerPorts: ReadonlySet<number>, h3Ports: ReadonlySet<number>, sockets = ownSockets().sockets): { tcp: number; udp: number } {
  return {
    tcp: sockets.filter((s) => s.protocol === 'tcp' && s.state === '01' && peerPorts.has(s.remotePort)).length,
    udp: sockets.filter((s) => s.protocol === 'udp' && h3Ports.has(s.remotePort)).length,
  };
}

function countTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

/** Waits (up to 5 s) for `done`: sockets close a few ticks after the close call. */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * Runs calls IN_FLIGHT at a time over `peers` until `calls` are done and `until` (if given)
 * holds; `limitMs` bounds the phase (the test fails if `until` is not reached in it).
 */
async function drive(
  factory: IGrpcControlPlaneClientFactory,
  peers: readonly string[],
  plan: { calls: number; until?: () => boolean; limitMs?: number; sample: () => void },
): Promise<Phase> {
  const phase: Phase = { calls: 0, ok: 0, byPeer: new Map(), latencyMs: { h2: [], h3: [] }, failures: [], slowestMs: 0, elapsedMs: 0 };
  const started = performance.now();
  let reachedUntil = plan.until === undefined;
  const more = (): boolean => {
    if (phase.calls < plan.calls) return true;
    if (!reachedUntil && plan.until!()) reachedUntil = true;
    return !reachedUntil && performance.now() - started < (plan.limitMs ?? Number.POSITIVE_INFINITY);
  };
  const worker = async (): Promise<void> => {
    while (more()) {
      const sequence = ++phase.calls;
      const callStarted = performance.now();
      try {
        const result = await factory.unary(ControlPlaneDefinition, 'ping', { fromNode: 'hyperscale', sequence, payload: new Uint8Array() }, { peers, deadlineMs: DEADLINE_MS });
        const ms = performance.now() - callStarted;
        phase.ok++;
        phase.latencyMs[result.protocol].push(ms);
        const port = portOf(result.endpoint);
        const counts = phase.byPeer.get(port) ?? { h2: 0, h3: 0 };
        counts[result.protocol]++;
        phase.byPeer.set(port, counts);
      } catch (error) {
        phase.failures.push(error);
      }
      phase.slowestMs = Math.max(phase.slowestMs, performance.now() - callStarted);
      if ((phase.ok + phase.failures.length) % SAMPLE_EVERY === 0) plan.sample();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  phase.elapsedMs = performance.now() - started;
  if (!reachedUntil) throw new Error(`the phase did not reach its end condition within ${plan.limitMs} ms (${phase.calls} calls, ${phase.failures.length} failures)`);
  return phase;
}
