import { describe, expect, it } from '@jest/globals';
import { PRESETS } from '../../../src/config/presets.js';
import { endpointAuthority, MAX_MESSAGE_BYTES, MAX_MS, resolveOptions } from '../../../src/config/schema.js';
import type { ControlPlaneOptionsInput } from '../../../src/config/types.js';
import { ConfigError, EndpointError } from '../../../src/errors.js';
import { CERT, issuesOf, keysOf, messageAt, rejection, WITH_CERTS } from './config-helpers.js';

/** A control-plane profile (with a client certificate) overriding the field at `path`, e.g. ['keepalive', 'timeMs']. */
function cp(path: readonly string[], value: unknown): ControlPlaneOptionsInput {
  let node: unknown = value;
  for (const key of [...path].reverse()) node = { [key]: node };
  const profile = path[0] === 'tls' ? (node as Record<string, never>) : { tls: CERT, ...(node as Record<string, never>) };
  return { profiles: { 'control-plane': profile } };
}

describe('resolveOptions: defaults and presets', () => {
  it('resolves {} to both built-in profiles, no endpoints and allowInsecure false', () => {
    const options = resolveOptions({});
    expect(options.allowInsecure).toBe(false);
    expect(options.endpoints).toEqual({});
    expect(options.profiles).toEqual({ 'control-plane': PRESETS['control-plane'], 'data-plane': PRESETS['data-plane'] });
  });

  it('accepts undefined-free minimal input and keeps both presets when only custom profiles are given', () => {
    const options = resolveOptions({ profiles: { bulk: { preset: 'data-plane', tls: CERT } } });
    expect(Object.keys(options.profiles).sort()).toEqual(['bulk', 'control-plane', 'data-plane']);
  });

  it('a profile named after a preset starts from that preset; other names start from control-plane', () => {
    const options = resolveOptions({ profiles: { 'data-plane': { deadlineMs: 45_000, tls: CERT }, custom: { tls: CERT } } });
    expect(options.profiles['data-plane']).toEqual({ ...PRESETS['data-plane'], deadlineMs: 45_000, tls: { ...PRESETS['data-plane'].tls, ...CERT } });
    expect(options.profiles['custom']).toEqual({ ...PRESETS['control-plane'], tls: { ...PRESETS['control-plane'].tls, ...CERT } });
  });

  it('preset overrides the name-based choice', () => {
    const options = resolveOptions({ profiles: { 'control-plane': { preset: 'data-plane', tls: CERT } } });
    expect(options.profiles['control-plane']!.limits).toEqual(PRESETS['data-plane'].limits);
    expect(options.profiles['control-plane']).not.toHaveProperty('preset');
  });

  it('deep-merges nested groups field by field; arrays replace', () => {
    const options = resolveOptions({
      profiles: { 'control-plane': { keepalive: { timeMs: 20_000 }, retry: { retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] }, tls: CERT } },
    });
    const profile = options.profiles['control-plane']!;
    expect(profile.keepalive).toEqual({ timeMs: 20_000, timeoutMs: 5_000, permitWithoutCalls: true });
    expect(profile.retry.retryableStatusCodes).toEqual(['UNAVAILABLE', 'RESOURCE_EXHAUSTED']);
    expect(profile.retry.maxAttempts).toBe(3);
    expect(profile.tls).toEqual({ ...PRESETS['control-plane'].tls, ...CERT });
  });

  it('fills endpoint defaults: profile control-plane, metadata {}, hints {}', () => {
    const options = resolveOptions({ profiles: WITH_CERTS, endpoints: { 'node-a': { url: 'https://127.0.0.1:7001' } } });
    expect(options.endpoints['node-a']).toEqual({ url: 'https://127.0.0.1:7001', profile: 'control-plane', metadata: {}, hints: {} });
  });

  it('keeps endpoint fields the user gave', () => {
    const options = resolveOptions({
      profiles: WITH_CERTS,
      endpoints: { b: { url: 'https://b.example:443', profile: 'data-plane', metadata: { 'x-zone': 'eu' }, hints: { http3: 'deny', draining: true } } },
    });
    expect(options.endpoints['b']).toEqual({ url: 'https://b.example:443', profile: 'data-plane', metadata: { 'x-zone': 'eu' }, hints: { http3: 'deny', draining: true } });
  });

  it('returns a deep-frozen snapshot and mutates neither the input nor the presets', () => {
    const input = { profiles: { 'control-plane': { tls: { ...CERT, crlFiles: ['/pki/a.crl'] } } } };
    const before = JSON.stringify(input);
    const options = resolveOptions(input);
    expect(Object.isFrozen(options)).toBe(true);
    expect(Object.isFrozen(options.profiles['control-plane']!.tls.crlFiles)).toBe(true);
    expect(JSON.stringify(input)).toBe(before);
    expect(Object.isFrozen(input.profiles['control-plane'].tls.crlFiles)).toBe(false);
    expect(PRESETS['control-plane'].tls.crlFiles).toEqual([]);
    expect(PRESETS['control-plane'].tls.certFile).toBeUndefined();
  });

  it('accepts 0 for http3RaceDelayMs and drainGraceMs (race at once, close at once)', () => {
    const options = resolveOptions({ profiles: { 'control-plane': { http3RaceDelayMs: 0, drainGraceMs: 0, tls: CERT } } });
    expect(options.profiles['control-plane']!.http3RaceDelayMs).toBe(0);
    expect(options.profiles['control-plane']!.drainGraceMs).toBe(0);
  });

  it('names the source in the error message', () => {
    expect(() => resolveOptions({ bogus: true }, 'options file /etc/omnirelay.json')).toThrow(/Invalid OmniRelay options file \/etc\/omnirelay\.json/);
  });
});

describe('resolveOptions: shape', () => {
  it('rejects a non-object input at (root)', () => {
    expect(keysOf('nope')).toEqual(['(root)']);
    expect(keysOf(null)).toEqual(['(root)']);
  });

  it('names every unknown key with its dotted path and suggests the close one', () => {
    const issues = issuesOf({
      bogus: 1,
      profiles: { 'control-plane': { keepalive: { timMs: 1 }, tls: { ...CERT, certfile: 'x' } } },
      endpoints: { a: { url: 'https://a:1', hint: {} } },
    });
    expect(issues.map((i) => i.key).sort()).toEqual(
      ['bogus', 'endpoints.a.hint', 'profiles.control-plane.keepalive.timMs', 'profiles.control-plane.tls.certfile'].sort(),
    );
    expect(issues.find((i) => i.key === 'profiles.control-plane.keepalive.timMs')!.message).toContain('did you mean "timeMs"');
    expect(issues.find((i) => i.key === 'profiles.control-plane.tls.certfile')!.message).toContain('did you mean "certFile"');
  });

  it('rejects unknown hint keys and bad hint values', () => {
    const input = { profiles: WITH_CERTS, endpoints: { a: { url: 'https://a:1', hints: { http3: 'maybe', drain: true } } } };
    expect(keysOf(input).sort()).toEqual(['endpoints.a.hints.drain', 'endpoints.a.hints.http3']);
  });

  it('rejects an own __proto__ key instead of dropping it', () => {
    expect(keysOf(JSON.parse('{"__proto__": {"allowInsecure": true}}'))).toEqual(['__proto__']);
  });

  it('reports wrong types with what was received', () => {
    expect(messageAt({ allowInsecure: 'yes' }, 'allowInsecure')).toBe('must be a boolean, got string "yes"');
    expect(keysOf({ profiles: [] })).toEqual(['profiles']);
    expect(keysOf({ profiles: { 'data-plane': 5 } })).toEqual(['profiles.data-plane']);
  });

  it('rejects an unknown preset and enum values', () => {
    const keys = keysOf({ profiles: { x: { preset: 'fast', http3: 'always', tls: { ...CERT, mode: 'ssl' } } } });
    expect(keys.sort()).toEqual(['profiles.x.http3', 'profiles.x.preset', 'profiles.x.tls.mode']);
  });

  it('rejects profile and endpoint names that are not simple identifiers', () => {
    expect(keysOf({ profiles: { ...WITH_CERTS, 'bad name': {} }, endpoints: { '-a': { url: 'https://a:1' } } }).sort()).toEqual(['endpoints.-a', 'profiles.bad name']);
  });

  it('requires endpoint url', () => {
    expect(messageAt({ endpoints: { a: {} } }, 'endpoints.a.url')).toBe('is required');
  });
});

describe('resolveOptions: numeric bounds', () => {
  const msPaths = [
    ['deadlineMs'],
    ['connectTimeoutMs'],
    ['keepalive', 'timeMs'],
    ['keepalive', 'timeoutMs'],
    ['retry', 'initialBackoffMs'],
    ['retry', 'maxBackoffMs'],
    ['http3Health', 'initialBackoffMs'],
    ['http3Health', 'maxBackoffMs'],
    ['tls', 'reloadPollMs'],
  ];

  const named = (paths: readonly string[][]): [string, string[]][] => paths.map((path) => [path.join('.'), path]);

  it.each(named(msPaths))('%s must be a positive whole number of ms', (_name: string, path: string[]) => {
    const key = ['profiles', 'control-plane', ...path].join('.');
    expect(messageAt(cp(path, 0), key)).toBe('must be at least 1 ms');
    expect(keysOf(cp(path, -5))).toContain(key);
    expect(messageAt(cp(path, 1.5), key)).toBe('must be a whole number of ms');
    expect(messageAt(cp(path, '100'), key)).toBe('must be a number, got string "100"');
  });

  it.each(named([...msPaths, ['http3RaceDelayMs'], ['drainGraceMs']]))('%s rejects absurd values beyond 24 h, naming the bound', (_name: string, path: string[]) => {
    const key = ['profiles', 'control-plane', ...path].join('.');
    const message = messageAt(cp(path, MAX_MS + 1), key);
    expect(message).toContain(String(MAX_MS));
    expect(message).toContain('24 h');
  });

  it('accepts exactly 24 h', () => {
    expect(() => resolveOptions({ profiles: { 'control-plane': { drainGraceMs: MAX_MS, tls: CERT } } })).not.toThrow();
  });

  it('http3RaceDelayMs and drainGraceMs reject negatives', () => {
    expect(keysOf(cp(['http3RaceDelayMs'], -1))).toContain('profiles.control-plane.http3RaceDelayMs');
    expect(keysOf(cp(['drainGraceMs'], -1))).toContain('profiles.control-plane.drainGraceMs');
  });

  it.each([['maxSendMessageBytes'], ['maxReceiveMessageBytes']])('limits.%s is 1..2^31-1 bytes', (field: string) => {
    const key = `profiles.control-plane.limits.${field}`;
    expect(messageAt(cp(['limits', field], 0), key)).toBe('must be at least 1 byte');
    const message = messageAt(cp(['limits', field], MAX_MESSAGE_BYTES + 1), key);
    expect(message).toContain('2147483647');
    expect(message).toContain('2^31-1');
    expect(() => resolveOptions({ profiles: { 'control-plane': { limits: { [field]: MAX_MESSAGE_BYTES }, tls: CERT } } })).not.toThrow();
  });

  it('http.connectionsPerEndpoint is 1..1024', () => {
    expect(keysOf(cp(['http', 'connectionsPerEndpoint'], 0))).toContain('profiles.control-plane.http.connectionsPerEndpoint');
    expect(keysOf(cp(['http', 'connectionsPerEndpoint'], 5000))).toContain('profiles.control-plane.http.connectionsPerEndpoint');
  });

  it('rejects Infinity and NaN', () => {
    expect(keysOf(cp(['deadlineMs'], Number.POSITIVE_INFINITY))).toContain('profiles.control-plane.deadlineMs');
    expect(keysOf(cp(['retry', 'jitter'], Number.NaN))).toContain('profiles.control-plane.retry.jitter');
  });
});

describe('resolveOptions: keepalive', () => {
  it('timeoutMs must be less than timeMs (reported at timeoutMs when both are set)', () => {
    const input = { profiles: { 'control-plane': { keepalive: { timeMs: 10_000, timeoutMs: 10_000 } } } };
    expect(messageAt(input, 'profiles.control-plane.keepalive.timeoutMs')).toBe('must be less than keepalive.timeMs (10000)');
  });

  it('blames the key the user wrote when the other value is a preset default', () => {
    const lowTime = { profiles: { 'control-plane': { keepalive: { timeMs: 4_000 } } } };
    expect(messageAt(lowTime, 'profiles.control-plane.keepalive.timeMs')).toBe(
      'must be greater than keepalive.timeoutMs (5000, the "control-plane" preset default)',
    );
    const highTimeout = { profiles: { 'data-plane': { keepalive: { timeoutMs: 60_000 } } } };
    expect(messageAt(highTimeout, 'profiles.data-plane.keepalive.timeoutMs')).toBe(
      'must be less than keepalive.timeMs (60000, the "data-plane" preset default)',
    );
  });
});

describe('resolveOptions: retry', () => {
  it.each([0, 11, 2.5])('maxAttempts %p is outside 1..10', (value: number) => {
    expect(keysOf(cp(['retry', 'maxAttempts'], value))).toContain('profiles.control-plane.retry.maxAttempts');
  });

  it.each([1, 10])('maxAttempts %p is accepted', (value: number) => {
    expect(() => resolveOptions({ profiles: { 'control-plane': { retry: { maxAttempts: value }, tls: CERT } } })).not.toThrow();
  });

  it('initialBackoffMs must not exceed maxBackoffMs', () => {
    const both = { profiles: { 'control-plane': { retry: { initialBackoffMs: 500, maxBackoffMs: 100 } } } };
    expect(messageAt(both, 'profiles.control-plane.retry.initialBackoffMs')).toBe('must be at most retry.maxBackoffMs (100)');
    const onlyMax = { profiles: { 'control-plane': { retry: { maxBackoffMs: 10 } } } };
    expect(messageAt(onlyMax, 'profiles.control-plane.retry.maxBackoffMs')).toContain('must be at least retry.initialBackoffMs (50');
    expect(() => resolveOptions({ profiles: { 'control-plane': { retry: { initialBackoffMs: 100, maxBackoffMs: 100 }, tls: CERT } } })).not.toThrow();
  });

  it('multiplier must be at least 1', () => {
    expect(messageAt(cp(['retry', 'multiplier'], 0.5), 'profiles.control-plane.retry.multiplier')).toContain('at least 1');
  });

  it.each([-0.1, 1.1])('jitter %p is outside [0, 1]', (value: number) => {
    expect(keysOf(cp(['retry', 'jitter'], value))).toContain('profiles.control-plane.retry.jitter');
  });

  it.each([0, 1])('jitter %p is accepted', (value: number) => {
    expect(() => resolveOptions({ profiles: { 'control-plane': { retry: { jitter: value }, tls: CERT } } })).not.toThrow();
  });

  it('retryableStatusCodes must be gRPC status names and never OK', () => {
    const issues = issuesOf(cp(['retry', 'retryableStatusCodes'], ['UNAVAILABLE', 'OK', 'unavailable', 14]));
    expect(issues.map((i) => i.key)).toEqual([
      'profiles.control-plane.retry.retryableStatusCodes.1',
      'profiles.control-plane.retry.retryableStatusCodes.2',
      'profiles.control-plane.retry.retryableStatusCodes.3',
    ]);
    expect(issues[0]!.message).toContain('OK is success');
    expect(issues[1]!.message).toContain('gRPC status name');
  });

  it('retryableStatusCodes must be a list', () => {
    expect(keysOf(cp(['retry', 'retryableStatusCodes'], 'UNAVAILABLE'))).toContain('profiles.control-plane.retry.retryableStatusCodes');
  });
});

describe('resolveOptions: http3Health', () => {
  it('initialBackoffMs must not exceed maxBackoffMs', () => {
    const input = { profiles: { 'control-plane': { http3Health: { initialBackoffMs: 60_000, maxBackoffMs: 1_000 } } } };
    expect(messageAt(input, 'profiles.control-plane.http3Health.initialBackoffMs')).toBe('must be at most http3Health.maxBackoffMs (1000)');
  });
});

describe('resolveOptions: tls', () => {
  const tlsOf = (tls: Record<string, unknown>): ControlPlaneOptionsInput => ({ profiles: { 'control-plane': { tls } } });

  it('leaves untouched built-in mtls profiles without files valid', () => {
    expect(() => resolveOptions({})).not.toThrow();
  });

  it('mtls needs a client certificate on a profile the user declares', () => {
    expect(messageAt({ profiles: { 'control-plane': { deadlineMs: 1_000 } } }, 'profiles.control-plane.tls.certFile')).toContain('needs a client certificate');
    expect(keysOf({ profiles: { custom: {} } })).toEqual(['profiles.custom.tls.certFile']);
  });

  it('mtls needs a client certificate on a profile an endpoint uses', () => {
    expect(keysOf({ endpoints: { a: { url: 'https://a:1' } } })).toEqual(['profiles.control-plane.tls.certFile']);
    expect(keysOf({ endpoints: { a: { url: 'https://a:1', profile: 'data-plane' } } })).toEqual(['profiles.data-plane.tls.certFile']);
  });

  it('accepts certFile + keyFile, or pfxFile (+ pfxPassword)', () => {
    expect(() => resolveOptions(tlsOf({ ...CERT }))).not.toThrow();
    expect(() => resolveOptions(tlsOf({ pfxFile: '/pki/client.p12', pfxPassword: 'secret' }))).not.toThrow();
  });

  it('tls and insecure modes need no client certificate', () => {
    expect(() => resolveOptions(tlsOf({ mode: 'tls', caFile: '/pki/ca.pem' }))).not.toThrow();
    expect(() => resolveOptions({ allowInsecure: true, ...tlsOf({ mode: 'insecure' }) })).not.toThrow();
  });

  it('rejects both certificate forms at once', () => {
    expect(messageAt(tlsOf({ ...CERT, pfxFile: '/pki/client.p12' }), 'profiles.control-plane.tls.pfxFile')).toContain('not both');
  });

  it('rejects keyFile without certFile, and certFile without keyFile', () => {
    expect(messageAt(tlsOf({ keyFile: '/k.pem' }), 'profiles.control-plane.tls.certFile')).toContain('certFile is missing');
    expect(messageAt(tlsOf({ certFile: '/c.pem' }), 'profiles.control-plane.tls.keyFile')).toContain('keyFile is missing');
    expect(keysOf(tlsOf({ mode: 'tls', keyFile: '/k.pem' }))).toEqual(['profiles.control-plane.tls.certFile']);
  });

  it('rejects pfxPassword without pfxFile', () => {
    expect(keysOf(tlsOf({ ...CERT, pfxPassword: 'x' }))).toEqual(['profiles.control-plane.tls.pfxPassword']);
  });

  it('checkRevocation needs CRL files', () => {
    expect(messageAt(tlsOf({ ...CERT, checkRevocation: true }), 'profiles.control-plane.tls.checkRevocation')).toContain('tls.crlFiles');
    expect(() => resolveOptions(tlsOf({ ...CERT, checkRevocation: true, crlFiles: ['/pki/ca.crl'] }))).not.toThrow();
  });

  it('rejects empty file paths', () => {
    expect(keysOf(tlsOf({ ...CERT, caFile: '', crlFiles: [''] })).sort()).toEqual(['profiles.control-plane.tls.caFile', 'profiles.control-plane.tls.crlFiles.0']);
  });

  it('insecure mode needs allowInsecure: true, and says it is for local development only', () => {
    const message = messageAt({ profiles: { dev: { tls: { mode: 'insecure' } } } }, 'profiles.dev.tls.mode');
    expect(message).toContain('set allowInsecure: true');
    expect(message).toContain('for local development only');
    expect(keysOf({ allowInsecure: false, profiles: { dev: { tls: { mode: 'insecure' } } } })).toEqual(['profiles.dev.tls.mode']);
  });
});

describe('resolveOptions: endpoints', () => {
  const ep = (endpoint: Record<string, unknown>, extra: ControlPlaneOptionsInput = {}): ControlPlaneOptionsInput => ({
    profiles: WITH_CERTS,
    ...extra,
    endpoints: { 'node-a': endpoint as { url: string } },
  });

  it.each([
    ['not a url', 'is not a valid URL'],
    ['grpc://h:1', 'scheme "grpc:"'],
    ['dns:///h:1', 'scheme "dns:"'],
    ['https://h', 'explicit port'],
    ['https://[::1]', 'explicit port'],
    ['https:h:443', 'https://host:port'],
    ['https://h:0', 'out of range'],
    ['https://h:1/svc', 'must not have a path'],
    ['https://h:1/?a=b', 'query string'],
    ['https://h:1/?', 'query string'],
    ['https://h:1#frag', 'fragment'],
    ['https://u:p@h:1', 'credentials'],
    [' https://h:1', 'whitespace'],
    ['', 'must not be empty'],
  ])('rejects url %p', (url: string, fragment: string) => {
    expect(messageAt(ep({ url }), 'endpoints.node-a.url')).toContain(fragment);
  });

  it.each(['https://127.0.0.1:7001', 'https://node-a.example:443', 'https://[::1]:7001', 'https://h:1/'])('accepts url %p', (url: string) => {
    expect(() => resolveOptions(ep({ url }))).not.toThrow();
  });

  it('rejects http:// for a TLS/mTLS profile, naming the endpoint', () => {
    const message = messageAt(ep({ url: 'http://127.0.0.1:7001' }), 'endpoints.node-a.url');
    expect(message).toContain('"node-a"');
    expect(message).toContain('plaintext is not allowed for a TLS/mTLS profile');
    const tlsProfile = { profiles: { ...WITH_CERTS, web: { tls: { mode: 'tls' as const } } } };
    expect(keysOf(ep({ url: 'http://h:80', profile: 'web' }, tlsProfile))).toEqual(['endpoints.node-a.url']);
  });

  it('accepts http:// only for an insecure profile with allowInsecure', () => {
    const options = resolveOptions(ep({ url: 'http://127.0.0.1:7001', profile: 'dev' }, { allowInsecure: true, profiles: { ...WITH_CERTS, dev: { tls: { mode: 'insecure' } } } }));
    expect(options.endpoints['node-a']!.profile).toBe('dev');
  });

  it('endpoint.profile must name a defined profile', () => {
    const message = messageAt(ep({ url: 'https://h:1', profile: 'bulk' }), 'endpoints.node-a.profile');
    expect(message).toContain('"bulk"');
    expect(message).toContain('control-plane, data-plane');
  });

  it('metadata keys must be lowercase gRPC keys, not grpc-* and not binary', () => {
    const keys = keysOf(ep({ url: 'https://h:1', metadata: { 'X-Zone': 'eu', 'grpc-timeout': '1S', 'trace-bin': 'AA==', 'a b': 'c', 'x-ok': 'fine' } }));
    expect(keys.sort()).toEqual(
      ['endpoints.node-a.metadata.X-Zone', 'endpoints.node-a.metadata.a b', 'endpoints.node-a.metadata.grpc-timeout', 'endpoints.node-a.metadata.trace-bin'].sort(),
    );
  });

  it('metadata values must be printable ASCII strings', () => {
    expect(keysOf(ep({ url: 'https://h:1', metadata: { 'x-a': 'zürich', 'x-b': 1 } })).sort()).toEqual(['endpoints.node-a.metadata.x-a', 'endpoints.node-a.metadata.x-b']);
  });
});

describe('resolveOptions: one error for every problem', () => {
  it('reports every bad key of a snapshot at once, sorted', () => {
    const error = rejection({
      bogus: true,
      profiles: {
        'control-plane': { keepalive: { timeMs: 10_000, timeoutMs: 30_000 }, retry: { maxAttempts: 50, jitter: 3 }, tls: { keyFile: '/k.pem' } },
        'data-plane': { limits: { maxReceiveMessageBytes: 2 ** 40 }, deadlineMs: 0, tls: CERT },
        dev: { tls: { mode: 'insecure' }, http3Health: { initialBackoffMs: 9, maxBackoffMs: 1 } },
      },
      endpoints: {
        'node-a': { url: 'http://127.0.0.1:7001' },
        'node-b': { url: 'https://h', profile: 'missing', metadata: { 'grpc-x': 'y' } },
      },
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('CONFIG_INVALID');
    const keys = error.issues.map((i) => i.key);
    expect(keys).toEqual(
      [
        'bogus',
        'endpoints.node-a.url',
        'endpoints.node-b.metadata.grpc-x',
        'endpoints.node-b.profile',
        'endpoints.node-b.url',
        'profiles.control-plane.keepalive.timeoutMs',
        'profiles.control-plane.retry.jitter',
        'profiles.control-plane.retry.maxAttempts',
        'profiles.control-plane.tls.certFile',
        'profiles.data-plane.deadlineMs',
        'profiles.data-plane.limits.maxReceiveMessageBytes',
        'profiles.dev.http3Health.initialBackoffMs',
        'profiles.dev.tls.mode',
      ].sort(),
    );
    for (const key of keys) expect(error.message).toContain(key);
  });

  it('does not pile a cross-field issue onto a key that already failed', () => {
    const keys = keysOf({ profiles: { 'control-plane': { keepalive: { timeMs: 'soon', timeoutMs: 20_000 }, tls: CERT } } });
    expect(keys).toEqual(['profiles.control-plane.keepalive.timeMs']);
  });
});

describe('endpointAuthority', () => {
  it('splits host and port and tells TLS from plaintext', () => {
    expect(endpointAuthority('https://127.0.0.1:7001')).toEqual({ host: '127.0.0.1', port: 7001, secure: true });
    expect(endpointAuthority('http://localhost:8080/')).toEqual({ host: 'localhost', port: 8080, secure: false });
  });

  it('strips IPv6 brackets and keeps an explicit default port', () => {
    expect(endpointAuthority('https://[::1]:443')).toEqual({ host: '::1', port: 443, secure: true });
    expect(endpointAuthority('https://[2001:db8::1]:7001')).toEqual({ host: '2001:db8::1', port: 7001, secure: true });
  });

  it('throws EndpointError for an unusable URL', () => {
    expect(() => endpointAuthority('https://h')).toThrow(EndpointError);
    try {
      endpointAuthority('ftp://h:1');
    } catch (error) {
      expect(error).toBeInstanceOf(EndpointError);
      expect((error as EndpointError).code).toBe('ENDPOINT_INVALID');
      expect((error as EndpointError).endpoint).toBe('ftp://h:1');
    }
  });
});

describe('endpoint scheme and profile agree', () => {
  it('rejects an https:// endpoint under an insecure profile, naming the endpoint key', () => {
    let error: unknown;
    try {
      resolveOptions({ allowInsecure: true, profiles: { dev: { tls: { mode: 'insecure' } } }, endpoints: { local: { url: 'https://127.0.0.1:7001', profile: 'dev' } } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key)).toContain('endpoints.local.url');
  });
});

describe("resolveOptions: http3 'require'", () => {
  it("accepts http3 'require' on a TLS profile and as an endpoint hint", () => {
    const options = resolveOptions({
      profiles: { 'control-plane': { http3: 'require', tls: CERT }, 'data-plane': { tls: CERT } },
      endpoints: { a: { url: 'https://a:1', hints: { http3: 'require' } }, b: { url: 'https://b:1', profile: 'data-plane', hints: { http3: 'require' } } },
    });
    expect(options.profiles['control-plane']!.http3).toBe('require');
    expect(options.endpoints['b']!.hints.http3).toBe('require');
  });

  it("refuses 'require' on an insecure profile, at profiles.<name>.http3", () => {
    const input = { allowInsecure: true, profiles: { dev: { http3: 'require', tls: { mode: 'insecure' } } } };
    expect(keysOf(input)).toEqual(['profiles.dev.http3']);
    expect(messageAt(input, 'profiles.dev.http3')).toContain('needs TLS');
  });

  it("refuses a hint 'require' under a profile that disables HTTP/3 (no protocol left), at endpoints.<name>.hints.http3", () => {
    const input = { profiles: { h2only: { http3: 'disable', tls: CERT } }, endpoints: { a: { url: 'https://a:1', profile: 'h2only', hints: { http3: 'require' } } } };
    expect(keysOf(input)).toEqual(['endpoints.a.hints.http3']);
    expect(messageAt(input, 'endpoints.a.hints.http3')).toContain('contradicts its profile "h2only", which has http3 "disable"');
  });

  it("refuses a hint 'require' under an insecure profile, and a hint 'deny' under a profile that requires HTTP/3", () => {
    expect(keysOf({ allowInsecure: true, profiles: { dev: { tls: { mode: 'insecure' } } }, endpoints: { a: { url: 'http://a:1', profile: 'dev', hints: { http3: 'require' } } } })).toEqual(['endpoints.a.hints.http3']);
    const input = { profiles: { h3only: { http3: 'require', tls: CERT } }, endpoints: { a: { url: 'https://a:1', profile: 'h3only', hints: { http3: 'deny' } } } };
    expect(keysOf(input)).toEqual(['endpoints.a.hints.http3']);
    expect(messageAt(input, 'endpoints.a.hints.http3')).toContain('which has http3 "require"');
  });

  it('a bad profile http3 value is reported once, at the value, not again as a conflict', () => {
    const input = { profiles: { x: { http3: 'always', tls: CERT } }, endpoints: { a: { url: 'https://a:1', profile: 'x', hints: { http3: 'require' } } } };
    expect(keysOf(input)).toEqual(['profiles.x.http3']);
    expect(messageAt(input, 'profiles.x.http3')).toContain('"prefer", "disable", "require"');
  });
});
