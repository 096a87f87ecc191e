import * as gossipV1 from '../../gen/omnirelay/controlplane/gossip/v1/gossip.js';
import { systemClock, type Clock } from '../../clock.js';
import type { IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import type { RandomSource } from '../../resilience/retry.js';
import type { TelemetryProviders } from '../../telemetry/internal.js';
import { jsonLinesLogger, type ControlPlaneLogger } from '../logger.js';
import { systemTimers, type ControlPlaneTimers } from '../timers.js';
import type { Member, MemberMetadata, MemberStatus, MembershipSource } from '../membership.js';
import { BroadcastQueue } from './broadcast-queue.js';
import { GossipError } from './errors.js';
import { retransmitLimit, suspicionTimeoutMs } from './formulas.js';
import { LocalHealth } from './local-health.js';
import { MemberList, type MemberUpdate, type Transition } from './member-list.js';
import type { GossipOptions } from './options.js';
import { Suspicion } from './suspicion.js';
import { GossipTelemetry } from './telemetry.js';
import { FactoryGossipTransport, type GossipCaller, type GossipMethod, type GossipPeer, type GossipReceiver, type GossipReply, type GossipRequests, type GossipResponses, type GossipTransport } from './transport.js';
import { checkNodeId, listFromWire, toWire, wireSize } from './wire.js';

/** The agent's timers (one owner: the agent; the control plane's one timer seam); inject a fake one to drive rounds in tests. */
export type GossipTimers = ControlPlaneTimers;
export { systemTimers };

export interface GossipAgentDeps {
  /** The control-plane client factory every gossip call goes through (ignored when `transport` is given). */
  readonly factory?: IGrpcControlPlaneClientFactory | undefined;
  /** How gossip reaches other nodes; default: through `factory` ({@link FactoryGossipTransport}). */
  readonly transport?: GossipTransport | undefined;
  /** Where the member list is published. */
  readonly membership: MembershipSource;
  readonly options: GossipOptions;
  readonly clock?: Clock | undefined;
  readonly random?: RandomSource | undefined;
  readonly timers?: GossipTimers | undefined;
  readonly logger?: ControlPlaneLogger | undefined;
  readonly telemetry?: TelemetryProviders | undefined;
}

/** Room left in each message for its own fields besides the piggybacked updates. */
const ENVELOPE_BYTES = 512;
/** Deadline of a push-pull (the control-plane profile's default deadline: room for a first TLS handshake). */
const SYNC_TIMEOUT_MS = 2_000;
/** Most members a leaving node notifies directly; the rest hear it through gossip. */
const MAX_LEAVE_NOTICES = 64;

type AgentState = 'new' | 'running' | 'leaving' | 'stopped';

/**
 * The SWIM gossip membership agent (Das et al., "SWIM", 2002, with hashicorp/memberlist's
 * refinements): every round it probes one member (ping, then ping-req through `indirectChecks`
 * helpers, then suspicion), piggybacks queued updates on every message, gossips them to `fanout`
 * members, and now and then does a full push-pull sync with one member. The member list it
 * keeps is published on the MembershipSource.
 *
 * One timer owner: the round timer and the join backoff timer are the agent's, and `stop()`
 * cancels both; replies that arrive after `stop()` are dropped.
 */
export class GossipAgent implements GossipReceiver {
  readonly options: GossipOptions;
  readonly #transport: GossipTransport;
  readonly #membership: MembershipSource;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #timers: GossipTimers;
  readonly #logger: ControlPlaneLogger;
  readonly #telemetry: GossipTelemetry;
  readonly #list: MemberList;
  readonly #queue = new BroadcastQueue();
  /** Each suspect member's suspicion: since when (injected clock) and who confirmed it. */
  readonly #suspicions = new Map<string, Suspicion>();
  /** Lifeguard's local health: scales the probe interval and timeouts. */
  readonly #health: LocalHealth;
  /** Operations in flight (probes, gossip, syncs), awaited by stop(). */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Pending waits (join backoff, leave bound), resolved early by stop(). */
  readonly #waits = new Map<unknown, () => void>();
  #state: AgentState = 'new';
  #roundTimer: unknown;
  #probing = false;
  /** Gossip pings awaiting their answer (at most `fanout`). */
  #gossipInFlight = 0;
  /** When the next probe is due (injected clock): probeIntervalMs scaled by the local health. */
  #nextProbeAt = 0;
  #probeOrder: string[] = [];
  #sequence = 0;
  #nextSyncAt = 0;
  #stopped: Promise<void> | undefined;

  constructor(deps: GossipAgentDeps) {
    this.options = deps.options;
    if (deps.transport === undefined && deps.factory === undefined) throw new TypeError('GossipAgent needs a factory (IGrpcControlPlaneClientFactory) or a transport');
    this.#transport = deps.transport ?? new FactoryGossipTransport(deps.factory!, deps.options.profile);
    this.#membership = deps.membership;
    this.#clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#timers = deps.timers ?? systemTimers;
    this.#logger = deps.logger ?? jsonLinesLogger(process.stderr, this.#clock);
    const o = deps.options;
    const local: MemberMetadata = Object.freeze({
      nodeId: o.nodeId,
      role: o.role,
      cluster: o.cluster,
      region: o.region,
      version: o.version,
      endpoint: o.advertiseEndpoint,
      http3: o.http3,
      services: Object.freeze([...o.services]),
    });
    this.#list = new MemberList(local);
    this.#health = new LocalHealth(o.awarenessMaxMultiplier);
    this.#telemetry = new GossipTelemetry(deps.telemetry, () => this.#counts(), () => this.#health.score);
  }

  /** This node's id. */
  get nodeId(): string {
    return this.#list.localId;
  }

  /** The member list now (the local node first). */
  get members(): readonly Member[] {
    return this.#list.all();
  }

  /** One member by id. */
  member(nodeId: string): Member | undefined {
    return this.#list.get(nodeId);
  }

  /** `new` → `running` (start) → `leaving` (graceful stop) → `stopped`. */
  get state(): AgentState {
    return this.#state;
  }

  /**
   * Lifeguard's local health score, 0 (healthy) to `awarenessMaxMultiplier − 1`: probes run
   * every `probeIntervalMs × (score + 1)` with timeouts scaled the same way.
   */
  get healthScore(): number {
    return this.#health.score;
  }

  /** The updates waiting to be piggybacked (diagnostics and tests). */
  get pendingUpdates(): number {
    return this.#queue.size;
  }

  /**
   * Starts the rounds and joins through the seeds: a push-pull sync with each seed in turn
   * until one answers, retrying every seed with exponential backoff (`joinRetryInitialMs` up to
   * `joinRetryMaxMs`, with jitter). Resolves true once joined (at once without seeds), false if
   * stopped before any seed answered. The node answers gossip and probes the members it knows
   * from the start.
   */
  async start(): Promise<boolean> {
    if (this.#state !== 'new') throw new GossipError('GOSSIP_NOT_RUNNING', `GossipAgent ${this.nodeId} was already started; an agent starts once`);
    this.#state = 'running';
    this.#nextSyncAt = this.#clock.now() + this.options.syncIntervalMs;
    this.#queue.enqueue(this.#list.local);
    this.#publish();
    this.#logger.info('gossip.started', { node: this.nodeId, cluster: this.options.cluster, endpoint: this.options.advertiseEndpoint, seeds: this.options.seeds });
    // The first round after a random part of one interval, so nodes started together do not probe in lockstep.
    this.#scheduleRound(Math.max(1, Math.floor(this.#random() * this.options.probeIntervalMs)));
    return this.#join();
  }

  /**
   * Stops the agent. With `leave` (the default) it first announces `left`: the update is
   * queued for gossip and sent directly to the live members as a Leave notice, waiting at most
   * `leaveTimeoutMs`. Without `leave` it just goes quiet (as a crash would look to the others).
   * Every timer is cancelled; nothing runs afterwards. Idempotent.
   */
  stop(options: { readonly leave?: boolean } = {}): Promise<void> {
    this.#stopped ??= this.#stop(options.leave ?? true);
    return this.#stopped;
  }

  /** Graceful stop (what the container's deactivation calls). */
  dispose(): Promise<void> {
    return this.stop();
  }

  // ------------------------------------------------------------------ rounds

  #scheduleRound(delayMs: number): void {
    this.#roundTimer = this.#timers.setTimeout(() => {
      this.#roundTimer = undefined;
      this.#round();
    }, delayMs);
  }

  #round(): void {
    if (this.#state !== 'running') return;
    this.#expireSuspicions();
    this.#reapDeparted();
    const now = this.#clock.now();
    if (!this.#probing && now >= this.#nextProbeAt) {
      this.#nextProbeAt = now + this.#health.scale(this.options.probeIntervalMs);
      this.#track(this.#probe());
    }
    this.#gossip();
    if (this.#clock.now() >= this.#nextSyncAt) {
      this.#nextSyncAt = this.#clock.now() + this.options.syncIntervalMs;
      const peer = this.#randomMembers(1, ['alive'])[0];
      if (peer !== undefined) this.#track(this.#sync({ endpoint: peer.metadata.endpoint, nodeId: peer.metadata.nodeId }, false, SYNC_TIMEOUT_MS));
    }
    this.#scheduleRound(this.options.probeIntervalMs);
  }

  /** Suspects whose suspicion outlived its timeout (Lifeguard: shorter with more confirmations) are declared dead. */
  #expireSuspicions(): void {
    const now = this.#clock.now();
    let changed = false;
    for (const [id, suspicion] of [...this.#suspicions]) {
      if (!suspicion.expired(now)) continue;
      this.#suspicions.delete(id);
      const member = this.#list.get(id);
      if (member?.status !== 'suspect') continue;
      changed = this.#applyOne({ metadata: member.metadata, status: 'dead', incarnation: member.incarnation }, 'none', this.nodeId) || changed;
    }
    if (changed) this.#publish();
  }

  /** When each dead or left member became so (injected clock). */
  readonly #departedSince = new Map<string, number>();

  /** Members dead or left for `deadReapMs` are dropped from the list (and from every reader's view). */
  #reapDeparted(): void {
    if (this.#departedSince.size === 0) return;
    const now = this.#clock.now();
    let changed = false;
    for (const [id, since] of [...this.#departedSince]) {
      if (now - since < this.options.deadReapMs) continue;
      this.#departedSince.delete(id);
      const member = this.#list.get(id);
      if (member !== undefined && this.#list.remove(id)) {
        changed = true;
        this.#logger.info('gossip.member.reaped', { node: this.nodeId, peer: id, status: member.status, incarnation: member.incarnation, endpoint: member.metadata.endpoint });
      }
    }
    if (changed) this.#publish();
  }

  /**
   * The shortest suspicion timeout now: suspicionMult × max(1, log10(n)) × probeInterval,
   * n = live members. A suspicion lasts that long once `suspicionMult − 2` other nodes confirmed
   * it, and up to `suspicionMaxTimeoutMult` × that without confirmations (Lifeguard).
   */
  get suspicionTimeoutMs(): number {
    return suspicionTimeoutMs(this.#list.liveCount, this.options.suspicionMult, this.options.probeIntervalMs);
  }

  /** A new suspicion of a member (memberlist `suspectNode`): k = suspicionMult − 2 confirmations wanted, none when the cluster is too small to give them. */
  #newSuspicion(suspectedBy: string): Suspicion {
    const n = this.#list.liveCount;
    const wanted = n - 2 < this.options.suspicionMult - 2 ? 0 : this.options.suspicionMult - 2;
    const min = this.suspicionTimeoutMs;
    return new Suspicion(this.#clock.now(), suspectedBy, wanted, min, this.options.suspicionMaxTimeoutMult * min);
  }

  /** The next probe target: members in a shuffled order, reshuffled after each pass (memberlist). */
  #nextProbeTarget(): Member | undefined {
    for (let pass = 0; pass < 2; pass++) {
      while (this.#probeOrder.length > 0) {
        const member = this.#list.get(this.#probeOrder.shift()!);
        if (member !== undefined && (member.status === 'alive' || member.status === 'suspect')) return member;
      }
      this.#probeOrder = this.#shuffle(this.#list.others('alive', 'suspect').map((m) => m.metadata.nodeId));
    }
    return undefined;
  }

  /**
   * One probe (SWIM, with Lifeguard's changes as memberlist makes them): a direct ping (which
   * carries the target's suspicion when it is suspect, so it can refute at once — the "buddy
   * system"), then `indirectChecks` ping-reqs, then suspicion. The local health score falls with
   * an answered probe and rises by the number of helpers that did not answer at all (a helper
   * that answers "not acked" is a nack: the target's fault, not ours), or by one without helpers.
   */
  async #probe(): Promise<void> {
    const target = this.#nextProbeTarget();
    if (target === undefined) return;
    this.#probing = true;
    let healthDelta = 0;
    try {
      const peer: GossipPeer = { endpoint: target.metadata.endpoint, nodeId: target.metadata.nodeId };
      const sequence = ++this.#sequence;
      const started = this.#clock.now();
      const timeoutMs = this.#health.scale(this.options.probeTimeoutMs);
      const buddy = target.status === 'suspect' ? [toWire({ ...target, suspectedBy: this.#suspicions.get(target.metadata.nodeId)?.suspectedBy ?? this.nodeId })] : [];
      const direct = await this.#send('ping', peer, { fromNode: this.nodeId, cluster: this.options.cluster, targetNode: peer.nodeId!, sequence, updates: buddy }, timeoutMs);
      if (this.#state !== 'running') return;
      if (direct !== undefined && direct.message.sequence === sequence) {
        healthDelta = -1;
        this.#telemetry.recordRtt((this.#clock.now() - started) / 1_000);
        this.#mergeUpdates(direct.message.updates, direct.protocol, peer.nodeId!);
        return;
      }
      const helpers = this.#randomMembers(this.options.indirectChecks, ['alive'], peer.nodeId);
      const answers = await Promise.all(
        helpers.map(async (helper): Promise<'ack' | 'nack' | 'none'> => {
          const reply = await this.#send(
            'pingReq',
            { endpoint: helper.metadata.endpoint, nodeId: helper.metadata.nodeId },
            { fromNode: this.nodeId, cluster: this.options.cluster, targetNode: peer.nodeId!, targetEndpoint: peer.endpoint, sequence, timeoutMs, updates: [] },
            2 * timeoutMs,
          );
          if (reply === undefined || this.#state !== 'running') return 'none';
          this.#mergeUpdates(reply.message.updates, reply.protocol, helper.metadata.nodeId);
          return reply.message.acked ? 'ack' : 'nack';
        }),
      );
      if (this.#state !== 'running') return;
      if (answers.includes('ack')) {
        healthDelta = -1;
        return;
      }
      healthDelta = helpers.length > 0 ? answers.filter((a) => a === 'none').length : 1;
      // Suspect it — or, if it is suspect already, confirm the suspicion as one more independent suspector.
      const now = this.#list.get(peer.nodeId!);
      if ((now?.status !== 'alive' && now?.status !== 'suspect') || now.incarnation !== target.incarnation) return;
      if (this.#applyOne({ metadata: now.metadata, status: 'suspect', incarnation: now.incarnation, suspectedBy: this.nodeId }, direct === undefined ? 'none' : direct.protocol, this.nodeId)) this.#publish();
    } finally {
      this.#probing = false;
      if (healthDelta !== 0 && this.#state === 'running') this.#health.apply(healthDelta);
    }
  }

  /**
   * Sends queued updates to `fanout` random live members (a ping each; their replies carry
   * theirs). At most `fanout` of these pings are in flight: a round sends only as many as have
   * come back. memberlist's gossip is fire-and-forget UDP; ours are calls that cost both ends a
   * stream, so when answers slow down (an overloaded process, a slow network) the gossip rate
   * follows instead of piling up calls that would time out.
   */
  #gossip(): void {
    const room = this.options.fanout - this.#gossipInFlight;
    if (this.#queue.size === 0 || room <= 0) return;
    for (const member of this.#randomMembers(room, ['alive', 'suspect'])) {
      const peer: GossipPeer = { endpoint: member.metadata.endpoint, nodeId: member.metadata.nodeId };
      this.#gossipInFlight++;
      this.#track(
        this.#send('ping', peer, { fromNode: this.nodeId, cluster: this.options.cluster, targetNode: member.metadata.nodeId, sequence: ++this.#sequence, updates: [] }, this.#health.scale(this.options.probeTimeoutMs))
          .then((reply) => {
            if (reply !== undefined && this.#state === 'running') this.#mergeUpdates(reply.message.updates, reply.protocol, member.metadata.nodeId);
          })
          .finally(() => this.#gossipInFlight--),
      );
    }
  }

  /** Push-pull: our whole list for theirs. True when the peer answered. */
  async #sync(peer: GossipPeer, join: boolean, timeoutMs: number): Promise<boolean> {
    const reply = await this.#send('sync', peer, { fromNode: this.nodeId, cluster: this.options.cluster, join, members: this.#fullState() }, timeoutMs);
    if (reply === undefined || this.#state === 'stopped') return false;
    let states: MemberUpdate[];
    try {
      states = listFromWire(reply.message.members, this.options.cluster, 'members');
    } catch (error) {
      this.#rejected('outbound', 'sync', error, { peer: reply.message.nodeId, endpoint: peer.endpoint });
      return false;
    }
    this.#merge(states.map(remoteState), reply.protocol, reply.message.nodeId);
    return true;
  }

  async #join(): Promise<boolean> {
    const seeds = this.options.seeds.filter((seed) => seed !== this.options.advertiseEndpoint);
    if (seeds.length === 0) return true;
    for (let attempt = 0; ; attempt++) {
      for (const seed of seeds) {
        if (this.#state !== 'running') return false;
        if (await this.#sync({ endpoint: seed }, true, SYNC_TIMEOUT_MS)) {
          this.#logger.info('gossip.joined', { node: this.nodeId, seed, members: this.#list.liveCount, attempts: attempt + 1 });
          return this.#state === 'running';
        }
      }
      const base = Math.min(this.options.joinRetryMaxMs, this.options.joinRetryInitialMs * 2 ** Math.min(attempt, 30));
      const delay = Math.round(base * (0.8 + 0.4 * this.#random()));
      this.#logger.warn('gossip.join.retry', { node: this.nodeId, seeds, attempt: attempt + 1, retryInMs: delay });
      await this.#wait(delay);
    }
  }

  // ------------------------------------------------------------------ sending

  /**
   * One outbound call: piggybacks queued updates (requests with `updates`), checks the
   * responder (its certificate CN and the node id it claims must be the member dialled; a seed
   * must at least be who it says), counts the outcome. Undefined when there was no usable reply.
   */
  async #send<K extends GossipMethod>(method: K, peer: GossipPeer, request: GossipRequests[K], timeoutMs: number): Promise<GossipReply<GossipResponses[K]> | undefined> {
    if ('updates' in request) {
      const withUpdates = request as { updates: gossipV1.MemberState[] };
      withUpdates.updates = [...withUpdates.updates, ...this.#piggyback(encodedSize(method, request))];
    }
    let reply: GossipReply<GossipResponses[K]>;
    try {
      reply = await this.#transport.call(method, peer, request, timeoutMs);
    } catch {
      if (this.#state !== 'stopped') this.#telemetry.recordMessage('outbound', 'failed', method);
      return undefined;
    }
    if (this.#state === 'stopped') return undefined;
    const claimed = reply.message.nodeId;
    const expected = peer.nodeId ?? claimed;
    if (reply.responder !== expected || claimed !== expected) {
      this.#rejected(
        'outbound',
        method,
        new GossipError('GOSSIP_IDENTITY_MISMATCH', `${peer.endpoint} answered as ${JSON.stringify(claimed)} with a certificate for ${JSON.stringify(reply.responder)}; expected ${JSON.stringify(expected)}`),
        { peer: expected, endpoint: peer.endpoint, protocol: reply.protocol },
      );
      return undefined;
    }
    this.#telemetry.recordMessage('outbound', 'ok', method);
    return reply;
  }

  /**
   * Queued updates for one message. `sentByRecipient`: what the message being answered carried;
   * those updates are not sent back to the node that sent them, nor counted as sent (memberlist's
   * gossip is one-way, so its retransmissions all go to other nodes; ours are pings whose replies
   * carry updates too, and a node that just learnt an update from a ping would otherwise spend one
   * of its retransmissions answering it to the sender, which knows it — about 40% of a join's
   * budget at 50 nodes).
   */
  #piggyback(envelopeBytes: number, sentByRecipient: readonly MemberUpdate[] = []): gossipV1.MemberState[] {
    const budget = this.options.maxMessageBytes - envelopeBytes - ENVELOPE_BYTES;
    const limit = retransmitLimit(this.#list.liveCount, this.options.retransmitMult);
    if (sentByRecipient.length === 0) return this.#queue.take(budget, limit, wireSize).map(toWire);
    const known = new Set(sentByRecipient.map(updateKey));
    return this.#queue.take(budget, limit, wireSize, (update) => known.has(updateKey(update))).map(toWire);
  }

  /** Every member, as many as fit in one message (the local node first). */
  #fullState(): gossipV1.MemberState[] {
    let left = this.options.maxMessageBytes - ENVELOPE_BYTES;
    const out: gossipV1.MemberState[] = [];
    for (const listed of this.#list.all()) {
      const member = listed.status === 'suspect' ? { ...listed, suspectedBy: this.#suspicions.get(listed.metadata.nodeId)?.suspectedBy } : listed;
      const size = wireSize(member);
      if (size > left) break;
      left -= size;
      out.push(toWire(member));
    }
    return out;
  }

  // ------------------------------------------------------------------ receiving

  /**
   * Serves one inbound gossip RPC (what `gossipServiceImplementation` calls). Refuses with a
   * GossipError — the caller gets PERMISSION_DENIED, INVALID_ARGUMENT, FAILED_PRECONDITION,
   * RESOURCE_EXHAUSTED or UNAVAILABLE — when the message is too large, malformed, for another
   * cluster, or claims a node id its certificate does not name. A refused message changes
   * nothing; each one is counted and logged.
   */
  async receive<K extends GossipMethod>(method: K, request: GossipRequests[K], caller: GossipCaller): Promise<GossipResponses[K]> {
    try {
      this.#checkInbound(method, request, caller);
      const response = await this.#serve(method, request, caller);
      this.#telemetry.recordMessage('inbound', 'ok', method);
      return response;
    } catch (error) {
      if (error instanceof GossipError) this.#rejected('inbound', method, error, { peer: request.fromNode.slice(0, 64), identity: caller.identity, protocol: caller.protocol });
      else this.#telemetry.recordMessage('inbound', 'failed', method);
      throw error;
    }
  }

  #checkInbound<K extends GossipMethod>(method: K, request: GossipRequests[K], caller: GossipCaller): void {
    if (this.#state !== 'running' && this.#state !== 'leaving') throw new GossipError('GOSSIP_NOT_RUNNING', `gossip agent ${this.nodeId} is ${this.#state === 'new' ? 'not started yet' : 'stopped'}`);
    const size = encodedSize(method, request);
    if (size > this.options.maxMessageBytes) throw new GossipError('GOSSIP_MESSAGE_TOO_LARGE', `${method} message of ${size} bytes is over maxMessageBytes (${this.options.maxMessageBytes})`);
    checkNodeId(request.fromNode, 'fromNode');
    if (request.cluster !== this.options.cluster) {
      throw new GossipError('GOSSIP_CLUSTER_MISMATCH', `message for cluster ${JSON.stringify(request.cluster.slice(0, 64))}; this node is in ${JSON.stringify(this.options.cluster)}`);
    }
    if (caller.identity !== request.fromNode) {
      throw new GossipError('GOSSIP_IDENTITY_MISMATCH', `message claims to come from ${JSON.stringify(request.fromNode)} but the client certificate names ${JSON.stringify(caller.identity)}`);
    }
  }

  async #serve<K extends GossipMethod>(method: K, request: GossipRequests[K], caller: GossipCaller): Promise<GossipResponses[K]> {
    switch (method) {
      case 'ping': {
        const ping = request as gossipV1.PingRequest;
        if (ping.targetNode !== this.nodeId) throw new GossipError('GOSSIP_WRONG_TARGET', `ping for ${JSON.stringify(ping.targetNode.slice(0, 64))} reached ${this.nodeId}`);
        const updates = listFromWire(ping.updates, this.options.cluster, 'updates');
        this.#merge(updates, caller.protocol, ping.fromNode);
        const response: gossipV1.PingResponse = { nodeId: this.nodeId, sequence: ping.sequence, updates: [] };
        response.updates = this.#piggyback(gossipV1.PingResponse.encode(response).finish().length, updates);
        return response as GossipResponses[K];
      }
      case 'pingReq':
        return (await this.#servePingReq(request as gossipV1.PingReqRequest, caller)) as GossipResponses[K];
      case 'sync': {
        const sync = request as gossipV1.SyncRequest;
        const states = listFromWire(sync.members, this.options.cluster, 'members');
        this.#merge(states.map(remoteState), caller.protocol, sync.fromNode);
        return { nodeId: this.nodeId, members: this.#fullState() } as GossipResponses[K];
      }
      case 'leave': {
        const leave = request as gossipV1.LeaveRequest;
        const known = this.#list.get(leave.fromNode);
        if (known !== undefined && Number.isSafeInteger(leave.incarnation)) {
          if (this.#applyOne({ metadata: known.metadata, status: 'left', incarnation: leave.incarnation }, caller.protocol, leave.fromNode)) this.#publish();
        }
        return { nodeId: this.nodeId } as GossipResponses[K];
      }
    }
    throw new GossipError('GOSSIP_MESSAGE_INVALID', `unknown gossip method ${String(method)}`);
  }

  async #servePingReq(request: gossipV1.PingReqRequest, caller: GossipCaller): Promise<gossipV1.PingReqResponse> {
    checkNodeId(request.targetNode, 'targetNode');
    const updates = listFromWire(request.updates, this.options.cluster, 'updates');
    const known = this.#list.get(request.targetNode);
    // Dial the endpoint we know for the target; only a target we have not heard of yet is dialled where the requester says.
    const endpoint = known?.metadata.endpoint ?? request.targetEndpoint;
    if (known === undefined && !/^https:\/\/[^/]+:\d+\/?$/.test(request.targetEndpoint)) throw new GossipError('GOSSIP_MESSAGE_INVALID', 'targetEndpoint must be an https://host:port URL');
    this.#merge(updates, caller.protocol, request.fromNode);
    // Bounded by what this node's own probes may wait at most (its probe interval × the largest health multiplier).
    const timeoutMs = Math.min(Math.max(1, request.timeoutMs), this.options.probeIntervalMs * this.options.awarenessMaxMultiplier);
    const reply = await this.#send(
      'ping',
      { endpoint, nodeId: request.targetNode },
      { fromNode: this.nodeId, cluster: this.options.cluster, targetNode: request.targetNode, sequence: request.sequence, updates: [] },
      timeoutMs,
    );
    const acked = reply !== undefined && reply.message.sequence === request.sequence;
    if (reply !== undefined && this.#state !== 'stopped') this.#mergeUpdates(reply.message.updates, reply.protocol, request.targetNode);
    const response: gossipV1.PingReqResponse = { nodeId: this.nodeId, sequence: request.sequence, acked, updates: [] };
    response.updates = this.#piggyback(gossipV1.PingReqResponse.encode(response).finish().length, updates);
    return response;
  }

  // ------------------------------------------------------------------ the member list

  /** Validates and merges the updates of a reply; a malformed reply is refused whole. */
  #mergeUpdates(states: readonly gossipV1.MemberState[], protocol: string, via: string): void {
    let updates: MemberUpdate[];
    try {
      updates = listFromWire(states, this.options.cluster, 'updates');
    } catch (error) {
      this.#rejected('outbound', 'ping', error, { peer: via, protocol });
      return;
    }
    this.#merge(updates, protocol, via);
  }

  #merge(updates: readonly MemberUpdate[], protocol: string, via: string): void {
    if (this.#state === 'stopped') return;
    let changed = false;
    for (const update of updates) changed = this.#applyOne(update, protocol, via) || changed;
    if (changed) this.#publish();
  }

  /** Applies one update; true when the member list changed (the caller publishes). */
  #applyOne(update: MemberUpdate, protocol: string, via: string): boolean {
    const result = this.#list.apply(update, this.#state === 'leaving');
    if (result.outcome === 'ignored') {
      if (update.status === 'suspect') this.#confirmSuspicion(update, via);
      return false;
    }
    if (result.outcome === 'refute') {
      const local = this.#list.local;
      const incarnation = Math.max(local.incarnation, result.claimed) + 1;
      const member = this.#list.setLocal('alive', incarnation);
      this.#queue.enqueue(member);
      // Lifeguard: having to refute is a sign this node is slow to answer.
      this.#health.apply(1);
      this.#logger.info('gossip.refuted', { node: this.nodeId, peer: this.nodeId, claimed: update.status, claimedIncarnation: result.claimed, incarnation, via, protocol });
      return true;
    }
    this.#onTransition(result.transition, update.suspectedBy ?? via, protocol, via);
    return true;
  }

  /**
   * Another node's suspicion of a member we already suspect at that incarnation: an independent
   * confirmation shortens the suspicion (Lifeguard) and is re-gossiped so others count it too.
   */
  #confirmSuspicion(update: MemberUpdate, via: string): void {
    const id = update.metadata.nodeId;
    const member = this.#list.get(id);
    const suspicion = this.#suspicions.get(id);
    if (member?.status !== 'suspect' || member.incarnation !== update.incarnation || suspicion === undefined) return;
    const suspectedBy = update.suspectedBy ?? via;
    if (suspicion.confirm(suspectedBy)) this.#queue.enqueue({ ...member, suspectedBy });
  }

  #onTransition(transition: Transition, suspectedBy: string, protocol: string, via: string): void {
    const { member, previous, kind } = transition;
    const id = member.metadata.nodeId;
    if (member.status === 'suspect') {
      const suspicion = this.#suspicions.get(id);
      if (suspicion === undefined) this.#suspicions.set(id, this.#newSuspicion(suspectedBy));
      else suspicion.confirm(suspectedBy);
    } else {
      this.#suspicions.delete(id);
    }
    if (member.status === 'dead' || member.status === 'left') {
      if (!this.#departedSince.has(id)) this.#departedSince.set(id, this.#clock.now());
    } else {
      this.#departedSince.delete(id);
    }
    this.#queue.enqueue(member.status === 'suspect' ? { ...member, suspectedBy } : member);
    if (kind === 'updated') return;
    this.#logger.info(`gossip.member.${kind}`, {
      node: this.nodeId,
      peer: id,
      protocol,
      via,
      status: member.status,
      previous: previous?.status,
      incarnation: member.incarnation,
      endpoint: member.metadata.endpoint,
    });
  }

  #publish(): void {
    this.#membership.publish(Object.freeze(this.#list.all()));
  }

  #counts(): Record<MemberStatus, number> {
    const counts: Record<MemberStatus, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.#list.all()) counts[m.status]++;
    return counts;
  }

  #rejected(direction: 'inbound' | 'outbound', method: string, error: unknown, fields: Record<string, unknown>): void {
    if (this.#state === 'stopped' && direction === 'outbound') return;
    this.#telemetry.recordMessage(direction, 'rejected', method);
    this.#logger.warn('gossip.message.rejected', {
      node: this.nodeId,
      direction,
      message: method,
      code: error instanceof GossipError ? error.code : 'UNKNOWN',
      reason: error instanceof Error ? error.message : String(error),
      ...fields,
    });
  }

  // ------------------------------------------------------------------ helpers

  /** Up to `count` random members in `statuses` (never the local node, nor `exclude`). */
  #randomMembers(count: number, statuses: MemberStatus[], exclude?: string): Member[] {
    const candidates = this.#list.others(...statuses).filter((m) => m.metadata.nodeId !== exclude);
    return this.#shuffle(candidates).slice(0, count);
  }

  #shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch(() => undefined).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  /** A wait the agent owns: its timer is cancelled (and the wait resolved) by stop(). */
  #wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const handle = this.#timers.setTimeout(() => {
        this.#waits.delete(handle);
        resolve();
      }, ms);
      this.#waits.set(handle, resolve);
    });
  }

  #cancelTimers(): void {
    if (this.#roundTimer !== undefined) this.#timers.clearTimeout(this.#roundTimer);
    this.#roundTimer = undefined;
    for (const [handle, resolve] of [...this.#waits]) {
      this.#timers.clearTimeout(handle);
      this.#waits.delete(handle);
      resolve();
    }
  }

  async #stop(leave: boolean): Promise<void> {
    if (this.#state === 'new' || this.#state === 'stopped') {
      this.#state = 'stopped';
      this.#telemetry.dispose();
      return;
    }
    this.#state = 'leaving';
    this.#cancelTimers();
    if (leave) await this.#announceLeave();
    this.#state = 'stopped';
    this.#cancelTimers();
    this.#queue.clear();
    this.#suspicions.clear();
    // Calls in flight end within their deadlines; their replies are dropped (state is stopped).
    await Promise.allSettled([...this.#inFlight]);
    this.#telemetry.dispose();
    this.#logger.info('gossip.stopped', { node: this.nodeId, left: leave });
  }

  async #announceLeave(): Promise<void> {
    const local = this.#list.local;
    const left = this.#list.setLocal('left', local.incarnation);
    this.#queue.enqueue(left);
    this.#publish();
    this.#logger.info('gossip.member.left', { node: this.nodeId, peer: this.nodeId, protocol: 'none', via: this.nodeId, status: 'left', previous: local.status, incarnation: left.incarnation, endpoint: left.metadata.endpoint });
    const targets = this.#randomMembers(MAX_LEAVE_NOTICES, ['alive', 'suspect']);
    const notices = Promise.allSettled(
      targets.map((m) =>
        this.#send('leave', { endpoint: m.metadata.endpoint, nodeId: m.metadata.nodeId }, { fromNode: this.nodeId, cluster: this.options.cluster, incarnation: left.incarnation }, this.options.leaveTimeoutMs),
      ),
    );
    await Promise.race([notices, this.#wait(this.options.leaveTimeoutMs)]);
  }
}

/**
 * How a remote full state is merged (memberlist `mergeState`): a member the peer thinks dead is
 * only suspected here, so it gets its chance to refute before this node declares it dead too.
 */
function remoteState(update: MemberUpdate): MemberUpdate {
  return update.status === 'dead' ? { ...update, status: 'suspect' } : update;
}

/** One member state exactly (two updates with the same key say the same thing). */
function updateKey(update: MemberUpdate): string {
  return `${update.metadata.nodeId}\u0000${update.status}\u0000${update.incarnation}\u0000${update.suspectedBy ?? ''}`;
}

function encodedSize<K extends GossipMethod>(method: K, request: GossipRequests[K]): number {
  const type = gossipV1.GossipDefinition.methods[method].requestType as { encode(message: unknown): { finish(): Uint8Array } };
  return type.encode(request).finish().length;
}
