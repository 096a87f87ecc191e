import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { Container } from 'inversify';
import type { IGrpcControlPlaneClientFactory } from '../../src/factory/types.js';
import { grpcControlPlaneModule } from '../../src/module.js';
import type { IPeerChooser } from '../../src/peers/peer-chooser.js';
import { ProfilePeerChooser } from '../../src/peers/profile-peer-chooser.js';
import { TOKENS } from '../../src/tokens.js';
import { GrpcH3Transport } from '../../src/transport/http3/grpc-h3-transport.js';
import { TlsError } from '../../src/errors.js';

function load(options: unknown = { profiles: { 'control-plane': { tls: { mode: 'tls' } } } }): Container {
  const container = new Container();
  container.bind(TOKENS.ControlPlaneOptions).toConstantValue(options);
  container.load(grpcControlPlaneModule);
  return container;
}

describe('grpcControlPlaneModule', () => {
  it('binds every public token, factory and its collaborators as singletons', async () => {
    const container = load();
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    expect(container.get(TOKENS.GrpcControlPlaneClientFactory)).toBe(factory);
    expect(container.get(TOKENS.PeerChooser)).toBeInstanceOf(ProfilePeerChooser);
    for (const token of [TOKENS.TlsProvider, TOKENS.CircuitBreaker, TOKENS.Http3Health, TOKENS.OptionsMonitor]) {
      expect(container.get(token)).toBe(container.get(token));
    }
    expect(factory.options.profiles['control-plane']?.tls.mode).toBe('tls');
    // HTTP/3 is registered by default.
    expect(container.get(TOKENS.Http3Transport)).toBeInstanceOf(GrpcH3Transport);
    await container.unbindAllAsync();
  });

  it('keeps an HTTP/3 transport binding made before loading (null turns HTTP/3 off)', async () => {
    const container = new Container();
    container.bind(TOKENS.ControlPlaneOptions).toConstantValue({});
    container.bind(TOKENS.Http3Transport).toConstantValue(null);
    container.load(grpcControlPlaneModule);
    expect(container.get(TOKENS.Http3Transport)).toBeNull();
    container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    await container.unbindAllAsync();
  });

  it('lets a test replace a binding with rebind, and restore the original with snapshot/restore', async () => {
    const container = load();
    const fake: IPeerChooser = { choose: (peers) => peers[0] };
    container.snapshot();
    container.rebind<IPeerChooser>(TOKENS.PeerChooser).toConstantValue(fake);
    expect(container.get(TOKENS.PeerChooser)).toBe(fake);
    container.restore();
    expect(container.get(TOKENS.PeerChooser)).toBeInstanceOf(ProfilePeerChooser);
    await container.unbindAllAsync();
  });

  it('disposes the factory when the module is unloaded: no call can be placed afterwards', async () => {
    const container = load();
    const factory = container.get<IGrpcControlPlaneClientFactory>(TOKENS.GrpcControlPlaneClientFactory);
    await container.unloadAsync(grpcControlPlaneModule);
    expect(() => factory.client({ name: 'S', fullName: 'p.S', methods: {} }, { endpoint: 'https://127.0.0.1:1' })).toThrow(/disposed/);
  });

  it('fails at resolution, naming the file, when a profile an endpoint uses has a missing certificate', async () => {
    const container = load({
      profiles: { 'control-plane': { tls: { mode: 'mtls', certFile: '/nonexistent/client.pem', keyFile: '/nonexistent/client.key' } } },
      endpoints: { a: { url: 'https://127.0.0.1:7001' } },
    });
    expect(() => container.get(TOKENS.GrpcControlPlaneClientFactory)).toThrow(TlsError);
    expect(() => container.get(TOKENS.GrpcControlPlaneClientFactory)).toThrow(/\/nonexistent\/client\.pem/);
    await container.unbindAllAsync();
  });
});
