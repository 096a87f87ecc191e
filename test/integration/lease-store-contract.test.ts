/**
 * The ILeaseStore contract (test/support/lease-store-contract.ts) against both stores: the
 * embedded one, and the etcd one on a real etcd (test/support/etcd.ts: Debian's etcd 3.4 on
 * 127.0.0.1, client certificates required) reached through the control-plane client factory's
 * `etcd` profile with mTLS.
 */
import 'reflect-metadata';
import { createControlPlaneClientFactory, EmbeddedLeaseStore, EtcdLeaseStore } from 'omnirelay';
import { startEtcd } from '../support/etcd.js';
import { describeLeaseStoreContract } from '../support/lease-store-contract.js';
import { createTestPki } from '../support/pki-files.js';

describeLeaseStoreContract('EmbeddedLeaseStore', () => {
  const store = new EmbeddedLeaseStore();
  return Promise.resolve({ store, close: () => Promise.resolve(store.dispose()) });
});

describeLeaseStoreContract('EtcdLeaseStore on etcd 3.4 (mTLS)', async () => {
  const pki = await createTestPki();
  const etcd = await startEtcd({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile });
  const factory = createControlPlaneClientFactory({
    options: { profiles: { etcd: { http3: 'disable', tls: { mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile } } } },
  });
  const store = new EtcdLeaseStore(factory, { endpoints: [etcd.url], prefix: '/omnirelay-test/contract/' });
  return {
    store,
    close: async () => {
      await store.dispose();
      await factory.dispose();
      await etcd.close();
      await pki.cleanup();
    },
  };
});
