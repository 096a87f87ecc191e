import { describe, expect, it } from '@jest/globals';
import { PRESETS } from '../../../src/config/presets.js';
import type { ProfileOptions } from '../../../src/config/types.js';
import { chooseProtocol } from '../../../src/transport/protocol-selection.js';

const prefer: ProfileOptions = PRESETS['control-plane'];
const disabled: ProfileOptions = { ...prefer, http3: 'disable' };
const insecure: ProfileOptions = { ...prefer, tls: { ...prefer.tls, mode: 'insecure' } };

describe('chooseProtocol', () => {
  it('uses HTTP/3 when the profile prefers it, nothing denies it and a transport is registered', () => {
    expect(chooseProtocol({ profile: prefer, hint: {}, http3Registered: true, http3Broken: false })).toEqual({ protocol: 'h3', reason: undefined });
    expect(chooseProtocol({ profile: prefer, hint: { http3: 'allow' }, http3Registered: true, http3Broken: false }).protocol).toBe('h3');
  });

  it.each([
    ['profile-disabled', { profile: disabled, hint: {}, http3Registered: true, http3Broken: false }],
    ['insecure', { profile: insecure, hint: {}, http3Registered: true, http3Broken: false }],
    ['hint-denied', { profile: prefer, hint: { http3: 'deny' as const }, http3Registered: true, http3Broken: false }],
    ['no-http3-transport', { profile: prefer, hint: {}, http3Registered: false, http3Broken: false }],
    ['http3-broken', { profile: prefer, hint: {}, http3Registered: true, http3Broken: true }],
  ])('falls to HTTP/2 with reason %s', (reason, input) => {
    expect(chooseProtocol(input)).toEqual({ protocol: 'h2', reason });
  });

  it('lets a profile that disables HTTP/3 win over a hint that allows it', () => {
    expect(chooseProtocol({ profile: disabled, hint: { http3: 'allow' }, http3Registered: true, http3Broken: false }).protocol).toBe('h2');
  });
});

describe("chooseProtocol with http3: 'require'", () => {
  const required: ProfileOptions = { ...prefer, http3: 'require' };

  it('the profile requires HTTP/3: HTTP/3 only, reason required, even inside a backoff window', () => {
    expect(chooseProtocol({ profile: required, hint: {}, http3Registered: true, http3Broken: true })).toEqual({ protocol: 'h3', reason: 'required', required: 'profile' });
    expect(chooseProtocol({ profile: required, hint: { http3: 'allow' }, http3Registered: true, http3Broken: false })).toEqual({ protocol: 'h3', reason: 'required', required: 'profile' });
  });

  it('the hint requires HTTP/3 under a prefer profile: HTTP/3 only', () => {
    expect(chooseProtocol({ profile: prefer, hint: { http3: 'require' }, http3Registered: true, http3Broken: true })).toEqual({ protocol: 'h3', reason: 'required', required: 'hint' });
  });

  it.each([
    ['profile-disabled', 'hint', { profile: disabled, hint: { http3: 'require' as const }, http3Registered: true, http3Broken: false }],
    ['insecure', 'hint', { profile: insecure, hint: { http3: 'require' as const }, http3Registered: true, http3Broken: false }],
    ['hint-denied', 'profile', { profile: { ...prefer, http3: 'require' as const }, hint: { http3: 'deny' as const }, http3Registered: true, http3Broken: false }],
    ['no-http3-transport', 'profile', { profile: { ...prefer, http3: 'require' as const }, hint: {}, http3Registered: false, http3Broken: false }],
    ['no-http3-transport', 'hint', { profile: prefer, hint: { http3: 'require' as const }, http3Registered: false, http3Broken: false }],
  ])('a requirement nothing can meet is a conflict (%s, required by the %s), never HTTP/2', (conflict, by, input) => {
    expect(chooseProtocol(input)).toEqual({ protocol: 'h3', reason: 'required', required: by, conflict });
  });
});
