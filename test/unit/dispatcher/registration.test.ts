import { describe, expect, it } from '@jest/globals';
import { DispatcherError } from '../../../src/errors.js';
import { Dispatcher } from '../../../src/dispatcher/dispatcher.js';
import { onewayProcedure, serverStreamProcedure, serviceProcedures, unaryProcedure, type Procedure } from '../../../src/dispatcher/procedures.js';
import { ControlPlaneDefinition, PingRequest, PingResponse } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';

const pong = { node: 'n', sequence: 1, clientIdentity: '', payload: new Uint8Array() };

function raw(overrides: Record<string, unknown>): Procedure {
  return { kind: 'unary', service: 'acme.v1.Echo', name: 'Echo', requestType: PingRequest, responseType: PingResponse, handler: () => pong, ...overrides };
}

function codeOf(fn: () => unknown): { code: string; service: string; procedure: string | undefined; message: string } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DispatcherError);
    const e = error as DispatcherError;
    return { code: e.code, service: e.service, procedure: e.procedure, message: e.message };
  }
  throw new Error('expected a DispatcherError');
}

describe('Dispatcher procedure registration', () => {
  it('registers procedures by service + name and lists them', () => {
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(
      unaryProcedure(ControlPlaneDefinition, 'ping', () => pong),
      serverStreamProcedure(ControlPlaneDefinition, 'watch', async function* () {}),
      raw({ service: 'acme.v1.Echo', name: 'Echo' }),
    );
    expect(dispatcher.procedures().map((p) => `${p.kind} ${p.service}/${p.name}`)).toEqual([
      'unary omnirelay.controlplane.v1.ControlPlane/Ping',
      'server-stream omnirelay.controlplane.v1.ControlPlane/Watch',
      'unary acme.v1.Echo/Echo',
    ]);
  });

  it('refuses a second procedure with the same service + name, whatever its kind', () => {
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(unaryProcedure(ControlPlaneDefinition, 'ping', () => pong));
    const error = codeOf(() => dispatcher.register(onewayProcedure(ControlPlaneDefinition, 'ping', () => undefined)));
    expect(error).toMatchObject({ code: 'PROCEDURE_DUPLICATE', service: 'omnirelay.controlplane.v1.ControlPlane', procedure: 'Ping' });
    expect(error.message).toContain('already registered (as unary)');
    // The same name in another service is a different procedure.
    expect(() => dispatcher.register(raw({ service: 'acme.v1.Other', name: 'Ping' }))).not.toThrow();
  });

  it.each([
    ['an empty service', { service: '' }, /service name/],
    ['a service with a slash', { service: 'acme/Echo' }, /service name/],
    ['an empty name', { name: '' }, /procedure name/],
    ['a name with a dot', { name: 'a.b' }, /procedure name/],
    ['an unknown kind', { kind: 'bidi' }, /unknown kind "bidi"/],
    ['a missing handler', { handler: undefined }, /handler is not a function/],
    ['a request type without decode', { requestType: { encode: (m: PingRequest) => PingRequest.encode(m) } }, /requestType/],
    ['a unary procedure without a response type', { responseType: undefined }, /responseType/],
  ])('refuses %s, naming the procedure', (_label, overrides, message) => {
    const error = codeOf(() => new Dispatcher({ name: 'svc' }).register(raw(overrides)));
    expect(error.code).toBe('PROCEDURE_INVALID');
    expect(error.message).toMatch(message);
  });

  it('accepts a oneway procedure without a response type', () => {
    expect(() => new Dispatcher({ name: 'svc' }).register(raw({ kind: 'oneway', responseType: undefined }))).not.toThrow();
  });

  it('refuses helpers that do not match the method shape or name', () => {
    // Type checks stop these at compile time; plain JS callers get the typed error.
    const asAny = ControlPlaneDefinition as never;
    expect(codeOf(() => unaryProcedure(asAny, 'watch' as never, () => pong))).toMatchObject({ code: 'PROCEDURE_INVALID', procedure: 'Watch' });
    expect(codeOf(() => serverStreamProcedure(asAny, 'ping' as never, async function* () {}))).toMatchObject({ code: 'PROCEDURE_INVALID', procedure: 'Ping' });
    expect(codeOf(() => unaryProcedure(asAny, 'nope' as never, () => pong)).message).toMatch(/has no method "nope" \(it has ping, watch\)/);
    expect(codeOf(() => serviceProcedures(ControlPlaneDefinition, { ping: () => pong } as never))).toMatchObject({ code: 'PROCEDURE_INVALID', procedure: 'Watch' });
  });

  it('builds one procedure per method of a generated service', () => {
    const procedures = serviceProcedures(ControlPlaneDefinition, { ping: () => pong, watch: async function* () {} });
    expect(procedures.map((p) => [p.kind, p.name])).toEqual([
      ['unary', 'Ping'],
      ['server-stream', 'Watch'],
    ]);
  });

  it('refuses registration once an inbound froze the dispatcher', () => {
    const dispatcher = new Dispatcher({ name: 'svc' });
    dispatcher.register(unaryProcedure(ControlPlaneDefinition, 'ping', () => pong));
    dispatcher.freeze();
    const error = codeOf(() => dispatcher.register(raw({})));
    expect(error).toMatchObject({ code: 'PROCEDURE_INVALID', service: 'acme.v1.Echo', procedure: 'Echo' });
    expect(error.message).toMatch(/before starting inbounds/);
  });

  it('needs a name', () => {
    expect(codeOf(() => new Dispatcher({ name: ' ' })).message).toMatch(/DispatcherOptions\.name/);
  });

  it('names the service when an outbound call has no outbound for it', async () => {
    const dispatcher = new Dispatcher({ name: 'svc', outbounds: {} });
    await expect(dispatcher.call(ControlPlaneDefinition, 'ping', { fromNode: 'a', sequence: 1, payload: new Uint8Array() })).rejects.toMatchObject({
      code: 'OUTBOUND_MISSING',
      service: 'omnirelay.controlplane.v1.ControlPlane',
      message: expect.stringContaining('no outbound for service omnirelay.controlplane.v1.ControlPlane (configured: none)'),
    });
    expect(() => dispatcher.callServerStream(ControlPlaneDefinition, 'watch', { fromNode: 'a', count: 1, intervalMs: 0 })).toThrow(DispatcherError);
  });
});
