/**
 * `omnirelay probe` and the CLI's usage and input errors, run as a child process against real
 * GrpcHosts on 127.0.0.1: one serving HTTP/3 and HTTP/2, one HTTP/2 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GrpcHost, writeDevPki, type DevPkiFiles } from 'omnirelay';
import { runCli, show, warnings, type CliRun } from './cli-run.js';

/** The binding our QUIC driver loads exists for linux-x64 only (see src/quic/native.ts). */
const HAS_HTTP3 = process.platform === 'linux' && process.arch === 'x64';

function expectRun(run: CliRun, wanted: { code: number }): void {
  try {
    expect({ code: run.code, timedOut: run.timedOut }).toEqual({ code: wanted.code, timedOut: false });
  } catch (error) {
    (error as Error).message += `\n${show(run)}`;
    throw error;
  }
}

describe('omnirelay probe (built CLI, child process)', () => {
  let dir: string;
  let pki: DevPkiFiles;
  let both: GrpcHost;
  let h2only: GrpcHost;
  let client: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-cli-probe-'));
    pki = await writeDevPki(dir, ['server', 'client']);
    const server = pki.files.server!;
    const tls = { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile };
    both = await GrpcHost.start({ tls }, []);
    h2only = await GrpcHost.start({ tls, http3: false }, []);
    client = ['--cert', pki.files.client!.certFile, '--key', pki.files.client!.keyFile, '--ca', pki.caFile];
  });

  afterAll(async () => {
    await both?.close(1000);
    await h2only?.close(1000);
    await rm(dir, { recursive: true, force: true });
  });

  it('probes a host serving HTTP/3: protocol, TLS, the peer certificate, timings, healthy (exit 0), no warning', async () => {
    const run = await runCli(['probe', both.url, ...client]);
    expectRun(run, { code: 0 });
    const out = run.stdout;
    expect(out).toMatch(HAS_HTTP3 ? /^protocol: +h3 \(HTTP\/3 over QUIC\)$/m : /^protocol: +h2 /m);
    if (HAS_HTTP3) {
      expect(out).toMatch(/^http3: +used$/m);
      expect(out).toMatch(/^tls: +TLSv1\.3 over QUIC/m);
    }
    expect(out).toMatch(/^peer: +CN=server$/m);
    expect(out).toMatch(/^sans: +DNS:localhost, IP Address:127\.0\.0\.1/m);
    expect(out).toMatch(/^expires: +\d{4}-\d\d-\d\dT.* \(in [\d.]+ days\)$/m);
    expect(out).toMatch(/^first call: +[\d.]+ ms/m);
    expect(out).toMatch(/^tcp \+ tls: +TCP connect [\d.]+ ms, TLS handshake [\d.]+ ms/m);
    expect(out).toMatch(/^rtt: +median [\d.]+ ms/m);
    expect(out).toMatch(/^result: +HEALTHY \(SERVING\)$/m);
    expect(warnings(run)).toEqual([]);
  });

  it('probes an HTTP/2-only host by IP: HTTP/2, why HTTP/3 was not used, no DEP0123 warning', async () => {
    const run = await runCli(['probe', h2only.url.replace('https://', ''), ...client]);
    expectRun(run, { code: 0 });
    expect(run.stdout).toMatch(/^protocol: +h2 \(HTTP\/2 over TLS\/TCP\)$/m);
    expect(run.stdout).toMatch(/^http3: +not used: .+/m);
    if (HAS_HTTP3) expect(run.stdout).toMatch(/^http3: .*(omnirelay\.fallback\.reason|omnirelay\.protocol\.reason)=/m);
    expect(run.stdout).toMatch(/^tls: +TLSv1\.[23] \S+, ALPN h2$/m);
    expect(run.stdout).toMatch(/^result: +HEALTHY \(SERVING\)$/m);
    expect(warnings(run)).toEqual([]);
  });

  it('a server without the health service answers UNIMPLEMENTED over verified TLS: reachable, healthy (exit 0), said so', async () => {
    const server = new Server();
    const files = pki.files.server!;
    const credentials = ServerCredentials.createSsl(await readFile(pki.caFile), [{ cert_chain: await readFile(files.certFile), private_key: await readFile(files.keyFile) }], true);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))));
    try {
      const run = await runCli(['probe', `127.0.0.1:${port}`, ...client, '--rtt', '1']);
      expectRun(run, { code: 0 });
      expect(run.stdout).toMatch(/^protocol: +h2 /m);
      expect(run.stdout).toMatch(/^peer: +CN=server$/m);
      expect(run.stdout).toMatch(/^result: +HEALTHY \(reachable: the server has no grpc\.health\.v1 service and answered UNIMPLEMENTED/m);
      expect(warnings(run)).toEqual([]);
    } finally {
      server.forceShutdown();
    }
  });

  it('a server certificate we do not trust is unhealthy (exit 1), one line naming the peer', async () => {
    const run = await runCli(['probe', h2only.url, '--timeout', '3000']);
    expectRun(run, { code: 1 });
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^omnirelay probe: error: TLS_PEER_UNTRUSTED \(peer 127\.0\.0\.1:\d+\)/);
  });

  it('a client certificate path that does not exist is an input error (exit 3) naming the file and the option', async () => {
    const missing = join(dir, 'no-such-client.pem');
    const run = await runCli(['probe', both.url, '--cert', missing, '--key', pki.files.client!.keyFile, '--ca', pki.caFile]);
    expectRun(run, { code: 3 });
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`omnirelay probe: error: TLS_CLIENT_CERT_MISSING (file ${missing}, option --cert / --key)`);
    expect(run.stdout).toBe('');
  });

  it('usage errors exit 2 with one line: an unknown flag, a plaintext endpoint, --cert without --key', async () => {
    const unknown = await runCli(['probe', both.url, '--bogus']);
    expectRun(unknown, { code: 2 });
    expect(unknown.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^omnirelay probe: error: unknown option '--bogus'.*omnirelay probe --help/)]);

    const plaintext = await runCli(['probe', both.url.replace('https://', 'http://'), ...client]);
    expectRun(plaintext, { code: 2 });
    expect(plaintext.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^omnirelay probe: error: endpoint http:\/\/.* is plaintext http:\/\/: omnirelay only speaks TLS/)]);

    const half = await runCli(['probe', both.url, '--cert', pki.files.client!.certFile]);
    expectRun(half, { code: 2 });
    expect(half.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^omnirelay probe: error: --cert was given without --key/)]);

    const none = await runCli([]);
    expectRun(none, { code: 2 });
    expect(none.stderr).toContain('Usage: omnirelay');
  });

  describe('--options <file>: the options file a service loads', () => {
    /** Writes `options` as JSON into the test directory; returns its path. */
    async function optionsFile(name: string, options: unknown): Promise<string> {
      const path = join(dir, name);
      await writeFile(path, JSON.stringify(options));
      return path;
    }

    it("dials a named endpoint with the file's profile: its mTLS files and its http3 setting, no TLS flags needed", async () => {
      const file = await optionsFile('ops.json', {
        profiles: { ops: { http3: 'disable', tls: { mode: 'mtls', certFile: pki.files.client!.certFile, keyFile: pki.files.client!.keyFile, caFile: pki.caFile } } },
        endpoints: { 'node-b': { url: both.url, profile: 'ops' } },
      });
      const run = await runCli(['probe', 'node-b', '--options', file]);
      expectRun(run, { code: 0 });
      expect(run.stdout).toContain(`probe ${both.url} (profile ops from ${file}, mTLS, grpc.health.v1.Health/Check)`);
      // The host serves HTTP/3, but the file's profile disables it, and the probe says why.
      expect(run.stdout).toMatch(/^protocol: +h2 \(HTTP\/2 over TLS\/TCP\)$/m);
      expect(run.stdout).toMatch(/^http3: +not used: the profile disables HTTP\/3/m);
      expect(run.stdout).toMatch(/^tcp \+ tls: +TCP connect/m); // the separate dial used the file's TLS files too
      expect(run.stdout).toMatch(/^result: +HEALTHY \(SERVING\)$/m);
      expect(warnings(run)).toEqual([]);
    });

    it('TLS flags override the profile of the file: a file naming a certificate that does not exist works with --cert / --key', async () => {
      const missing = join(dir, 'gone.pem');
      const file = await optionsFile('stale.json', { profiles: { ops: { tls: { mode: 'mtls', certFile: missing, keyFile: missing, caFile: pki.caFile } } } });
      const stale = await runCli(['probe', both.url, '--options', file, '--profile', 'ops']);
      expectRun(stale, { code: 3 });
      expect(stale.stderr.trim().split('\n')).toEqual([expect.stringContaining(missing)]);
      const fixed = await runCli(['probe', both.url, '--options', file, '--profile', 'ops', '--cert', pki.files.client!.certFile, '--key', pki.files.client!.keyFile]);
      expectRun(fixed, { code: 0 });
      expect(fixed.stdout).toMatch(/^result: +HEALTHY \(SERVING\)$/m);
    });

    it('refuses a plaintext profile (exit 2), an unknown profile listing the ones there are (exit 2), and a file that is missing or not JSON (exit 3, naming it)', async () => {
      const plain = await optionsFile('plain.json', { allowInsecure: true, profiles: { open: { tls: { mode: 'insecure' } } } });
      const insecure = await runCli(['probe', both.url, '--options', plain, '--profile', 'open']);
      expectRun(insecure, { code: 2 });
      expect(insecure.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^omnirelay probe: error: options file ${plain}: profile open sets tls.mode "insecure" \\(plaintext\\): omnirelay only speaks TLS`))]);

      const unknown = await runCli(['probe', both.url, '--options', plain, '--profile', 'nope']);
      expectRun(unknown, { code: 2 });
      expect(unknown.stderr).toMatch(/unknown profile "nope" \(--profile\): use one of control-plane, data-plane, open/);

      const missing = join(dir, 'absent.json');
      const absent = await runCli(['probe', both.url, '--options', missing, ...client]);
      expectRun(absent, { code: 3 });
      expect(absent.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^omnirelay probe: error: .*${missing}: file not found`))]);

      const broken = join(dir, 'broken.json');
      await writeFile(broken, '{ "profiles": ');
      const notJson = await runCli(['probe', both.url, '--options', broken, ...client]);
      expectRun(notJson, { code: 3 });
      expect(notJson.stderr).toMatch(new RegExp(`${broken}: is not valid JSON`));
    });
  });

  it('--help works for every command (exit 0) and lists the exit codes', async () => {
    for (const args of [['--help'], ['probe', '--help'], ['bench', '--help'], ['certs', '--help'], ['certs', 'dev', '--help']]) {
      const run = await runCli(args);
      expectRun(run, { code: 0 });
      expect(run.stdout).toMatch(/^Usage: omnirelay/m);
      if (args[0] !== 'certs' || args.length > 2) expect(run.stdout).toContain('Exit codes:');
    }
  });
});
