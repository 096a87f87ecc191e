import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { Container } from 'inversify';
import type { LeadershipAgent } from '../../../../src/controlplane/leadership/agent.js';
import { EmbeddedLeaseStore } from '../../../../src/controlplane/leadership/embedded-store.js';
import { LeaseStoreUnavailableError } from '../../../../src/controlplane/leadership/errors.js';
import type { ILeaseStore } from '../../../../src/controlplane/leadership/lease-store.js';
import { leadershipModule } from '../../../../src/controlplane/leadership/module.js';
import { CONTROL_PLANE_TOKENS } from '../../../../src/controlplane/tokens.js';
import { ConfigError } from '../../../../src/errors.js';
import { TOKENS } from '../../../../src/tokens.js';
import { RecordingLogger, unusedFactory } from './harness.js';

function container(options: unknown, store?: ILeaseStore): { container: Container; logger: RecordingLogger } {
  const c = new Container();
  const logger = new RecordingLogger();
  c.bind(TOKENS.GrpcControlPlaneClientFactory).toConstantValue(unusedFactory);
  c.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(logger);
  c.bind(CONTROL_PLANE_TOKENS.LeadershipOptions).toConstantValue(options);
  if (store !== undefined) c.bind(CONTROL_PLANE_TOKENS.LeaseStore).toConstantValue(store);
  c.load(leadershipModule);
  return { container: c, logger };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(done: () => boolean, limitMs = 10_000): Promise<boolean> {
  for (let waited = 0; !done() && waited < limitMs; waited += 10) await pause(10);
  return done();
}

describe('leadershipModule', () => {
  it('binds a singleton agent on a default embedded store; unbinding resigns, stops the agent and disposes the store', async () => {
    const { container: c, logger } = container({ nodeId: 'solo' });
    const agent = c.get<LeadershipAgent>(CONTROL_PLANE_TOKENS.Leadership);
    expect(c.get(CONTROL_PLANE_TOKENS.Leadership)).toBe(agent);
    const store = c.get<ILeaseStore>(CONTROL_PLANE_TOKENS.LeaseStore);
    expect(store).toBeInstanceOf(EmbeddedLeaseStore);
    agent.start();
    // A wait for a condition with a generous limit (real timers): a lone candidate elects itself.
    expect(await eventually(() => agent.isLeader('global'))).toBe(true);
    await c.unbindAllAsync();
    expect(agent.state).toBe('stopped');
    expect(logger.events('leadership.stepped_down')[0]?.fields['reason']).toBe('resigned');
    await expect(store.grant(1_000)).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
  });

  it('uses the store the application bound, and leaves it to the application', async () => {
    const shared = new EmbeddedLeaseStore();
    const { container: c } = container({ nodeId: 'n1', scopes: ['shard-7'] }, shared);
    const agent = c.get<LeadershipAgent>(CONTROL_PLANE_TOKENS.Leadership);
    expect(agent.store).toBe(shared);
    await c.unbindAllAsync();
    await expect(shared.grant(1_000)).resolves.toMatchObject({ ttlMs: 1_000 });
    shared.dispose();
  });

  it('refuses bad options with a ConfigError naming the key when the agent is resolved', () => {
    const { container: c } = container({ nodeId: 'n1', retryInitialMs: 5_000 });
    let error: unknown;
    try {
      c.get(CONTROL_PLANE_TOKENS.Leadership);
    } catch (e) {
      error = e;
    }
    const config = [error, (error as { cause?: unknown } | undefined)?.cause].find((e): e is ConfigError => e instanceof ConfigError);
    expect(config?.issues.map((i) => i.key)).toEqual(['retryMaxMs']);
  });
});
