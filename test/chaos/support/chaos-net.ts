/**
 * Real network faults for the chaos tier: one network namespace per node, joined by veth pairs
 * to a bridge in a hub namespace (so nothing is added to the machine's own namespace), on a
 * private subnet only these namespaces see; faults are nftables rules inside a node's namespace.
 * Each node is a separate process (`ip netns exec NS node node-runner.mjs`) because a socket's
 * namespace is fixed when it is created.
 *
 * Names: `orchaos-<pid>-<name>` (namespaces) — the pid of the test process that made them, so
 * `cleanStale()` removes what a crashed earlier run left behind without touching a live run's.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createDevCertificateAuthority, type DevCertificateAuthority } from 'omnirelay';

export const PREFIX = 'orchaos-';
const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'node-runner.mjs');
/** The private test subnet; it exists only inside the namespaces made here. */
const SUBNET = '10.213.0';

function run(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input });
}

function tryRun(cmd: string, args: readonly string[]): string | undefined {
  try {
    return run(cmd, args);
  } catch {
    return undefined;
  }
}

/**
 * Why this machine cannot run the namespace scenarios, or undefined when it can: root, `ip netns`
 * working (a throwaway namespace is made and removed), `nft` present.
 */
export function chaosUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces and nftables need root (run as root, as .ci/run does)';
  if (tryRun('ip', ['-V']) === undefined) return '`ip` (iproute2) is not installed (.ci/run installs it)';
  if (tryRun('nft', ['--version']) === undefined) return '`nft` (nftables) is not installed (.ci/run installs it)';
  const probe = `${PREFIX}${process.pid}-probe`;
  const made = tryRun('ip', ['netns', 'add', probe]);
  if (made === undefined) return '`ip netns add` is refused by this kernel or container';
  const nft = tryRun('ip', ['netns', 'exec', probe, 'nft', 'add', 'table', 'inet', 'probe']);
  tryRun('ip', ['netns', 'del', probe]);
  if (nft === undefined) return 'nftables is refused inside a network namespace by this kernel';
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills whatever still runs in namespace `ns` (`ip netns pids`: e.g. an etcd a crashed run left
 * behind; it does not die with its parent), then deletes the namespace.
 */
function deleteNs(ns: string): void {
  for (const pid of (tryRun('ip', ['netns', 'pids', ns]) ?? '').split('\n').map(Number)) {
    if (pid > 0) tryRun('kill', ['-9', String(pid)]);
  }
  tryRun('ip', ['netns', 'del', ns]);
}

/** Removes namespaces of earlier runs whose process is gone (a crashed or killed jest). */
export function cleanStale(): string[] {
  const removed: string[] = [];
  const list = tryRun('ip', ['netns', 'list']) ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (match === null) continue;
    if (Number(match[1]) !== process.pid && pidAlive(Number(match[1]))) continue;
    if (Number(match[1]) === process.pid) continue;
    deleteNs(name);
    removed.push(name);
  }
  return removed;
}

export interface MemberView {
  readonly id: string;
  readonly status: 'alive' | 'suspect' | 'dead' | 'left';
  readonly incarnation: number;
}

export interface PingReply {
  readonly ok: boolean;
  readonly protocol?: string;
  readonly node?: string;
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
}

export interface NodeLog {
  readonly level: string;
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

/** Options passed through to the runner: gossip options and `control-plane` profile fields. */
export interface NodeTuning {
  readonly gossip?: Record<string, unknown>;
  readonly profile?: Record<string, unknown>;
  /**
   * Opt-in leader election: the runner also runs the leadership agent (`leadershipModule`) on
   * an EtcdLeaseStore (`etcdLeaseStoreModule`) over its factory's `etcd` profile (HTTP/2 only,
   * mTLS with the node's certificate). `options` are LeadershipOptionsInput without `nodeId`;
   * `store` is EtcdLeaseStoreOptionsInput (its `endpoints` are required); `etcdProfile` adds
   * fields to the `etcd` profile (e.g. `connectTimeoutMs`).
   */
  readonly leadership?: {
    readonly options?: Record<string, unknown>;
    readonly store: Record<string, unknown>;
    readonly etcdProfile?: Record<string, unknown>;
  };
}

/** A scope's leader as one node sees it (the runner's `leaders` command). */
export interface LeaderReport {
  readonly scope: string;
  /** Undefined: this node sees no leader now. */
  readonly leaderId?: string;
  readonly term?: number;
  /** The term's fence token (etcd's create revision of the leader key), as a decimal string. */
  readonly fenceToken?: string;
  /** Whether this node leads the scope by its own account. */
  readonly self: boolean;
}

/** A node process in its namespace. */
export class ChaosNode {
  url = '';
  readonly logs: NodeLog[] = [];
  readonly stderr: string[] = [];
  exited: Promise<number | null>;
  #seq = 0;
  #pending = new Map<number, (reply: Record<string, unknown>) => void>();
  #ready: Promise<void>;

  constructor(
    readonly id: string,
    readonly ns: string,
    readonly address: string,
    readonly child: ChildProcessWithoutNullStreams,
  ) {
    let resolveReady!: () => void;
    let rejectReady!: (error: Error) => void;
    this.#ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.stderr.push(`stdout: ${line}`);
        return;
      }
      if (message.type === 'ready') {
        this.url = String(message.url);
        resolveReady();
      } else if (message.type === 'log') {
        this.logs.push(message as unknown as NodeLog);
      } else if (message.type === 'reply') {
        const seq = Number(message.seq);
        this.#pending.get(seq)?.(message);
        this.#pending.delete(seq);
      }
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      this.stderr.push(line);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        rejectReady(new Error(`node ${id} exited (code ${String(code)}) before it was ready:\n${this.stderr.slice(-20).join('\n')}`));
        for (const pending of this.#pending.values()) pending({ error: `node ${id} exited` });
        this.#pending.clear();
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  command(cmd: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (!this.running) return Promise.resolve({ error: `node ${this.id} is not running` });
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#pending.set(seq, resolve);
      this.child.stdin.write(`${JSON.stringify({ seq, cmd, ...fields })}\n`);
    });
  }

  async view(): Promise<MemberView[]> {
    const reply = await this.command('view');
    return (reply.members as MemberView[] | undefined) ?? [];
  }

  /** What this node believes about each of its leadership scopes (empty without `tuning.leadership`). */
  async leaders(): Promise<LeaderReport[]> {
    const reply = await this.command('leaders');
    return (reply.scopes as LeaderReport[] | undefined) ?? [];
  }

  async ping(endpoint: string, deadlineMs = 2_000): Promise<PingReply> {
    return (await this.command('ping', { endpoint, deadlineMs })) as unknown as PingReply;
  }

  /** A crash: SIGKILL, no leave. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

const ETCD_READY = '"msg":"serving client traffic securely"';
const ETCD_START_TIMEOUT_MS = 30_000;

/** etcd in a namespace (`ChaosNet.startEtcd`). */
export class ChaosEtcd {
  readonly exited: Promise<void>;
  #output = '';

  constructor(
    readonly id: string,
    /** `https://<address>:2379` */
    readonly url: string,
    readonly child: ChildProcessWithoutNullStreams | ReturnType<typeof spawn>,
  ) {
    this.exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#output += chunk.toString();
    });
  }

  /** What etcd printed (zap JSON lines). */
  output(): string {
    return this.#output;
  }

  ready(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.child.off('exit', onExit);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(() => settle(new Error(`etcd ${this.id} was not ready within ${ETCD_START_TIMEOUT_MS} ms:\n${this.#output}`)), ETCD_START_TIMEOUT_MS);
      const poll = setInterval(() => {
        if (this.#output.includes(ETCD_READY)) settle();
      }, 50);
      const onExit = (code: number | null): void => settle(new Error(`etcd ${this.id} exited (${String(code)}) before it was ready (apt-get install etcd-server; .ci/run does it):\n${this.#output}`));
      this.child.once('exit', onExit);
    });
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface Fault {
  /** Removes the rules. */
  heal(): void;
}

/**
 * The namespaces, links, certificates and node processes of one chaos test. `close()` kills every
 * process and deletes every namespace it made (call it from afterAll; it is idempotent).
 */
export class ChaosNet {
  readonly hub: string;
  readonly nodes: ChaosNode[] = [];
  readonly namespaces: string[] = [];
  #addresses = new Map<string, string>();
  #dir = '';
  #ca: DevCertificateAuthority | undefined;
  #faults = 0;
  #etcds: ChaosEtcd[] = [];

  constructor(readonly name: string) {
    this.hub = `${PREFIX}${process.pid}-${name}-hub`;
  }

  /** Makes the hub (a bridge) and one namespace + veth link per id, on `10.213.0.0/24`. */
  async init(ids: readonly string[]): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), `omnirelay-chaos-${this.name}-`));
    this.#ca = await createDevCertificateAuthority({ commonName: 'OmniRelay Chaos CA' });
    await writeFile(join(this.#dir, 'ca.pem'), this.#ca.certPem);
    this.#addNs(this.hub);
    run('ip', ['-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', this.hub, 'link', 'set', 'br0', 'up']);
    for (const [index, id] of ids.entries()) {
      const ns = this.nsOf(id);
      const address = `${SUBNET}.${10 + index}`;
      this.#addNs(ns);
      run('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `v${index}`, 'netns', this.hub]);
      run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', this.hub, 'link', 'set', `v${index}`, 'master', 'br0']);
      run('ip', ['-n', this.hub, 'link', 'set', `v${index}`, 'up']);
      this.#addresses.set(id, address);
      const issued = await this.#ca.issue({ commonName: id, ipAddresses: [address], usage: 'both' });
      await writeFile(join(this.#dir, `${id}.pem`), issued.certPem);
      await writeFile(join(this.#dir, `${id}.key`), issued.keyPem, { mode: 0o600 });
    }
  }

  nsOf(id: string): string {
    return `${PREFIX}${process.pid}-${this.name}-${id}`;
  }

  addressOf(id: string): string {
    const address = this.#addresses.get(id);
    if (address === undefined) throw new Error(`no namespace for ${id}`);
    return address;
  }

  #addNs(ns: string): void {
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** Starts node `id` in its namespace; resolves once it serves and has joined through `seeds`. */
  async start(id: string, seeds: readonly string[], tuning: NodeTuning = {}, port = 0): Promise<ChaosNode> {
    const config = {
      id,
      address: this.addressOf(id),
      port,
      certFile: join(this.#dir, `${id}.pem`),
      keyFile: join(this.#dir, `${id}.key`),
      caFile: join(this.#dir, 'ca.pem'),
      seeds,
      gossip: tuning.gossip ?? {},
      profile: tuning.profile ?? {},
      leadership: tuning.leadership,
    };
    const child = spawn('ip', ['netns', 'exec', this.nsOf(id), process.execPath, RUNNER, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const node = new ChaosNode(id, this.nsOf(id), config.address, child);
    this.nodes.push(node);
    await node.ready();
    return node;
  }

  /**
   * Runs Debian's etcd (3.4; `.ci/run` installs `etcd-server`) in `id`'s namespace, as that
   * namespace's only process: one member, client URL `https://<address of id>:2379` with client
   * certificates required (its server certificate is `id`'s, issued with the namespace address as
   * SAN by the test CA, which every node's certificate also chains to), peer URL on the
   * namespace's own loopback. So every node reaches etcd over its own link and etcd's link:
   * faults on those links hit the etcd traffic too. Resolves once etcd serves clients; `close()`
   * kills it.
   */
  async startEtcd(id: string): Promise<ChaosEtcd> {
    const address = this.addressOf(id);
    const url = `https://${address}:2379`;
    const dataDir = join(this.#dir, `${id}-data`);
    const args = [
      'netns', 'exec', this.nsOf(id), 'etcd',
      '--name', id,
      '--data-dir', dataDir,
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', 'http://127.0.0.1:2380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', `${id}=http://127.0.0.1:2380`,
      '--cert-file', join(this.#dir, `${id}.pem`),
      '--key-file', join(this.#dir, `${id}.key`),
      '--client-cert-auth',
      '--trusted-ca-file', join(this.#dir, 'ca.pem'),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ];
    const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const etcd = new ChaosEtcd(id, url, child);
    this.#etcds.push(etcd);
    await etcd.ready();
    return etcd;
  }

  running(): ChaosNode[] {
    return this.nodes.filter((n) => n.running);
  }

  /**
   * nftables rules in `id`'s namespace, on its link only (`eth0`): `match` is an nft expression
   * (e.g. `ip saddr 10.213.0.11 meta l4proto udp`), dropped in `input`; `outMatch` in `output`.
   */
  fault(id: string, inMatch: string, outMatch?: string): Fault {
    const ns = this.nsOf(id);
    const table = `chaos${++this.#faults}`;
    const script = [
      `add table inet ${table}`,
      `add chain inet ${table} in { type filter hook input priority 0; }`,
      `add chain inet ${table} out { type filter hook output priority 0; }`,
      `add rule inet ${table} in iifname "eth0" ${inMatch} counter drop`,
      ...(outMatch === undefined ? [] : [`add rule inet ${table} out oifname "eth0" ${outMatch} counter drop`]),
    ].join('\n');
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], `${script}\n`);
    let healed = false;
    return {
      heal: () => {
        if (healed) return;
        healed = true;
        tryRun('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', table]);
      },
    };
  }

  /** Packets the fault rules in these nodes' namespaces dropped so far (their nftables counters). */
  droppedPackets(ids: readonly string[]): number {
    let total = 0;
    for (const id of ids) {
      const ruleset = tryRun('ip', ['netns', 'exec', this.nsOf(id), 'nft', 'list', 'ruleset']) ?? '';
      for (const match of ruleset.matchAll(/counter packets (\d+)/g)) total += Number(match[1]);
    }
    return total;
  }

  /** Every node's view, by node id (nodes not running are left out). */
  async views(): Promise<Map<string, MemberView[]>> {
    const result = new Map<string, MemberView[]>();
    for (const node of this.running()) result.set(node.id, await node.view());
    return result;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    await Promise.all(this.#etcds.splice(0).map((e) => e.kill()));
    for (const ns of this.namespaces.splice(0).reverse()) deleteNs(ns);
    if (this.#dir !== '') await rm(this.#dir, { recursive: true, force: true });
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it holds or `limitMs` passed (a hang guard, not a speed target); returns whether it held. */
export async function waitFor(check: () => Promise<boolean>, limitMs = 60_000, everyMs = 100): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await pause(everyMs);
  }
  return check();
}

/** Whether every viewer sees every subject with `status`. */
export function allSee(views: Map<string, MemberView[]>, viewers: readonly string[], subjects: readonly string[], status: MemberView['status']): boolean {
  return viewers.every((viewer) => {
    const view = views.get(viewer);
    if (view === undefined) return false;
    return subjects.filter((s) => s !== viewer).every((s) => view.find((m) => m.id === s)?.status === status);
  });
}

/** A compact picture of the views for failure messages. */
export function describeViews(views: Map<string, MemberView[]>): string {
  return [...views].map(([viewer, members]) => `${viewer}: ${members.map((m) => `${m.id}=${m.status}#${m.incarnation}`).join(' ')}`).join('\n');
}
