import { expect } from '@jest/globals';
import { resolveOptions } from '../../../src/config/schema.js';
import { ConfigError, type ConfigIssue } from '../../../src/errors.js';

/** The ConfigError that resolving `input` throws (fails the test if it resolves). */
export function rejection(input: unknown): ConfigError {
  try {
    resolveOptions(input);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(input)}`);
}

export function issuesOf(input: unknown): readonly ConfigIssue[] {
  return rejection(input).issues;
}

export function keysOf(input: unknown): string[] {
  return issuesOf(input).map((issue) => issue.key);
}

/** The message of the issue at `key` (fails the test if there is none). */
export function messageAt(input: unknown, key: string): string {
  const issues = issuesOf(input);
  const issue = issues.find((i) => i.key === key);
  expect(issues.map((i) => i.key)).toContain(key);
  return issue!.message;
}

/** A client certificate pair, enough for an `mtls` profile to validate (files are read later). */
export const CERT = { certFile: '/pki/client.pem', keyFile: '/pki/client-key.pem' } as const;

/** Both built-in profiles with client certificates, for inputs that declare endpoints. */
export const WITH_CERTS = {
  'control-plane': { tls: { ...CERT } },
  'data-plane': { tls: { ...CERT } },
} as const;
