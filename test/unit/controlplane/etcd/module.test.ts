import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { Container } from 'inversify';
import type { LeadershipAgent } from '../../../../src/controlplane/leadership/agent.js';
import { EtcdLeaseStore } from '../../../../src/controlplane/leadership/etcd/etcd-store.js';
import { etcdLeaseStoreModule } from '../../../../src/controlplane/leadership/etcd/module.js';
import { LeaseStoreUnavailableError } from '../../../../src/controlplane/leadership/errors.js';
import type { ILeaseStore } from '../../../../src/controlplane/leadership/lease-store.js';
import { leadershipModule } from '../../../../src/controlplane/leadership/module.js';
import { CONTROL_PLANE_TOKENS } from '../../../../src/controlplane/tokens.js';
import { ConfigError } from '../../../../src/errors.js';
import { resolveOptions } from '../../../../src/config/schema.js';
import type { IGrpcControlPlaneClientFactory } from '../../../../src/factory/types.js';
import { TOKENS } from '../../../../src/tokens.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined };
const TLS = { mode: 'mtls' as const, certFile: '/pki/c.pem', keyFile: '/pki/c.key', caFile: '/pki/ca.pem' };
/** Only the options: the store reads the profile at construction; nothing here calls etcd. */
const factory = { options: resolveOptions({ profiles: { etcd: { http3: 'disable', tls: TLS } } }) } as unknown as IGrpcControlPlaneClientFactory;

/** A container as an application wires it (nothing is started). */
function container(storeOptions: unknown): Container {
  const c = new Container();
  c.bind(TOKENS.GrpcControlPlaneClientFactory).toConstantValue(factory);
  c.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(quiet);
  c.bind(CONTROL_PLANE_TOKENS.LeadershipOptions).toConstantValue({ nodeId: 'n1' });
  c.bind(CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions).toConstantValue(storeOptions);
  c.load(etcdLeaseStoreModule, leadershipModule);
  return c;
}

describe('etcdLeaseStoreModule', () => {
  it('binds the lease store the agent uses to a singleton EtcdLeaseStore; deactivation disposes it', async () => {
    const c = container({ endpoints: ['https://127.0.0.1:2379'], prefix: '/app/' });
    const store = c.get<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore);
    expect(store).toBeInstanceOf(EtcdLeaseStore);
    expect(c.get(CONTROL_PLANE_TOKENS.LeaseStore)).toBe(store);
    expect(store.name).toBe('etcd://127.0.0.1:2379');
    expect((store as EtcdLeaseStore).leaderKey('global')).toBe('/app/scopes/global/leader');
    expect(c.get<LeadershipAgent>(CONTROL_PLANE_TOKENS.Leadership).store).toBe(store);
    await c.unbindAllAsync();
    const error = await store.get('global').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LeaseStoreUnavailableError);
    expect((error as Error).message).toContain('disposed');
  });

  it('refuses bad options with a ConfigError naming each key, when the store is resolved', () => {
    const c = container({ endpoints: 'https://127.0.0.1:2379', watchRetries: 1.5 });
    let error: unknown;
    try {
      c.get(CONTROL_PLANE_TOKENS.LeaseStore);
    } catch (e) {
      error = e;
    }
    const config = error instanceof ConfigError ? error : (error as { cause?: unknown } | undefined)?.cause;
    expect(config).toBeInstanceOf(ConfigError);
    expect((config as ConfigError).issues.map((i) => i.key).sort()).toEqual(['endpoints', 'watchRetries']);
  });
});
