/**
 * Leadership agent options: `LeadershipOptionsInput` (what the application binds to
 * `CONTROL_PLANE_TOKENS.LeadershipOptions`) → `resolveLeadershipOptions` → a frozen
 * `LeadershipOptions`, or one ConfigError naming every bad key (field rules through zod, then
 * cross-field rules).
 */
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../errors.js';

/**
 * The defaults, each with its reason. They aim at a failover (leader crashed → a new leader
 * seen by every node) under 2 s on the embedded store; an etcd store applies its own minimum
 * TTL (2 s with etcd's default election timeout), which the agent reads from the grant.
 */
export const LEADERSHIP_DEFAULTS = {
  /** One scope, `global`, unless the application names its own (`shard-7`, ...). */
  scopes: ['global'] as readonly string[],
  /**
   * A lease lives 1 s without renewal. A crashed leader's scope is leaderless for at most this
   * long, so it bounds failover; shorter leases cost more renewals and make a long GC or event-loop
   * stall look like a crash.
   */
  leaseTtlMs: 1_000,
  /**
   * Renew every 250 ms (TTL / 4; etcd's clients keep alive every TTL / 3): two renewals may
   * fail or hang and the third still lands before the leader's deadline.
   */
  renewIntervalMs: 250,
  /**
   * The leader stops acting 200 ms before its lease can expire (its deadline is the time it SENT
   * the grant or last successful renewal + TTL − this margin): room for clock-rate drift between
   * the node and the store and for the step-down timer firing late on a busy event loop.
   */
  safetyMarginMs: 200,
  /**
   * When a scope becomes leaderless, each candidate waits a random 0..100 ms before campaigning,
   * so N candidates do not hit the store in the same instant (only one can win anyway).
   */
  candidateJitterMs: 100,
  /** A failed campaign (store unreachable) is retried after 100 ms, doubling per failure in a row... */
  retryInitialMs: 100,
  /** ...up to 2 s, so a store that comes back is used within about 2 s. */
  retryMaxMs: 2_000,
  /** ±20 % of each retry wait is random, so candidates that failed together do not retry together. */
  retryJitter: 0.2,
  /**
   * A campaign (grant + create) that has not answered in 500 ms is abandoned: an answer later
   * than TTL − margin would be useless (the term would already be over for us).
   */
  campaignTimeoutMs: 500,
} as const;

/** Options as the application gives them. */
export interface LeadershipOptionsInput {
  /** This node's id (the leader id others see). Required. */
  readonly nodeId: string;
  /** The scopes this node is a candidate in. Default `['global']`. */
  readonly scopes?: readonly string[] | undefined;
  readonly leaseTtlMs?: number | undefined;
  readonly renewIntervalMs?: number | undefined;
  readonly safetyMarginMs?: number | undefined;
  readonly candidateJitterMs?: number | undefined;
  readonly retryInitialMs?: number | undefined;
  readonly retryMaxMs?: number | undefined;
  readonly retryJitter?: number | undefined;
  readonly campaignTimeoutMs?: number | undefined;
  /** Profile of the factory the agent's LeadershipControl clients use. Default `control-plane`. */
  readonly profile?: string | undefined;
}

/** Validated options with every default applied. */
export interface LeadershipOptions {
  readonly nodeId: string;
  readonly scopes: readonly string[];
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  readonly safetyMarginMs: number;
  readonly candidateJitterMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly retryJitter: number;
  readonly campaignTimeoutMs: number;
  readonly profile: string;
}

const MAX_MS = 86_400_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const ms = (min: number): z.ZodNumber =>
  z
    .number({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a number of ms') })
    .int({ error: 'must be a whole number of ms' })
    .min(min, `must be at least ${min} ms`)
    .max(MAX_MS, `must be at most ${MAX_MS} ms`);
const name = (what: string): z.ZodString =>
  z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).regex(NAME, `must be a ${what}: letters, digits, '.', '_' or '-', starting with a letter or digit`);

const LeadershipOptionsSchema = z.strictObject({
  nodeId: name('node id'),
  scopes: z
    .array(name('scope name').max(128, 'must be at most 128 characters'), { error: 'must be an array of scope names' })
    .min(1, 'must name at least one scope')
    .refine((scopes) => new Set(scopes).size === scopes.length, 'must not name a scope twice')
    .default([...LEADERSHIP_DEFAULTS.scopes]),
  leaseTtlMs: ms(10).default(LEADERSHIP_DEFAULTS.leaseTtlMs),
  renewIntervalMs: ms(1).default(LEADERSHIP_DEFAULTS.renewIntervalMs),
  safetyMarginMs: ms(1).default(LEADERSHIP_DEFAULTS.safetyMarginMs),
  candidateJitterMs: ms(0).default(LEADERSHIP_DEFAULTS.candidateJitterMs),
  retryInitialMs: ms(1).default(LEADERSHIP_DEFAULTS.retryInitialMs),
  retryMaxMs: ms(1).default(LEADERSHIP_DEFAULTS.retryMaxMs),
  retryJitter: z.number({ error: 'must be a number between 0 and 1' }).min(0, 'must be at least 0').max(1, 'must be at most 1').default(LEADERSHIP_DEFAULTS.retryJitter),
  campaignTimeoutMs: ms(1).default(LEADERSHIP_DEFAULTS.campaignTimeoutMs),
  profile: name('profile name').default('control-plane'),
});

/** Cross-field rules, checked on a snapshot whose fields are all valid. */
function crossFieldIssues(o: LeadershipOptions): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (o.renewIntervalMs * 3 > o.leaseTtlMs) {
    issues.push({ key: 'renewIntervalMs', message: `must be at most leaseTtlMs / 3 (${Math.floor(o.leaseTtlMs / 3)} ms): a leader must get several renewals into one lease` });
  }
  if (o.safetyMarginMs * 2 > o.leaseTtlMs) {
    issues.push({ key: 'safetyMarginMs', message: `must be at most leaseTtlMs / 2 (${Math.floor(o.leaseTtlMs / 2)} ms): a larger margin leaves a leader almost no time to lead` });
  } else if (o.leaseTtlMs - o.safetyMarginMs < 2 * o.renewIntervalMs) {
    issues.push({ key: 'safetyMarginMs', message: `leaves less than two renewals (2 × renewIntervalMs = ${2 * o.renewIntervalMs} ms) between a renewal and the leader's deadline (leaseTtlMs − safetyMarginMs = ${o.leaseTtlMs - o.safetyMarginMs} ms)` });
  }
  if (o.campaignTimeoutMs >= o.leaseTtlMs - o.safetyMarginMs) {
    issues.push({ key: 'campaignTimeoutMs', message: `must be less than leaseTtlMs − safetyMarginMs (${o.leaseTtlMs - o.safetyMarginMs} ms): a campaign answered later would win a term already over` });
  }
  if (o.retryMaxMs < o.retryInitialMs) {
    issues.push({ key: 'retryMaxMs', message: `must be at least retryInitialMs (${o.retryInitialMs} ms)` });
  }
  return issues;
}

/** Validates a whole input; throws one ConfigError (source "leadership options") naming every bad key. */
export function resolveLeadershipOptions(input: unknown): LeadershipOptions {
  const parsed = LeadershipOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues: ConfigIssue[] = [];
    for (const issue of parsed.error.issues) {
      const key = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const unknown of issue.keys) issues.push({ key: key === '' ? unknown : `${key}.${unknown}`, message: `unknown key "${unknown}"; known keys: ${Object.keys(LeadershipOptionsSchema.shape).join(', ')}` });
      } else {
        issues.push({ key: key === '' ? '(root)' : key, message: issue.message });
      }
    }
    throw new ConfigError(issues, 'leadership options');
  }
  const options: LeadershipOptions = { ...parsed.data, scopes: Object.freeze([...parsed.data.scopes]) };
  const rules = crossFieldIssues(options);
  if (rules.length > 0) throw new ConfigError(rules, 'leadership options');
  return Object.freeze(options);
}
