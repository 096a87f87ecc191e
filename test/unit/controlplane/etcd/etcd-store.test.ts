import { describe, expect, it } from '@jest/globals';
import { resolveOptions } from '../../../../src/config/schema.js';
import { EtcdLeaseStore } from '../../../../src/controlplane/leadership/etcd/etcd-store.js';
import { EtcdError } from '../../../../src/controlplane/leadership/etcd/errors.js';
import { LeaseLostError, LeaseStoreUnavailableError, StaleFenceTokenError } from '../../../../src/controlplane/leadership/errors.js';
import type { IGrpcControlPlaneClientFactory } from '../../../../src/factory/types.js';
import { Compare_CompareResult, Compare_CompareTarget, type TxnRequest, type TxnResponse } from '../../../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { KeyValue } from '../../../../src/gen/etcd/mvcc/mvccpb/kv.js';

const TLS = { mode: 'mtls' as const, certFile: '/pki/c.pem', keyFile: '/pki/c.key', caFile: '/pki/ca.pem' };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const header = (revision: bigint) => ({ clusterId: 1n, memberId: 2n, revision, raftTerm: 3n });
const range = (...kvs: KeyValue[]) => ({ responseRange: { header: undefined, kvs, more: false, count: BigInt(kvs.length) } });
const kv = (key: string, value: string, createRevision: bigint, version: bigint, lease: bigint): KeyValue => ({ key: bytes(key), value: bytes(value), createRevision, modRevision: createRevision, version, lease });

/** A factory whose unary calls are answered by `answer` (a thrown error rejects the call). */
function fakeFactory(answer: (method: string, request: unknown) => unknown) {
  const calls: { method: string; request: unknown }[] = [];
  const factory = {
    options: resolveOptions({ profiles: { etcd: { http3: 'disable', tls: TLS } } }),
    unary: (_service: unknown, method: string, request: unknown) => {
      calls.push({ method, request });
      return Promise.resolve().then(() => ({ message: answer(method, request) }));
    },
  } as unknown as IGrpcControlPlaneClientFactory;
  return { factory, calls };
}

describe('EtcdLeaseStore over a fake factory', () => {
  it('elects in one Txn: compare create_revision(leader) == 0 and version(term) == seen; put the term and the leader on the lease', async () => {
    const { factory, calls } = fakeFactory((): TxnResponse => ({ header: header(42n), succeeded: true, responses: [] }));
    const store = new EtcdLeaseStore(factory, { endpoints: ['https://10.0.0.5:2379'], prefix: '/p/' });
    const result = await store.createLeader('global', 'n1', '7');
    expect(result).toEqual({ acquired: true, record: { scope: 'global', leaderId: 'n1', leaseId: '7', fenceToken: 42n, term: 1 } });
    const request = calls[0]!.request as TxnRequest;
    expect(calls.map((c) => c.method)).toEqual(['txn']);
    expect(request.compare.map((c) => ({ ...c, key: text(c.key) }))).toEqual([
      expect.objectContaining({ result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.CREATE, key: '/p/scopes/global/leader', createRevision: 0n }),
      expect.objectContaining({ result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.VERSION, key: '/p/scopes/global/term', version: 0n }),
    ]);
    expect(request.success.map((op) => [text(op.requestPut!.key), text(op.requestPut!.value), op.requestPut!.lease])).toEqual([
      ['/p/scopes/global/term', '1', 0n],
      ['/p/scopes/global/leader', '{"leaderId":"n1","term":1}', 7n],
    ]);
    expect(request.failure.map((op) => text(op.requestRange!.key))).toEqual(['/p/scopes/global/leader', '/p/scopes/global/term']);
    await store.dispose();
  });

  it('retries with the term etcd answered when only the term moved; returns the holder when someone leads', async () => {
    let txns = 0;
    const { factory, calls } = fakeFactory((): TxnResponse => {
      txns++;
      if (txns === 1) return { header: header(50n), succeeded: false, responses: [range(), range(kv('/p/scopes/s/term', '4', 10n, 4n, 0n))] };
      if (txns === 2) return { header: header(51n), succeeded: true, responses: [] };
      return { header: header(60n), succeeded: false, responses: [range(kv('/p/scopes/s/leader', '{"leaderId":"n2","term":6}', 55n, 1n, 9n)), range()] };
    });
    const store = new EtcdLeaseStore(factory, { endpoints: ['e'], prefix: '/p/' });
    const won = await store.createLeader('s', 'n1', '7');
    expect(won.acquired && won.record.term).toBe(5);
    expect((calls[1]!.request as TxnRequest).compare[1]!.version).toBe(4n);
    const lost = await store.createLeader('s', 'n1', '8');
    expect(lost).toEqual({ acquired: false, current: { scope: 's', leaderId: 'n2', leaseId: '9', fenceToken: 55n, term: 6 } });
    await store.dispose();
  });

  it('fences a write on create_revision(leader) == token; a failed compare is StaleFenceTokenError with the current token', async () => {
    const { factory, calls } = fakeFactory((): TxnResponse => ({ header: header(70n), succeeded: false, responses: [range(kv('/p/scopes/s/leader', '{"leaderId":"n2","term":2}', 65n, 1n, 9n))] }));
    const store = new EtcdLeaseStore(factory, { endpoints: ['e'], prefix: '/p/' });
    const error = await store.fencedPut('s', 40n, 'owner', 'n1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StaleFenceTokenError);
    expect(error).toMatchObject({ scope: 's', presented: 40n, current: 65n });
    const request = calls[0]!.request as TxnRequest;
    expect(request.compare).toEqual([expect.objectContaining({ target: Compare_CompareTarget.CREATE, key: bytes('/p/scopes/s/leader'), createRevision: 40n })]);
    expect(text(request.success[0]!.requestPut!.key)).toBe('/p/data/owner');
    await store.dispose();
  });

  it('maps etcd failures: lease not found → LeaseLostError, anything else → LeaseStoreUnavailableError, the EtcdError as cause', async () => {
    const notFound = new EtcdError('ETCD_LEASE_NOT_FOUND', 'gone', { operation: 'Txn', endpoint: 'e:1', leaseId: 7n });
    const down = new EtcdError('ETCD_UNAVAILABLE', 'refused', { operation: 'Range', endpoint: 'e:1' });
    let next: EtcdError = notFound;
    const { factory } = fakeFactory(() => {
      throw next;
    });
    const store = new EtcdLeaseStore(factory, { endpoints: ['e:1'] });
    const lost = await store.createLeader('s', 'n1', '7').catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect(lost).toMatchObject({ leaseId: '7', scope: 's', cause: notFound });
    // Revoking or reading a lease that is gone is not an error.
    await expect(store.revoke('7')).resolves.toBeUndefined();
    await expect(store.timeToLive('7')).resolves.toBeUndefined();
    next = down;
    const unavailable = await store.get('s').catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(LeaseStoreUnavailableError);
    expect(unavailable).toMatchObject({ store: 'etcd://e:1', operation: 'read a leader key', cause: down });
    expect((unavailable as Error).message).toContain('ETCD_UNAVAILABLE');
    // A lease id etcd could never have issued is a lost lease, without a call.
    await expect(store.keepAlive('not-a-lease')).rejects.toBeInstanceOf(LeaseLostError);
    await store.dispose();
  });
});
