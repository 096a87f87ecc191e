/**
 * How a mesh snapshot is shown: a table redrawn in place on a terminal, or plain lines (one per
 * node and change, one per event) for logs and tests.
 */
import type { MeshEvent, MeshNodeSnapshot, MeshPeerSnapshot, MeshScopeSnapshot, MeshSnapshot } from './mesh.js';

export const KEYS_HELP = 'keys: k<n> kill node n · r<n> restart node n · h<n> flip node n\'s HTTP/3 hint (deny ↔ allow) · q quit (Ctrl-C too)';

function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === undefined || value === null) return '-';
  try {
    return JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return typeof value === 'object' ? '[unserialisable]' : typeof value;
  }
}

/** `node-1 gossip.member.dead peer=node-3 …` (fields flattened; long values cut). */
export function eventText(event: MeshEvent): string {
  const fields = Object.entries(event.fields)
    .filter(([key]) => key !== 'node')
    .map(([key, value]) => {
      const shown = fieldText(value);
      return `${key}=${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
    });
  return [event.node, event.level === 'warn' ? `${event.event} (warn)` : event.event, ...fields].join(' ');
}

function seconds(ms: number): string {
  return `${(ms / 1_000).toFixed(1)}s`;
}

function leaderText(scope: MeshScopeSnapshot): string {
  if (scope.leader === undefined) return `${scope.scope}=none`;
  return `${scope.scope}=${scope.leader.leaderId} term=${scope.leader.term} fence=${scope.leader.fenceToken} (${scope.agreedBy}/${scope.running} agree; leading: ${scope.leading.join(',') || 'none'})`;
}

function peerText(peer: MeshPeerSnapshot): string {
  return [peer.peer, peer.protocol, peer.breaker, ...peer.reasons.filter((r) => !r.startsWith('fallback:'))].join(':');
}

function nodeStable(node: MeshNodeSnapshot): string {
  const members = Object.entries(node.members)
    .map(([id, status]) => `${id}:${status ?? '-'}`)
    .join(',');
  const leaders = Object.entries(node.leaders)
    .map(([scope, leader]) => `${scope}:${leader === undefined ? 'none' : `${leader.leaderId}/t${leader.term}/f${leader.fenceToken}`}`)
    .join(',');
  const parts = [node.id, node.state, node.endpoint];
  if (node.state === 'running') parts.push(`members=${members}`, `leaders=${leaders}`, `leads=${node.leads.join(',') || '-'}`, `peers=${node.peers.map(peerText).join(',')}`);
  return parts.join(' ');
}

/**
 * Plain output: each snapshot's events, one line each, then a line per node whose state,
 * member view, leaders or peer protocols changed (rates are on the line but do not count as a
 * change), and every node again after `fullEveryMs`; the leaders line when it changed.
 */
export class PlainPrinter {
  readonly #last = new Map<string, string>();
  #lastFull = -Infinity;

  constructor(
    readonly write: (line: string) => void,
    readonly fullEveryMs = 10_000,
  ) {}

  print(snapshot: MeshSnapshot): void {
    const stamp = `[${seconds(snapshot.uptimeMs)}]`;
    for (const event of snapshot.events) this.write(`${stamp} event ${eventText(event)}`);
    const full = snapshot.uptimeMs - this.#lastFull >= this.fullEveryMs;
    if (full) this.#lastFull = snapshot.uptimeMs;
    for (const node of snapshot.nodes) {
      const stable = nodeStable(node);
      if (!full && this.#last.get(node.id) === stable) continue;
      this.#last.set(node.id, stable);
      this.write(`${stamp} node ${stable} rpc/s=${node.rpcPerSecond.toFixed(1)} err/s=${node.errorsPerSecond.toFixed(1)}`);
    }
    const leaders = `leaders ${snapshot.scopes.map(leaderText).join(' ')}`;
    if (full || this.#last.get('\0leaders') !== leaders) {
      this.#last.set('\0leaders', leaders);
      this.write(`${stamp} ${leaders}`);
    }
  }
}

/** Left-aligned columns, two spaces apart. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

export interface TableExtras {
  /** The last events to show (oldest first). */
  readonly events: readonly MeshEvent[];
  /** A prompt or the outcome of the last key. */
  readonly status?: string | undefined;
  /** Cut lines to this width (a terminal's columns). */
  readonly columns?: number | undefined;
}

/** The live table's lines. */
export function renderTable(snapshot: MeshSnapshot, extras: TableExtras): string[] {
  const ids = snapshot.nodes.map((n) => n.id);
  const lines: string[] = [];
  lines.push(`omnirelay mesh · ${snapshot.nodes.length} nodes · up ${seconds(snapshot.uptimeMs)} · ${snapshot.metricsUrl === undefined ? 'metrics: off (--metrics-port <port>)' : `metrics: ${snapshot.metricsUrl}`}`);
  lines.push(`dev CA and certificates in ${snapshot.dir} (removed on exit); every RPC through each node's client factory, HTTP/3 preferred, mTLS`);
  lines.push('');
  lines.push('MEMBERS as each node sees them');
  lines.push(
    ...table([
      ['NODE', 'STATE', 'ENDPOINT', ...ids, 'RPC/s', 'ERR/s', 'LEADS', 'APP CALLS ok/failed'],
      ...snapshot.nodes.map((n) => [
        `${n.index} ${n.id}`,
        n.state,
        n.endpoint,
        ...ids.map((id) => (n.state === 'running' ? (n.members[id] ?? '-') : '')),
        n.rpcPerSecond.toFixed(1),
        n.errorsPerSecond.toFixed(1),
        n.leads.join(',') || '-',
        n.state === 'running' ? `${n.traffic.ok}/${n.traffic.failed}` : '',
      ]),
    ]),
  );
  lines.push('');
  lines.push('LEADERS');
  lines.push(
    ...table([
      ['SCOPE', 'LEADER', 'TERM', 'FENCE', 'AGREED', 'LEADING (own belief)'],
      ...snapshot.scopes.map((s) => [s.scope, s.leader?.leaderId ?? 'none', s.leader === undefined ? '-' : String(s.leader.term), s.leader?.fenceToken ?? '-', `${s.agreedBy}/${s.running}`, s.leading.join(',') || 'none']),
    ]),
  );
  lines.push('');
  lines.push(`PEERS: calls of the last ${seconds(snapshot.intervalMs)} by protocol`);
  const peerRows: string[][] = [];
  for (const n of snapshot.nodes) {
    if (n.state !== 'running') continue;
    for (const p of n.peers) {
      peerRows.push([n.id, p.peer, p.protocol, `${p.calls.h3}/${p.calls.h2}`, p.connections.join(',') || '-', p.breaker, p.hint, String(p.fallbacksTotal), p.reasons.join(' ') || '-']);
    }
  }
  lines.push(...table([['CALLER', 'PEER', 'PROTO', 'h3/h2', 'CONNS', 'BREAKER', 'HINT', 'FALLBACKS', 'WHY NOT HTTP/3'], ...peerRows]));
  lines.push('');
  lines.push('EVENTS');
  const events = extras.events.slice(-6);
  if (events.length === 0) lines.push('-');
  for (const e of events) lines.push(`${new Date(e.at).toISOString().slice(11, 19)} ${eventText(e)}`);
  lines.push('');
  lines.push(KEYS_HELP);
  lines.push(extras.status ?? '');
  const columns = extras.columns;
  return columns === undefined || columns <= 0 ? lines : lines.map((line) => (line.length > columns ? line.slice(0, columns) : line));
}
