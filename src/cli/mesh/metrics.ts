/**
 * The mesh's telemetry: one OpenTelemetry MeterProvider for every node (each node's container
 * sees it through `labelledMeterProvider(…, { node })`), read by two readers: the Prometheus
 * exporter behind an HTTP server of ours on 127.0.0.1 (only when a port is given), and a
 * reader the live table collects from. The SDK and the exporter are loaded when a mesh starts,
 * so importing the CLI costs nothing without them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MeterProvider as ApiMeterProvider } from '@opentelemetry/api';
import type * as PrometheusModule from '@opentelemetry/exporter-prometheus';
import type * as SdkMetricsModule from '@opentelemetry/sdk-metrics';
import type { MetricReader, ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** One data point of a collected metric: its attributes and its number (counters, gauges). */
export interface MetricPoint {
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly value: number;
}

/** Collected metrics by instrument name (only sums and gauges; histograms are left to Prometheus). */
export type CollectedMetrics = ReadonlyMap<string, readonly MetricPoint[]>;

export interface MeshMetrics {
  readonly meterProvider: ApiMeterProvider;
  /** `http://127.0.0.1:<port>/metrics`, when serving. */
  readonly url: string | undefined;
  collect(): Promise<CollectedMetrics>;
  /** Closes the HTTP server and shuts the provider down. */
  close(): Promise<void>;
}

async function loadSdk(): Promise<{ sdk: typeof SdkMetricsModule; prometheus: typeof PrometheusModule }> {
  try {
    const [sdk, prometheus] = await Promise.all([import('@opentelemetry/sdk-metrics'), import('@opentelemetry/exporter-prometheus')]);
    return { sdk, prometheus };
  } catch (error) {
    throw new Error(
      'omnirelay mesh needs @opentelemetry/sdk-metrics@^2.12 and @opentelemetry/exporter-prometheus@^0.223 (optional peer dependencies): npm install @opentelemetry/sdk-metrics@^2.12 @opentelemetry/exporter-prometheus@^0.223',
      { cause: error },
    );
  }
}

function flatten(resourceMetrics: ResourceMetrics): Map<string, MetricPoint[]> {
  const out = new Map<string, MetricPoint[]>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const points = out.get(metric.descriptor.name) ?? [];
      for (const point of metric.dataPoints) {
        if (typeof point.value === 'number') points.push({ attributes: point.attributes, value: point.value });
      }
      out.set(metric.descriptor.name, points);
    }
  }
  return out;
}

/** Starts the provider; serves `/metrics` on 127.0.0.1:`port` when `port` is a number (0: any free port). */
export async function startMeshMetrics(port: number | undefined): Promise<MeshMetrics> {
  const { sdk, prometheus } = await loadSdk();
  class TableReader extends sdk.MetricReader {
    protected onShutdown(): Promise<void> {
      return Promise.resolve();
    }
    protected onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
  }
  const table: MetricReader = new TableReader();
  const exporter = new prometheus.PrometheusExporter({ preventServerStart: true });
  const provider = new sdk.MeterProvider({ readers: [table, exporter] });
  let server: Server | undefined;
  let url: string | undefined;
  if (port !== undefined) {
    const http = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path === '/metrics' && (request.method === 'GET' || request.method === 'HEAD')) {
        exporter.getMetricsRequestHandler(request, response);
        return;
      }
      response.statusCode = 404;
      response.setHeader('content-type', 'text/plain');
      response.end('not found: the metrics are at /metrics\n');
    });
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen({ host: '127.0.0.1', port }, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await provider.shutdown();
      throw new Error(`omnirelay mesh: cannot serve metrics on 127.0.0.1:${port}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    server = http;
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`;
  }
  return {
    meterProvider: provider,
    url,
    async collect(): Promise<CollectedMetrics> {
      const { resourceMetrics } = await table.collect();
      return flatten(resourceMetrics);
    },
    async close(): Promise<void> {
      if (server !== undefined) {
        const closing = server;
        server = undefined;
        closing.closeAllConnections();
        await new Promise<void>((resolve) => closing.close(() => resolve()));
      }
      await provider.shutdown();
    },
  };
}
