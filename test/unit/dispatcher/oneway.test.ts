import { describe, expect, it } from '@jest/globals';
import type { CallContext } from '../../../src/dispatcher/context.js';
import { Dispatcher } from '../../../src/dispatcher/dispatcher.js';
import { inboundServices } from '../../../src/dispatcher/grpc-inbound.js';
import { ONEWAY_ACK } from '../../../src/dispatcher/oneway-ack.js';
import { onewayProcedure, unaryProcedure } from '../../../src/dispatcher/procedures.js';
import { ControlPlaneDefinition, PingRequest, type PingRequest as Ping } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';

const SERVICE = 'omnirelay.controlplane.v1.ControlPlane';
const context = (procedure = 'Ping'): CallContext => ({ direction: 'inbound', service: SERVICE, procedure, kind: 'oneway', metadata: {}, deadline: undefined, peer: undefined, caller: '', signal: undefined });
const ping = (sequence: number): Ping => ({ fromNode: 'test', sequence, payload: new Uint8Array() });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('oneway procedures', () => {
  it('acknowledge once the handler started, before it finishes; idle() waits for it', async () => {
    const gate = deferred();
    const events: string[] = [];
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(
      onewayProcedure(ControlPlaneDefinition, 'ping', async (request) => {
        events.push(`started ${request.sequence}`);
        await gate.promise;
        events.push(`finished ${request.sequence}`);
      }),
    );
    await dispatcher.handleOneway(context(), ping(1));
    events.push('acked');
    const idle = dispatcher.idle().then(() => events.push('idle'));
    await new Promise((resolve) => setImmediate(resolve));
    // Acknowledged while the handler is still running.
    expect(events).toEqual(expect.arrayContaining(['acked', 'started 1']));
    expect(events).not.toContain('finished 1');
    gate.resolve();
    await idle;
    expect(events.slice(-2)).toEqual(['finished 1', 'idle']);
  });

  it('report a handler failure to onOnewayError, not to the caller', async () => {
    const failures: Array<[string, string]> = [];
    const dispatcher = new Dispatcher({ name: 'svc', onOnewayError: (error, ctx) => failures.push([ctx.procedure, (error as Error).message]) });
    dispatcher.register(
      onewayProcedure(ControlPlaneDefinition, 'ping', () => {
        throw new Error('boom');
      }),
    );
    await expect(dispatcher.handleOneway(context(), ping(1))).resolves.toBeUndefined();
    await dispatcher.idle();
    expect(failures).toEqual([['Ping', 'boom']]);
  });

  it('map to a gRPC unary method whose response is the empty acknowledgement', () => {
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(onewayProcedure(ControlPlaneDefinition, 'ping', () => undefined));
    const [[definition, handlers]] = inboundServices(dispatcher, dispatcher.procedures()) as [[typeof ControlPlaneDefinition, Record<string, unknown>]];
    expect(definition.fullName).toBe(SERVICE);
    expect(definition.methods).toEqual({ Ping: { name: 'Ping', requestType: PingRequest, requestStream: false, responseType: ONEWAY_ACK, responseStream: false } });
    expect(Object.keys(handlers)).toEqual(['Ping']);
    expect(ONEWAY_ACK.encode({}).finish()).toHaveLength(0);
    expect(ONEWAY_ACK.decode(new Uint8Array([8, 1]))).toEqual({});
  });

  it('are told apart from unary procedures of other names in the same service', () => {
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(onewayProcedure(ControlPlaneDefinition, 'ping', () => undefined), {
      ...unaryProcedure(ControlPlaneDefinition, 'ping', () => ({ node: '', sequence: 0, clientIdentity: '', payload: new Uint8Array() })),
      name: 'PingUnary',
    });
    const [[definition]] = inboundServices(dispatcher, dispatcher.procedures()) as [[typeof ControlPlaneDefinition, unknown]];
    expect(Object.values(definition.methods).map((m) => [m.name, (m.responseType as unknown) === ONEWAY_ACK])).toEqual([
      ['Ping', true],
      ['PingUnary', false],
    ]);
  });
});
