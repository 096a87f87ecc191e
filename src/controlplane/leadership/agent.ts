import { Observable, Subject, type Subscription } from 'rxjs';
import { systemClock, type Clock } from '../../clock.js';
import type { CallTarget, IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import { backoffDelay, type RandomSource } from '../../resilience/retry.js';
import type { TelemetryProviders } from '../../telemetry/internal.js';
import { jsonLinesLogger, type ControlPlaneLogger } from '../logger.js';
import { LeadershipClient } from './client.js';
import { LeadershipNotRunningError, LeaseLostError, LeaseStoreUnavailableError, NotLeaderError, StaleFenceTokenError } from './errors.js';
import type { ILeaseStore, LeaderRecord, LeaseGrant, StoreCallOptions } from './lease-store.js';
import type { LeadershipOptions } from './options.js';
import { LeadershipTelemetry } from './telemetry.js';
import { systemTimers, TimerSlot, type ControlPlaneTimers } from '../timers.js';

export interface LeadershipAgentDeps {
  /** The control-plane client factory (the agent's LeadershipControl clients go through it). */
  readonly factory: IGrpcControlPlaneClientFactory;
  /** Where leases and leader keys live (the embedded store by default, or EtcdLeaseStore). */
  readonly store: ILeaseStore;
  readonly options: LeadershipOptions;
  readonly clock?: Clock | undefined;
  readonly timers?: ControlPlaneTimers | undefined;
  readonly random?: RandomSource | undefined;
  readonly logger?: ControlPlaneLogger | undefined;
  readonly telemetry?: TelemetryProviders | undefined;
}

/** The leader of a scope as this node sees it. */
export interface LeaderView {
  readonly scope: string;
  readonly leaderId: string;
  readonly term: number;
  readonly fenceToken: bigint;
  readonly leaseId: string;
  /** When the leader stops acting unless it renews (ms, the injected clock); known for this node's own term only. */
  readonly expiresAt: number | undefined;
}

/** The leader of a scope changed, as this node observed it (`current` undefined: nobody leads now). */
export interface LeadershipChange {
  readonly scope: string;
  readonly previous: LeaderView | undefined;
  readonly current: LeaderView | undefined;
  /** When this node observed it (ms, the injected clock). */
  readonly at: number;
}

/**
 * Work done on behalf of one term: every write carries the term's fence token, and the store
 * applies it only while that token is current. Keeps its token after the term ends, so a
 * deposed leader's late write is rejected (StaleFenceTokenError), never applied.
 */
export interface FencedWriter {
  readonly scope: string;
  readonly fenceToken: bigint;
  readonly term: number;
  /** Puts `value` at `key` if this term still leads the scope; resolves the write's revision. */
  put(key: string, value: string, options?: StoreCallOptions): Promise<bigint>;
}

/** Why this node stopped leading a scope. */
export type StepDownReason = 'lease_lost' | 'renew_deadline' | 'superseded' | 'resigned' | 'stopped';

type Role = 'follower' | 'campaigning' | 'leader';

interface Term {
  readonly record: LeaderRecord;
  readonly leaseId: string;
  /** The time (injected clock) this node stops acting as leader unless a renewal moves it. */
  deadline: number;
}

type AgentState = 'new' | 'running' | 'stopped';

/**
 * Leader election per scope through an `ILeaseStore` (see docs/leadership.md). Every node is a
 * candidate in each of its scopes: it watches the scope's leader key and, when there is none,
 * campaigns after a random jitter (grant a lease, create the key only if absent). The winner's
 * fence token is the key's create revision. The leader renews its lease every
 * `renewIntervalMs`; its deadline is the time it SENT the grant or its last successful renewal
 * + the granted TTL − `safetyMarginMs`, so it stops acting before the store can let the lease
 * go, however late answers arrive or when renewals hang.
 *
 * Timers (one owner: the agent, one slot each per scope): campaign/backoff, renewal, deadline,
 * watch retry. `stop()` clears all of them, aborts every store call in flight and waits for them.
 */
export class LeadershipAgent {
  readonly options: LeadershipOptions;
  readonly #factory: IGrpcControlPlaneClientFactory;
  readonly #store: ILeaseStore;
  readonly #clock: Clock;
  readonly #timers: ControlPlaneTimers;
  readonly #random: RandomSource;
  readonly #logger: ControlPlaneLogger;
  readonly #telemetry: LeadershipTelemetry;
  readonly #scopes = new Map<string, ScopeCandidate>();
  readonly #changes = new Subject<LeadershipChange>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #state: AgentState = 'new';
  #stopped: Promise<void> | undefined;

  constructor(deps: LeadershipAgentDeps) {
    this.options = deps.options;
    this.#factory = deps.factory;
    this.#store = deps.store;
    this.#clock = deps.clock ?? systemClock;
    this.#timers = deps.timers ?? systemTimers;
    this.#random = deps.random ?? Math.random;
    this.#logger = deps.logger ?? jsonLinesLogger(process.stderr, this.#clock);
    this.#telemetry = new LeadershipTelemetry(deps.telemetry);
    const internals = this.#internals();
    for (const scope of deps.options.scopes) this.#scopes.set(scope, new ScopeCandidate(internals, scope));
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** `new` → `running` (start) → `stopped`. */
  get state(): AgentState {
    return this.#state;
  }

  /** The store the agent runs on. */
  get store(): ILeaseStore {
    return this.#store;
  }

  /** Starts watching every scope and campaigning where nobody leads. An agent starts once. */
  start(): void {
    if (this.#state !== 'new') throw new LeadershipNotRunningError(`LeadershipAgent ${this.nodeId} (already ${this.#state}; an agent starts once)`);
    this.#state = 'running';
    this.#logger.info('leadership.started', { node: this.nodeId, scopes: this.options.scopes, store: this.#store.name, leaseTtlMs: this.options.leaseTtlMs });
    for (const candidate of this.#scopes.values()) candidate.start();
  }

  /** The leader of `scope` as this node sees it now (undefined: nobody leads, not known yet, or not one of this node's scopes). */
  leader(scope: string): LeaderView | undefined {
    return this.#scopes.get(scope)?.view();
  }

  /** Whether this node leads `scope` now (its deadline not passed). */
  isLeader(scope: string): boolean {
    return this.#scopes.get(scope)?.leading === true;
  }

  /**
   * The leader of each of `scopes` (default: all of this node's) now, as changes with no
   * `previous`, then every change this node observes. Completes when the agent stops.
   */
  changes$(scopes: readonly string[] = this.options.scopes): Observable<LeadershipChange> {
    const wanted = new Set(scopes);
    return new Observable<LeadershipChange>((subscriber) => {
      if (this.#state === 'stopped') {
        subscriber.complete();
        return undefined;
      }
      const subscription = this.#changes.subscribe({
        next: (change) => {
          if (wanted.has(change.scope)) subscriber.next(change);
        },
        complete: () => subscriber.complete(),
      });
      const at = this.#clock.now();
      for (const scope of scopes) subscriber.next({ scope, previous: undefined, current: this.leader(scope), at });
      return subscription;
    });
  }

  /** A writer fenced by this node's current term in `scope`; NotLeaderError when this node does not lead it. */
  fence(scope: string): FencedWriter {
    const term = this.#scopes.get(scope)?.currentTerm();
    if (term === undefined) throw new NotLeaderError(scope, this.nodeId);
    const { fenceToken, term: number } = term.record;
    return {
      scope,
      fenceToken,
      term: number,
      put: async (key, value, options) => {
        try {
          return await this.#store.fencedPut(scope, fenceToken, key, value, options);
        } catch (error) {
          if (error instanceof StaleFenceTokenError) {
            this.#telemetry.recordStaleFence(scope);
            this.#logger.warn('leadership.fence.rejected', { node: this.nodeId, scope, key, presented: error.presented.toString(), current: error.current?.toString() ?? null });
          }
          throw error;
        }
      },
    };
  }

  /** A LeadershipControl client of another node (`target`), through this agent's factory and profile. */
  client(target: CallTarget): LeadershipClient {
    return new LeadershipClient(this.#factory, { target: { profile: this.options.profile, ...target } });
  }

  /** Remaining time (ms) before `view`'s leader stops acting: its own deadline, or its lease's TTL in the store. */
  async expiresAt(view: LeaderView, options?: StoreCallOptions): Promise<number | undefined> {
    if (view.expiresAt !== undefined) return view.expiresAt;
    const ttl = await this.#store.timeToLive(view.leaseId, options);
    return ttl === undefined ? undefined : this.#clock.now() + ttl;
  }

  /**
   * Stops the agent. With `resign` (the default) a leader steps down and revokes its leases, so
   * others take over at once; without it the agent just goes quiet (as a crash would look to
   * the others: its leases run out). Every timer is cleared, every store call aborted; nothing
   * runs afterwards. Idempotent.
   */
  stop(options: { readonly resign?: boolean } = {}): Promise<void> {
    this.#stopped ??= this.#stop(options.resign ?? true);
    return this.#stopped;
  }

  /** Stop with resignation (what the container's deactivation calls). */
  dispose(): Promise<void> {
    return this.stop();
  }

  async #stop(resign: boolean): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'stopped';
    await Promise.all([...this.#scopes.values()].map((candidate) => candidate.stop(resign)));
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#changes.complete();
    this.#telemetry.dispose();
    if (wasRunning) this.#logger.info('leadership.stopped', { node: this.nodeId, resigned: resign });
  }

  // ------------------------------------------------------------------ shared with ScopeCandidate

  /** What the scope candidates share with the agent (they hold no reference to the agent itself). */
  #internals(): AgentInternals {
    return {
      store: this.#store,
      options: this.options,
      clock: this.#clock,
      timers: this.#timers,
      random: this.#random,
      logger: this.#logger,
      telemetry: this.#telemetry,
      running: () => this.#state === 'running',
      track: (work) => {
        const tracked = work.finally(() => this.#inFlight.delete(tracked));
        this.#inFlight.add(tracked);
      },
      publish: (change) => this.#changes.next(change),
    };
  }
}

interface AgentInternals {
  readonly store: ILeaseStore;
  readonly options: LeadershipOptions;
  readonly clock: Clock;
  readonly timers: ControlPlaneTimers;
  readonly random: RandomSource;
  readonly logger: ControlPlaneLogger;
  readonly telemetry: LeadershipTelemetry;
  running(): boolean;
  track(work: Promise<unknown>): void;
  publish(change: LeadershipChange): void;
}

/** One scope's candidate: its watch, campaign, renewal and deadline (each timer in its own slot). */
class ScopeCandidate {
  readonly #scope: string;
  readonly #agent: AgentInternals;
  readonly #campaignTimer: TimerSlot;
  readonly #renewTimer: TimerSlot;
  readonly #deadlineTimer: TimerSlot;
  readonly #watchTimer: TimerSlot;
  /** Store calls in flight, aborted on step-down and stop. */
  readonly #calls = new Set<AbortController>();
  #role: Role = 'follower';
  #term: Term | undefined;
  /** The leader record the watch reported last; `unknown` before its first report. */
  #observed: LeaderRecord | undefined | 'unknown' = 'unknown';
  #watch: Subscription | undefined;
  #watchFailures = 0;
  #campaignFailures = 0;
  #campaignStartedAt: number | undefined;
  /** Renewals in flight, with the time each was sent (several may be: a slow answer still counts from its send time). */
  readonly #renewals = new Map<AbortController, number>();
  #renewFailures = 0;
  #stopped = false;

  constructor(agent: AgentInternals, scope: string) {
    this.#scope = scope;
    this.#agent = agent;
    const timers = this.#agent.timers;
    this.#campaignTimer = new TimerSlot(timers);
    this.#renewTimer = new TimerSlot(timers);
    this.#deadlineTimer = new TimerSlot(timers);
    this.#watchTimer = new TimerSlot(timers);
  }

  get leading(): boolean {
    return this.currentTerm() !== undefined;
  }

  /** This node's term if it leads now (deadline not passed). */
  currentTerm(): Term | undefined {
    if (this.#role !== 'leader' || this.#term === undefined) return undefined;
    return this.#agent.clock.now() < this.#term.deadline ? this.#term : undefined;
  }

  view(): LeaderView | undefined {
    const record = this.#observed;
    if (record === undefined || record === 'unknown') return undefined;
    const own = this.#term !== undefined && this.#role === 'leader' && this.#term.record.fenceToken === record.fenceToken ? this.#term.deadline : undefined;
    return { scope: record.scope, leaderId: record.leaderId, term: record.term, fenceToken: record.fenceToken, leaseId: record.leaseId, expiresAt: own };
  }

  start(): void {
    this.#subscribe();
  }

  async stop(resign: boolean): Promise<void> {
    this.#stopped = true;
    this.#campaignTimer.clear();
    this.#watchTimer.clear();
    this.#watch?.unsubscribe();
    this.#watch = undefined;
    for (const call of this.#calls) call.abort(new LeadershipNotRunningError(`The leadership agent of ${this.#agent.options.nodeId}`));
    const term = this.#role === 'leader' ? this.#term : undefined;
    this.#stepDown(resign ? 'resigned' : 'stopped', false);
    this.#role = 'follower';
    if (resign && term !== undefined) await this.#revoke(term.leaseId);
  }

  // ------------------------------------------------------------------ watch

  #subscribe(): void {
    if (this.#stopped) return;
    this.#watch = this.#agent.store.watch(this.#scope).subscribe({
      next: (record) => {
        this.#watchFailures = 0;
        this.#onObserved(record);
      },
      error: (error: unknown) => {
        this.#watch = undefined;
        if (this.#stopped) return;
        this.#watchFailures++;
        const delay = this.#backoff(this.#watchFailures);
        if (this.#watchFailures === 1) this.#agent.logger.warn('leadership.watch.failed', { node: this.#agent.options.nodeId, scope: this.#scope, error: messageOf(error), retryInMs: delay });
        this.#watchTimer.arm(delay, () => this.#subscribe());
      },
    });
  }

  #onObserved(record: LeaderRecord | undefined): void {
    if (this.#stopped) return;
    const before = this.#observed === 'unknown' ? undefined : this.#observed;
    const previous = this.view();
    const changed = this.#observed === 'unknown' || before?.fenceToken !== record?.fenceToken;
    this.#observed = record;
    if (changed && (before !== undefined || record !== undefined)) {
      this.#agent.publish({ scope: this.#scope, previous, current: this.view(), at: this.#agent.clock.now() });
    }
    if (this.#role === 'leader' && this.#term !== undefined) {
      // A newer term: ours is over. Our key gone: check the lease at once (a late watch event
      // about an older key must not end our term, so the store decides through keepAlive).
      if (record !== undefined && record.fenceToken > this.#term.record.fenceToken) this.#stepDown('superseded', true);
      else if (record === undefined) this.#renew();
    }
    if (record === undefined && this.#role === 'follower') this.#scheduleCampaign(Math.floor(this.#agent.random() * this.#agent.options.candidateJitterMs));
  }

  // ------------------------------------------------------------------ campaign

  #scheduleCampaign(delayMs: number): void {
    if (this.#stopped || this.#role !== 'follower' || this.#campaignTimer.armed) return;
    this.#campaignTimer.arm(delayMs, () => this.#agent.track(this.#campaign()));
  }

  async #campaign(): Promise<void> {
    if (this.#stopped || !this.#agent.running() || this.#role !== 'follower') return;
    // A known leader: nothing to do until the watch reports the key gone.
    if (this.#observed !== undefined && this.#observed !== 'unknown') return;
    const { store, options, clock } = this.#agent;
    this.#role = 'campaigning';
    this.#campaignStartedAt ??= clock.now();
    const call = this.#call();
    const timeout = new TimerSlot(this.#agent.timers);
    timeout.arm(options.campaignTimeoutMs, () => call.abort(new LeaseStoreUnavailableError(store.name, 'campaign', `no answer within campaignTimeoutMs (${options.campaignTimeoutMs} ms)`)));
    let grant: LeaseGrant | undefined;
    try {
      const sentAt = clock.now();
      grant = await store.grant(options.leaseTtlMs, { signal: call.signal });
      const result = await store.createLeader(this.#scope, options.nodeId, grant.leaseId, { signal: call.signal });
      timeout.clear();
      this.#calls.delete(call);
      if (this.#stopped) {
        this.#role = 'follower';
        this.#revokeLater(grant.leaseId);
        return;
      }
      if (!result.acquired) {
        this.#role = 'follower';
        this.#campaignFailures = 0;
        this.#campaignStartedAt = undefined;
        this.#revokeLater(grant.leaseId);
        this.#onObserved(result.current);
        return;
      }
      const deadline = sentAt + grant.ttlMs - options.safetyMarginMs;
      if (clock.now() >= deadline) throw new LeaseStoreUnavailableError(store.name, 'campaign', `the answer came after the term's deadline (sent ${clock.now() - sentAt} ms ago)`);
      this.#becomeLeader(result.record, grant, deadline);
    } catch (error) {
      timeout.clear();
      this.#calls.delete(call);
      this.#role = 'follower';
      if (grant !== undefined) this.#revokeLater(grant.leaseId);
      if (this.#stopped) return;
      this.#campaignFailures++;
      const delay = this.#backoff(this.#campaignFailures);
      if (this.#campaignFailures === 1) this.#agent.logger.warn('leadership.campaign.failed', { node: options.nodeId, scope: this.#scope, error: messageOf(error), retryInMs: delay });
      this.#campaignTimer.arm(delay, () => this.#agent.track(this.#campaign()));
    }
  }

  #becomeLeader(record: LeaderRecord, grant: LeaseGrant, deadline: number): void {
    const { clock, options, telemetry, logger } = this.#agent;
    this.#role = 'leader';
    this.#term = { record, leaseId: grant.leaseId, deadline };
    this.#renewFailures = 0;
    const now = clock.now();
    const electionMs = now - (this.#campaignStartedAt ?? now);
    this.#campaignStartedAt = undefined;
    this.#campaignFailures = 0;
    telemetry.recordElection(this.#scope, electionMs / 1_000);
    telemetry.recordTransition(this.#scope, 'elected', 'campaign');
    logger.info('leadership.elected', { node: options.nodeId, scope: this.#scope, term: record.term, fenceToken: record.fenceToken.toString(), leaseId: grant.leaseId, ttlMs: grant.ttlMs, leadsUntil: new Date(deadline).toISOString(), electionMs });
    this.#deadlineTimer.arm(deadline - now, () => this.#stepDown('renew_deadline', true));
    this.#renewTimer.arm(options.renewIntervalMs, () => this.#renew());
    this.#onObserved(record);
  }

  // ------------------------------------------------------------------ renewal

  #renew(): void {
    const term = this.#term;
    if (this.#stopped || this.#role !== 'leader' || term === undefined) return;
    const { store, options, clock, logger } = this.#agent;
    this.#renewTimer.arm(options.renewIntervalMs, () => this.#renew());
    const sentAt = clock.now();
    // Earlier renewals stay in flight (a late answer still moves the deadline to its own send
    // time + TTL − margin) until even a success could not extend the term: then they are abandoned.
    for (const [pending, pendingSentAt] of this.#renewals) {
      if (pendingSentAt + options.leaseTtlMs - options.safetyMarginMs <= term.deadline) {
        pending.abort(new LeaseStoreUnavailableError(store.name, 'renew a lease', 'no answer while it could still have extended the term'));
      }
    }
    const call = this.#call();
    this.#renewals.set(call, sentAt);
    const work = store.keepAlive(term.leaseId, { signal: call.signal }).then(
      (grant) => {
        if (this.#term !== term || this.#role !== 'leader') return;
        this.#renewFailures = 0;
        const deadline = sentAt + grant.ttlMs - options.safetyMarginMs;
        if (deadline > term.deadline) {
          term.deadline = deadline;
          this.#deadlineTimer.arm(deadline - clock.now(), () => this.#stepDown('renew_deadline', true));
        }
      },
      (error: unknown) => {
        if (this.#term !== term || this.#role !== 'leader') return;
        if (error instanceof LeaseLostError) {
          this.#stepDown('lease_lost', false);
          return;
        }
        this.#renewFailures++;
        if (this.#renewFailures === 1) logger.warn('leadership.renew.failed', { node: options.nodeId, scope: this.#scope, term: term.record.term, error: messageOf(error), leadsUntil: new Date(term.deadline).toISOString() });
      },
    );
    this.#agent.track(
      work.finally(() => {
        this.#calls.delete(call);
        this.#renewals.delete(call);
      }),
    );
  }

  #stepDown(reason: StepDownReason, revoke: boolean): void {
    const term = this.#term;
    if (this.#role !== 'leader' || term === undefined) return;
    const { options, telemetry, logger, clock } = this.#agent;
    this.#role = 'follower';
    this.#term = undefined;
    this.#renewTimer.clear();
    this.#deadlineTimer.clear();
    for (const pending of this.#renewals.keys()) pending.abort(new NotLeaderError(this.#scope, options.nodeId));
    this.#renewals.clear();
    telemetry.recordTransition(this.#scope, 'stepped_down', reason);
    logger.info('leadership.stepped_down', { node: options.nodeId, scope: this.#scope, term: term.record.term, fenceToken: term.record.fenceToken.toString(), reason, leaseExpiresNoEarlierThan: new Date(term.deadline + options.safetyMarginMs).toISOString(), at: new Date(clock.now()).toISOString() });
    if (revoke) this.#revokeLater(term.leaseId);
    if (this.#observed === undefined) this.#scheduleCampaign(Math.floor(this.#agent.random() * options.candidateJitterMs));
  }

  // ------------------------------------------------------------------ helpers

  #call(): AbortController {
    const call = new AbortController();
    this.#calls.add(call);
    return call;
  }

  /** Revokes a lease we no longer use, best effort (it expires anyway), bounded by campaignTimeoutMs. */
  #revokeLater(leaseId: string): void {
    this.#agent.track(this.#revoke(leaseId));
  }

  async #revoke(leaseId: string): Promise<void> {
    const call = this.#call();
    const timeout = new TimerSlot(this.#agent.timers);
    timeout.arm(this.#agent.options.campaignTimeoutMs, () => call.abort(new LeaseStoreUnavailableError(this.#agent.store.name, 'revoke a lease', 'no answer in time')));
    try {
      await this.#agent.store.revoke(leaseId, { signal: call.signal });
    } catch {
      // The lease runs out by itself.
    } finally {
      timeout.clear();
      this.#calls.delete(call);
    }
  }

  #backoff(failures: number): number {
    const o = this.#agent.options;
    return backoffDelay(failures, { initialBackoffMs: o.retryInitialMs, maxBackoffMs: o.retryMaxMs, multiplier: 2, jitter: o.retryJitter }, this.#agent.random);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
