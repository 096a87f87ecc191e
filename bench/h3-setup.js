// Shared by bench/run.js (HTTP/3 section) and bench/profile-h3.js: one Ping service, one GrpcHost
// serving HTTP/2 (TCP) and HTTP/3 (UDP) on the same port number, and one factory with two
// profiles that differ only in `http3` ('prefer' with the default GrpcH3Transport, 'disable').
import { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Container } from 'inversify';
import { controlPlaneV1, GrpcHost, grpcControlPlaneModule, TOKENS } from '../dist/index.js';

const { ControlPlaneDefinition } = controlPlaneV1;

/** The ControlPlane service every bench host serves: Ping echoes the sequence and the caller's identity. */
export const pingService = [
  ControlPlaneDefinition,
  {
    ping: (request, call) => ({ node: 'bench', sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() }),
    watch: async function* () {},
  },
];

/** Telemetry on, as in production: an SDK meter provider and a tracer provider with a batch span processor. */
export function sdkTelemetry() {
  const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 60_000 })] });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} })] });
  return {
    telemetry: { meterProvider, tracerProvider },
    shutdown: async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/**
 * One GrpcHost serving `pingService` over HTTP/2 (TCP) and HTTP/3 (UDP) on the same port
 * number, with mTLS.
 */
export async function startSamePortHosts(files, pki) {
  const tls = { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile };
  const host = await GrpcHost.start({ host: '127.0.0.1', tls }, [pingService]);
  return { port: host.port, url: host.url, close: () => host.close(1000) };
}

/**
 * One factory, two profiles on the same URL: `h3` (http3 'prefer', the module's default GrpcH3Transport) and
 * `h2` (http3 'disable'); endpoints `bench-h3` and `bench-h2`. Same telemetry for both.
 */
export function twoProtocolFactory({ pki, client, url, telemetry }) {
  const tls = { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile };
  const options = {
    profiles: {
      h3: { http3: 'prefer', tls, deadlineMs: 10_000 },
      h2: { http3: 'disable', tls, deadlineMs: 10_000 },
    },
    endpoints: { 'bench-h3': { url, profile: 'h3' }, 'bench-h2': { url, profile: 'h2' } },
  };
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue(options);
  if (telemetry !== undefined) container.bind(TOKENS.Telemetry).toConstantValue(telemetry);
  container.load(grpcControlPlaneModule);
  return { container, factory: container.get(TOKENS.GrpcControlPlaneClientFactory) };
}

/** A unary Ping through `factory` to `endpoint`; resolves to the UnaryResult. */
export function pingVia(factory, endpoint) {
  return (i) => factory.unary(ControlPlaneDefinition, 'ping', { fromNode: 'bench', sequence: i, payload: new Uint8Array() }, { endpoint });
}

/** Makes one call and throws a clear error unless it went over `expected` ('h2' or 'h3'). */
export async function expectProtocol(call, expected, label) {
  const result = await call(0);
  if (result.protocol !== expected) {
    throw new Error(`${label}: the first call went over ${result.protocol}, expected ${expected}; the HTTP/3 comparison would be meaningless, aborting`);
  }
  return result;
}
