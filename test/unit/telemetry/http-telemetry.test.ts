import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_PROTOCOL,
  HTTP_DURATION_BUCKETS_SECONDS,
  HttpTelemetry,
  METRIC_HTTP_CLIENT_REQUEST_DURATION,
  METRIC_HTTP_CLIENT_REQUESTS,
} from '../../../src/telemetry/index.js';
import { createHarness, histogramValue, numberValue, pointsMatching } from './harness.js';
import type { Harness } from './harness.js';

let h: Harness;
let telemetry: HttpTelemetry;

beforeEach(() => {
  h = createHarness();
  telemetry = new HttpTelemetry({ meterProvider: h.meterProvider, tracerProvider: h.tracerProvider, clock: h.clock });
});

afterEach(async () => {
  await h.shutdown();
});

describe('HttpTelemetry', () => {
  it('records a successful request', async () => {
    const obs = telemetry.start({ method: 'get', endpoint: 'hints.internal:443', profile: 'default' });
    obs.setProtocol('h1');
    h.advance(8);
    obs.end(200);

    const span = h.spans()[0];
    expect(span?.name).toBe('GET');
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toEqual({
      'http.request.method': 'GET',
      'http.request.method_original': 'get',
      'http.response.status_code': 200,
      'server.address': 'hints.internal',
      'server.port': 443,
      'network.protocol.name': 'http',
      'network.protocol.version': '1.1',
      'omnirelay.endpoint': 'hints.internal:443',
      'omnirelay.profile': 'default',
      'omnirelay.protocol': 'h1',
    });

    const expected = {
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'omnirelay.endpoint': 'hints.internal:443',
      'omnirelay.protocol': 'h1',
      'omnirelay.profile': 'default',
    };
    const counter = await h.metric(METRIC_HTTP_CLIENT_REQUESTS);
    expect(counter.dataPoints[0]?.attributes).toEqual(expected);
    expect(counter.dataPoints[0]?.value).toBe(1);
    const duration = await h.metric(METRIC_HTTP_CLIENT_REQUEST_DURATION);
    expect(duration.descriptor.unit).toBe('s');
    expect(duration.dataPoints[0]?.attributes).toEqual(expected);
    const hist = histogramValue(pointsMatching(duration, {})[0]);
    expect(hist.count).toBe(1);
    expect(hist.sum).toBeCloseTo(0.008, 9);
    expect(hist.buckets.boundaries).toEqual(HTTP_DURATION_BUCKETS_SECONDS);
  });

  it('marks a 5xx response as an error typed by its status code', async () => {
    const obs = telemetry.start({ method: 'POST', endpoint: 'hints.internal:443', profile: 'default' });
    obs.setProtocol('h2');
    obs.end(503);
    const span = h.spans()[0];
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'HTTP 503' });
    expect(span?.attributes[ATTR_ERROR_TYPE]).toBe('503');
    expect(span?.attributes['network.protocol.version']).toBe('2');
    const counter = await h.metric(METRIC_HTTP_CLIENT_REQUESTS);
    expect(numberValue(pointsMatching(counter, { [ATTR_HTTP_RESPONSE_STATUS_CODE]: 503, [ATTR_ERROR_TYPE]: '503' })[0])).toBe(1);
  });

  it('records a request that got no response, with protocol none, and ends once', async () => {
    const obs = telemetry.start({ method: 'BREW', endpoint: 'hints.internal:443', profile: 'default' });
    const err = Object.assign(new Error('getaddrinfo ENOTFOUND hints.internal'), { code: 'ENOTFOUND' });
    obs.end(undefined, err);
    obs.end(200);

    expect(h.spans()).toHaveLength(1);
    const span = h.spans()[0];
    expect(span?.name).toBe('HTTP');
    expect(span?.attributes['http.request.method']).toBe('_OTHER');
    expect(span?.attributes['http.request.method_original']).toBe('BREW');
    expect(span?.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE]).toBeUndefined();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'getaddrinfo ENOTFOUND hints.internal' });
    expect(span?.events.map((e) => e.name)).toEqual(['exception']);

    const counter = await h.metric(METRIC_HTTP_CLIENT_REQUESTS);
    expect(counter.dataPoints).toHaveLength(1);
    expect(counter.dataPoints[0]?.attributes).toEqual({
      'http.request.method': '_OTHER',
      'error.type': 'ENOTFOUND',
      'omnirelay.endpoint': 'hints.internal:443',
      [ATTR_PROTOCOL]: 'none',
      'omnirelay.profile': 'default',
    });
  });
});
