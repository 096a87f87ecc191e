import { describe, expect, it } from '@jest/globals';
import { EtcdClient } from '../../../../src/controlplane/leadership/etcd/etcd-client.js';
import { EtcdError } from '../../../../src/controlplane/leadership/etcd/errors.js';
import { resolveOptions } from '../../../../src/config/schema.js';
import type { ControlPlaneOptions } from '../../../../src/config/types.js';
import { ConfigError, DisposedError } from '../../../../src/errors.js';
import type { IGrpcControlPlaneClientFactory } from '../../../../src/factory/types.js';
import { Compare_CompareResult, Compare_CompareTarget, type TxnRequest, type TxnResponse } from '../../../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

const TLS = { mode: 'mtls' as const, certFile: '/pki/c.pem', keyFile: '/pki/c.key', caFile: '/pki/ca.pem' };
const LEASE = 0x694d86964eed4618n;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A factory that records unary calls and answers them from `answer`; its options can change live. */
function fakeFactory(answer: (method: string, request: unknown) => unknown) {
  let options: ControlPlaneOptions = resolveOptions({ profiles: { etcd: { http3: 'disable', tls: TLS } } });
  const calls: { method: string; request: unknown; target: Record<string, unknown> }[] = [];
  const factory = {
    get options() {
      return options;
    },
    unary: (_service: unknown, method: string, request: unknown, target: Record<string, unknown>) => {
      calls.push({ method, request, target });
      return Promise.resolve({ message: answer(method, request) });
    },
  } as unknown as IGrpcControlPlaneClientFactory;
  return { factory, calls, setOptions: (o: ControlPlaneOptions) => (options = o) };
}

const header = (revision: bigint) => ({ clusterId: 1n, memberId: 2n, revision, raftTerm: 3n });

describe('EtcdClient over a fake factory', () => {
  it('createIfAbsent is one Txn: compare create_revision == 0, put with the lease, else range the key', async () => {
    const { factory, calls } = fakeFactory((): TxnResponse => ({ header: header(42n), succeeded: true, responses: [] }));
    const client = new EtcdClient(factory, { endpoints: ['https://10.0.0.5:2379', 'etcd-2'] });
    const result = await client.createIfAbsent('/election/orders', 'node-a', LEASE);
    expect(result).toEqual({ created: true, revision: 42n, kv: { key: '/election/orders', value: bytes('node-a'), createRevision: 42n, modRevision: 42n, version: 1n, lease: LEASE } });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe('txn');
    expect(calls[0]!.target).toMatchObject({ peers: ['https://10.0.0.5:2379', 'etcd-2'], profile: 'etcd' });
    const txn = calls[0]!.request as TxnRequest;
    expect(txn.compare).toEqual([{ result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.CREATE, key: bytes('/election/orders'), createRevision: 0n, rangeEnd: new Uint8Array() }]);
    expect(txn.success[0]!.requestPut).toMatchObject({ key: bytes('/election/orders'), value: bytes('node-a'), lease: LEASE });
    expect(txn.failure[0]!.requestRange).toMatchObject({ key: bytes('/election/orders') });
  });

  it('a lost createIfAbsent returns the holder read in the same transaction', async () => {
    const holder = { key: bytes('/e'), value: bytes('node-b'), createRevision: 7n, modRevision: 7n, version: 1n, lease: 99n };
    const { factory } = fakeFactory((): TxnResponse => ({
      header: header(8n),
      succeeded: false,
      responses: [{ responseRange: { header: header(8n), kvs: [holder], more: false, count: 1n } }],
    }));
    const client = new EtcdClient(factory, { endpoints: ['e:1'] });
    expect(await client.createIfAbsent('/e', 'node-a', LEASE)).toEqual({ created: false, revision: 8n, kv: { ...holder, key: '/e' } });
  });

  it('refuses to call when the live options stop disabling HTTP/3 for the profile: nothing is sent', async () => {
    const { factory, calls, setOptions } = fakeFactory(() => ({ header: header(1n), kvs: [], more: false, count: 0n }));
    const client = new EtcdClient(factory, { endpoints: ['e:1'] });
    await client.get('/k');
    setOptions(resolveOptions({ profiles: { etcd: { tls: TLS } } }));
    const error = await client.get('/k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]!.key).toBe('profiles.etcd.http3');
    expect(calls).toHaveLength(1);
  });

  it('checks its input: endpoints, TTL, keys, keep-alive interval', async () => {
    const { factory } = fakeFactory(() => ({ header: header(1n), ID: LEASE, TTL: 5n, error: '' }));
    expect(() => new EtcdClient(factory, { endpoints: [] })).toThrow(/endpoints: must list at least one etcd member/);
    const client = new EtcdClient(factory, { endpoints: ['e:1'] });
    await expect(client.leaseGrant(0)).rejects.toThrow(/ttlSeconds: must be a whole number of seconds/);
    await expect(client.get('')).rejects.toThrow(/key: must be a non-empty string/);
    const lease = await client.leaseGrant(5);
    expect(lease).toMatchObject({ id: LEASE, ttlSeconds: 5, revision: 1n });
    expect(() => client.leaseKeepAlive(lease, { intervalMs: 6_000 })).toThrow(/intervalMs/);
  });

  it("a grant etcd answers with an error text is ETCD_REQUEST_FAILED carrying etcd's text", async () => {
    const { factory } = fakeFactory(() => ({ header: header(1n), ID: 0n, TTL: 0n, error: 'lessor: no space' }));
    const client = new EtcdClient(factory, { endpoints: ['e:1'] });
    const error = await client.leaseGrant(5).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdError);
    expect((error as EtcdError).code).toBe('ETCD_REQUEST_FAILED');
    expect((error as EtcdError).message).toContain('lessor: no space');
  });

  it('after dispose() calls and watches are DISPOSED', async () => {
    const { factory } = fakeFactory(() => ({}));
    const client = new EtcdClient(factory, { endpoints: ['e:1'] });
    await client.dispose();
    await expect(client.get('/k')).rejects.toBeInstanceOf(DisposedError);
    await expect(client.watch('/k')[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(DisposedError);
  });
});
