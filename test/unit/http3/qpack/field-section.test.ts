import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  FIELD_OVERHEAD,
  QPACK_DECOMPRESSION_FAILED,
  QPACK_STATIC_TABLE,
  QpackError,
  decodeFieldSection,
  encodeFieldSection,
  huffmanEncode,
  maxEncodedFieldSectionSize,
  type HeaderField,
  type QpackErrorKind,
} from '../../../../src/http3/qpack/index.js';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sizeOf = (headers: readonly HeaderField[]): number =>
  headers.reduce((sum, [n, v]) => sum + n.length + v.length + FIELD_OVERHEAD, 0);

function errorOf(fn: () => unknown): QpackError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QpackError);
    return err as QpackError;
  }
  throw new Error('expected a QpackError');
}
const kindOf = (bytes: Uint8Array, max?: number): QpackErrorKind =>
  errorOf(() => decodeFieldSection(bytes, max === undefined ? {} : { maxFieldSectionSize: max })).kind;

const GRPC_REQUEST: HeaderField[] = [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':path', '/pkg.Svc/Method'],
  [':authority', 'control-plane.internal:8443'],
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
  ['grpc-timeout', '100m'],
  ['user-agent', 'omnirelay/0.1.0 grpc-node-js/1.14.7'],
  ['grpc-accept-encoding', 'identity,deflate,gzip'],
  ['x-trace-bin', Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80]).toString('base64')],
];
const GRPC_RESPONSE: HeaderField[] = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
  ['grpc-encoding', 'identity'],
];
const GRPC_TRAILERS: HeaderField[] = [
  ['grpc-status', '0'],
  ['grpc-message', ''],
  ['grpc-status-details-bin', Buffer.from('details \u0000\u00ff', 'latin1').toString('base64')],
];

describe('encodeFieldSection', () => {
  it('matches RFC 9204 Appendix B.1 without Huffman', () => {
    expect(toHex(encodeFieldSection([[':path', '/index.html']], { huffman: false }))).toBe(
      toHex(hex('0000 510b 2f69 6e64 6578 2e68 746d 6c')),
    );
  });

  it('uses static indexed lines, static name references and literal names', () => {
    const bytes = encodeFieldSection(
      [
        [':method', 'POST'],
        [':scheme', 'https'],
        [':status', '200'],
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
      ],
      { huffman: false },
    );
    expect(toHex(bytes)).toBe(
      toHex(
        Uint8Array.from([
          0x00, 0x00, // Required Insert Count 0, Delta Base 0
          0xc0 | 20, // :method POST
          0xc0 | 23, // :scheme https
          0xc0 | 25, // :status 200
          0x5f, 44 - 15, 16, ...Buffer.from('application/grpc'), // name ref 44, raw value
          0x20 | 2, ...Buffer.from('te'), 8, ...Buffer.from('trailers'), // literal name
        ]),
      ),
    );
  });

  it('Huffman-codes only strings it makes shorter', () => {
    const coded = encodeFieldSection([[':authority', 'www.example.com']]);
    expect(toHex(coded)).toBe(toHex(hex('0000 508c f1e3 c2e5 f23a 6ba0 ab90 f4ff')));
    // 'a' is 5 bits: one octet either way, so it stays raw.
    expect(toHex(encodeFieldSection([[':authority', 'a']]))).toBe('00005001' + '61');
    expect(toHex(encodeFieldSection([['custom-key', 'custom-value']]))).toBe(
      toHex(hex('0000 2f01 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')),
    );
  });

  it('sets the N bit for names the caller marks', () => {
    const neverIndex = (name: string): boolean => name === 'authorization' || name === 'x-secret';
    const bytes = encodeFieldSection(
      [
        ['authorization', 'Bearer t'],
        ['x-secret', 's'],
        [':method', 'GET'],
      ],
      { neverIndex, huffman: false },
    );
    expect(bytes[2]).toBe(0x70 | 0x0f); // 0 1 N=1 T=1, index 84 ≥ 15
    const decoded = decodeFieldSection(bytes);
    expect(decoded.headers).toEqual([
      ['authorization', 'Bearer t'],
      ['x-secret', 's'],
      [':method', 'GET'],
    ]);
    expect(decoded.neverIndexed).toEqual([true, true, false]);
  });

  it('refuses names that are not lowercase tokens and values HTTP forbids', () => {
    expect(() => encodeFieldSection([['Content-Type', 'x']])).toThrow(RangeError);
    expect(() => encodeFieldSection([['', 'x']])).toThrow(RangeError);
    expect(() => encodeFieldSection([['bad name', 'x']])).toThrow(RangeError);
    expect(() => encodeFieldSection([['x', 'a\r\nb']])).toThrow(RangeError);
    expect(() => encodeFieldSection([['x', 'a\u0000']])).toThrow(RangeError);
    expect(() => encodeFieldSection([['x', 'snow \u2603']])).toThrow(RangeError);
  });

  it('encodes an empty list as the prefix alone', () => {
    expect(toHex(encodeFieldSection([]))).toBe('0000');
    expect(decodeFieldSection(hex('0000'))).toEqual({ headers: [], neverIndexed: [], size: 0 });
  });
});

describe('gRPC header lists round trip', () => {
  it.each([
    ['request', GRPC_REQUEST],
    ['response headers', GRPC_RESPONSE],
    ['trailers', GRPC_TRAILERS],
  ])('%s', (_label, headers) => {
    for (const huffman of [true, false]) {
      const decoded = decodeFieldSection(encodeFieldSection(headers, { huffman }));
      expect(decoded.headers).toEqual(headers);
      expect(decoded.size).toBe(sizeOf(headers));
    }
    const bin = headers.find(([name]) => name.endsWith('-bin'));
    if (bin !== undefined) {
      const decoded = decodeFieldSection(encodeFieldSection(headers)).headers.find(([name]) => name === bin[0]);
      expect(Buffer.from(decoded![1], 'base64')).toEqual(Buffer.from(bin[1], 'base64'));
    }
  });
});

describe('decodeFieldSection', () => {
  it('decodes a field section in the shape nghttp3 sends', () => {
    const huff = (s: string): number[] => {
      const coded = huffmanEncode(Uint8Array.from(Buffer.from(s)));
      expect(coded.length).toBeLessThan(127);
      return [0x80 | coded.length, ...coded];
    };
    const bytes = Uint8Array.from([
      0x00, 0x00,
      0xd1, // :method GET (17)
      0xd7, // :scheme https (23)
      ...hex('508c f1e3 c2e5 f23a 6ba0 ab90 f4ff'), // :authority, RFC 7541 C.4.1 Huffman value
      0x51, ...huff('/index.html'), // :path name ref 1
      0x5f, 95 - 15, ...huff('nghttp3/ngtcp2 client'), // user-agent 95, two-octet index
      ...hex('2f01 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'), // Huffman name and value (C.4.3)
      0x5f, 36 - 15, ...hex('86 a8eb 1064 9cbf'), // cache-control name ref 36, 'no-cache' (C.4.2)
      0xe7, // cache-control no-cache (39)
      0x70, 0x03, ...Buffer.from('abc'), // :authority with N=1, raw value
      0x30 | 2, ...Buffer.from('xy'), 0x00, // literal name 'xy' (N=1, H=0, length 2), empty value
    ]);
    const decoded = decodeFieldSection(bytes);
    const expected: HeaderField[] = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'www.example.com'],
      [':path', '/index.html'],
      ['user-agent', 'nghttp3/ngtcp2 client'],
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      ['cache-control', 'no-cache'],
      [':authority', 'abc'],
      ['xy', ''],
    ];
    expect(decoded.headers).toEqual(expected);
    expect(decoded.neverIndexed).toEqual([false, false, false, false, false, false, false, false, true, true]);
    expect(decoded.size).toBe(sizeOf(expected));
  });

  it('decodes every static entry by index and by name reference', () => {
    QPACK_STATIC_TABLE.forEach(([name, value], index) => {
      const indexed = index < 63 ? [0xc0 | index] : [0xff, index - 63];
      const named = index < 15 ? [0x50 | index] : [0x5f, index - 15];
      const bytes = Uint8Array.from([0, 0, ...indexed, ...named, 1, 0x41]);
      expect(decodeFieldSection(bytes).headers).toEqual([
        [name, value],
        [name, 'A'],
      ]);
    });
  });

  it('accepts any non-negative Delta Base (Base is unused without dynamic references)', () => {
    expect(decodeFieldSection(hex('0005 c1')).headers).toEqual([[':path', '/']]);
    expect(decodeFieldSection(hex('007f 8001 c1')).headers).toEqual([[':path', '/']]);
  });

  it.each<[string, string, QpackErrorKind]>([
    ['Required Insert Count 1', '0100 c1', 'dynamic-table-reference'],
    ['multi-octet Required Insert Count', 'ff01 00 c1', 'dynamic-table-reference'],
    ['Sign bit with Delta Base 0', '0080 c1', 'invalid-base'],
    ['Sign bit with Delta Base 1', '0081 c1', 'invalid-base'],
    ['indexed dynamic line', '0000 80', 'dynamic-table-reference'],
    ['literal with dynamic name', '0000 4001 61', 'dynamic-table-reference'],
    ['post-base indexed line', '0000 10', 'dynamic-table-reference'],
    ['literal with post-base name', '0000 0001 61', 'dynamic-table-reference'],
    ['static index 99', '0000 ff24', 'static-index-out-of-range'],
    ['static name index 99', '0000 5f54 0161', 'static-index-out-of-range'],
    ['huge static index', '0000 ffff ffff ffff ffff ff7f', 'integer-overflow'],
    ['empty input', '', 'truncated'],
    ['prefix cut short', '00', 'truncated'],
    ['Delta Base cut short', '007f', 'truncated'],
    ['index cut short', '0000 ff', 'truncated'],
    ['name ref without value', '0000 51', 'truncated'],
    ['value longer than input', '0000 5105 6162', 'truncated'],
    ['literal name without value', '0000 2161', 'truncated'],
    ['literal name longer than input', '0000 2761', 'truncated'],
    ['string length overflow', '0000 517f ffff ffff ffff ffff ff7f', 'integer-overflow'],
    ['Huffman value with EOS', '0000 5184 ffff fffc', 'huffman'],
    ['Huffman value with zero padding', '0000 5181 18', 'huffman'],
    ['Huffman value with long padding', '0000 5182 1fff', 'huffman'],
    ['Huffman name with bad padding', '0000 2918 0161', 'huffman'],
  ])('rejects %s', (_label, input, kind) => {
    const err = errorOf(() => decodeFieldSection(hex(input)));
    expect(err.kind).toBe(kind);
    expect(err.code).toBe(QPACK_DECOMPRESSION_FAILED);
    expect(err.code).toBe(0x200);
    expect(err.name).toBe('QpackError');
  });
});

describe('field section size limit (RFC 9114 §4.2.2)', () => {
  const headers: HeaderField[] = [
    [':status', '200'],
    ['grpc-message', 'x'.repeat(100)],
    ['custom', 'y'.repeat(50)],
  ];
  const size = sizeOf(headers);

  it.each([true, false])('accepts exactly the limit and rejects one octet less (huffman %s)', (huffman) => {
    const bytes = encodeFieldSection(headers, { huffman });
    expect(decodeFieldSection(bytes, { maxFieldSectionSize: size }).size).toBe(size);
    expect(kindOf(bytes, size - 1)).toBe('field-section-too-large');
  });

  it('counts 32 octets per field, even empty ones', () => {
    const bytes = encodeFieldSection(new Array<HeaderField>(10).fill([':authority', '']));
    expect(decodeFieldSection(bytes, { maxFieldSectionSize: 10 * (32 + 10) }).size).toBe(420);
    expect(kindOf(bytes, 419)).toBe('field-section-too-large');
    expect(kindOf(hex('0000 c0'), 0)).toBe('field-section-too-large');
  });

  it('stops a Huffman bomb before decoding it all', () => {
    // 1000 octets of Huffman '0' (5 bits) would decode to 1600 octets.
    const coded = huffmanEncode(Uint8Array.from(Buffer.from('0'.repeat(1600))));
    const bytes = Uint8Array.from([0, 0, 0x5f, 0x00, 0xff, ...encodeLength(coded.length - 127), ...coded]);
    expect(decodeFieldSection(bytes, { maxFieldSectionSize: 2000 }).headers[0]![1]).toHaveLength(1600);
    expect(kindOf(bytes, 1000)).toBe('field-section-too-large');
  });

  it('takes a 62-bit settings value as a bigint', () => {
    const bytes = encodeFieldSection(headers);
    expect(decodeFieldSection(bytes, { maxFieldSectionSize: 2n ** 62n - 1n }).size).toBe(size);
    expect(decodeFieldSection(bytes, { maxFieldSectionSize: Number.POSITIVE_INFINITY }).size).toBe(size);
    expect(() => decodeFieldSection(bytes, { maxFieldSectionSize: -1 })).toThrow(RangeError);
  });

  it('bounds the encoded size of any section within the limit (maxEncodedFieldSectionSize), so a longer HEADERS frame can be refused from its length', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.stringMatching(/^[a-z0-9-]{1,40}$/), fc.stringMatching(/^[\x21-\x7e]{0,200}$/)), { maxLength: 20 }), fc.boolean(), (lines, huffman) => {
        const fields = lines.map(([n, v]): HeaderField => [n, v]);
        expect(encodeFieldSection(fields, { huffman }).length).toBeLessThanOrEqual(maxEncodedFieldSectionSize(sizeOf(fields)));
      }),
    );
    // The worst case: Huffman codes of 30 bits for every octet of a literal name and value.
    const worst = huffmanEncode(Uint8Array.from(Buffer.from('\n'.repeat(500))));
    const line = [0x2f, ...encodeLength(worst.length - 7), ...worst, 0xff, ...encodeLength(worst.length - 127), ...worst];
    const bytes = Uint8Array.from([0, 0, ...line, ...line]);
    const decoded = decodeFieldSection(bytes, { maxFieldSectionSize: 1_000_000 });
    expect(decoded.size).toBe(2 * (1000 + FIELD_OVERHEAD));
    expect(bytes.length).toBeGreaterThan(3.5 * decoded.size);
    expect(bytes.length).toBeLessThanOrEqual(maxEncodedFieldSectionSize(decoded.size));
    expect(maxEncodedFieldSectionSize(2n ** 62n)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('defaults to 64 KiB', () => {
    const big: HeaderField[] = [['x-big', 'z'.repeat(70_000)]];
    expect(kindOf(encodeFieldSection(big))).toBe('field-section-too-large');
    expect(decodeFieldSection(encodeFieldSection(big), { maxFieldSectionSize: 80_000 }).size).toBe(70_037);
  });
});

function encodeLength(rest: number): number[] {
  const out: number[] = [];
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

describe('properties', () => {
  const TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
  const staticNames = [...new Set(QPACK_STATIC_TABLE.map(([n]) => n))];
  const name = fc.oneof(
    fc.constantFrom(...staticNames),
    fc.string({ unit: fc.constantFrom(...TOKEN), minLength: 1, maxLength: 40 }),
    fc.string({ unit: fc.constantFrom(...TOKEN), minLength: 1, maxLength: 10 }).map((s) => `:${s}`),
  );
  const valueChar = fc
    .integer({ min: 0, max: 0xff })
    .filter((c) => c !== 0 && c !== 0x0a && c !== 0x0d)
    .map((c) => String.fromCharCode(c));
  const value = fc.oneof(
    fc.string({ unit: valueChar, maxLength: 200 }),
    fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
    fc.constantFrom(...QPACK_STATIC_TABLE.map(([, v]) => v)),
  );
  const field = fc.oneof(fc.tuple(name, value), fc.constantFrom(...QPACK_STATIC_TABLE));
  const headerList = fc.array(field, { maxLength: 30 });

  it('arbitrary header lists round trip, with or without Huffman', () => {
    fc.assert(
      fc.property(headerList, fc.boolean(), (headers, huffman) => {
        const decoded = decodeFieldSection(encodeFieldSection(headers, { huffman }), {
          maxFieldSectionSize: sizeOf(headers),
        });
        expect(decoded.headers).toEqual(headers.map(([n, v]) => [n, v]));
        expect(decoded.size).toBe(sizeOf(headers));
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary bytes decode or throw QpackError, nothing else', () => {
    const section = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Uint8Array.from([0, 0, ...b])),
      fc
        .tuple(headerList, fc.nat(), fc.integer({ min: 0, max: 255 }))
        .map(([headers, at, octet]) => {
          const bytes = encodeFieldSection(headers);
          if (bytes.length > 2) bytes[2 + (at % (bytes.length - 2))] = octet; // corrupt one octet
          return bytes;
        }),
      headerList.chain((headers) => {
        const bytes = encodeFieldSection(headers);
        return fc.nat({ max: bytes.length }).map((cut) => bytes.subarray(0, cut)); // truncate
      }),
    );
    fc.assert(
      fc.property(section, fc.integer({ min: 0, max: 4096 }), (bytes, max) => {
        try {
          const decoded = decodeFieldSection(bytes, { maxFieldSectionSize: max });
          expect(decoded.size).toBeLessThanOrEqual(max);
          expect(decoded.headers).toHaveLength(decoded.neverIndexed.length);
        } catch (err) {
          if (!(err instanceof QpackError)) throw err;
          expect(err.code).toBe(0x200);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes large hostile input in linear time', () => {
    const junk = new Uint8Array(1 << 20).fill(0x80); // continuation octets everywhere
    junk[0] = 0;
    junk[1] = 0;
    junk[2] = 0xff;
    const started = performance.now();
    expect(kindOf(junk)).toBe('integer-overflow');
    const manyLines = Uint8Array.from([0, 0, ...new Array<number>(1 << 16).fill(0xc1)]);
    expect(kindOf(manyLines)).toBe('field-section-too-large');
    expect(decodeFieldSection(manyLines, { maxFieldSectionSize: Infinity }).headers).toHaveLength(1 << 16);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
