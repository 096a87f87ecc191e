import { describe, expect, it } from '@jest/globals';
import {
  QPACK_STATIC_TABLE,
  QPACK_STATIC_TABLE_SIZE,
  findStaticExact,
  findStaticName,
  staticEntry,
} from '../../../../src/http3/qpack/index.js';

// Spot checks against RFC 9204 Appendix A (checked offline in full against the draft's table and
// nghttp3's generated table).
const SPOT: Array<[number, string, string]> = [
  [0, ':authority', ''],
  [1, ':path', '/'],
  [2, 'age', '0'],
  [14, 'set-cookie', ''],
  [15, ':method', 'CONNECT'],
  [17, ':method', 'GET'],
  [20, ':method', 'POST'],
  [22, ':scheme', 'http'],
  [23, ':scheme', 'https'],
  [25, ':status', '200'],
  [29, 'accept', '*/*'],
  [31, 'accept-encoding', 'gzip, deflate, br'],
  [44, 'content-type', 'application/dns-message'],
  [52, 'content-type', 'text/html; charset=utf-8'],
  [58, 'strict-transport-security', 'max-age=31536000; includesubdomains; preload'],
  [62, 'x-xss-protection', '1; mode=block'],
  [63, ':status', '100'],
  [71, ':status', '500'],
  [72, 'accept-language', ''],
  [84, 'authorization', ''],
  [85, 'content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"],
  [95, 'user-agent', ''],
  [97, 'x-frame-options', 'deny'],
  [98, 'x-frame-options', 'sameorigin'],
];


// All 99 entries as a second, independent transcription: nghttp3's generated name-sorted table
// (lib/nghttp3_qpack.c, token_stable), which carries each entry's RFC 9204 index.
const BY_NAME_WITH_INDEX: Array<[number, string, string]> = [
  [0, ':authority', ''],
  [15, ':method', 'CONNECT'],
  [16, ':method', 'DELETE'],
  [17, ':method', 'GET'],
  [18, ':method', 'HEAD'],
  [19, ':method', 'OPTIONS'],
  [20, ':method', 'POST'],
  [21, ':method', 'PUT'],
  [1, ':path', '/'],
  [22, ':scheme', 'http'],
  [23, ':scheme', 'https'],
  [24, ':status', '103'],
  [25, ':status', '200'],
  [26, ':status', '304'],
  [27, ':status', '404'],
  [28, ':status', '503'],
  [63, ':status', '100'],
  [64, ':status', '204'],
  [65, ':status', '206'],
  [66, ':status', '302'],
  [67, ':status', '400'],
  [68, ':status', '403'],
  [69, ':status', '421'],
  [70, ':status', '425'],
  [71, ':status', '500'],
  [29, 'accept', '*/*'],
  [30, 'accept', 'application/dns-message'],
  [31, 'accept-encoding', 'gzip, deflate, br'],
  [72, 'accept-language', ''],
  [32, 'accept-ranges', 'bytes'],
  [73, 'access-control-allow-credentials', 'FALSE'],
  [74, 'access-control-allow-credentials', 'TRUE'],
  [33, 'access-control-allow-headers', 'cache-control'],
  [34, 'access-control-allow-headers', 'content-type'],
  [75, 'access-control-allow-headers', '*'],
  [76, 'access-control-allow-methods', 'get'],
  [77, 'access-control-allow-methods', 'get, post, options'],
  [78, 'access-control-allow-methods', 'options'],
  [35, 'access-control-allow-origin', '*'],
  [79, 'access-control-expose-headers', 'content-length'],
  [80, 'access-control-request-headers', 'content-type'],
  [81, 'access-control-request-method', 'get'],
  [82, 'access-control-request-method', 'post'],
  [2, 'age', '0'],
  [83, 'alt-svc', 'clear'],
  [84, 'authorization', ''],
  [36, 'cache-control', 'max-age=0'],
  [37, 'cache-control', 'max-age=2592000'],
  [38, 'cache-control', 'max-age=604800'],
  [39, 'cache-control', 'no-cache'],
  [40, 'cache-control', 'no-store'],
  [41, 'cache-control', 'public, max-age=31536000'],
  [3, 'content-disposition', ''],
  [42, 'content-encoding', 'br'],
  [43, 'content-encoding', 'gzip'],
  [4, 'content-length', '0'],
  [85, 'content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"],
  [44, 'content-type', 'application/dns-message'],
  [45, 'content-type', 'application/javascript'],
  [46, 'content-type', 'application/json'],
  [47, 'content-type', 'application/x-www-form-urlencoded'],
  [48, 'content-type', 'image/gif'],
  [49, 'content-type', 'image/jpeg'],
  [50, 'content-type', 'image/png'],
  [51, 'content-type', 'text/css'],
  [52, 'content-type', 'text/html; charset=utf-8'],
  [53, 'content-type', 'text/plain'],
  [54, 'content-type', 'text/plain;charset=utf-8'],
  [5, 'cookie', ''],
  [6, 'date', ''],
  [86, 'early-data', '1'],
  [7, 'etag', ''],
  [87, 'expect-ct', ''],
  [88, 'forwarded', ''],
  [8, 'if-modified-since', ''],
  [9, 'if-none-match', ''],
  [89, 'if-range', ''],
  [10, 'last-modified', ''],
  [11, 'link', ''],
  [12, 'location', ''],
  [90, 'origin', ''],
  [91, 'purpose', 'prefetch'],
  [55, 'range', 'bytes=0-'],
  [13, 'referer', ''],
  [92, 'server', ''],
  [14, 'set-cookie', ''],
  [56, 'strict-transport-security', 'max-age=31536000'],
  [57, 'strict-transport-security', 'max-age=31536000; includesubdomains'],
  [58, 'strict-transport-security', 'max-age=31536000; includesubdomains; preload'],
  [93, 'timing-allow-origin', '*'],
  [94, 'upgrade-insecure-requests', '1'],
  [95, 'user-agent', ''],
  [59, 'vary', 'accept-encoding'],
  [60, 'vary', 'origin'],
  [61, 'x-content-type-options', 'nosniff'],
  [96, 'x-forwarded-for', ''],
  [97, 'x-frame-options', 'deny'],
  [98, 'x-frame-options', 'sameorigin'],
  [62, 'x-xss-protection', '1; mode=block'],
];

describe('QPACK static table (RFC 9204 Appendix A)', () => {
  it('matches a second transcription entry for entry', () => {
    expect(BY_NAME_WITH_INDEX).toHaveLength(99);
    expect(new Set(BY_NAME_WITH_INDEX.map(([i]) => i)).size).toBe(99);
    for (const [index, name, value] of BY_NAME_WITH_INDEX) expect([index, staticEntry(index)]).toEqual([index, [name, value]]);
  });

  it('has 99 entries, 0..98', () => {
    expect(QPACK_STATIC_TABLE).toHaveLength(99);
    expect(QPACK_STATIC_TABLE_SIZE).toBe(99);
    expect(staticEntry(99)).toBeUndefined();
    expect(staticEntry(-1)).toBeUndefined();
    expect(staticEntry(1.5)).toBeUndefined();
  });

  it.each(SPOT)('index %i is %s: %j', (index, name, value) => {
    expect(staticEntry(index)).toEqual([name, value]);
    expect(findStaticExact(name, value)).toBe(index);
  });

  it('has lowercase names and no duplicate entries', () => {
    const seen = new Set<string>();
    for (const [name, value] of QPACK_STATIC_TABLE) {
      expect(name).toBe(name.toLowerCase());
      const key = `${name}\n${value}`;
      expect(seen.has(key)).toBe(false);
      seen.add(key);
    }
  });

  it('has no application/grpc entry: gRPC content-type is a name reference to 44', () => {
    expect(findStaticExact('content-type', 'application/grpc')).toBeUndefined();
    expect(findStaticName('content-type')).toBe(44);
  });

  it('finds the lowest index for a name', () => {
    expect(findStaticName(':status')).toBe(24);
    expect(findStaticName(':method')).toBe(15);
    expect(findStaticName('cache-control')).toBe(36);
    expect(findStaticName('x-frame-options')).toBe(97);
    expect(findStaticName('te')).toBeUndefined();
    expect(findStaticName('grpc-status')).toBeUndefined();
    expect(findStaticExact(':status', '201')).toBeUndefined();
  });
});
