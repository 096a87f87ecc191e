import { describe, expect, it } from '@jest/globals';
import { EtcdError, toEtcdError } from '../../../../src/controlplane/leadership/etcd/errors.js';
import { DisposedError, PeerUnavailableError, RpcError, TlsError } from '../../../../src/errors.js';

const context = { operation: 'LeaseRevoke', endpoints: ['https://10.0.0.5:2379', 'https://10.0.0.6:2379'], leaseId: 7587868927316543000n };
const rpc = (statusName: string, status: number, details: string, failure?: 'connect' | 'stream'): RpcError =>
  new RpcError(status, statusName, details, { endpoint: '10.0.0.5:2379', protocol: failure === 'connect' ? 'none' : 'h2', failure });

function mapped(error: unknown, ctx: Parameters<typeof toEtcdError>[1] = context): EtcdError {
  const result = toEtcdError(error, ctx);
  expect(result).toBeInstanceOf(EtcdError);
  return result as EtcdError;
}

describe('toEtcdError', () => {
  it("etcd's lease-not-found status names the lease (all 63 bits) and the member", () => {
    const error = mapped(rpc('NOT_FOUND', 5, 'etcdserver: requested lease not found'));
    expect(error.code).toBe('ETCD_LEASE_NOT_FOUND');
    expect(error.leaseId).toBe(7587868927316543000n);
    expect(error.endpoint).toBe('10.0.0.5:2379');
    expect(error.message).toContain('lease 7587868927316543000 (0x694d86964eed4618)');
    expect(error.status).toBe('NOT_FOUND');
  });

  it('another NOT_FOUND is not a missing lease', () => {
    expect(mapped(rpc('NOT_FOUND', 5, 'something else')).code).toBe('ETCD_REQUEST_FAILED');
  });

  it('unreachable, no leader, a stream the member closed without a status: ETCD_UNAVAILABLE naming the member', () => {
    expect(mapped(rpc('UNAVAILABLE', 14, 'No connection established', 'connect'))).toMatchObject({ code: 'ETCD_UNAVAILABLE', endpoint: '10.0.0.5:2379', operation: 'LeaseRevoke' });
    expect(mapped(rpc('UNAVAILABLE', 14, 'etcdserver: no leader')).code).toBe('ETCD_UNAVAILABLE');
    expect(mapped(rpc('INTERNAL', 13, 'Received RST_STREAM with code 0 (Call ended without gRPC status)')).code).toBe('ETCD_UNAVAILABLE');
    expect(mapped(rpc('INTERNAL', 13, 'Received RST_STREAM with code 2 (Internal server error)')).code).toBe('ETCD_REQUEST_FAILED');
  });

  it('deadline, compaction and other refusals', () => {
    expect(mapped(rpc('DEADLINE_EXCEEDED', 4, 'Deadline exceeded')).code).toBe('ETCD_DEADLINE_EXCEEDED');
    const compacted = mapped(rpc('OUT_OF_RANGE', 11, 'etcdserver: mvcc: required revision has been compacted'), { operation: 'Range', endpoints: ['e'], key: '/a' });
    expect(compacted).toMatchObject({ code: 'ETCD_COMPACTED', key: '/a' });
    expect(compacted.message).toContain('key "/a"');
    const refused = mapped(rpc('INVALID_ARGUMENT', 3, 'etcdserver: duplicate key given in txn request'), { operation: 'Txn', endpoints: ['e'], key: '/k' });
    expect(refused).toMatchObject({ code: 'ETCD_REQUEST_FAILED', status: 'INVALID_ARGUMENT', key: '/k' });
    expect(refused.message).toContain('etcdserver: duplicate key given in txn request');
  });

  it('TLS failures keep the TLS code; no peer left is unavailable; disposal and foreign errors pass through', () => {
    const tls = mapped(new TlsError('TLS_PEER_UNTRUSTED', 'untrusted', { peer: '10.0.0.6:2379' }));
    expect(tls).toMatchObject({ code: 'ETCD_TLS_FAILED', tlsCode: 'TLS_PEER_UNTRUSTED', endpoint: '10.0.0.6:2379' });
    const none = mapped(new PeerUnavailableError('CIRCUIT_OPEN', ['10.0.0.5:2379'], 'open'));
    expect(none).toMatchObject({ code: 'ETCD_UNAVAILABLE', endpoint: '10.0.0.5:2379', status: 'CIRCUIT_OPEN' });
    const disposed = new DisposedError('The factory');
    expect(toEtcdError(disposed, context)).toBe(disposed);
    const bug = new TypeError('x');
    expect(toEtcdError(bug, context)).toBe(bug);
  });
});
