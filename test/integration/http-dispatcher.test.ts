/**
 * `factory.httpDispatcher()` against a real `node:http2` secure server on 127.0.0.1 that
 * requires client certificates: HTTP/2 via ALPN, the profile's client certificate, the same
 * typed TLS errors as gRPC, and `http_client_requests` telemetry.
 */
import 'reflect-metadata';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MeterProvider, MetricReader, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics';
import type { Container } from 'inversify';
import { request } from 'undici';
import { telemetryNames, TlsError, TOKENS } from 'omnirelay';
import type { TelemetryProviders } from 'omnirelay';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';
import { createContainer, factoryOf, fastProfile, issueToFiles } from '../support/hosts.js';
import { collectGarbage } from '../support/sockets.js';

/** A reader that only collects when the test asks. */
class ManualReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

interface SeenRequest {
  readonly path: string;
  readonly httpVersion: string;
  readonly alpn: string | false | null;
  readonly clientCn: string;
  readonly authorized: boolean;
}

interface TestHttpServer {
  readonly server: Http2SecureServer;
  readonly port: number;
  readonly url: string;
  readonly authority: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** A `node:http2` secure server (HTTP/1.1 allowed) requiring client certificates of `caFile`. */
async function startHttpServer(leaf: Pick<Files, 'certFile' | 'keyFile'>, caFile: string): Promise<TestHttpServer> {
  const requests: SeenRequest[] = [];
  const sessions = new Set<ServerHttp2Session>();
  const server = createSecureServer(
    {
      allowHTTP1: true,
      requestCert: true,
      rejectUnauthorized: true,
      ca: readFileSync(caFile),
      cert: readFileSync(leaf.certFile),
      key: readFileSync(leaf.keyFile),
    },
    (req: Http2ServerRequest, res: Http2ServerResponse) => {
      const socket = req.socket as unknown as TLSSocket;
      const peer = socket.getPeerCertificate();
      const seen: SeenRequest = {
        path: req.url,
        httpVersion: req.httpVersion,
        alpn: socket.alpnProtocol,
        clientCn: typeof peer.subject?.CN === 'string' ? peer.subject.CN : '',
        authorized: socket.authorized,
      };
      requests.push(seen);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    },
  );
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  // Failed handshakes are expected in these tests.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `https://127.0.0.1:${port}`,
    authority: `127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const SERVER_SANS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };

let pki: TestPki;
let good: TestHttpServer;
let otherCaServer: TestHttpServer;
let wrongNameServer: TestHttpServer;
let reader: ManualReader;
let meterProvider: MeterProvider;
let container: Container;

async function metric(name: string): Promise<MetricData> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const found = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  if (found === undefined) throw new Error(`metric ${name} was not collected`);
  return found;
}

function pointsWith(data: MetricData, attributes: Record<string, string | number>): DataPoint<unknown>[] {
  return (data.dataPoints as DataPoint<unknown>[]).filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
}

async function rejection(run: () => Promise<unknown>): Promise<TlsError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof TlsError) return error;
    throw new Error(`expected a TlsError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, { cause: error });
  }
  throw new Error('expected the request to fail, but it succeeded');
}

beforeAll(async () => {
  pki = await createTestPki();
  const otherCaFiles = await issueToFiles(pki.otherCa, pki.dir, 'other-ca-http-server', { commonName: 'other-ca-http-server', ...SERVER_SANS, usage: 'server' });
  good = await startHttpServer(pki.server, pki.caFile);
  otherCaServer = await startHttpServer(otherCaFiles, pki.caFile);
  wrongNameServer = await startHttpServer(pki.wrongNameServer, pki.caFile);

  reader = new ManualReader();
  meterProvider = new MeterProvider({ readers: [reader] });
  const providers: TelemetryProviders = { meterProvider };
  container = createContainer(
    { profiles: { 'control-plane': fastProfile({ mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile }) } },
    (c) => c.bind(TOKENS.Telemetry).toConstantValue(providers),
  );
});

afterAll(async () => {
  await container?.unbindAllAsync();
  await Promise.all([good, otherCaServer, wrongNameServer].filter((s) => s !== undefined).map((s) => s.close()));
  await meterProvider?.shutdown();
  await pki?.cleanup();
  await collectGarbage();
});

describe('factory.httpDispatcher()', () => {
  it('speaks HTTP/2 with the profile client certificate, and records http_client_requests', async () => {
    const dispatcher = factoryOf(container).httpDispatcher({ endpoint: good.url });
    const response = await request(`${good.url}/whoami`, { dispatcher });
    expect(response.statusCode).toBe(200);
    const body = (await response.body.json()) as SeenRequest;
    expect(body).toEqual({ path: '/whoami', httpVersion: '2.0', alpn: 'h2', clientCn: 'client', authorized: true });
    expect(good.requests).toHaveLength(1);

    // A second request reuses the same dispatcher (and connection pool).
    const again = await request(`${good.url}/again`, { dispatcher });
    expect(again.statusCode).toBe(200);
    await again.body.dump();
    expect(factoryOf(container).httpDispatcher({ endpoint: good.url })).toBe(dispatcher);

    const requests = await metric(telemetryNames.METRIC_HTTP_CLIENT_REQUESTS);
    const points = pointsWith(requests, {
      [telemetryNames.ATTR_ENDPOINT]: good.authority,
      [telemetryNames.ATTR_PROTOCOL]: 'h2',
      [telemetryNames.ATTR_PROFILE]: 'control-plane',
      [telemetryNames.ATTR_HTTP_REQUEST_METHOD]: 'GET',
      [telemetryNames.ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
    });
    expect(points).toHaveLength(1);
    expect(points[0]!.value).toBe(2);

    const durations = await metric(telemetryNames.METRIC_HTTP_CLIENT_REQUEST_DURATION);
    expect(pointsWith(durations, { [telemetryNames.ATTR_ENDPOINT]: good.authority, [telemetryNames.ATTR_PROTOCOL]: 'h2' })).toHaveLength(1);
  });

  it('server certificate from another CA -> TLS_PEER_UNTRUSTED, nothing reaches the server', async () => {
    const dispatcher = factoryOf(container).httpDispatcher({ endpoint: otherCaServer.url });
    const error = await rejection(() => request(`${otherCaServer.url}/secret`, { dispatcher }));
    expect(error.code).toBe('TLS_PEER_UNTRUSTED');
    expect(error.peer).toBe(otherCaServer.authority);
    expect(error.message).toContain(otherCaServer.authority);
    expect(otherCaServer.requests).toHaveLength(0);

    const requests = await metric(telemetryNames.METRIC_HTTP_CLIENT_REQUESTS);
    const failed = pointsWith(requests, { [telemetryNames.ATTR_ENDPOINT]: otherCaServer.authority, [telemetryNames.ATTR_ERROR_TYPE]: 'TLS_PEER_UNTRUSTED' });
    expect(failed).toHaveLength(1);
    expect(failed[0]!.attributes[telemetryNames.ATTR_PROTOCOL]).toBe(telemetryNames.PROTOCOL_NONE);
  });

  it('server certificate without the dialled name -> TLS_PEER_NAME_MISMATCH, nothing reaches the server', async () => {
    const dispatcher = factoryOf(container).httpDispatcher({ endpoint: wrongNameServer.url });
    const error = await rejection(() => request(`${wrongNameServer.url}/secret`, { dispatcher }));
    expect(error.code).toBe('TLS_PEER_NAME_MISMATCH');
    expect(error.peer).toBe(wrongNameServer.authority);
    expect(error.message).toContain(wrongNameServer.authority);
    expect(wrongNameServer.requests).toHaveLength(0);
  });
});
