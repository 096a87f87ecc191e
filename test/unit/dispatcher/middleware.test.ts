import { describe, expect, it } from '@jest/globals';
import type { CallContext } from '../../../src/dispatcher/context.js';
import { Dispatcher } from '../../../src/dispatcher/dispatcher.js';
import type { Middleware } from '../../../src/dispatcher/middleware.js';
import type { Outbound } from '../../../src/dispatcher/outbound.js';
import { serverStreamProcedure, unaryProcedure } from '../../../src/dispatcher/procedures.js';
import { ControlPlaneDefinition, type PingRequest, type PingResponse } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';

const SERVICE = 'omnirelay.controlplane.v1.ControlPlane';
const ping = (sequence: number): PingRequest => ({ fromNode: 'test', sequence, payload: new Uint8Array() });

/** A middleware that logs `name>` on the way in and `<name` on the way out, for every kind. */
function tracing(name: string, log: string[]): Middleware {
  return {
    name,
    async unary(context, request, next) {
      log.push(`${name}>`);
      const response = await next(context, request);
      log.push(`<${name}`);
      return response;
    },
    async oneway(context, request, next) {
      log.push(`${name}>`);
      await next(context, request);
      log.push(`<${name}`);
    },
    async *serverStream(context, request, next) {
      log.push(`${name}>`);
      yield* next(context, request);
      log.push(`<${name}`);
    },
  };
}

function inboundContext(procedure: string, kind: CallContext['kind']): CallContext {
  return { direction: 'inbound', service: SERVICE, procedure, kind, metadata: {}, deadline: undefined, peer: undefined, caller: 'peer-svc', signal: undefined };
}

/** An outbound that records what reached it and answers from the request. */
function recordingOutbound(seen: CallContext[]): Outbound {
  return {
    unary: (context, _procedure, request) => {
      seen.push(context);
      context.peer = { identity: 'server', certificate: undefined, endpoint: '127.0.0.1:1', protocol: 'h2' };
      const r = request as PingRequest;
      return Promise.resolve({ node: 'remote', sequence: r.sequence, clientIdentity: '', payload: new Uint8Array() } satisfies PingResponse);
    },
    oneway: (context) => {
      seen.push(context);
      return Promise.resolve();
    },
    serverStream: async function* (context) {
      seen.push(context);
      await Promise.resolve();
      yield { node: 'remote', sequence: 1 };
    },
  };
}

describe('inbound middleware', () => {
  it('runs first-to-last on the way in and last-to-first on the way out, around the handler', async () => {
    const log: string[] = [];
    const dispatcher = new Dispatcher({ name: 'svc', inboundMiddleware: [tracing('a', log), tracing('b', log)] });
    dispatcher.register(
      unaryProcedure(ControlPlaneDefinition, 'ping', (request) => {
        log.push('handler');
        return { node: 'me', sequence: request.sequence, clientIdentity: '', payload: new Uint8Array() };
      }),
      serverStreamProcedure(ControlPlaneDefinition, 'watch', async function* () {
        log.push('handler');
        await Promise.resolve();
        yield { node: 'me', sequence: 1 };
      }),
    );
    await expect(dispatcher.handleUnary(inboundContext('Ping', 'unary'), ping(3))).resolves.toMatchObject({ sequence: 3 });
    expect(log.splice(0)).toEqual(['a>', 'b>', 'handler', '<b', '<a']);
    const streamed: unknown[] = [];
    for await (const event of dispatcher.handleServerStream(inboundContext('Watch', 'server-stream'), { fromNode: 'x', count: 1, intervalMs: 0 })) streamed.push(event);
    expect(streamed).toEqual([{ node: 'me', sequence: 1 }]);
    expect(log).toEqual(['a>', 'b>', 'handler', '<b', '<a']);
  });

  it('passes calls of kinds a middleware does not implement straight through', async () => {
    const log: string[] = [];
    const streams = tracing('s', log);
    const onlyStreams: Middleware = { serverStream: (context, request, next) => streams.serverStream!(context, request, next) };
    const dispatcher = new Dispatcher({ name: 'svc', inboundMiddleware: [onlyStreams, tracing('u', log)] });
    dispatcher.register(unaryProcedure(ControlPlaneDefinition, 'ping', () => ({ node: 'me', sequence: 1, clientIdentity: '', payload: new Uint8Array() })));
    await dispatcher.handleUnary(inboundContext('Ping', 'unary'), ping(1));
    expect(log).toEqual(['u>', '<u']);
  });

  it('lets a middleware reject before the handler runs, and sees the handler error otherwise', async () => {
    let ran = 0;
    const auth: Middleware = {
      unary: (context, request, next) => (context.caller === 'trusted' ? next(context, request) : Promise.reject(new Error(`caller ${context.caller} refused`))),
    };
    const dispatcher = new Dispatcher({ name: 'svc', inboundMiddleware: [auth] });
    dispatcher.register(
      unaryProcedure(ControlPlaneDefinition, 'ping', () => {
        ran++;
        throw new Error('handler failed');
      }),
    );
    await expect(dispatcher.handleUnary(inboundContext('Ping', 'unary'), ping(1))).rejects.toThrow('caller peer-svc refused');
    expect(ran).toBe(0);
    await expect(dispatcher.handleUnary({ ...inboundContext('Ping', 'unary'), caller: 'trusted' }, ping(1))).rejects.toThrow('handler failed');
    expect(ran).toBe(1);
  });

  it('answers UNIMPLEMENTED for a procedure that is not registered or has another kind', async () => {
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(unaryProcedure(ControlPlaneDefinition, 'ping', () => ({ node: 'me', sequence: 1, clientIdentity: '', payload: new Uint8Array() })));
    await expect(dispatcher.handleUnary(inboundContext('Nope', 'unary'), ping(1))).rejects.toMatchObject({ statusName: 'UNIMPLEMENTED', details: expect.stringContaining('is not registered') });
    await expect(dispatcher.handleOneway(inboundContext('Ping', 'oneway'), ping(1))).rejects.toMatchObject({ statusName: 'UNIMPLEMENTED', details: expect.stringContaining('registered as unary, not oneway') });
  });
});

describe('outbound middleware', () => {
  it('runs in order around the outbound and sees the outbound context: service, procedure, caller, metadata, deadline, peer', async () => {
    const log: string[] = [];
    const seen: CallContext[] = [];
    let peerAfterNext: CallContext['peer'];
    const stamp: Middleware = {
      async unary(context, request, next) {
        context.metadata['x-stamp'] = 'stamped';
        const response = await next(context, request);
        peerAfterNext = context.peer;
        return response;
      },
    };
    const now = 1_000_000;
    const dispatcher = new Dispatcher({
      name: 'caller-svc',
      clock: { now: () => now },
      outbounds: { [SERVICE]: recordingOutbound(seen) },
      outboundMiddleware: [tracing('a', log), stamp, tracing('b', log)],
    });
    const response = await dispatcher.call(ControlPlaneDefinition, 'ping', ping(9), { deadlineMs: 250, metadata: { 'x-user': 'u', 'rpc-caller': 'spoofed' } });
    expect(response).toMatchObject({ node: 'remote', sequence: 9 });
    expect(log).toEqual(['a>', 'b>', '<b', '<a']);
    const [context] = seen;
    expect(context).toMatchObject({ direction: 'outbound', service: SERVICE, procedure: 'Ping', kind: 'unary', caller: 'caller-svc', deadline: now + 250 });
    expect(context?.metadata).toEqual({ 'x-user': 'u', 'rpc-caller': 'caller-svc', 'x-stamp': 'stamped' });
    expect(peerAfterNext).toMatchObject({ identity: 'server', endpoint: '127.0.0.1:1' });
  });

  it('routes oneway and server-stream calls and the typed client through the same chain', async () => {
    const log: string[] = [];
    const seen: CallContext[] = [];
    const dispatcher = new Dispatcher({ name: 'svc', outbounds: { [SERVICE]: recordingOutbound(seen) }, outboundMiddleware: [tracing('m', log)] });
    await dispatcher.oneway(ControlPlaneDefinition, 'ping', ping(1));
    const events: unknown[] = [];
    for await (const e of dispatcher.client(ControlPlaneDefinition).watch({ fromNode: 'x', count: 1, intervalMs: 0 })) events.push(e);
    await dispatcher.client(ControlPlaneDefinition).ping(ping(2));
    expect(seen.map((c) => c.kind)).toEqual(['oneway', 'server-stream', 'unary']);
    expect(seen.every((c) => c.deadline === undefined)).toBe(true);
    expect(events).toHaveLength(1);
    expect(log).toEqual(['m>', '<m', 'm>', '<m', 'm>', '<m']);
  });

  it('lets a middleware answer without calling the outbound', async () => {
    const seen: CallContext[] = [];
    const cache: Middleware = { unary: () => Promise.resolve({ node: 'cache', sequence: 0, clientIdentity: '', payload: new Uint8Array() }) };
    const dispatcher = new Dispatcher({ name: 'svc', outbounds: { [SERVICE]: recordingOutbound(seen) }, outboundMiddleware: [cache] });
    await expect(dispatcher.call(ControlPlaneDefinition, 'ping', ping(1))).resolves.toMatchObject({ node: 'cache' });
    expect(seen).toHaveLength(0);
  });
});
