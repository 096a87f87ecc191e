/**
 * The dispatcher end to end over real mTLS sockets on 127.0.0.1: GrpcInbound serving
 * registered procedures (unary, oneway, server-stream) through inbound middleware, and
 * GrpcOutbound calling them through the shared client factory, over three replicas.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import {
  controlPlaneV1,
  Dispatcher,
  dispatcherModule,
  GrpcInbound,
  onewayProcedure,
  RoundRobinPeerChooser,
  serviceProcedures,
  TOKENS,
  type CallContext,
  type DispatcherConfig,
  type Middleware,
  type ServiceDefinition,
} from 'omnirelay';
import { containerWith, mtlsOptions } from '../support/cluster.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';

const { ControlPlaneDefinition, PingRequest, PingResponse } = controlPlaneV1;
const CONTROL_PLANE = ControlPlaneDefinition.fullName;

/** A second service, defined by hand with the generated codecs: `Publish` is served oneway. */
const EventsDefinition = {
  name: 'Events',
  fullName: 'acme.events.v1.Events',
  methods: {
    publish: { name: 'Publish', requestType: PingRequest, requestStream: false, responseType: PingResponse, responseStream: false },
  },
} as const satisfies ServiceDefinition;

/** What a replica's inbound middleware saw, one entry per call. */
interface Seen {
  readonly procedure: string;
  readonly kind: string;
  readonly identity: string | undefined;
  readonly caller: string;
  readonly deadline: number | undefined;
  readonly metadata: Readonly<Record<string, string | Buffer>>;
}

interface Replica {
  readonly name: string;
  readonly inbound: GrpcInbound;
  readonly seen: Seen[];
  readonly published: controlPlaneV1.PingRequest[];
  /** The oneway handler waits for the gate of its sequence, when the test set one. */
  readonly gates: Map<number, Promise<void>>;
  /** Oneway handler failures (reported after the ack). */
  readonly onewayErrors: string[];
}

async function startReplica(name: string, pki: TestPki): Promise<Replica> {
  const seen: Seen[] = [];
  const published: controlPlaneV1.PingRequest[] = [];
  const gates = new Map<number, Promise<void>>();
  const onewayErrors: string[] = [];
  const record = (context: CallContext): void => {
    seen.push({ procedure: context.procedure, kind: context.kind, identity: context.peer?.identity, caller: context.caller, deadline: context.deadline, metadata: { ...context.metadata } });
  };
  const observe: Middleware = {
    unary: (context, request, next) => {
      record(context);
      return next(context, request);
    },
    oneway: (context, request, next) => {
      record(context);
      return next(context, request);
    },
    serverStream: (context, request, next) => {
      record(context);
      return next(context, request);
    },
  };
  const dispatcher = new Dispatcher({ name, inboundMiddleware: [observe], onOnewayError: (error) => onewayErrors.push((error as Error).message) });
  dispatcher.register(
    ...serviceProcedures(ControlPlaneDefinition, {
      ping: (request, context) => ({ node: name, sequence: request.sequence, clientIdentity: context.peer?.identity ?? '', payload: new Uint8Array() }),
      watch: async function* (request) {
        for (let i = 1; i <= request.count; i++) {
          await Promise.resolve();
          yield { node: name, sequence: i };
        }
      },
    }),
    onewayProcedure(EventsDefinition, 'publish', async (request) => {
      await gates.get(Number(request.sequence));
      published.push(request);
      if (request.fromNode === 'fail') throw new Error('handler failed after the ack');
    }),
  );
  const inbound = await GrpcInbound.start(dispatcher, { host: '127.0.0.1', port: 0, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFiles: [pki.crlFile] } });
  return { name, inbound, seen, published, gates, onewayErrors };
}

const ping = (sequence: number): controlPlaneV1.PingRequest => ({ fromNode: 'client', sequence, payload: new Uint8Array() });

describe('dispatcher over GrpcInbound / GrpcOutbound (mTLS, HTTP/2, three replicas)', () => {
  let pki: TestPki;
  let replicas: Replica[];
  let container: Container;
  let dispatcher: Dispatcher;
  const outboundSeen: Array<{ procedure: string; endpoint: string | undefined; identity: string | undefined }> = [];

  beforeAll(async () => {
    pki = await createTestPki();
    replicas = [await startReplica('replica-1', pki), await startReplica('replica-2', pki), await startReplica('replica-3', pki)];
    const afterCall: Middleware = {
      async unary(context, request, next) {
        const response = await next(context, request);
        outboundSeen.push({ procedure: context.procedure, endpoint: context.peer?.endpoint, identity: context.peer?.identity });
        return response;
      },
    };
    const config: DispatcherConfig = {
      name: 'client-svc',
      outbounds: {
        [CONTROL_PLANE]: { peers: replicas.map((r) => r.inbound.url) },
        [EventsDefinition.fullName]: { endpoint: replicas[0]!.inbound.url },
      },
      outboundMiddleware: [afterCall],
    };
    ({ container } = containerWith(
      mtlsOptions(pki, pki.client, {
        profiles: { 'control-plane': { http3: 'disable', deadlineMs: 5_000, connectTimeoutMs: 2_000, retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 50 } } },
      }),
      (c) => c.bind(TOKENS.DispatcherConfig).toConstantValue(config),
    ));
    // Round robin, whatever the module's default chooser: the spread below is then exact.
    container.rebind(TOKENS.PeerChooser).toConstantValue(new RoundRobinPeerChooser());
    container.load(dispatcherModule);
    dispatcher = container.get<Dispatcher>(TOKENS.Dispatcher);
  });

  afterAll(async () => {
    await container.unbindAllAsync();
    await Promise.all(replicas.map((r) => r.inbound.close(500)));
    await pki.cleanup();
  });

  it('makes unary calls; inbound middleware sees the client certificate identity, caller and deadline; outbound middleware sees the replica that answered', async () => {
    const response = await dispatcher.call(ControlPlaneDefinition, 'ping', ping(1), { deadlineMs: 4_000, metadata: { 'x-request-id': 'r-1' } });
    expect(response).toMatchObject({ sequence: 1, clientIdentity: 'client' });
    const replica = replicas.find((r) => r.name === response.node)!;
    expect(replica.seen.at(-1)).toMatchObject({ procedure: 'Ping', kind: 'unary', identity: 'client', caller: 'client-svc', metadata: { 'x-request-id': 'r-1', 'rpc-caller': 'client-svc' } });
    const deadline = replica.seen.at(-1)!.deadline!;
    expect(deadline).toBeGreaterThan(Date.now());
    expect(deadline).toBeLessThanOrEqual(Date.now() + 4_000);
    expect(outboundSeen.at(-1)).toEqual({ procedure: 'Ping', endpoint: new URL(replica.inbound.url).host, identity: 'server' });
  });

  it('serves server-streaming procedures through the typed client', async () => {
    const events: number[] = [];
    for await (const event of dispatcher.client(ControlPlaneDefinition).watch({ fromNode: 'client', count: 3, intervalMs: 0 })) events.push(event.sequence);
    expect(events).toEqual([1, 2, 3]);
  });

  it('acknowledges oneway calls on receipt; the handler runs after, and its failure never reaches the caller', async () => {
    const replica = replicas[0]!;
    let open: () => void = () => undefined;
    replica.gates.set(100, new Promise<void>((resolve) => (open = resolve)));
    // The handler is blocked on its gate, yet the call resolves: the ack does not wait for it.
    await dispatcher.oneway(EventsDefinition, 'publish', { fromNode: 'client', sequence: 100, payload: new Uint8Array() });
    expect(replica.seen.at(-1)).toMatchObject({ procedure: 'Publish', kind: 'oneway', identity: 'client', caller: 'client-svc' });
    expect(replica.published.map((r) => Number(r.sequence))).not.toContain(100);
    open();
    // Closing an inbound waits for running oneway handlers; here the dispatcher's idle() does the same.
    await replica.inbound.dispatcher.idle();
    expect(replica.published.map((r) => Number(r.sequence))).toContain(100);

    // A failing handler: the caller still gets the ack; the failure goes to onOnewayError.
    await expect(dispatcher.oneway(EventsDefinition, 'publish', { fromNode: 'fail', sequence: 101, payload: new Uint8Array() })).resolves.toBeUndefined();
    await replica.inbound.dispatcher.idle();
    expect(replica.onewayErrors).toEqual(['handler failed after the ack']);
  });

  it('answers UNIMPLEMENTED for a procedure the inbound does not serve', async () => {
    const unknown = { ...EventsDefinition, methods: { publish: { ...EventsDefinition.methods.publish, name: 'Nope' } } };
    await expect(dispatcher.oneway(unknown, 'publish', ping(1))).rejects.toMatchObject({ code: 'RPC_FAILED', statusName: 'UNIMPLEMENTED' });
  });

  it('refuses a client without a certificate: the inbound requires one by default', async () => {
    const served = replicas.reduce((n, r) => n + r.seen.length, 0);
    const { container: noCert } = containerWith({
      profiles: { 'control-plane': { http3: 'disable', deadlineMs: 3_000, connectTimeoutMs: 2_000, retry: { maxAttempts: 1 }, tls: { mode: 'tls', caFile: pki.caFile } } },
    }, (c) => c.bind(TOKENS.DispatcherConfig).toConstantValue({ name: 'anonymous', outbounds: { [CONTROL_PLANE]: { endpoint: replicas[0]!.inbound.url } } }));
    noCert.load(dispatcherModule);
    try {
      await expect(noCert.get<Dispatcher>(TOKENS.Dispatcher).call(ControlPlaneDefinition, 'ping', ping(2))).rejects.toMatchObject({ code: expect.stringMatching(/^(TLS_CLIENT_CERT_REQUIRED|TLS_CLIENT_CERT_REJECTED|RPC_FAILED)$/) });
      expect(replicas.reduce((n, r) => n + r.seen.length, 0)).toBe(served);
    } finally {
      await noCert.unbindAllAsync();
    }
  });

  it('spreads outbound calls over the three replicas and fails over when one stops', async () => {
    const answeredBy = async (count: number): Promise<string[]> => {
      const nodes: string[] = [];
      for (let i = 0; i < count; i++) nodes.push((await dispatcher.call(ControlPlaneDefinition, 'ping', ping(1000 + i))).node);
      return nodes;
    };
    const spread = await answeredBy(9);
    expect(spread.filter((n) => n === 'replica-1')).toHaveLength(3);
    expect(spread.filter((n) => n === 'replica-2')).toHaveLength(3);
    expect(spread.filter((n) => n === 'replica-3')).toHaveLength(3);

    const stopped = replicas[1]!;
    const servedBefore = stopped.seen.length;
    await stopped.inbound.close(0);
    outboundSeen.length = 0;
    const after = await answeredBy(12);
    expect(after).toHaveLength(12);
    expect(new Set(after)).toEqual(new Set(['replica-1', 'replica-3']));
    expect(stopped.seen.length).toBe(servedBefore);
    expect(outboundSeen.map((s) => s.endpoint)).not.toContain(new URL(stopped.inbound.url).host);
  });
});
