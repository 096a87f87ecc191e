/**
 * `http3: 'require'` on real sockets on 127.0.0.1: HTTP/3 only — no race, no fallback to
 * HTTP/2 — against a host serving both protocols, against an HTTP/2-only host (a typed
 * failure that says HTTP/3 was required, and no call ever reaches HTTP/2), and an endpoint
 * hint flipped live to `require`.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Container } from 'inversify';
import { ConfigError, controlPlaneV1, createEndpointHintSubject, GrpcHost, RpcError, TOKENS, type IGrpcControlPlaneClientFactory, type ServerCallInfo } from 'omnirelay';
import { createContainer, factoryOf, hostTls, startTestHost, type TestHost } from '../support/hosts.js';
import { createTestPki, type TestPki } from '../support/pki-files.js';
import { failureOf } from '../support/failure.js';

const { ControlPlaneDefinition } = controlPlaneV1;
const ping = (sequence: number): controlPlaneV1.PingRequest => ({ fromNode: 'require-test', sequence, payload: new Uint8Array() });

let pki: TestPki;
let both: TestHost;
/** An HTTP/2-only host (`http3: false`): nothing listens on its UDP port. */
let h2Only: { host: GrpcHost; url: string; calls: string[] };
const containers: Container[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  both = await startTestHost('both', hostTls(pki.server, pki.caFile));
  const calls: string[] = [];
  const host = await GrpcHost.start({ host: '127.0.0.1', tls: hostTls(pki.server, pki.caFile), http3: false }, [
    [
      ControlPlaneDefinition,
      {
        ping: (request: controlPlaneV1.PingRequest, call: ServerCallInfo): controlPlaneV1.PingResponse => {
          calls.push(call.protocol);
          return { node: 'h2-only', sequence: request.sequence, clientIdentity: call.clientIdentity, payload: new Uint8Array() };
        },
        watch: async function* (): AsyncIterable<controlPlaneV1.MembershipEvent> {
          calls.push('watch');
          await Promise.resolve();
          yield { node: 'h2-only', sequence: 1 };
        },
      },
    ],
  ]);
  h2Only = { host, url: host.url, calls };
});

afterAll(async () => {
  for (const container of containers) await container.unbindAllAsync();
  await both.close(0);
  await h2Only.host.close(0);
  await pki.cleanup();
});

const tls = (): { mode: 'mtls'; certFile: string; keyFile: string; caFile: string } => ({ mode: 'mtls', certFile: pki.client.certFile, keyFile: pki.client.keyFile, caFile: pki.caFile });

function factoryWith(profile: Record<string, unknown>, configure?: (container: Container) => void): IGrpcControlPlaneClientFactory {
  const container = createContainer(
    {
      profiles: { 'control-plane': { tls: tls(), deadlineMs: 3_000, connectTimeoutMs: 1_000, retry: { maxAttempts: 1 }, ...profile } },
      endpoints: { both: { url: both.url }, 'h2-only': { url: h2Only.url } },
    },
    configure,
  );
  containers.push(container);
  return factoryOf(container);
}

describe("profile http3: 'require'", () => {
  it('against a host serving both: every call over HTTP/3, and no HTTP/2 connection is ever opened (race delay 0 would dial both under prefer)', async () => {
    const factory = factoryWith({ http3: 'require', http3RaceDelayMs: 0 });
    for (let n = 0; n < 3; n++) await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(n), { endpoint: 'both' })).resolves.toMatchObject({ protocol: 'h3' });
    const events: number[] = [];
    for await (const event of factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'x', count: 2, intervalMs: 0 }, { endpoint: 'both' })) events.push(event.sequence);
    expect(events).toEqual([1, 2]);
    expect(factory.connections().map((c) => c.protocol)).toEqual(['h3']);
  });

  it('against an HTTP/2-only host: a typed UNAVAILABLE saying HTTP/3 was required and why it failed, at once (refused UDP), and nothing reaches HTTP/2', async () => {
    const factory = factoryWith({ http3: 'require' });
    const started = performance.now();
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'h2-only' }));
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ statusName: 'UNAVAILABLE', failure: 'connect', http3Required: true, context: { protocol: 'h3' } });
    expect((error as RpcError).details).toMatch(/^HTTP\/3 is required \(profile "control-plane" has http3 "require"\), so HTTP\/2 was not tried; HTTP\/3 failed \(connect\): HTTP\/3 connect failed/);
    // ICMP port unreachable on the connected UDP socket: milliseconds, not the 1 s connect timeout.
    expect(elapsed).toBeLessThan(1_000);
    await expect(failureOf(async () => {
      for await (const _ of factory.serverStream(ControlPlaneDefinition, 'watch', { fromNode: 'x', count: 1, intervalMs: 0 }, { endpoint: 'h2-only' })) void _;
    })).resolves.toMatchObject({ http3Required: true, failure: 'connect' });
    expect(h2Only.calls).toEqual([]);
    expect(factory.connections().filter((c) => c.protocol === 'h2')).toEqual([]);
  });

  it('with HTTP/3 turned off for the container (TOKENS.Http3Transport null): ConfigError at profiles.control-plane.http3, nothing sent', async () => {
    const factory = factoryWith({ http3: 'require' }, (c) => c.bind(TOKENS.Http3Transport).toConstantValue(null));
    const served = both.calls.length;
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'both' }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key)).toEqual(['profiles.control-plane.http3']);
    expect(both.calls.length).toBe(served);
    expect(factory.connections()).toEqual([]);
  });
});

describe("endpoint hint http3: 'require', flipped live", () => {
  it('prefer profile with the hint deny (HTTP/2), flipped to require: the next call is HTTP/3 and the HTTP/2 connection drains; against an HTTP/2-only host it fails typed', async () => {
    const hints = createEndpointHintSubject();
    const factory = factoryWith({ http3: 'prefer', http3RaceDelayMs: 2_000 }, (c) => c.bind(TOKENS.EndpointHints).toConstantValue(hints));
    hints.next({ endpoint: 'both', http3: 'deny' });
    hints.next({ endpoint: 'h2-only', http3: 'deny' });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'both' })).resolves.toMatchObject({ protocol: 'h2' });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(2), { endpoint: 'h2-only' })).resolves.toMatchObject({ protocol: 'h2' });
    const authority = new URL(both.url).host;
    expect(factory.connections().filter((c) => c.authority === authority).map((c) => `${c.protocol} ${c.state}`)).toEqual(['h2 active']);

    hints.next({ endpoint: 'both', http3: 'require' });
    // The HTTP/2 connection had no call running: retired at once.
    expect(factory.connections().filter((c) => c.authority === authority && c.protocol === 'h2')).toEqual([]);
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(3), { endpoint: 'both' })).resolves.toMatchObject({ protocol: 'h3' });

    hints.next({ endpoint: 'h2-only', http3: 'require' });
    const before = h2Only.calls.length;
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(4), { endpoint: 'h2-only' }));
    expect(error).toMatchObject({ statusName: 'UNAVAILABLE', http3Required: true, failure: 'connect' });
    expect((error as RpcError).details).toContain(`the endpoint hint for ${new URL(h2Only.url).host} has http3 "require"`);
    expect(h2Only.calls.length).toBe(before);

    // Back to allow: the prefer profile falls back to HTTP/2 for the HTTP/2-only host again.
    hints.next({ endpoint: 'h2-only', http3: 'allow' });
    await expect(factory.unary(ControlPlaneDefinition, 'ping', ping(5), { endpoint: 'h2-only' })).resolves.toMatchObject({ protocol: 'h2' });
  });

  it('a live require under a profile that disables HTTP/3: ConfigError naming the profile key and the hint, nothing sent', async () => {
    const hints = createEndpointHintSubject();
    const factory = factoryWith({ http3: 'disable' }, (c) => c.bind(TOKENS.EndpointHints).toConstantValue(hints));
    hints.next({ endpoint: 'both', http3: 'require' });
    const error = await failureOf(() => factory.unary(ControlPlaneDefinition, 'ping', ping(1), { endpoint: 'both' }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key).sort()).toEqual(['endpoints.both.hints.http3', 'profiles.control-plane.http3']);
  });
});
