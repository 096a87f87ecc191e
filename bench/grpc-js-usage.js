// Which parts of the way the HTTP/2 transport drives grpc-js cost CPU per call: the same unary
// Ping through a raw grpc-js Client with one thing changed at a time to match
// src/transport/http2/grpc-js-transport.ts, and through the factory (telemetry off), with and
// without the call-site stack capture; and one layer down, through the channel's own call
// object (Channel.createCall) with a plain listener grpc-js does in makeUnaryRequest (`new Error()`, whose
// cost grows with the stack depth up to Error.stackTraceLimit; the factory reaches
// makeUnaryRequest synchronously through ~20 frames of async functions).
//
// Run (after `npm run build`; not part of `npm run bench`): node bench/grpc-js-usage.js
// Sizes: USAGE_CALLS (default 8000 per variant), USAGE_CONCURRENCY (default 1).
// Server in a child process (bench/profile-factory.js --server), so the CPU is the client's.
import 'reflect-metadata';
import { fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { createNoopMeter, ProxyTracerProvider } from '@opentelemetry/api';
import { Container } from 'inversify';
import { controlPlaneV1, grpcControlPlaneModule, TOKENS, writeDevPki } from '../dist/index.js';
import { compare } from './measure.js';

const { ControlPlaneDefinition, PingRequest, PingResponse } = controlPlaneV1;
const CALLS = Number(process.env.USAGE_CALLS ?? 8000);
const CONCURRENCY = Number(process.env.USAGE_CONCURRENCY ?? 1);
const identity = (b) => b;

const dir = await mkdtemp(join(tmpdir(), 'omnirelay-grpc-js-usage-'));
const pki = await writeDevPki(dir, ['server', 'client']);
const { server, client } = pki.files;
const child = fork(new URL('./profile-factory.js', import.meta.url).pathname, ['--server', server.certFile, server.keyFile, pki.caFile], { stdio: 'inherit' });
const { port, url } = await new Promise((resolve, reject) => {
  child.once('message', resolve);
  child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
});
const [ca, key, cert] = await Promise.all([readFile(pki.caFile), readFile(client.keyFile), readFile(client.certFile)]);
// The channel options GrpcJsTransport sets for the control-plane preset.
const factoryOptions = {
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 1000,
  'grpc.max_reconnect_backoff_ms': 3000,
};
const plain = new Client(`127.0.0.1:${port}`, credentials.createSsl(ca, key, cert), {});
const optioned = new Client(`127.0.0.1:${port}`, credentials.createSsl(ca, key, cert), factoryOptions);
const bytes = (i) => Buffer.from(PingRequest.encode({ fromNode: 'bench', sequence: i, payload: new Uint8Array() }).finish());

function rawCall(c, i, { listeners = false } = {}) {
  return new Promise((resolve, reject) => {
    const call = c.makeUnaryRequest('/omnirelay.controlplane.v1.ControlPlane/Ping', identity, identity, bytes(i), new Metadata(), { deadline: Date.now() + 10_000 }, (error, response) =>
      error ? reject(error) : resolve(PingResponse.decode(response)),
    );
    if (listeners) {
      call.on('metadata', () => undefined);
      call.on('status', () => undefined);
    }
  });
}

/**
 * The same call one layer down: the channel's own call object (`Channel.createCall`, public in
 * grpc-js's ChannelInterface) with a plain listener, as a transport could make it. No
 * ClientUnaryCall EventEmitter, no interceptor wrappers, no call-site `new Error()`.
 */
function channelCall(c, i) {
  return new Promise((resolve, reject) => {
    const call = c.getChannel().createCall('/omnirelay.controlplane.v1.ControlPlane/Ping', Date.now() + 10_000, null, null, null);
    let message = null;
    call.start(new Metadata(), {
      onReceiveMetadata: () => undefined,
      onReceiveMessage: (m) => {
        message = m;
      },
      onReceiveStatus: (status) => (status.code === 0 && message !== null ? resolve(PingResponse.decode(message)) : reject(new Error(`${status.code} ${status.details}`))),
    });
    call.sendMessageWithContext({}, bytes(i));
    call.halfClose();
    call.startRead();
  });
}

const container = new Container();
container.bind(TOKENS.ControlPlaneOptions).toConstantValue({
  profiles: { 'control-plane': { http3: 'disable', tls: { mode: 'mtls', certFile: client.certFile, keyFile: client.keyFile, caFile: pki.caFile }, deadlineMs: 10_000 } },
  endpoints: { bench: { url } },
});
container.bind(TOKENS.Telemetry).toConstantValue({ meterProvider: { getMeter: () => createNoopMeter() }, tracerProvider: new ProxyTracerProvider().getDelegate() });
container.load(grpcControlPlaneModule);
const factory = container.get(TOKENS.GrpcControlPlaneClientFactory);
const request = (i) => ({ fromNode: 'bench', sequence: i, payload: new Uint8Array() });
const limit = Error.stackTraceLimit;

const variants = [
  ['raw grpc-js (bench baseline)', (i) => rawCall(plain, i)],
  ['raw + the transport\'s channel options', (i) => rawCall(optioned, i)],
  ["raw + 'metadata'/'status' listeners", (i) => rawCall(plain, i, { listeners: true })],
  ['raw, Error.stackTraceLimit 0', (i) => {
    Error.stackTraceLimit = 0;
    try {
      return rawCall(plain, i);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }],
  ['raw via Channel.createCall', (i) => channelCall(plain, i)],
  ['factory (telemetry off)', (i) => factory.unary(ControlPlaneDefinition, 'ping', request(i), { endpoint: 'bench' })],
  ['factory, Error.stackTraceLimit 0', (i) => {
    // Everything up to makeUnaryRequest runs synchronously inside this call.
    Error.stackTraceLimit = 0;
    try {
      return factory.unary(ControlPlaneDefinition, 'ping', request(i), { endpoint: 'bench' });
    } finally {
      Error.stackTraceLimit = limit;
    }
  }],
];
try {
  for (const [, call] of variants) for (let i = 0; i < 1500; i++) await call(i);
  const results = await compare(variants.map(([, call]) => call), { blocks: 10, total: CALLS, concurrency: CONCURRENCY });
  console.log(`Client CPU per unary Ping (HTTP/2 + mTLS, server in a child process, ${CONCURRENCY} caller(s), ${CALLS} calls per variant in 10 interleaved blocks, node ${process.version})`);
  const base = results[0];
  for (const [i, r] of results.entries()) {
    console.log(`  ${variants[i][0].padEnd(40)} ${r.cpuPerCall.toFixed(1).padStart(6)} µs/call (${(r.cpuPerCall - base.cpuPerCall >= 0 ? '+' : '')}${(r.cpuPerCall - base.cpuPerCall).toFixed(1)})   p50 ${r.p50.toFixed(3)} ms   ${r.throughput.toFixed(0)} calls/s`);
  }
} finally {
  plain.close();
  optioned.close();
  await container.unbindAllAsync();
  child.disconnect();
  await rm(dir, { recursive: true, force: true });
}
