/**
 * Gossip agent options: `GossipOptionsInput` (what the application binds to
 * `CONTROL_PLANE_TOKENS.GossipOptions`) → `resolveGossipOptions` → a frozen `GossipOptions`,
 * or one ConfigError naming every bad key (field rules through zod, then cross-field rules).
 */
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../errors.js';

/**
 * The defaults, each with its reason. Timings are tuned for a LAN / loopback control plane
 * of up to a few hundred nodes where a join must be seen everywhere within about a second;
 * hashicorp/memberlist's `DefaultLANConfig` (probe 1 s, gossip 200 ms, push-pull 30 s) is the
 * model, moved faster where the join target needs it.
 */
export const GOSSIP_DEFAULTS = {
  /** memberlist's default cluster-less setup; every node of one mesh must use the same name. */
  cluster: 'default',
  /** No role unless the application gives one (discovery may filter on it). */
  role: '',
  /** Single-region deployments need not say. */
  region: '',
  /** Unknown unless the application says (reported in metadata only). */
  version: '',
  /** A node serves HTTP/3 unless told otherwise (GrpcHost serves it by default). */
  http3: true,
  /**
   * One round (probe one member + gossip to `fanout` members) every 200 ms: memberlist's LAN
   * gossip interval. memberlist probes every 1 s; probing at the gossip cadence costs one
   * small unary call per node per round and detects failures five times sooner.
   */
  probeIntervalMs: 200,
  /**
   * 100 ms for a direct ping's answer: memberlist's LAN ProbeTimeout is 500 ms for a 1 s
   * interval (RTT of a loaded LAN × ~100); we keep it at half the round so the indirect probe
   * still fits before the next round. A first call to a member includes its TLS handshake;
   * a miss only starts the indirect probe, and a missed indirect probe only a suspicion the
   * member refutes.
   */
  probeTimeoutMs: 100,
  /** k = 3 helpers for indirect probes (memberlist's IndirectChecks). */
  indirectChecks: 3,
  /**
   * Updates go to 3 random members per round (memberlist's GossipNodes): with a 200 ms round a
   * join reaches 50 nodes in ~log3(50) ≈ 4 rounds ≈ 0.8 s.
   */
  fanout: 3,
  /** memberlist's LAN SuspicionMult: suspicion lasts 4 × max(1, log10(n)) rounds. */
  suspicionMult: 4,
  /**
   * Lifeguard (memberlist's SuspicionMaxTimeoutMult): a suspicion nobody else confirms lasts up
   * to 6 × the suspicion timeout above; each independent suspector shortens it, down to the
   * plain timeout after suspicionMult − 2 of them. A real failure is seen by many probers within a
   * few rounds; a suspicion raised by one slow or partitioned node gives its target time to
   * refute.
   */
  suspicionMaxTimeoutMult: 6,
  /**
   * Lifeguard's local health multiplier (memberlist's AwarenessMaxMultiplier): a node whose own
   * probes fail in ways that point at itself (helpers that do not answer, having to refute)
   * probes up to 8 × less often with up to 8 × longer timeouts, instead of flooding its peers
   * with false suspicions while its event loop or network is overloaded. 1 turns it off.
   */
  awarenessMaxMultiplier: 8,
  /** memberlist's LAN RetransmitMult: each update is piggybacked 4 × ceil(log10(n + 1)) times. */
  retransmitMult: 4,
  /**
   * Push-pull with one random member every 5 s (memberlist: 30 s). Anti-entropy repairs what
   * dissemination missed (a node down while an update was gossiped); a full-state exchange of a
   * 50-node cluster is ~10 KiB, so 5 s costs little and bounds repair time.
   */
  syncIntervalMs: 5_000,
  /**
   * 1 MiB per gossip message, in and out (the control-plane profile accepts 4 MiB): ~5,000
   * members of full state in one Sync, while bounding what one peer can make a node parse.
   */
  maxMessageBytes: 1_048_576,
  /** First join retry after 100 ms, doubling (memberlist retries joins from the application). */
  joinRetryInitialMs: 100,
  /** Join retries back off to at most 5 s, so a seed that comes up late is found within 5 s. */
  joinRetryMaxMs: 5_000,
  /** Graceful leave waits at most 1 s for the leave notices, so shutdown stays bounded. */
  leaveTimeoutMs: 1_000,
  /**
   * A member dead or left for 30 s is dropped from the list (memberlist's GossipToTheDeadTime):
   * long enough for the news to reach everyone, short enough that churn (restarts under new
   * ids, scale-down) does not grow the list without bound. A node that comes back later simply
   * joins again.
   */
  deadReapMs: 30_000,
} as const;

/** Options as the application gives them. */
export interface GossipOptionsInput {
  /** This node's id; its certificate's CN must equal it. Required. */
  readonly nodeId: string;
  /** https://host:port this node's GrpcHost serves on (what others dial). Required. */
  readonly advertiseEndpoint: string;
  readonly cluster?: string | undefined;
  readonly role?: string | undefined;
  readonly region?: string | undefined;
  readonly version?: string | undefined;
  /** Whether this node's host serves HTTP/3 (false → peers use HTTP/2 from the first call). */
  readonly http3?: boolean | undefined;
  /** Fully qualified gRPC services this node hosts. Default none. */
  readonly services?: readonly string[] | undefined;
  /** Endpoint URLs of seed nodes to join through. Default none (a first node). */
  readonly seeds?: readonly string[] | undefined;
  readonly probeIntervalMs?: number | undefined;
  readonly probeTimeoutMs?: number | undefined;
  readonly indirectChecks?: number | undefined;
  readonly fanout?: number | undefined;
  readonly suspicionMult?: number | undefined;
  readonly suspicionMaxTimeoutMult?: number | undefined;
  readonly awarenessMaxMultiplier?: number | undefined;
  readonly retransmitMult?: number | undefined;
  readonly syncIntervalMs?: number | undefined;
  readonly maxMessageBytes?: number | undefined;
  readonly joinRetryInitialMs?: number | undefined;
  readonly joinRetryMaxMs?: number | undefined;
  readonly leaveTimeoutMs?: number | undefined;
  readonly deadReapMs?: number | undefined;
  /** Profile of the factory every gossip call uses. Default `control-plane`. */
  readonly profile?: string | undefined;
}

/** Validated options with every default applied. */
export interface GossipOptions {
  readonly nodeId: string;
  readonly advertiseEndpoint: string;
  readonly cluster: string;
  readonly role: string;
  readonly region: string;
  readonly version: string;
  readonly http3: boolean;
  readonly services: readonly string[];
  readonly seeds: readonly string[];
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly indirectChecks: number;
  readonly fanout: number;
  readonly suspicionMult: number;
  /** A suspicion without confirmations lasts up to this × the suspicion timeout (Lifeguard). */
  readonly suspicionMaxTimeoutMult: number;
  /** Largest local-health multiplier of the probe interval and timeout (Lifeguard); 1: off. */
  readonly awarenessMaxMultiplier: number;
  readonly retransmitMult: number;
  readonly syncIntervalMs: number;
  readonly maxMessageBytes: number;
  readonly joinRetryInitialMs: number;
  readonly joinRetryMaxMs: number;
  readonly leaveTimeoutMs: number;
  /** How long a dead or left member stays in the list before it is dropped. */
  readonly deadReapMs: number;
  readonly profile: string;
}

const MAX_MS = 86_400_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const whole = (min: number, max: number, unit: string): z.ZodNumber =>
  z
    .number({ error: (issue) => (issue.input === undefined ? 'is required' : `must be a number${unit === '' ? '' : ` of ${unit}`}`) })
    .int({ error: `must be a whole number${unit === '' ? '' : ` of ${unit}`}` })
    .min(min, `must be at least ${min}${unit === '' ? '' : ` ${unit}`}`)
    .max(max, `must be at most ${max}${unit === '' ? '' : ` ${unit}`}`);

const ms = (min = 1): z.ZodNumber => whole(min, MAX_MS, 'ms');
const text = (): z.ZodString => z.string({ error: 'must be a string' });
const name = (what: string): z.ZodString =>
  z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).regex(NAME, `must be a ${what}: letters, digits, '.', '_' or '-', starting with a letter or digit`);
const endpointUrl = (): z.ZodString =>
  z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).refine(isHttpsUrl, 'must be an https://host:port URL (a GrpcHost url)');

function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.hostname !== '' && url.port !== '' && (url.pathname === '/' || url.pathname === '');
  } catch {
    return false;
  }
}

const GossipOptionsSchema = z.strictObject({
  nodeId: name('node id'),
  advertiseEndpoint: endpointUrl(),
  cluster: name('cluster name').default(GOSSIP_DEFAULTS.cluster),
  role: text().default(GOSSIP_DEFAULTS.role),
  region: text().default(GOSSIP_DEFAULTS.region),
  version: text().default(GOSSIP_DEFAULTS.version),
  http3: z.boolean({ error: 'must be true or false' }).default(GOSSIP_DEFAULTS.http3),
  services: z.array(text().min(1, 'must be a non-empty service name'), { error: 'must be an array of service names' }).default([]),
  seeds: z.array(endpointUrl(), { error: 'must be an array of https://host:port URLs' }).default([]),
  probeIntervalMs: ms().default(GOSSIP_DEFAULTS.probeIntervalMs),
  probeTimeoutMs: ms().default(GOSSIP_DEFAULTS.probeTimeoutMs),
  indirectChecks: whole(0, 16, 'helpers').default(GOSSIP_DEFAULTS.indirectChecks),
  fanout: whole(1, 64, 'members').default(GOSSIP_DEFAULTS.fanout),
  suspicionMult: whole(1, 100, '').default(GOSSIP_DEFAULTS.suspicionMult),
  suspicionMaxTimeoutMult: whole(1, 100, '').default(GOSSIP_DEFAULTS.suspicionMaxTimeoutMult),
  awarenessMaxMultiplier: whole(1, 100, '').default(GOSSIP_DEFAULTS.awarenessMaxMultiplier),
  retransmitMult: whole(1, 100, '').default(GOSSIP_DEFAULTS.retransmitMult),
  syncIntervalMs: ms().default(GOSSIP_DEFAULTS.syncIntervalMs),
  maxMessageBytes: whole(1_024, 2_147_483_647, 'bytes').default(GOSSIP_DEFAULTS.maxMessageBytes),
  joinRetryInitialMs: ms().default(GOSSIP_DEFAULTS.joinRetryInitialMs),
  joinRetryMaxMs: ms().default(GOSSIP_DEFAULTS.joinRetryMaxMs),
  leaveTimeoutMs: ms().default(GOSSIP_DEFAULTS.leaveTimeoutMs),
  deadReapMs: ms().default(GOSSIP_DEFAULTS.deadReapMs),
  profile: name('profile name').default('control-plane'),
});

/** Cross-field rules, checked on a snapshot whose fields are all valid. */
function crossFieldIssues(o: GossipOptions): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (o.probeTimeoutMs >= o.probeIntervalMs) {
    issues.push({ key: 'probeTimeoutMs', message: `must be less than probeIntervalMs (${o.probeIntervalMs} ms): a direct probe must end within its round` });
  }
  if (o.syncIntervalMs < o.probeIntervalMs) {
    issues.push({ key: 'syncIntervalMs', message: `must be at least probeIntervalMs (${o.probeIntervalMs} ms): syncs run on the round timer` });
  }
  if (o.joinRetryMaxMs < o.joinRetryInitialMs) {
    issues.push({ key: 'joinRetryMaxMs', message: `must be at least joinRetryInitialMs (${o.joinRetryInitialMs} ms)` });
  }
  if (o.seeds.includes(o.advertiseEndpoint) && o.seeds.length === 1) {
    issues.push({ key: 'seeds', message: 'names only this node (advertiseEndpoint); give another node, or no seeds for the first node' });
  }
  return issues;
}

/** Validates a whole input; throws one ConfigError (source "gossip options") naming every bad key. */
export function resolveGossipOptions(input: unknown): GossipOptions {
  const parsed = GossipOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues: ConfigIssue[] = [];
    for (const issue of parsed.error.issues) {
      const key = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const unknown of issue.keys) issues.push({ key: key === '' ? unknown : `${key}.${unknown}`, message: `unknown key "${unknown}"; known keys: ${Object.keys(GossipOptionsSchema.shape).join(', ')}` });
      } else {
        issues.push({ key: key === '' ? '(root)' : key, message: issue.message });
      }
    }
    throw new ConfigError(issues, 'gossip options');
  }
  const options: GossipOptions = { ...parsed.data, services: [...parsed.data.services], seeds: [...parsed.data.seeds] };
  const rules = crossFieldIssues(options);
  if (rules.length > 0) throw new ConfigError(rules, 'gossip options');
  return Object.freeze({ ...options, services: Object.freeze(options.services), seeds: Object.freeze(options.seeds) });
}
