/**
 * Feature tier: `omnirelay mesh` as a library module (dist/cli/mesh/), against the build. A
 * three-node mesh — own GrpcHost and container per node, gossip, discovery, leadership on one
 * embedded store — its Prometheus endpoint, its actions (kill, restart, HTTP/3 hint flips) and
 * what the table shows of them; then `runMesh` with plain (non-terminal) output and a signal.
 * Waits are for conditions, with generous limits; nothing is timed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { runMesh, startMesh, type Mesh, type MeshNodeSnapshot, type MeshSnapshot } from '../../dist/cli/mesh/index.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` until it holds or `limitMs` passed (a hang guard, not a speed target). */
async function eventually(done: () => boolean, limitMs = 45_000): Promise<boolean> {
  for (let waited = 0; !done() && waited < limitMs; waited += 50) await pause(50);
  return done();
}

/** Process warnings other than grpc-js's known DEP0123 (IP SNI; fixed elsewhere). */
const warnings: string[] = [];
const onWarning = (warning: Error & { code?: string }): void => {
  if (warning.code !== 'DEP0123') warnings.push(`${warning.code ?? warning.name}: ${warning.message}`);
};

function running(snapshot: MeshSnapshot | undefined): MeshNodeSnapshot[] {
  return snapshot?.nodes.filter((n) => n.state === 'running') ?? [];
}

/** Every running node sees every id in `alive` alive. */
function allSeeAlive(snapshot: MeshSnapshot | undefined, alive: readonly string[]): boolean {
  const nodes = running(snapshot);
  return nodes.length === alive.length && nodes.every((n) => alive.every((id) => n.members[id] === 'alive'));
}

/** Exactly one running node leads each scope, and every running node sees it. */
function oneLeaderPerScope(snapshot: MeshSnapshot | undefined): boolean {
  return snapshot !== undefined && snapshot.scopes.every((s) => s.leading.length === 1 && s.leader?.leaderId === s.leading[0] && s.agreedBy === s.running);
}

beforeAll(() => {
  process.on('warning', onWarning);
});

afterAll(() => {
  process.off('warning', onWarning);
});

describe('startMesh: three nodes', () => {
  let mesh: Mesh;
  const ids = ['node-1', 'node-2', 'node-3'];

  beforeAll(async () => {
    mesh = await startMesh({ nodes: 3, metricsPort: 0, sampleIntervalMs: 500 });
  });

  afterAll(async () => {
    const dir = mesh.dir;
    await mesh.close();
    expect(existsSync(dir)).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('every node sees every member alive, and each scope has one leader', async () => {
    expect(await eventually(() => allSeeAlive(mesh.snapshot, ids) && oneLeaderPerScope(mesh.snapshot))).toBe(true);
    const snapshot = mesh.snapshot as MeshSnapshot;
    expect(snapshot.scopes.map((s) => s.scope)).toEqual(['global', 'shard-1']);
    for (const scope of snapshot.scopes) expect(BigInt(scope.leader?.fenceToken ?? '0')).toBeGreaterThan(0n);
    // Light traffic and gossip keep every node's RPC rate above zero.
    expect(await eventually(() => running(mesh.snapshot).every((n) => n.rpcPerSecond > 0 && n.traffic.ok > 0))).toBe(true);
  });

  it('serves the real instruments of every node on /metrics', async () => {
    const url = mesh.metricsUrl;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    let body = '';
    const complete = (): boolean =>
      ['mesh_gossip_members{', 'mesh_gossip_messages_total{', 'mesh_leadership_transitions_total{', 'grpc_outbound_requests_total{', 'grpc_outbound_request_duration_seconds_bucket{', 'grpc_outbound_peer_choices_total{'].every((name) => body.includes(name));
    // Counters appear once something was counted: scrape until all of them are there.
    for (let i = 0; i < 150 && !complete(); i++) {
      const response = await fetch(url as string);
      expect(response.status).toBe(200);
      body = await response.text();
      if (!complete()) await pause(200);
    }
    expect(complete()).toBe(true);
    // Each node's series carry its id, so three nodes do not add up or overwrite each other.
    const membersLines = body.split('\n').filter((l) => l.startsWith('mesh_gossip_members{') && l.includes('status="alive"'));
    for (const id of ids) expect(membersLines.some((l) => l.includes(`node="${id}"`))).toBe(true);
    expect(body).toMatch(/mesh_leadership_transitions_total\{[^}]*transition="elected"/);
    expect(body).toMatch(/grpc_outbound_requests_total\{[^}]*omnirelay_protocol="h3"/);
  });

  it('a denied HTTP/3 hint moves the calls to that peer to HTTP/2, and allowing it brings HTTP/3 back', async () => {
    const callsTo = (peer: string, check: (p: MeshNodeSnapshot['peers'][number]) => boolean): boolean => {
      const callers = running(mesh.snapshot).filter((n) => n.id !== peer);
      return callers.length === 2 && callers.every((n) => n.peers.some((p) => p.peer === peer && check(p)));
    };
    expect(mesh.setHttp3('node-3', 'deny')).toBe('deny');
    expect(await eventually(() => callsTo('node-3', (p) => p.protocol === 'h2' && p.calls.h3 === 0 && p.reasons.includes('hint-denied') && p.hint === 'deny'))).toBe(true);
    // The calls to the other peers stay on HTTP/3.
    expect(running(mesh.snapshot).find((n) => n.id === 'node-3')?.peers.every((p) => p.hint === 'allow')).toBe(true);
    expect(mesh.flipHttp3(3)).toBe('allow');
    expect(await eventually(() => callsTo('node-3', (p) => p.protocol === 'h3' && p.calls.h2 === 0 && !p.reasons.includes('hint-denied')))).toBe(true);
  });

  it('a killed node is seen dead by the others, its scopes get a new leader, and a restart brings it back', async () => {
    const global = mesh.snapshot?.scopes.find((s) => s.scope === 'global')?.leader;
    expect(global).toBeDefined();
    const victim = global?.leaderId as string;
    const survivors = ids.filter((id) => id !== victim);
    await mesh.kill(victim);
    expect(
      await eventually(() => {
        const nodes = running(mesh.snapshot);
        const scope = mesh.snapshot?.scopes.find((s) => s.scope === 'global');
        return (
          nodes.length === 2 &&
          nodes.every((n) => n.members[victim] === 'dead' && survivors.every((id) => n.members[id] === 'alive')) &&
          scope?.leader !== undefined &&
          survivors.includes(scope.leader.leaderId) &&
          scope.leader.term > global!.term &&
          oneLeaderPerScope(mesh.snapshot)
        );
      }),
    ).toBe(true);
    expect(mesh.snapshot?.nodes.find((n) => n.id === victim)?.state).toBe('killed');

    await mesh.restart(victim);
    expect(await eventually(() => allSeeAlive(mesh.snapshot, ids) && oneLeaderPerScope(mesh.snapshot))).toBe(true);
  });
});

describe('runMesh', () => {
  it('prints plain lines when not on a terminal, and stops gracefully with exit code 0 when its signal aborts', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const controller = new AbortController();
    const exit = runMesh({ nodes: 2, sampleIntervalMs: 300 }, { stdout, stderr, isTTY: false, signal: controller.signal });
    const lines = (): string[] => out.split('\n');
    const seenAll = (): boolean => ['node-1', 'node-2'].every((id) => lines().some((l) => new RegExp(`^\\[[\\d.]+s\\] node ${id} running https://127\\.0\\.0\\.1:\\d+ members=node-1:alive,node-2:alive `).test(l)));
    expect(await eventually(seenAll)).toBe(true);
    expect(lines().some((l) => /^\[[\d.]+s\] leaders global=node-\d term=\d+ fence=\d+ /.test(l))).toBe(true);
    expect(lines().some((l) => /^\[[\d.]+s\] event node-\d gossip\.member\.joined /.test(l))).toBe(true);
    controller.abort();
    expect(await exit).toBe(0);
    expect(out).not.toContain('\u001b');
    expect(lines().filter((l) => l !== '').at(-1)).toMatch(/^omnirelay mesh: stopped/);
    expect(err).toBe('');
    const dir = /dev CA in (\S+);/.exec(out)?.[1];
    expect(dir).toBeDefined();
    expect(existsSync(dir as string)).toBe(false);
  });

  it('refuses bad options with exit code 2 and says which', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    stdout.resume();
    expect(await runMesh({ nodes: 12 }, { stdout, stderr, isTTY: false })).toBe(2);
    expect(err).toMatch(/nodes/);
  });
});
