import { describe, expect, it } from '@jest/globals';
import { CALLER_OPTION } from '../../../src/factory/caller.js';
import type { IGrpcControlPlaneClientFactory, UnaryResult } from '../../../src/factory/types.js';
import { Dispatcher } from '../../../src/dispatcher/dispatcher.js';
import { GrpcOutbound } from '../../../src/dispatcher/grpc-outbound.js';
import { ONEWAY_ACK } from '../../../src/dispatcher/oneway-ack.js';
import { EndpointError } from '../../../src/errors.js';
import { ControlPlaneDefinition } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';

const SERVICE = 'omnirelay.controlplane.v1.ControlPlane';

interface Recorded {
  readonly op: 'unary' | 'serverStream';
  readonly responseType: unknown;
  readonly target: Record<string | symbol, unknown>;
}

/** Records what GrpcOutbound asks of the factory; only the members it may use are implemented. */
function recordingFactory(calls: Recorded[]): IGrpcControlPlaneClientFactory {
  const result = (message: unknown): UnaryResult<unknown> => ({ message, protocol: 'h2', endpoint: '127.0.0.1:9', peer: { address: '127.0.0.1', certificate: undefined }, attempts: 1, headers: {}, trailers: {} });
  return {
    unary: (service, method, _request, target) => {
      calls.push({ op: 'unary', responseType: service.methods[method as string]?.responseType, target: target as never });
      return Promise.resolve(result({ node: 'remote' })) as never;
    },
    serverStream: (_service, _method, _request, target) => {
      calls.push({ op: 'serverStream', responseType: undefined, target: target as never });
      return (async function* () {})() as never;
    },
  } as Partial<IGrpcControlPlaneClientFactory> as IGrpcControlPlaneClientFactory;
}

describe('GrpcOutbound', () => {
  it('calls through the factory with its peers and profile, the remaining deadline, the metadata and the dispatcher caller mark', async () => {
    const calls: Recorded[] = [];
    let now = 5_000;
    const clock = { now: () => now };
    const outbound = new GrpcOutbound(recordingFactory(calls), { peers: ['https://a:1', 'https://b:2'], profile: 'data-plane' }, clock);
    const dispatcher = new Dispatcher({
      name: 'caller-svc',
      clock,
      outbounds: { [SERVICE]: outbound },
      outboundMiddleware: [
        {
          unary: (context, request, next) => {
            now += 40; // time spent in middleware comes off the deadline
            return next(context, request);
          },
        },
      ],
    });
    await dispatcher.call(ControlPlaneDefinition, 'ping', { fromNode: 'x', sequence: 1, payload: new Uint8Array() }, { deadlineMs: 100, metadata: { 'x-a': '1' } });
    await dispatcher.oneway(ControlPlaneDefinition, 'ping', { fromNode: 'x', sequence: 2, payload: new Uint8Array() });
    for await (const _ of dispatcher.callServerStream(ControlPlaneDefinition, 'watch', { fromNode: 'x', count: 1, intervalMs: 0 })) void _;

    expect(calls.map((c) => c.op)).toEqual(['unary', 'unary', 'serverStream']);
    const [unary, oneway, stream] = calls;
    expect(unary?.target).toMatchObject({ peers: ['https://a:1', 'https://b:2'], profile: 'data-plane', deadlineMs: 60, metadata: { 'x-a': '1', 'rpc-caller': 'caller-svc' } });
    expect(unary?.responseType).toBe(ControlPlaneDefinition.methods.ping.responseType);
    expect(oneway?.responseType).toBe(ONEWAY_ACK);
    expect(oneway?.target.deadlineMs).toBeUndefined();
    for (const call of calls) expect(call.target[CALLER_OPTION]).toBe('dispatcher');
    expect(stream?.target).toMatchObject({ peers: ['https://a:1', 'https://b:2'] });
  });

  it('needs exactly one target: peers, an endpoint or a peer list', () => {
    expect(() => new GrpcOutbound(recordingFactory([]), {})).toThrow(EndpointError);
    expect(() => new GrpcOutbound(recordingFactory([]), { peers: [] })).toThrow(/exactly one of `peers`.*none was given/);
    expect(() => new GrpcOutbound(recordingFactory([]), { peers: ['https://a:1'], peerList: 'replicas' })).toThrow(/2 were given/);
    expect(() => new GrpcOutbound(recordingFactory([]), { peerList: 'replicas' })).not.toThrow();
  });
});
