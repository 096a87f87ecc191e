import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHook } from 'node:async_hooks';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { controlPlaneV1, type ControlPlaneOptionsInput, type IGrpcControlPlaneClientFactory } from 'omnirelay';
import { containerWith, ping } from '../support/cluster.js';
import { onOnePortNumber } from '../support/hosts.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

/**
 * Issue 13, defect 4: after `container.unbindAllAsync()` nothing of ours runs — no socket,
 * timer, dial or retry — even when the peer fails TLS or is down. Measured at the peer: every
 * TCP connection it accepts and every UDP datagram (QUIC dial) it receives on its port.
 */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How long the peer listens after dispose: grpc-js redialled every ≤ connectTimeoutMs (1 s here) before the fix. */
const WATCH_MS = 5_000;

/** Counts what reaches `port` on 127.0.0.1: accepted TCP connections and UDP datagrams. */
interface PeerCounter {
  readonly port: number;
  tcp: number;
  udp: number;
  close(): Promise<void>;
}

async function listenTcp(server: Server, port: number): Promise<Server> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

const portOf = (server: Server): number => (server.address() as { port: number }).port;
const closeServer = (server: Server): Promise<void> => new Promise<void>((resolve) => server.close(() => resolve()));

async function listenUdp(counter: { udp: number }, port: number): Promise<UdpSocket> {
  const udp = createSocket('udp4');
  udp.on('message', () => counter.udp++);
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, '127.0.0.1', () => {
      udp.off('error', reject);
      resolve();
    });
  });
  return udp;
}

/** A port number free for TCP and for UDP right now (nothing listens on it afterwards). */
async function freePort(): Promise<number> {
  const [tcp, udp] = await onOnePortNumber(() => listenTcp(createTcpServer(), 0), portOf, closeServer, (port) => listenUdp({ udp: 0 }, port));
  const port = portOf(tcp);
  await closeServer(tcp);
  await new Promise<void>((resolve) => udp.close(() => resolve()));
  return port;
}

/** A peer that accepts TCP and fails every TLS handshake (its certificate has expired), and swallows UDP. */
async function startTlsFailingPeer(pki: TestPki): Promise<PeerCounter> {
  const counter = { tcp: 0, udp: 0 };
  const server = createTlsServer({ cert: readFileSync(pki.expiredServer.certFile), key: readFileSync(pki.expiredServer.keyFile), ALPNProtocols: ['h2'] }, (socket) => socket.on('error', () => undefined));
  server.on('connection', () => counter.tcp++);
  server.on('tlsClientError', () => undefined);
  const [, udp] = await onOnePortNumber(() => listenTcp(server, 0), portOf, closeServer, (port) => listenUdp(counter, port));
  return counting(counter, portOf(server), server, udp);
}

/** The counter of a peer listening on `port` with `server` (TCP) and `udp`. */
function counting(counter: { tcp: number; udp: number }, port: number, server: Server, udp: UdpSocket): PeerCounter {
  return {
    port,
    get tcp() { return counter.tcp; },
    get udp() { return counter.udp; },
    close: async () => {
      udp.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Starts counting on `port` (a peer that was down while the client used it, and comes back). */
async function startCounterOn(port: number): Promise<PeerCounter> {
  const counter = { tcp: 0, udp: 0 };
  const server: Server = createTcpServer((socket) => {
    counter.tcp++;
    socket.destroy();
  });
  await listenTcp(server, port);
  const udp = await listenUdp(counter, port);
  return counting(counter, port, server, udp);
}

function options(pki: TestPki, port: number, profile: NonNullable<ControlPlaneOptionsInput['profiles']>[string] = {}): ControlPlaneOptionsInput {
  return {
    profiles: {
      'control-plane': {
        connectTimeoutMs: 1_000,
        http3RaceDelayMs: 50,
        deadlineMs: 1_500,
        ...profile,
        tls: { mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile },
      },
    },
    endpoints: { peer: { url: `https://127.0.0.1:${port}` } },
  };
}

/** Resources of this process, by kind (process.getActiveResourcesInfo: sockets, timers, handles). */
/**
 * Timers and immediates created by our library (dist/), or by the grpc-js it drives, still
 * pending. jest's own timers (its test timeout, the reporter's ticks) come and go during a test,
 * so counting every Timeout of the process would measure jest, not us. grpc-js keeps a closed
 * channel's subchannels in a global pool for up to 10 s with unref'd timers that can no longer
 * dial (our credentials refuse, which the TCP/UDP counts check): only its ref'd timers count.
 */
const ours = new Map<number, { readonly type: string; readonly library: boolean; readonly resource: WeakRef<object>; readonly where: string }>();
const LIBRARY = /[\\/]dist[\\/]/;
const GRPC_JS = /[\\/]node_modules[\\/]@grpc[\\/]grpc-js[\\/]/;
createHook({
  init(id, type, _trigger, resource) {
    if (type !== 'Timeout' && type !== 'Immediate') return;
    const stack = new Error().stack ?? '';
    const library = LIBRARY.test(stack);
    // Where it was created (our or grpc-js's first frame), so a failure names the culprit.
    const where = stack.split('\n').find((line) => LIBRARY.test(line) || GRPC_JS.test(line))?.trim() ?? '';
    if (library || GRPC_JS.test(stack)) ours.set(id, { type, library, resource: new WeakRef(resource), where });
  },
  destroy(id) {
    ours.delete(id);
  },
}).enable();

function counted(entry: { readonly library: boolean; readonly resource: WeakRef<object> }): boolean {
  if (entry.library) return true;
  const timer = entry.resource.deref() as { hasRef?: () => boolean } | undefined;
  return timer?.hasRef?.() !== false;
}

/** Sockets of the process by kind (jest opens none during a test), and our pending timers. */
function resources(): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'Timeout' || kind === 'Immediate') continue;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const entry of ours.values()) if (counted(entry)) kinds.set(`our ${entry.type} ${entry.where}`, (kinds.get(`our ${entry.type} ${entry.where}`) ?? 0) + 1);
  return kinds;
}

/** Kinds whose count grew since `before`. */
function leftOver(before: Map<string, number>): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const [kind, count] of resources()) if (count > (before.get(kind) ?? 0)) grown[kind] = count - (before.get(kind) ?? 0);
  return grown;
}

async function failingCall(factory: IGrpcControlPlaneClientFactory): Promise<unknown> {
  return factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer' }).then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * Waits for the moment a test disposes at: 'during the call' while it still waits for a
 * connection, 'after it failed' once it failed and grpc-js's reconnect backoff is running.
 */
async function disposeMoment(call: Promise<unknown>, when: 'during the call' | 'after it failed'): Promise<void> {
  if (when === 'after it failed') {
    expect(await call).toBeInstanceOf(Error);
    await sleep(1_200);
  } else {
    await sleep(300);
  }
}

describe('nothing of ours runs after dispose (issue 13, defect 4)', () => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await createTestPki();
  });

  afterAll(async () => {
    await pki.cleanup();
  });

  // 'during the call': disposed while the call still waits for a connection (before the fix, a
  // pending readiness wait restarted grpc-js's closed channel, which then redialled for ever);
  // 'after it failed': grpc-js's subchannel, asked to reconnect, dialled once more after its backoff.
  it.each(['during the call', 'after it failed'] as const)('stops dialling a peer that fails TLS when disposed %s: no TCP connection or QUIC datagram reaches it', async (when) => {
    const peer = await startTlsFailingPeer(pki);
    try {
      const baseline = resources();
      const { container, factory } = containerWith(options(pki, peer.port));
      const call = failingCall(factory());
      await disposeMoment(call, when);
      expect(peer.tcp).toBeGreaterThan(0);
      await container.unbindAllAsync();
      expect(await call).toBeInstanceOf(Error);
      await sleep(100);
      const after = { tcp: peer.tcp, udp: peer.udp };
      await sleep(WATCH_MS);
      expect({ tcp: peer.tcp - after.tcp, udp: peer.udp - after.udp }).toEqual({ tcp: 0, udp: 0 });
      expect(leftOver(baseline)).toEqual({});
    } finally {
      await peer.close();
    }
  });

  it.each(['during the call', 'after it failed'] as const)('stops dialling a peer that is down when disposed %s: when it comes back, nothing of ours reaches it', async (when) => {
    const port = await freePort();
    const baseline = resources();
    const { container, factory } = containerWith(options(pki, port));
    const call = failingCall(factory());
    await disposeMoment(call, when);
    await container.unbindAllAsync();
    expect(await call).toBeInstanceOf(Error);
    const peer = await startCounterOn(port);
    try {
      await sleep(WATCH_MS);
      expect({ tcp: peer.tcp, udp: peer.udp }).toEqual({ tcp: 0, udp: 0 });
    } finally {
      await peer.close();
    }
    expect(leftOver(baseline)).toEqual({});
  });

  it('ends a call waiting to retry at dispose, with DisposedError, and sends no retry', async () => {
    const port = await freePort();
    const { container, factory } = containerWith(
      options(pki, port, { http3: 'disable', deadlineMs: 20_000, retry: { maxAttempts: 5, initialBackoffMs: 4_000, maxBackoffMs: 4_000, jitter: 0 } }),
    );
    const started = Date.now();
    const call = failingCall(factory());
    await sleep(500); // the first attempt failed (connection refused); the call sleeps 4 s before its retry
    const peer = await startCounterOn(port);
    try {
      await container.unbindAllAsync();
      const error = await call;
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(error).toMatchObject({ code: 'DISPOSED' });
      await sleep(WATCH_MS);
      expect({ tcp: peer.tcp, udp: peer.udp }).toEqual({ tcp: 0, udp: 0 });
    } finally {
      await peer.close();
    }
  });

  it('refuses calls after dispose with DisposedError, without dialling', async () => {
    const port = await freePort();
    const { container, factory } = containerWith(options(pki, port));
    const f = factory();
    await container.unbindAllAsync();
    await expect(f.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer' })).rejects.toMatchObject({ code: 'DISPOSED' });
    await expect(f.probeHttp3({ endpoint: 'peer' })).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});

