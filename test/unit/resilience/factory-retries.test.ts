import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { BehaviorSubject, EMPTY, Subject } from 'rxjs';
import { EndpointError, PeerUnavailableError, RpcError } from '../../../src/errors.js';
import type { ICircuitBreaker } from '../../../src/resilience/circuit-breaker.js';
import { ControlPlaneDefinition } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';
import { FAST_RETRY, harness, PEERS, unavailable, type Harness } from './factory-harness.js';

const [P1, P2, P3] = PEERS;
const ALL = ['peer-1', 'peer-2', 'peer-3'];
const ping = (sequence: number) => ({ fromNode: 'test', sequence, payload: new Uint8Array() });


let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe.each([
  ['HTTP/2', 'disable', 'h2'],
  ['HTTP/3', 'prefer', 'h3'],
] as const)('the retry loop over %s', (_name, http3, protocol) => {
  it('retries a retryable status on another peer and answers from it', async () => {
    h = harness({ http3, retry: FAST_RETRY });
    h.behaviour.set(P1, (_call, p) => {
      throw unavailable(P1, p);
    });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    expect(result).toMatchObject({ endpoint: P2, attempts: 2, protocol });
    expect(h.seen.map((s) => [s.authority, s.protocol])).toEqual([
      [P1, protocol],
      [P2, protocol],
    ]);
  });

  it('gives up after maxAttempts, each attempt on a different peer', async () => {
    h = harness({ http3, retry: FAST_RETRY });
    for (const peer of PEERS) {
      h.behaviour.set(peer, (_call, p) => {
        throw unavailable(peer, p);
      });
    }
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { peers: ALL })).rejects.toMatchObject({ statusName: 'UNAVAILABLE' });
    expect(h.seen.map((s) => s.authority)).toEqual([P1, P2, P3]);
  });

  it('never retries a status the policy does not name', async () => {
    h = harness({ http3, retry: FAST_RETRY });
    h.behaviour.set(P1, (_call, p) => {
      throw new RpcError(3, 'INVALID_ARGUMENT', 'bad request', { endpoint: P1, protocol: p });
    });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(3), { peers: ALL })).rejects.toMatchObject({ statusName: 'INVALID_ARGUMENT' });
    expect(h.seen).toHaveLength(1);
  });

  it('never starts a retry whose backoff would end past the deadline', async () => {
    h = harness({ http3, deadlineMs: 1_000, retry: { maxAttempts: 3, initialBackoffMs: 20, maxBackoffMs: 20, jitter: 0 } });
    const clock = h.clock;
    h.behaviour.set(P1, (_call, p) => {
      clock.advance(990);
      throw unavailable(P1, p);
    });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(4), { peers: ALL })).rejects.toMatchObject({ statusName: 'UNAVAILABLE' });
    expect(h.seen.map((s) => s.authority)).toEqual([P1]);
    // With room left in the budget, the same failure is retried on the next peer.
    h.seen.length = 0;
    h.behaviour.set(P2, (_call, p) => {
      clock.advance(900);
      throw unavailable(P2, p);
    });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(5), { peers: ['peer-2', 'peer-3'] });
    expect(result).toMatchObject({ endpoint: P3, attempts: 2 });
  });
});

describe('breakers in the call path', () => {
  it('takes a peer whose circuit opened out of rotation, and brings it back after a good half-open probe', async () => {
    h = harness({ http3: 'disable', retry: FAST_RETRY, breaker: { consecutiveFailures: 1, halfOpenAfterMs: 5_000 } });
    let down = true;
    h.behaviour.set(P1, (_call, p) => {
      if (down) throw unavailable(P1, p);
    });
    const first = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    expect(first.attempts).toBe(2);
    expect(first.endpoint).not.toBe(P1);
    expect(h.breaker.state(P1, 'test')).toBe('open');
    h.seen.length = 0;
    for (let i = 0; i < 6; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(10 + i), { peers: ALL });
    expect(h.seen.filter((s) => s.authority === P1)).toHaveLength(0);
    expect(h.seen).toHaveLength(6);

    down = false;
    h.clock.advance(5_000);
    expect(h.breaker.state(P1, 'test')).toBe('half-open');
    h.seen.length = 0;
    for (let i = 0; i < 6; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(20 + i), { peers: ALL });
    expect(h.breaker.state(P1, 'test')).toBe('closed');
    expect(h.seen.filter((s) => s.authority === P1)).toHaveLength(2);
  });

  it('fails fast with CIRCUIT_OPEN naming every peer when all circuits are open (fail-fast, maxEjectionPercent 100)', async () => {
    h = harness({ http3: 'disable', retry: FAST_RETRY, breaker: { consecutiveFailures: 1, maxEjectionPercent: 100 } });
    for (const peer of PEERS) {
      h.behaviour.set(peer, (_call, p) => {
        throw unavailable(peer, p);
      });
    }
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL })).rejects.toBeInstanceOf(RpcError);
    h.seen.length = 0;
    const failing = h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { peers: ALL });
    await expect(failing).rejects.toBeInstanceOf(PeerUnavailableError);
    await expect(failing).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', peers: [P1, P2, P3] });
    expect(h.seen).toHaveLength(0);
  });

  it('probes the least recently failed peer when the profile allows it, and closes its circuit on success', async () => {
    h = harness({ http3: 'disable', retry: { ...FAST_RETRY, maxAttempts: 1 }, breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000, maxEjectionPercent: 100, whenAllOpen: 'probe-least-recently-failed' } });
    const down = new Set<string>(PEERS);
    for (const peer of PEERS) {
      h.behaviour.set(peer, (_call, p) => {
        if (down.has(peer)) throw unavailable(peer, p);
      });
    }
    // P2 fails first, then P3, then P1.
    for (const peer of ['peer-2', 'peer-3', 'peer-1']) {
      await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: peer })).rejects.toBeInstanceOf(RpcError);
      h.clock.advance(10);
    }
    for (const peer of PEERS) expect(h.breaker.state(peer, 'test')).toBe('open');
    down.clear();
    h.seen.length = 0;
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { peers: ALL });
    expect(result.endpoint).toBe(P2);
    expect(h.seen.map((s) => s.authority)).toEqual([P2]);
    expect(h.breaker.state(P2, 'test')).toBe('closed');
    expect(h.breaker.state(P1, 'test')).toBe('open');
  });
});

describe('overload never ejects every peer (breaker.maxEjectionPercent, default 50)', () => {
  const deadlineExceeded = (authority: string, protocol: 'h2' | 'h3'): RpcError => new RpcError(4, 'DEADLINE_EXCEEDED', 'Deadline exceeded', { endpoint: authority, protocol });

  it('keeps sending to a lone peer whose circuit opened, and its half-open probe closes the circuit', async () => {
    h = harness({ http3: 'disable', retry: { ...FAST_RETRY, maxAttempts: 1 } });
    let overloaded = true;
    h.behaviour.set(P1, (_call, p) => {
      if (overloaded) throw deadlineExceeded(P1, p);
    });
    for (let i = 0; i < 5; i++) await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { endpoint: 'peer-1' })).rejects.toMatchObject({ statusName: 'DEADLINE_EXCEEDED' });
    expect(h.breaker.state(P1, 'test')).toBe('open');
    overloaded = false;
    h.seen.length = 0;
    // The circuit is open, but it is the only peer: calls reach it instead of failing with CIRCUIT_OPEN.
    for (let i = 0; i < 20; i++) await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(100 + i), { endpoint: 'peer-1' })).resolves.toMatchObject({ endpoint: P1 });
    expect(h.seen).toHaveLength(20);
    expect(h.breaker.state(P1, 'test')).toBe('open');
    h.clock.advance(5_000);
    await h.factory.unary(ControlPlaneDefinition, 'ping', ping(200), { endpoint: 'peer-1' });
    expect(h.breaker.state(P1, 'test')).toBe('closed');
  });

  it('ejects at most half of the peers: with every circuit open, the least recently failed half takes the calls', async () => {
    const FOUR = ['10.0.0.1:7001', '10.0.0.2:7001', '10.0.0.3:7001', '10.0.0.4:7001'];
    h = harness({ http3: 'disable', retry: { ...FAST_RETRY, maxAttempts: 1 }, breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 } });
    const down = new Set(FOUR);
    for (const peer of FOUR) {
      h.behaviour.set(peer, (_call, p) => {
        if (down.has(peer)) throw unavailable(peer, p);
      });
    }
    // Fail them in this order: .3, .1, .4, .2 (oldest failure first).
    const order = ['10.0.0.3:7001', '10.0.0.1:7001', '10.0.0.4:7001', '10.0.0.2:7001'];
    for (const peer of order) {
      await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: `https://${peer}`, profile: 'test' })).rejects.toBeInstanceOf(Error);
      h.clock.advance(10);
    }
    for (const peer of FOUR) expect(h.breaker.state(peer, 'test')).toBe('open');
    down.clear();
    h.seen.length = 0;
    const targets = FOUR.map((p) => `https://${p}`);
    for (let i = 0; i < 8; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(10 + i), { peers: targets, profile: 'test' });
    expect(new Set(h.seen.map((s) => s.authority))).toEqual(new Set(['10.0.0.3:7001', '10.0.0.1:7001']));
  });

  it('with maxEjectionPercent 0 no peer is ever kept out', async () => {
    h = harness({ http3: 'disable', retry: FAST_RETRY, breaker: { consecutiveFailures: 1, maxEjectionPercent: 0 } });
    h.behaviour.set(P1, (_call, p) => {
      throw unavailable(P1, p);
    });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'peer-1' })).rejects.toBeInstanceOf(RpcError);
    expect(h.breaker.state(P1, 'test')).toBe('open');
    h.seen.length = 0;
    // Round robin over the three: P1 still gets its turns (and fails over to the next peer).
    for (let i = 0; i < 6; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(10 + i), { peers: ALL });
    expect(h.seen.filter((s) => s.authority === P1).length).toBeGreaterThanOrEqual(2);
  });

  it('a deadline tighter than the profile\'s does not count against the peer; the profile\'s own deadline does', async () => {
    h = harness({ http3: 'disable', deadlineMs: 2_000, retry: { ...FAST_RETRY, maxAttempts: 1 }, breaker: { consecutiveFailures: 2 } });
    h.behaviour.set(P1, (_call, p) => {
      throw deadlineExceeded(P1, p);
    });
    for (let i = 0; i < 5; i++) {
      await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { endpoint: 'peer-1', deadlineMs: 100 })).rejects.toMatchObject({ statusName: 'DEADLINE_EXCEEDED', callerDeadline: true });
    }
    expect(h.breaker.state(P1, 'test')).toBe('closed');
    for (let i = 0; i < 2; i++) {
      await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(10 + i), { endpoint: 'peer-1' })).rejects.toMatchObject({ statusName: 'DEADLINE_EXCEEDED', callerDeadline: false });
    }
    expect(h.breaker.state(P1, 'test')).toBe('open');
  });
});

describe('server streams and the breaker', () => {
  it('counts a stream that fails before its first message: the circuit opens and the next stream fails fast', async () => {
    h = harness({ http3: 'disable', breaker: { consecutiveFailures: 2, halfOpenAfterMs: 5_000, maxEjectionPercent: 100 } });
    const drain = async (): Promise<unknown> => {
      for await (const _ of h!.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 0 }, { endpoint: 'peer-1' })) void _;
      return undefined;
    };
    await expect(drain()).rejects.toMatchObject({ statusName: 'UNAVAILABLE' });
    expect(h.breaker.state(P1, 'test')).toBe('closed');
    await expect(drain()).rejects.toMatchObject({ statusName: 'UNAVAILABLE' });
    expect(h.breaker.state(P1, 'test')).toBe('open');
    await expect(drain()).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', peers: [P1] });
  });
});

describe('a circuit that opens between the pick and the call', () => {
  it('places the call on another peer without spending an attempt', async () => {
    // A breaker whose circuit for P1 opened after the factory looked (another call's probe failed).
    const racing: ICircuitBreaker = {
      state: () => 'closed',
      execute: (peer, call) => (peer === P1 ? Promise.reject(new PeerUnavailableError('CIRCUIT_OPEN', [peer], 'opened just now')) : call()),
      changes$: EMPTY,
    };
    h = harness({ http3: 'disable', retry: { ...FAST_RETRY, maxAttempts: 1 } }, { breaker: racing });
    const result = await h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peers: ALL });
    expect(result).toMatchObject({ endpoint: P2, attempts: 1 });
    expect(h.seen.map((s) => s.authority)).toEqual([P2]);
    // Only peer: nowhere else to go, the CIRCUIT_OPEN error is the call's.
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'peer-1' })).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', peers: [P1] });
  });
});

describe('peer lists', () => {
  it('sends calls to the current members only: added members take traffic, removed ones none', async () => {
    const members = new BehaviorSubject<readonly string[]>(['peer-1', 'peer-2']);
    h = harness({ http3: 'disable' }, { peerLists: { replicas: members } });
    for (let i = 0; i < 4; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: 'replicas' });
    expect(new Set(h.seen.map((s) => s.authority))).toEqual(new Set([P1, P2]));
    members.next(['peer-2', `https://${P3}`]);
    h.seen.length = 0;
    for (let i = 0; i < 4; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: 'replicas' });
    expect(new Set(h.seen.map((s) => s.authority))).toEqual(new Set([P2, P3]));
  });

  it('names the list at fault: unknown (EndpointError) or empty (PEER_UNAVAILABLE)', async () => {
    const members = new BehaviorSubject<readonly string[]>([]);
    h = harness({ http3: 'disable' }, { peerLists: { replicas: members } });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'nope' })).rejects.toBeInstanceOf(EndpointError);
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'nope' })).rejects.toThrow(/"nope".*bound: replicas/);
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'replicas' })).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
    expect(() => h!.factory.client(ControlPlaneDefinition, { peerList: 'nope' })).toThrow(EndpointError);
    const client = h.factory.client(ControlPlaneDefinition, { peerList: 'replicas' });
    members.next(['peer-3']);
    await expect(client.ping(ping(2))).resolves.toMatchObject({ node: P3 });
  });

  it('leaves out a bad member (reported once, naming it) instead of failing every call; fails only when none is usable', async () => {
    const warnings = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const members = new BehaviorSubject<readonly string[]>(['peer-1', 'http://10.0.0.9:7001', 'not a url at all']);
      h = harness({ http3: 'disable' }, { peerLists: { replicas: members } });
      for (let i = 0; i < 3; i++) await h.factory.unary(ControlPlaneDefinition, 'ping', ping(i), { peerList: 'replicas' });
      expect(new Set(h.seen.map((s) => s.authority))).toEqual(new Set([P1]));
      const reported = warnings.mock.calls.map(([message]) => String(message));
      expect(reported).toHaveLength(2);
      expect(reported[0]).toContain('"http://10.0.0.9:7001" is left out');
      expect(reported[1]).toContain('"not a url at all" is left out');
      members.next(['http://10.0.0.9:7001']);
      await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(9), { peerList: 'replicas' })).rejects.toMatchObject({ code: 'ENDPOINT_INSECURE' });
    } finally {
      warnings.mockRestore();
    }
  });

  it('a call to a list that has not emitted yet queues for its first members (within its deadline), then goes out', async () => {
    const members = new Subject<readonly string[]>();
    h = harness({ http3: 'disable' }, { peerLists: { replicas: members } });
    const waiting = h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'replicas', deadlineMs: 5_000 });
    const stream = (async () => {
      const events: number[] = [];
      for await (const event of h.factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'test', count: 1, intervalMs: 0 }, { peerList: 'replicas' })) events.push(event.sequence);
      return events;
    })();
    h.streams.set(P2, () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(h.seen).toEqual([]);
    members.next(['peer-2']);
    await expect(waiting).resolves.toMatchObject({ endpoint: P2 });
    await expect(stream).resolves.toEqual([1]);
  });

  it('a queued call ends at its deadline (DEADLINE_EXCEEDED naming the list), at its abort signal, or at dispose', async () => {
    const members = new Subject<readonly string[]>();
    h = harness({ http3: 'disable' }, { peerLists: { replicas: members } });
    await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'replicas', deadlineMs: 30 })).rejects.toMatchObject({
      statusName: 'DEADLINE_EXCEEDED',
      details: 'deadline exceeded while waiting for the first members of peer list "replicas"',
    });
    const controller = new AbortController();
    const aborted = h.factory.unary(ControlPlaneDefinition, 'ping', ping(2), { peerList: 'replicas', signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    const disposed = h.factory.unary(ControlPlaneDefinition, 'ping', ping(3), { peerList: 'replicas' });
    await h.factory.dispose();
    await expect(disposed).rejects.toMatchObject({ code: 'DISPOSED' });
    expect(h.seen).toEqual([]);
  });

  it('keeps the last members when the list Observable errors (reported, no crash)', async () => {
    const warnings = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const members = new Subject<readonly string[]>();
      h = harness({ http3: 'disable' }, { peerLists: { replicas: members } });
      members.next(['peer-2']);
      members.error(new Error('discovery went away'));
      expect(String(warnings.mock.calls[0]?.[0])).toContain('peer list "replicas" failed (discovery went away)');
      await expect(h.factory.unary(ControlPlaneDefinition, 'ping', ping(1), { peerList: 'replicas' })).resolves.toMatchObject({ endpoint: P2 });
    } finally {
      warnings.mockRestore();
    }
  });
});
