/**
 * Feature tier: the Grafana dashboard shipped in docs/grafana-dashboard.json asks only for what a
 * running system exposes. Every PromQL query's metric names, and the labels each query groups
 * or filters by, are checked against the Prometheus exposition of a running `omnirelay mesh`
 * (three nodes, one of them killed and restarted so breakers, fallbacks and leadership move),
 * plus — for what a mesh run may or may not provoke — a leadership cluster in which a deposed
 * leader's fenced write is rejected and a factory whose calls to two closed ports fall back from
 * HTTP/3 and open their circuit breakers, scraped through the same Prometheus exporter.
 */

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createServer } from 'node:net';
import { controlPlaneV1, createControlPlaneClientFactory } from 'omnirelay';
import { startMesh } from '../../dist/cli/mesh/index.js';
import { eventually, LeadershipCluster } from './support/leadership.js';

interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets?: readonly { readonly expr: string }[];
}

const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Panel[] };
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** PromQL words that are not metric names. */
const PROMQL = new Set(['sum', 'max', 'min', 'avg', 'count', 'by', 'without', 'rate', 'increase', 'irate', 'histogram_quantile', 'le']);

/** Metric names in a query: identifiers followed by `{`, `[` or `)` that are not functions, keywords or labels. */
function metricsOf(expr: string): string[] {
  const withoutGroupings = expr.replace(/\b(?:by|without)\s*\([^)]*\)/g, '').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const names = [...withoutGroupings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!).filter((n) => !PROMQL.has(n) && !/^\d/.test(n));
  return [...new Set(names)];
}

/** Labels a query groups by or matches on. */
function labelsOf(expr: string): string[] {
  const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()));
  const matched = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!));
  return [...new Set([...grouped, ...matched])].filter((l) => l !== '' && l !== 'le');
}

/** Sample names with the label names seen on them, from a Prometheus text exposition. */
function families(exposition: string, into = new Map<string, Set<string>>()): Map<string, Set<string>> {
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s/.exec(line);
    if (m === null) continue;
    const labels = into.get(m[1]!) ?? new Set<string>();
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(kv[1]!);
    into.set(m[1]!, labels);
  }
  return into;
}

describe('docs/grafana-dashboard.json', () => {
  it('has queries, and each names at least one metric', () => {
    expect(queries.length).toBeGreaterThanOrEqual(15);
    for (const q of queries) expect({ panel: q.panel, metrics: metricsOf(q.expr).length > 0 }).toEqual({ panel: q.panel, metrics: true });
  });

  it('asks only for metrics and labels a running mesh exposes', async () => {
    const seen = new Map<string, Set<string>>();

    // 1. A mesh, with a node killed and restarted.
    const mesh = await startMesh({ nodes: 3, metricsPort: 0, sampleIntervalMs: 500 });
    try {
      expect(await eventually(() => (mesh.snapshot?.nodes ?? []).every((n) => n.state === 'running' && n.rpcPerSecond > 0), 45_000)).toBe(true);
      await mesh.kill(2);
      expect(await eventually(() => (mesh.snapshot?.nodes ?? []).filter((n) => n.state === 'running').every((n) => n.members['node-2'] === 'dead'), 45_000)).toBe(true);
      await mesh.restart(2);
      expect(await eventually(() => (mesh.snapshot?.nodes ?? []).every((n) => n.state === 'running' && n.members['node-2'] === 'alive'), 45_000)).toBe(true);
      // Instruments appear once something was recorded: scrape until the families the
      // dashboard asks for are there (but three that a run may not provoke every time, below).
      const wanted = [...new Set(queries.flatMap((q) => metricsOf(q.expr)))].filter((m) => !['mesh_leadership_stale_fence', 'omnirelay_circuit_breaker_transitions', 'grpc_outbound_protocol_fallbacks'].some((prefix) => m.startsWith(prefix)));
      for (let i = 0; i < 150 && !wanted.every((m) => seen.has(m)); i++) {
        families(await (await fetch(mesh.metricsUrl!)).text(), seen);
        if (!wanted.every((m) => seen.has(m))) await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await mesh.close();
    }

    // 2. A deposed leader's fenced write, rejected (the stale-fence counter).
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const meterProvider = new MeterProvider({ readers: [exporter] });
    const cluster = new LeadershipCluster({ scopes: ['global'] }, undefined, { meterProvider });
    try {
      await cluster.init(['l1', 'l2']);
      await cluster.start('l1');
      await cluster.start('l2');
      expect(await eventually(() => cluster.leadersOf('global').length === 1)).toBe(true);
      const deposed = cluster.leadersOf('global')[0]!;
      const writer = deposed.agent.fence('global');
      deposed.store.paused = true;
      expect(await eventually(() => cluster.leadersOf('global').some((n) => n.id !== deposed.id))).toBe(true);
      deposed.store.paused = false;
      await expect(writer.put('global/owner', deposed.id)).rejects.toMatchObject({ code: 'LEADERSHIP_STALE_FENCE_TOKEN' });

      // 3. Circuit breakers opening and HTTP/3 falling back: calls to two peers whose UDP and TCP
      //    ports refuse (ICMP port unreachable ends the HTTP/3 attempt, then HTTP/2 is refused).
      const files = cluster.pki.files['l1']!;
      const factory = createControlPlaneClientFactory({
        options: { profiles: { 'control-plane': { tls: { mode: 'mtls', certFile: files.certFile, keyFile: files.keyFile, caFile: cluster.pki.caFile } } } },
        telemetry: { meterProvider },
      });
      try {
        const peers = [`127.0.0.1:${await closedPort()}`, `127.0.0.1:${await closedPort()}`];
        for (let i = 0; i < 20; i++) await factory.unary(controlPlaneV1.ControlPlaneDefinition, 'ping', { fromNode: 'dashboard', sequence: i, payload: new Uint8Array() }, { peers }).catch(() => undefined);
      } finally {
        await factory.dispose();
      }
      const { resourceMetrics } = await exporter.collect();
      families(new PrometheusSerializer().serialize(resourceMetrics), seen);
    } finally {
      await cluster.close();
      await meterProvider.shutdown();
    }

    const problems: string[] = [];
    for (const q of queries) {
      const metrics = metricsOf(q.expr);
      for (const metric of metrics) if (!seen.has(metric)) problems.push(`${q.panel}: no metric ${metric} in the exposition`);
      for (const label of labelsOf(q.expr)) {
        if (!metrics.some((metric) => seen.get(metric)?.has(label) === true)) problems.push(`${q.panel}: no label ${label} on ${metrics.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
