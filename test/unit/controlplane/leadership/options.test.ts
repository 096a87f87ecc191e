import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../../../src/errors.js';
import { LEADERSHIP_DEFAULTS, resolveLeadershipOptions } from '../../../../src/controlplane/leadership/options.js';

function keysOf(input: unknown): string[] {
  try {
    resolveLeadershipOptions(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((issue) => issue.key);
  }
  throw new Error('expected a ConfigError');
}

describe('resolveLeadershipOptions', () => {
  it('applies every default, and the defaults pass the cross-field rules', () => {
    const options = resolveLeadershipOptions({ nodeId: 'n1' });
    expect(options).toEqual({ nodeId: 'n1', profile: 'control-plane', ...LEADERSHIP_DEFAULTS, scopes: ['global'] });
    expect(Object.isFrozen(options)).toBe(true);
    expect(Object.isFrozen(options.scopes)).toBe(true);
  });

  it('names every bad field', () => {
    expect(keysOf({ nodeId: '', scopes: ['ok', 'bad scope'], leaseTtlMs: 1.5, retryJitter: 2, surprise: 1 }).sort()).toEqual(['leaseTtlMs', 'nodeId', 'retryJitter', 'scopes.1', 'surprise']);
    expect(keysOf({})).toEqual(['nodeId']);
    expect(keysOf({ nodeId: 'n1', scopes: [] })).toEqual(['scopes']);
    expect(keysOf({ nodeId: 'n1', scopes: ['a', 'a'] })).toEqual(['scopes']);
  });

  it('checks the cross-field rules: renewals well under the TTL, a margin that leaves time to lead, campaigns shorter than a term', () => {
    expect(keysOf({ nodeId: 'n1', renewIntervalMs: 400 })).toEqual(['renewIntervalMs']);
    expect(keysOf({ nodeId: 'n1', safetyMarginMs: 600, campaignTimeoutMs: 300 })).toEqual(['safetyMarginMs']);
    expect(keysOf({ nodeId: 'n1', safetyMarginMs: 450, renewIntervalMs: 300, campaignTimeoutMs: 400 })).toEqual(['safetyMarginMs']);
    expect(keysOf({ nodeId: 'n1', campaignTimeoutMs: 800 })).toEqual(['campaignTimeoutMs']);
    expect(keysOf({ nodeId: 'n1', retryInitialMs: 3_000 })).toEqual(['retryMaxMs']);
    expect(resolveLeadershipOptions({ nodeId: 'n1', leaseTtlMs: 10_000, renewIntervalMs: 3_000, safetyMarginMs: 1_000, campaignTimeoutMs: 2_000 }).leaseTtlMs).toBe(10_000);
  });
});
