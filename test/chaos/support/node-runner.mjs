// One OmniRelay node in its own process, started by test/chaos/support/chaos-net.ts inside a
// network namespace (`ip netns exec NS node node-runner.mjs CONFIG_JSON`): a socket's namespace
// is fixed when it is created, so every node of a chaos test is a separate process.
//
// The node is what an application runs: a GrpcHost (mTLS, HTTP/2 + HTTP/3 on one port) on the
// namespace's address serving gossip and the demo ControlPlane service, and a container with
// grpcControlPlaneModule + gossipModule, gossiping through the factory. Opt-in (config
// `leadership: { options, store, etcdProfile }`): also etcdLeaseStoreModule + leadershipModule,
// a leadership agent electing leaders on etcd through the factory's `etcd` profile (HTTP/2 only,
// mTLS with the node's certificate); other configs run gossip only, as before.
//
// Protocol: one JSON object per line.
//   stdout  {"type":"ready","id","url"} once serving and gossiping;
//           {"type":"reply","seq",...} for each command; {"type":"log",...} for gossip events.
//   stdin   {"seq":N,"cmd":"view"}              → members: [{id,status,incarnation}]
//           {"seq":N,"cmd":"ping","endpoint":U} → ok, protocol | error code + name (one unary
//                                                  ControlPlane.Ping through the factory)
//           {"seq":N,"cmd":"leaders"}            → scopes: [{scope, leaderId?, term?, fenceToken?
//                                                  (decimal string), self}] (this node's view;
//                                                  empty without `leadership`)
//           {"seq":N,"cmd":"stop"}               → graceful leave (and resignation of its
//                                                  terms), then the process exits 0.
// SIGTERM / SIGKILL are a crash (no leave).
import 'reflect-metadata';
import { createInterface } from 'node:readline';

const { Container } = await import('inversify');
const {
  CONTROL_PLANE_TOKENS,
  controlPlaneV1,
  etcdLeaseStoreModule,
  gossipModule,
  gossipServiceImplementation,
  gossipV1,
  GrpcHost,
  grpcControlPlaneModule,
  leadershipModule,
  TOKENS,
} = await import('../../../dist/index.js');

const config = JSON.parse(process.argv[2] ?? '{}');
const write = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

const late = { agent: undefined, served: 0 };
const logger = {
  info: (event, fields) => write({ type: 'log', level: 'info', event, fields }),
  warn: (event, fields) => write({ type: 'log', level: 'warn', event, fields }),
};

const host = await GrpcHost.start(
  { host: config.address, port: config.port ?? 0, tls: { certFile: config.certFile, keyFile: config.keyFile, caFile: config.caFile } },
  [
    [gossipV1.GossipDefinition, gossipServiceImplementation(() => late.agent)],
    [
      controlPlaneV1.ControlPlaneDefinition,
      {
        ping: (request, info) => {
          late.served++;
          return { node: config.id, sequence: request.sequence, clientIdentity: info.clientIdentity, payload: new Uint8Array() };
        },
        watch: async function* () {
          await Promise.resolve();
          yield* [];
        },
      },
    ],
  ],
);

const container = new Container();
const nodeTls = { mode: 'mtls', certFile: config.certFile, keyFile: config.keyFile, caFile: config.caFile };
const profiles = { 'control-plane': { tls: nodeTls, ...config.profile } };
if (config.leadership !== undefined) profiles.etcd = { http3: 'disable', tls: nodeTls, ...config.leadership.etcdProfile };
container.bind(TOKENS.ControlPlaneOptions).toConstantValue({ profiles });
container.bind(CONTROL_PLANE_TOKENS.Logger).toConstantValue(logger);
container.bind(CONTROL_PLANE_TOKENS.GossipOptions).toConstantValue({
  nodeId: config.id,
  advertiseEndpoint: host.url,
  seeds: config.seeds ?? [],
  cluster: 'chaos',
  ...config.gossip,
});
container.load(grpcControlPlaneModule, gossipModule);
let leadership;
if (config.leadership !== undefined) {
  container.bind(CONTROL_PLANE_TOKENS.EtcdLeaseStoreOptions).toConstantValue(config.leadership.store);
  container.bind(CONTROL_PLANE_TOKENS.LeadershipOptions).toConstantValue({ nodeId: config.id, ...config.leadership.options });
  container.load(etcdLeaseStoreModule, leadershipModule);
  leadership = container.get(CONTROL_PLANE_TOKENS.Leadership);
}
const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
const agent = container.get(CONTROL_PLANE_TOKENS.Gossip);
late.agent = agent;

let stopping = false;
async function shutdown(leave) {
  if (stopping) return;
  stopping = true;
  await agent.stop({ leave });
  await leadership?.stop({ resign: leave });
  await container.unbindAllAsync();
  await host.close(leave ? 500 : 0);
}

let sequence = 0;
async function handle(command) {
  switch (command.cmd) {
    case 'view':
      return {
        members: agent.members.map((m) => ({ id: m.metadata.nodeId, status: m.status, incarnation: m.incarnation })),
        served: late.served,
      };
    case 'leaders':
      return {
        scopes: (leadership?.options.scopes ?? []).map((scope) => {
          const view = leadership.leader(scope);
          return view === undefined
            ? { scope, self: false }
            : { scope, leaderId: view.leaderId, term: view.term, fenceToken: String(view.fenceToken), self: leadership.isLeader(scope) };
        }),
      };
    case 'ping': {
      try {
        const result = await factory.unary(
          controlPlaneV1.ControlPlaneDefinition,
          'ping',
          { fromNode: config.id, sequence: ++sequence, payload: new Uint8Array() },
          { endpoint: command.endpoint, deadlineMs: command.deadlineMs ?? 2_000 },
        );
        return { ok: true, protocol: result.protocol, node: result.message.node };
      } catch (error) {
        return { ok: false, name: error?.name, code: error?.code, message: String(error?.message ?? error) };
      }
    }
    case 'stop':
      await shutdown(true);
      return { stopped: true };
    default:
      return { error: `unknown command ${String(command.cmd)}` };
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const command = JSON.parse(line);
  handle(command).then(
    (reply) => {
      write({ type: 'reply', seq: command.seq, ...reply });
      if (command.cmd === 'stop') process.exit(0);
    },
    (error) => write({ type: 'reply', seq: command.seq, error: String(error?.stack ?? error) }),
  );
});
// The parent went away (a crashed jest): do not linger in the namespace.
lines.on('close', () => {
  void shutdown(false).finally(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void shutdown(false).finally(() => process.exit(0));
});

await agent.start();
leadership?.start();
write({ type: 'ready', id: config.id, url: host.url });
