/**
 * Feature tier: leader election as an application runs it, on the embedded lease store — the
 * scenarios of support/leadership-scenarios.ts (leadership-etcd.test.ts runs them on etcd).
 */
import { embeddedBackend } from './support/leadership.js';
import { describeLeaderElection } from './support/leadership-scenarios.js';

describeLeaderElection('leader election among 5 nodes in one process (embedded store, default timings)', embeddedBackend);
