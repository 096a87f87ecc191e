import { describe, expect, it } from '@jest/globals';
import { ConfigError, OmniRelayError } from '../../src/errors.js';

describe('ConfigError', () => {
  it('names every bad key in its message and keeps the list', () => {
    const err = new ConfigError([
      { key: 'profiles.a.deadlineMs', message: 'must be positive' },
      { key: 'endpoints.b.url', message: 'not a URL' },
    ]);
    expect(err).toBeInstanceOf(OmniRelayError);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('profiles.a.deadlineMs: must be positive');
    expect(err.message).toContain('endpoints.b.url: not a URL');
    expect(err.issues).toHaveLength(2);
  });
});
