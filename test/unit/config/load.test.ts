import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeOptionInputs, optionsFromEnv, optionsFromJsonFile } from '../../../src/config/load.js';
import { resolveOptions } from '../../../src/config/schema.js';
import type { ControlPlaneOptionsInput } from '../../../src/config/types.js';
import { ConfigError } from '../../../src/errors.js';
import { keysOf } from './config-helpers.js';

/** The ConfigError a (sync or async) call throws. */
async function configErrorOf(run: () => unknown): Promise<ConfigError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('optionsFromEnv', () => {
  it('maps the documented examples', () => {
    const input = optionsFromEnv({
      OMNIRELAY__ALLOW_INSECURE: 'true',
      OMNIRELAY__PROFILES__CONTROL_PLANE__KEEPALIVE__TIME_MS: '10000',
      OMNIRELAY__PROFILES__CONTROL_PLANE__HTTP3_RACE_DELAY_MS: '100',
      OMNIRELAY__PROFILES__DATA_PLANE__LIMITS__MAX_SEND_MESSAGE_BYTES: '8388608',
      OMNIRELAY__ENDPOINTS__NODE_A__URL: 'https://127.0.0.1:7001',
      OMNIRELAY__ENDPOINTS__NODE_A__METADATA__X_ZONE: 'eu',
    });
    expect(input).toEqual({
      allowInsecure: true,
      profiles: {
        'control-plane': { keepalive: { timeMs: 10000 }, http3RaceDelayMs: 100 },
        'data-plane': { limits: { maxSendMessageBytes: 8388608 } },
      },
      endpoints: { 'node-a': { url: 'https://127.0.0.1:7001', metadata: { 'x-zone': 'eu' } } },
    });
  });

  it('coerces booleans, integers and decimals, and keeps other values strings', () => {
    const input = optionsFromEnv({
      OMNIRELAY__PROFILES__EDGE__KEEPALIVE__PERMIT_WITHOUT_CALLS: 'FALSE',
      OMNIRELAY__PROFILES__EDGE__RETRY__JITTER: '0.25',
      OMNIRELAY__PROFILES__EDGE__RETRY__MAX_ATTEMPTS: ' 4 ',
      OMNIRELAY__PROFILES__EDGE__HTTP3: 'disable',
      OMNIRELAY__PROFILES__EDGE__PRESET: 'data-plane',
      OMNIRELAY__ENDPOINTS__B__HINTS__DRAINING: 'true',
      OMNIRELAY__ENDPOINTS__B__HINTS__HTTP3: 'deny',
    });
    expect(input.profiles?.['edge']).toEqual({
      keepalive: { permitWithoutCalls: false },
      retry: { jitter: 0.25, maxAttempts: 4 },
      http3: 'disable',
      preset: 'data-plane',
    });
    expect(input.endpoints?.['b']).toEqual({ hints: { draining: true, http3: 'deny' } });
  });

  it('never coerces file paths, passwords, URLs or metadata values', () => {
    const input = optionsFromEnv({
      OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__PFX_FILE: '/pki/client.p12',
      OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__PFX_PASSWORD: '1234',
      OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__SERVER_NAME_OVERRIDE: 'true',
      OMNIRELAY__ENDPOINTS__NODE_A__METADATA__X_TENANT: '42',
    });
    expect(input.profiles?.['control-plane']?.tls).toEqual({ pfxFile: '/pki/client.p12', pfxPassword: '1234', serverNameOverride: 'true' });
    expect(input.endpoints?.['node-a']?.metadata).toEqual({ 'x-tenant': '42' });
  });

  it('reads lists as JSON arrays or comma-separated values', () => {
    const input = optionsFromEnv({
      OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__CRL_FILES: '/pki/a.crl, /pki/b.crl',
      OMNIRELAY__PROFILES__CONTROL_PLANE__RETRY__RETRYABLE_STATUS_CODES: '["UNAVAILABLE","RESOURCE_EXHAUSTED"]',
      OMNIRELAY__PROFILES__DATA_PLANE__TLS__CRL_FILES: '',
    });
    expect(input.profiles?.['control-plane']?.tls?.crlFiles).toEqual(['/pki/a.crl', '/pki/b.crl']);
    expect(input.profiles?.['control-plane']?.retry?.retryableStatusCodes).toEqual(['UNAVAILABLE', 'RESOURCE_EXHAUSTED']);
    expect(input.profiles?.['data-plane']?.tls?.crlFiles).toEqual([]);
  });

  it('reads the peer chooser and breaker keys, keeping a preferred peer a string', () => {
    const input = optionsFromEnv({
      OMNIRELAY__PROFILES__CONTROL_PLANE__PEER_CHOOSER__KIND: 'preferred',
      OMNIRELAY__PROFILES__CONTROL_PLANE__PEER_CHOOSER__PREFERRED: '7001',
      OMNIRELAY__PROFILES__CONTROL_PLANE__BREAKER__FAILURE_STATUS_CODES: 'UNAVAILABLE, INTERNAL',
      OMNIRELAY__PROFILES__CONTROL_PLANE__BREAKER__FAILURE_RATIO: '0.25',
    });
    expect(input.profiles?.['control-plane']?.peerChooser).toEqual({ kind: 'preferred', preferred: '7001' });
    expect(input.profiles?.['control-plane']?.breaker).toEqual({ failureStatusCodes: ['UNAVAILABLE', 'INTERNAL'], failureRatio: 0.25 });
  });

  it('ignores variables without the <prefix>__ head and honours a custom prefix', () => {
    expect(optionsFromEnv({ PATH: '/bin', OMNIRELAY_LOG_LEVEL: 'debug', OMNIRELAYX__A: '1' })).toEqual({});
    expect(optionsFromEnv({ APP__ALLOW_INSECURE: 'false', OMNIRELAY__ALLOW_INSECURE: 'true' }, 'APP')).toEqual({ allowInsecure: false });
  });

  it('defaults to process.env', () => {
    process.env['OMNIRELAY__PROFILES__CONTROL_PLANE__DEADLINE_MS'] = '1500';
    try {
      expect(optionsFromEnv().profiles?.['control-plane']?.deadlineMs).toBe(1500);
    } finally {
      delete process.env['OMNIRELAY__PROFILES__CONTROL_PLANE__DEADLINE_MS'];
    }
  });

  it('produces input that resolves', () => {
    const options = resolveOptions(
      optionsFromEnv({
        OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__CERT_FILE: '/pki/c.pem',
        OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__KEY_FILE: '/pki/k.pem',
        OMNIRELAY__PROFILES__CONTROL_PLANE__KEEPALIVE__TIME_MS: '15000',
        OMNIRELAY__ENDPOINTS__NODE_A__URL: 'https://127.0.0.1:7001',
      }),
      'environment',
    );
    expect(options.profiles['control-plane']!.keepalive.timeMs).toBe(15000);
    expect(options.endpoints['node-a']!.profile).toBe('control-plane');
  });

  it('turns variables that map onto no known key into unknown keys that validation rejects', () => {
    const input = optionsFromEnv({
      OMNIRELAY__PROFILES__CONTROL_PLANE__KEEPALIVE__TIME_MSS: '10000',
      OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__CERT_FILE: '/c.pem',
      OMNIRELAY__PROFILES__CONTROL_PLANE__TLS__KEY_FILE: '/k.pem',
      OMNIRELAY__BOGUS: '1',
      OMNIRELAY__ENDPOINTS__NODE_A__URL: 'https://h:1',
      OMNIRELAY__ENDPOINTS__NODE_A__WEIGHT: '3',
    });
    expect(keysOf(input).sort()).toEqual(['bogus', 'endpoints.node-a.weight', 'profiles.control-plane.keepalive.timeMss']);
  });

  it('rejects values of the wrong shape through validation', () => {
    expect(keysOf(optionsFromEnv({ OMNIRELAY__PROFILES: 'fast' }))).toEqual(['profiles']);
    expect(keysOf(optionsFromEnv({ OMNIRELAY__ENDPOINTS__NODE_A: 'https://h:1' }))).toEqual(['endpoints.node-a']);
  });

  it('rejects a variable with an empty segment, naming the variable', async () => {
    const error = await configErrorOf(() => optionsFromEnv({ OMNIRELAY__PROFILES____DEADLINE_MS: '1' }));
    expect(error.issues.map((i) => i.key)).toEqual(['OMNIRELAY__PROFILES____DEADLINE_MS']);
  });

  it('rejects two variables that collide', async () => {
    const error = await configErrorOf(() =>
      optionsFromEnv({ OMNIRELAY__PROFILES__EDGE__RETRY: '3', OMNIRELAY__PROFILES__EDGE__RETRY__MAX_ATTEMPTS: '3', OMNIRELAY__ENDPOINTS__A__URL: 'https://a:1', OMNIRELAY__ENDPOINTS__a__URL: 'https://b:1' }),
    );
    expect(error.issues.map((i) => i.key).sort()).toEqual(['OMNIRELAY__ENDPOINTS__a__URL', 'OMNIRELAY__PROFILES__EDGE__RETRY__MAX_ATTEMPTS']);
    expect(error.issues[0]!.message).toContain('collides with');
  });
});

describe('optionsFromJsonFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-config-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a JSON object without validating it', async () => {
    const path = join(dir, 'good.json');
    await writeFile(path, JSON.stringify({ profiles: { 'control-plane': { deadlineMs: 1500, tls: { certFile: '/c.pem', keyFile: '/k.pem' } } } }));
    const input = await optionsFromJsonFile(path);
    expect(resolveOptions(input, `options file ${path}`).profiles['control-plane']!.deadlineMs).toBe(1500);
  });

  it('reports a missing file with the path as key', async () => {
    const path = join(dir, 'missing.json');
    const error = await configErrorOf(() => optionsFromJsonFile(path));
    expect(error.issues).toEqual([{ key: path, message: 'file not found' }]);
    expect(error.message).toContain(path);
  });

  it('reports a directory', async () => {
    const error = await configErrorOf(() => optionsFromJsonFile(dir));
    expect(error.issues[0]!.key).toBe(dir);
    expect(error.issues[0]!.message).toContain('directory');
  });

  it('reports an unreadable file', async () => {
    if (process.getuid?.() === 0) return; // root reads anything
    const path = join(dir, 'locked.json');
    await writeFile(path, '{}');
    await chmod(path, 0o000);
    const error = await configErrorOf(() => optionsFromJsonFile(path));
    expect(error.issues).toEqual([{ key: path, message: 'cannot be read: permission denied' }]);
  });

  it('reports bad JSON with the parser message', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, '{ "profiles": ');
    const error = await configErrorOf(() => optionsFromJsonFile(path));
    expect(error.issues[0]!.key).toBe(path);
    expect(error.issues[0]!.message).toMatch(/^is not valid JSON: /);
  });

  it('reports JSON that is not an object', async () => {
    const path = join(dir, 'array.json');
    await writeFile(path, '[1, 2]');
    const error = await configErrorOf(() => optionsFromJsonFile(path));
    expect(error.issues[0]!.key).toBe(path);
    expect(error.issues[0]!.message).toContain('got an array');
  });
});

describe('mergeOptionInputs', () => {
  it('deep-merges with later inputs winning and arrays replacing', () => {
    const file: ControlPlaneOptionsInput = {
      allowInsecure: false,
      profiles: { 'control-plane': { keepalive: { timeMs: 10_000, timeoutMs: 5_000 }, tls: { crlFiles: ['/a.crl', '/b.crl'] } } },
      endpoints: { a: { url: 'https://a:1', metadata: { 'x-zone': 'eu' } } },
    };
    const env: ControlPlaneOptionsInput = {
      allowInsecure: true,
      profiles: { 'control-plane': { keepalive: { timeMs: 20_000 }, tls: { crlFiles: ['/c.crl'] } } },
      endpoints: { a: { url: 'https://a:2', metadata: { 'x-rack': 'r1' } }, b: { url: 'https://b:1' } },
    };
    expect(mergeOptionInputs(file, env)).toEqual({
      allowInsecure: true,
      profiles: { 'control-plane': { keepalive: { timeMs: 20_000, timeoutMs: 5_000 }, tls: { crlFiles: ['/c.crl'] } } },
      endpoints: { a: { url: 'https://a:2', metadata: { 'x-zone': 'eu', 'x-rack': 'r1' } }, b: { url: 'https://b:1' } },
    });
  });

  it('keeps earlier values for undefined, mutates no input and shares no objects', () => {
    const first: ControlPlaneOptionsInput = { allowInsecure: true, profiles: { p: { tls: { crlFiles: ['/a.crl'] } } } };
    const before = JSON.stringify(first);
    const merged = mergeOptionInputs(first, { allowInsecure: undefined }, {});
    expect(merged).toEqual(first);
    expect(JSON.stringify(first)).toBe(before);
    expect(merged.profiles?.['p']?.tls?.crlFiles).not.toBe(first.profiles?.['p']?.tls?.crlFiles);
    expect(mergeOptionInputs()).toEqual({});
  });
});
