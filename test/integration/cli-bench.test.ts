/**
 * `omnirelay bench --self`: the built CLI starts its own GrpcHost on 127.0.0.1 with development
 * certificates, benchmarks it per protocol, prints percentiles, and exits by itself.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GrpcHost, writeDevPki } from 'omnirelay';
import { runCli, show, warnings } from './cli-run.js';

const HAS_HTTP3 = process.platform === 'linux' && process.arch === 'x64';

describe('omnirelay bench (built CLI, child process)', () => {
  it('bench --self --calls 200: throughput and percentiles per protocol, the first RPC time, plain progress lines off a TTY', async () => {
    const run = await runCli(['bench', '--self', '--calls', '200', '--concurrency', '8'], 120_000);
    const context = show(run);
    try {
      expect({ code: run.code, timedOut: run.timedOut }).toEqual({ code: 0, timedOut: false });
      expect(run.stdout).toMatch(/^first successful RPC \d+ ms after process start/m);
      expect(run.stdout).toMatch(/^protocol +ok +errors +seconds +calls\/s +p50 ms +p90 ms +p99 ms +max ms$/m);
      const row = (protocol: string): RegExp => new RegExp(`^${protocol} +200 +0 +[\\d.]+ +[\\d.]+ +[\\d.]+ +[\\d.]+ +[\\d.]+ +[\\d.]+$`, 'm');
      expect(run.stdout).toMatch(row('h2'));
      if (HAS_HTTP3) expect(run.stdout).toMatch(row('h3'));
      // Not a terminal: progress as plain lines on stderr, no carriage returns.
      expect(run.stderr).toContain('h2: 200/200 calls');
      expect(run.stderr).not.toContain('\r');
      expect(warnings(run)).toEqual([]);
    } catch (error) {
      (error as Error).message += `\n${context}`;
      throw error;
    }
  }, 150_000);

  it("bench <name> --options <file>: a named endpoint of the options file, dialled with that file's profile and TLS files", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omnirelay-cli-bench-'));
    const pki = await writeDevPki(dir, ['server', 'client']);
    const server = pki.files.server!;
    const host = await GrpcHost.start({ tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile } }, []);
    try {
      const file = join(dir, 'options.json');
      const tls = { mode: 'mtls', certFile: pki.files.client!.certFile, keyFile: pki.files.client!.keyFile, caFile: pki.caFile };
      await writeFile(file, JSON.stringify({ profiles: { ops: { tls, deadlineMs: 3_000 } }, endpoints: { 'node-b': { url: host.url, profile: 'ops' } } }));
      const run = await runCli(['bench', 'node-b', '--options', file, '--calls', '50', '--protocols', 'h2']);
      expect({ code: run.code, timedOut: run.timedOut, context: run.code === 0 ? '' : show(run) }).toEqual({ code: 0, timedOut: false, context: '' });
      expect(run.stdout).toContain(`bench ${host.url}: 50 calls per protocol, concurrency 16, grpc.health.v1.Health/Check, profile ops`);
      expect(run.stdout).toMatch(/^h2 +50 +0 /m);
      expect(run.stdout).not.toMatch(/^h3 /m);

      const withSelf = await runCli(['bench', '--self', '--options', file]);
      expect({ code: withSelf.code, lines: withSelf.stderr.trim().split('\n') }).toEqual({ code: 2, lines: [expect.stringMatching(/--self makes its own certificates and profile: drop --cert, --key, --ca and --options/)] });
    } finally {
      await host.close(1000);
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('usage errors exit 2: no target, both a target and --self, a bad --calls', async () => {
    for (const [args, message] of [
      [['bench'], /no target: give an endpoint/],
      [['bench', 'https://127.0.0.1:1', '--self'], /either an endpoint .* or --self, not both/],
      [['bench', '--self', '--calls', '0'], /--calls "0" is not a whole number/],
      [['bench', '--self', '--protocols', 'h1'], /unknown protocol "h1" \(--protocols\)/],
    ] as const) {
      const run = await runCli(args);
      expect({ code: run.code, lines: run.stderr.trim().split('\n') }).toEqual({ code: 2, lines: [expect.stringMatching(message)] });
    }
  });
});
