/**
 * `omnirelay bench --self`: the built CLI starts its own GrpcHost on 127.0.0.1 with development
 * certificates, benchmarks it per protocol, prints percentiles, and exits by itself.
 */
import { describe, expect, it } from '@jest/globals';
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
