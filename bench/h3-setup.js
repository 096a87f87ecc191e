// Shared by bench/run.js (HTTP/3 section) and bench/profile-h3.js: one Ping service, an HTTP/2
// host (TCP) and an HTTP/3 host (UDP) on the same port number, and one factory with two
// profiles that differ only in `http3` ('prefer' with GrpcH3Transport bound, 'disable').
import { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Container } from 'inversify';
import { controlPlaneV1, GrpcH3Host, GrpcH3Transport, GrpcHost, grpcControlPlaneModule, TOKENS } from '../dist/index.js';

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
 * A GrpcHost (HTTP/2 over TCP) and a GrpcH3Host (HTTP/3 over UDP) on the same port number,
 * serving `pingService` with mTLS. Retries with a new port if the UDP port is taken.
 */
export async function startSamePortHosts(files, pki) {
  const tls = { certFile: files.certFile, keyFile: files.keyFile, caFile: pki.caFile };
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const h2 = await GrpcHost.start({ host: '127.0.0.1', tls }, [pingService]);
    try {
      const h3 = await GrpcH3Host.start({ host: '127.0.0.1', port: h2.port, tls }, [pingService]);
      return { h2, h3, port: h2.port, url: h2.url, close: async () => Promise.all([h2.close(1000), h3.close(1000)]) };
    } catch (error) {
      lastError = error;
      await h2.close(0);
    }
  }
  throw new Error(`could not start an HTTP/3 host on the HTTP/2 host's port: ${String(lastError)}`);
}

/**
 * One factory, two profiles on the same URL: `h3` (http3 'prefer', GrpcH3Transport bound) and
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
  container.bind(TOKENS.Http3Transport).toConstantValue(new GrpcH3Transport());
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
