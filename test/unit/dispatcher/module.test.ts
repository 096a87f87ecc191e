import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { Container } from 'inversify';
import { Dispatcher } from '../../../src/dispatcher/dispatcher.js';
import { dispatcherModule } from '../../../src/dispatcher/module.js';
import type { IGrpcControlPlaneClientFactory } from '../../../src/factory/types.js';
import { grpcControlPlaneModule } from '../../../src/module.js';
import { TOKENS } from '../../../src/tokens.js';
import { ControlPlaneDefinition } from '../../../src/gen/omnirelay/controlplane/v1/gossip.js';

function load(config?: unknown): Container {
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue({ profiles: { 'control-plane': { http3: 'disable', tls: { mode: 'tls' }, retry: { maxAttempts: 1 }, deadlineMs: 2_000 } } });
  if (config !== undefined) container.bind(TOKENS.DispatcherConfig).toConstantValue(config);
  container.load(grpcControlPlaneModule, dispatcherModule);
  return container;
}

describe('dispatcherModule', () => {
  it('binds one Dispatcher whose outbounds call through the module\'s client factory', async () => {
    const container = load({ name: 'svc', outbounds: { [ControlPlaneDefinition.fullName]: { endpoint: 'https://127.0.0.1:1' } } });
    const dispatcher = container.get<Dispatcher>(TOKENS.Dispatcher);
    expect(dispatcher).toBeInstanceOf(Dispatcher);
    expect(container.get(TOKENS.Dispatcher)).toBe(dispatcher);
    expect(dispatcher.name).toBe('svc');
    // Nothing listens on port 1: the failure comes from the factory (a gRPC status), not from a channel of the outbound's own.
    await expect(dispatcher.call(ControlPlaneDefinition, 'ping', { fromNode: 'a', sequence: 1, payload: new Uint8Array() })).rejects.toMatchObject({ code: 'RPC_FAILED', statusName: 'UNAVAILABLE' });
    // Unloading the factory's module disposes the factory the outbound uses: calls fail, typed.
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    await container.unbindAllAsync();
    await expect(factory.unary(ControlPlaneDefinition, 'ping', { fromNode: 'a', sequence: 1, payload: new Uint8Array() }, { endpoint: 'https://127.0.0.1:1' })).rejects.toMatchObject({ code: 'DISPOSED' });
    await expect(dispatcher.call(ControlPlaneDefinition, 'ping', { fromNode: 'a', sequence: 1, payload: new Uint8Array() })).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  it('needs TOKENS.DispatcherConfig', async () => {
    const container = load();
    expect(() => container.get(TOKENS.Dispatcher)).toThrow(/omnirelay\.DispatcherConfig/);
    await container.unbindAllAsync();
  });
});
