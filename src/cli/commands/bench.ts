/**
 * `omnirelay bench <endpoint|--self>`: unary calls (`grpc.health.v1.Health/Check`, which every
 * GrpcHost serves) through the control-plane client factory, once per protocol: HTTP/3 by an
 * endpoint hint `http3: 'require'`, HTTP/2 by `http3: 'deny'`. Prints throughput and latency
 * percentiles per protocol, a progress bar on a terminal (plain lines otherwise, on stderr),
 * and the time from process start to the first successful call. `--self` benchmarks a local
 * GrpcHost on 127.0.0.1 with development certificates in a temporary directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HealthDefinition } from '../../gen/grpc/health/v1/health.js';
import type { IGrpcControlPlaneClientFactory } from '../../factory/types.js';
import { createEndpointHintSubject } from '../../hints/endpoint-hints.js';
import { GrpcHost } from '../../server/grpc-host.js';
import { writeDevPki } from '../../tls/dev-pki.js';
import type { WireProtocol } from '../../transport/types.js';
import { CliError, describeError, EXIT, type ExitCode } from '../errors.js';
import { writeLine, type CliIo, type CliOutput } from '../io.js';
import { SpanRecorder } from '../span-recorder.js';
import { buildFactory, parseEndpoint, parseProfile, positiveInt, resolveTarget, tlsOptions, type CliTarget, type Endpoint, type TargetFlags } from '../target.js';

export interface BenchOptions extends TargetFlags {
  /** https://host:port, host:port, or an endpoint name of the --options file. */
  readonly endpoint?: string | undefined;
  readonly self?: boolean | undefined;
  readonly calls?: string | undefined;
  readonly concurrency?: string | undefined;
  /** Comma-separated: h3, h2 (default both, HTTP/3 first). */
  readonly protocols?: string | undefined;
  readonly timeout?: string | undefined;
}

const HINT: Record<WireProtocol, 'require' | 'deny'> = { h3: 'require', h2: 'deny' };

export function parseProtocols(text: string): WireProtocol[] {
  const names = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  const out: WireProtocol[] = [];
  for (const name of names) {
    if (name !== 'h3' && name !== 'h2') throw new CliError(EXIT.usage, `unknown protocol ${JSON.stringify(name)} (--protocols): use h3, h2 or h3,h2`);
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) throw new CliError(EXIT.usage, `--protocols ${JSON.stringify(text)} names no protocol: use h3, h2 or h3,h2`);
  return out;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

/** Progress of one pass: a bar redrawn in place on a terminal, a line per quarter otherwise. */
class Progress {
  #drawnAt = 0;
  #quarter = 0;
  constructor(
    private readonly out: CliOutput,
    private readonly label: string,
    private readonly total: number,
  ) {}

  update(done: number): void {
    if (this.out.isTTY === true) {
      const now = performance.now();
      if (done < this.total && now - this.#drawnAt < 50) return;
      this.#drawnAt = now;
      const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - 30));
      const filled = Math.round((done / this.total) * width);
      this.out.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total}`);
      if (done >= this.total) this.out.write('\r\u001b[2K');
      return;
    }
    const quarter = Math.floor((done * 4) / this.total);
    if (quarter > this.#quarter) {
      this.#quarter = quarter;
      writeLine(this.out, `${this.label}: ${done}/${this.total} calls`);
    }
  }
}

interface PassResult {
  readonly protocol: WireProtocol;
  readonly latencies: number[];
  readonly errors: Map<string, number>;
  readonly seconds: number;
  readonly wrongProtocol: number;
}

async function pass(factory: IGrpcControlPlaneClientFactory, endpoint: Endpoint, profile: string, protocol: WireProtocol, calls: number, concurrency: number, deadlineMs: number, io: CliIo): Promise<PassResult> {
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let wrongProtocol = 0;
  let next = 0;
  let done = 0;
  const progress = new Progress(io.stderr, `${protocol}`, calls);
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < calls) {
      next += 1;
      const t = performance.now();
      try {
        const result = await factory.unary(HealthDefinition, 'check', { service: '' }, { endpoint: endpoint.url, profile, deadlineMs });
        latencies.push(performance.now() - t);
        if (result.protocol !== protocol) wrongProtocol += 1;
      } catch (error) {
        const { line } = describeError(error);
        errors.set(line, (errors.get(line) ?? 0) + 1);
      }
      done += 1;
      progress.update(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, calls) }, worker));
  return { protocol, latencies, errors, seconds: (performance.now() - started) / 1000, wrongProtocol };
}

function fixed(value: number, digits: number, width: number): string {
  return (Number.isNaN(value) ? '-' : value.toFixed(digits)).padStart(width);
}

/** A local GrpcHost with development certificates in a temporary directory, and the client's TLS files. */
async function startSelf(profile: string): Promise<{ target: CliTarget; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'omnirelay-bench-'));
  try {
    const pki = await writeDevPki(dir, ['bench-server', 'bench-client']);
    const server = pki.files['bench-server'];
    const client = pki.files['bench-client'];
    if (server === undefined || client === undefined) throw new Error('writeDevPki wrote no node certificates');
    const host = await GrpcHost.start({ tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: pki.caFile } }, []);
    const tls = tlsOptions({ cert: client.certFile, key: client.keyFile, ca: pki.caFile });
    return {
      target: { endpoint: parseEndpoint(host.url), profile, tls, options: { profiles: { [profile]: { tls } } } },
      close: async () => {
        await host.close(1000);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

export async function runBench(options: BenchOptions, io: CliIo): Promise<ExitCode> {
  if (options.self === true && options.endpoint !== undefined) throw new CliError(EXIT.usage, `give either an endpoint (${options.endpoint}) or --self, not both`);
  if (options.self !== true && options.endpoint === undefined) throw new CliError(EXIT.usage, 'no target: give an endpoint (https://host:port) or --self');
  if (options.self === true && (options.cert !== undefined || options.key !== undefined || options.ca !== undefined || options.options !== undefined)) {
    throw new CliError(EXIT.usage, '--self makes its own certificates and profile: drop --cert, --key, --ca and --options');
  }
  const calls = options.calls === undefined ? 1000 : positiveInt('--calls', options.calls, 10_000_000);
  const concurrency = options.concurrency === undefined ? 16 : positiveInt('--concurrency', options.concurrency, 10_000);
  const protocols = parseProtocols(options.protocols ?? 'h3,h2');
  const deadlineMs = options.timeout === undefined ? 5000 : positiveInt('--timeout', options.timeout, 86_400_000);
  const given = options.endpoint !== undefined ? await resolveTarget(options.endpoint, options) : undefined;

  const self = options.self === true ? await startSelf(parseProfile(options.profile)) : undefined;
  const hints = createEndpointHintSubject();
  let factory: IGrpcControlPlaneClientFactory | undefined;
  try {
    const target = self?.target ?? given;
    if (target === undefined) throw new CliError(EXIT.usage, 'no target: give an endpoint (https://host:port) or --self');
    const { endpoint, profile } = target;
    factory = buildFactory(target.options, new SpanRecorder(16), hints);
    writeLine(io.stdout, `bench ${endpoint.url}${self !== undefined ? ' (--self: a local GrpcHost, development certificates)' : ''}: ${calls} calls per protocol, concurrency ${concurrency}, grpc.health.v1.Health/Check, profile ${profile}`);

    const results: PassResult[] = [];
    const skipped: string[] = [];
    let firstRpcAt: number | undefined;
    for (const protocol of protocols) {
      hints.next({ endpoint: endpoint.url, http3: HINT[protocol] });
      // One call first: it opens the connection (not measured) and tells whether the protocol works here.
      try {
        await factory.unary(HealthDefinition, 'check', { service: '' }, { endpoint: endpoint.url, profile, deadlineMs });
        firstRpcAt ??= performance.now();
      } catch (error) {
        skipped.push(`${protocol}: not measured: ${describeError(error).line}`);
        continue;
      }
      results.push(await pass(factory, endpoint, profile, protocol, calls, concurrency, deadlineMs, io));
    }

    if (firstRpcAt !== undefined) writeLine(io.stdout, `first successful RPC ${firstRpcAt.toFixed(0)} ms after process start${self !== undefined ? ' (including writing certificates and starting the host)' : ''}`);
    writeLine(io.stdout, 'protocol       ok  errors  seconds    calls/s   p50 ms   p90 ms   p99 ms   max ms');
    for (const r of results) {
      const sorted = [...r.latencies].sort((a, b) => a - b);
      writeLine(
        io.stdout,
        `${r.protocol.padEnd(8)}${String(r.latencies.length).padStart(9)}${String(calls - r.latencies.length).padStart(8)}${fixed(r.seconds, 2, 9)}${fixed(r.latencies.length / r.seconds, 1, 11)}${fixed(percentile(sorted, 50), 2, 9)}${fixed(percentile(sorted, 90), 2, 9)}${fixed(percentile(sorted, 99), 2, 9)}${fixed(sorted.at(-1) ?? Number.NaN, 2, 9)}`,
      );
      if (r.wrongProtocol > 0) writeLine(io.stdout, `  ${r.wrongProtocol} calls of the ${r.protocol} pass used another protocol`);
      for (const [line, count] of r.errors) writeLine(io.stderr, `omnirelay bench: ${count} ${r.protocol} calls failed: ${line}`);
    }
    for (const line of skipped) writeLine(io.stdout, line);
    const failed = results.length === 0 || results.some((r) => r.errors.size > 0);
    return failed ? EXIT.failed : EXIT.ok;
  } finally {
    await factory?.dispose();
    hints.complete();
    await self?.close();
  }
}
