import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  decodeGrpcMessage,
  decodeGrpcTimeout,
  encodeGrpcMessage,
  encodeGrpcTimeout,
  frameGrpcMessage,
  GrpcDeframeError,
  GrpcMappingError,
  GrpcMessageDeframer,
  interpretResponseHeaders,
  interpretTrailers,
  requestHeaders,
} from '../../../src/grpc/mapping.js';
import { decodeFieldSection, encodeFieldSection } from '../../../src/http3/qpack/index.js';

describe('grpc-timeout', () => {
  it('uses at most 8 digits and the finest unit that fits', () => {
    expect(encodeGrpcTimeout(100)).toBe('100m');
    expect(encodeGrpcTimeout(0.2)).toBe('1m');
    expect(encodeGrpcTimeout(99_999_999)).toBe('99999999m');
    expect(encodeGrpcTimeout(100_000_000)).toBe('100000S');
    expect(encodeGrpcTimeout(1e12)).toBe('16666667M');
    expect(encodeGrpcTimeout(1e15)).toBe('99999999H');
  });

  it('parses every unit and refuses malformed values', () => {
    expect(['2H', '3M', '4S', '5m', '6000u', '7000000n'].map(decodeGrpcTimeout)).toEqual([7_200_000, 180_000, 4_000, 5, 6, 7]);
    expect(['', '123456789m', '5x', '-1m', '1.5S'].map(decodeGrpcTimeout)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('round-trips without ever shortening a timeout', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e12 }), (ms) => (decodeGrpcTimeout(encodeGrpcTimeout(ms)) ?? -1) >= ms));
  });
});

describe('grpc-message', () => {
  it('percent-encodes what is not printable ASCII, and %', () => {
    expect(encodeGrpcMessage('done 100%')).toBe('done 100%25');
    expect(encodeGrpcMessage('naïve\n')).toBe('na%C3%AFve%0A');
  });

  it('round-trips any text and is lenient with malformed escapes', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => decodeGrpcMessage(encodeGrpcMessage(s)) === Buffer.from(s, 'utf8').toString('utf8')));
    expect(decodeGrpcMessage('50%zz off %')).toBe('50%zz off %');
  });
});

describe('request headers', () => {
  it('carry the gRPC pseudo-headers, content-type, te, timeout and metadata (binary as unpadded base64)', () => {
    const fields = requestHeaders({ authority: 'node-b:7443', path: '/omnirelay.controlplane.v1.ControlPlane/Ping', timeoutMs: 250, metadata: { 'x-zone': 'eu-1', 'trace-bin': Buffer.from([1, 2, 3, 4]) } });
    expect(fields).toEqual([
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', 'node-b:7443'],
      [':path', '/omnirelay.controlplane.v1.ControlPlane/Ping'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['user-agent', 'omnirelay-h3'],
      ['grpc-timeout', '250m'],
      ['x-zone', 'eu-1'],
      ['trace-bin', 'AQIDBA'],
    ]);
    expect(decodeFieldSection(encodeFieldSection(fields)).headers).toEqual(fields);
  });

  it('refuse reserved, malformed and non-ASCII metadata with a message naming the key', () => {
    const bad = (metadata: Record<string, string>) => () => requestHeaders({ authority: 'a:1', path: '/s/m', timeoutMs: undefined, metadata });
    expect(bad({ 'grpc-status': '0' })).toThrow(/grpc-status.*reserved/);
    expect(bad({ te: 'x' })).toThrow(GrpcMappingError);
    expect(bad({ 'X-Upper': 'x' })).toThrow(/X-Upper/);
    expect(bad({ 'x-text': 'héllo' })).toThrow(/-bin/);
  });
});

describe('response interpretation', () => {
  it('accepts a gRPC response header section and reads the status from the trailers', () => {
    expect(interpretResponseHeaders([[':status', '200'], ['content-type', 'application/grpc+proto']])).toEqual({ outcome: undefined, trailersOnly: false });
    expect(interpretTrailers([['grpc-status', '0']])).toEqual({ status: 0, statusName: 'OK', message: '' });
    expect(interpretTrailers([['grpc-status', '14'], ['grpc-message', 'going%20away']])).toEqual({ status: 14, statusName: 'UNAVAILABLE', message: 'going away' });
  });

  it('recognises a trailers-only response', () => {
    const result = interpretResponseHeaders([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '12'], ['grpc-message', 'unknown method']]);
    expect(result).toEqual({ outcome: { status: 12, statusName: 'UNIMPLEMENTED', message: 'unknown method' }, trailersOnly: true });
  });

  it('maps HTTP statuses and non-gRPC content types as the gRPC spec says', () => {
    const statusOf = (s: string) => interpretResponseHeaders([[':status', s], ['content-type', 'text/html']]).outcome?.statusName;
    expect(['400', '401', '403', '404', '429', '502', '503', '504', '500'].map(statusOf)).toEqual(['INTERNAL', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'UNIMPLEMENTED', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'UNKNOWN']);
    expect(statusOf('200')).toBe('UNKNOWN');
    expect(interpretResponseHeaders([['content-type', 'application/grpc']]).outcome?.statusName).toBe('INTERNAL');
    expect(interpretTrailers([]).statusName).toBe('INTERNAL');
    expect(interpretTrailers([['grpc-status', 'abc']]).message).toContain('abc');
  });
});

describe('GrpcMessageDeframer', () => {
  it('yields the same messages however the stream is split', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (messages, cuts) => {
        const stream = Buffer.concat(messages.map((m) => frameGrpcMessage(m)));
        const deframer = new GrpcMessageDeframer(1_000);
        const out: Uint8Array[] = [];
        let offset = 0;
        for (let i = 0; offset < stream.length; i++) {
          const size = cuts[i % cuts.length]!;
          out.push(...deframer.push(stream.subarray(offset, offset + size)));
          offset += size;
        }
        expect(out.map((m) => Buffer.from(m).toString('hex'))).toEqual(messages.map((m) => Buffer.from(m).toString('hex')));
        expect(deframer.bufferedBytes).toBe(0);
      }),
    );
  });

  it('refuses an oversized message as soon as its prefix arrives, and compressed messages', () => {
    const deframer = new GrpcMessageDeframer(10);
    const header = new Uint8Array([0, 0, 0, 0, 11]);
    expect(() => deframer.push(header)).toThrow(GrpcDeframeError);
    try {
      new GrpcMessageDeframer(10).push(header);
    } catch (error) {
      expect((error as GrpcDeframeError).status).toBe(8);
    }
    expect(() => new GrpcMessageDeframer(10).push(new Uint8Array([1, 0, 0, 0, 1, 7]))).toThrow(/compressed/);
  });
});
