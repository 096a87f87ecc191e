#!/usr/bin/env node
/**
 * The `omnirelay` command line (package.json `bin`). The parser and the command registrations
 * live here; each command is one file in ./commands/ exporting `run<Command>(options, io)`,
 * which resolves to the exit code. Errors become one line on stderr —
 * `omnirelay <command>: error: <what> (<where>): <how to fix>` — and an exit code (errors.ts).
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { runBench } from './commands/bench.js';
import { DEFAULT_NODES, runCertsDev } from './commands/certs.js';
import { runProbe } from './commands/probe.js';
import { processMeshIo, runMesh, type MeshIo } from './mesh/run.js';
import { describeError, EXIT, EXIT_CODES_HELP } from './errors.js';
import { processIo, writeLine, type CliIo } from './io.js';
import { PROFILES } from './target.js';

/** Set by the bundler (scripts/bundle-cli.mjs) in the single-file CLI, where no package.json sits two levels up. */
declare const OMNIRELAY_VERSION: string | undefined;

function packageVersion(): string {
  if (typeof OMNIRELAY_VERSION === 'string') return OMNIRELAY_VERSION;
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return manifest.version ?? '0.0.0';
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** --cert, --key, --ca, --crl, --server-name on a command. */
function tlsFlags(command: Command): Command {
  return command
    .option('--cert <file>', 'client certificate (PEM) for mTLS; with --key')
    .option('--key <file>', 'private key (PEM) of --cert')
    .option('--ca <file>', "CA bundle (PEM) the server's certificate must chain to (default: the system roots)")
    .option('--crl <file>', 'CRL (PEM) to enforce; repeat for several', collect)
    .option('--server-name <name>', "name to check the server's certificate against instead of the endpoint's host")
    .option('--options <file>', "JSON options file, as a service loads it (optionsFromJsonFile): its profiles and named endpoints apply; TLS flags given here override the profile's tls")
    .option('--profile <name>', `client profile whose settings apply (deadlines, keepalive, HTTP/3 preference): ${PROFILES.join(', ')} or one of the --options file (default: control-plane, or the named endpoint's)`);
}

/** A whole number from a flag, or undefined. */
function wholeNumber(text: string): number | undefined {
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** Builds the program; `run` resolves to the exit code (tests call it in-process). */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('omnirelay')
    .description('OmniRelay control-plane tools: a live local mesh, development certificates, endpoint probes, benchmarks.')
    .version(packageVersion(), '-V, --version')
    .showSuggestionAfterError(true)
    .addHelpText('after', `\n${EXIT_CODES_HELP}`);

  program
    .command('mesh')
    .description('N local nodes (gossip, discovery, leader election, every RPC through the client factory, HTTP/3 preferred, mTLS with a generated development CA) and a live table; keys kill, restart and flip HTTP/3 hints (docs/cli-mesh.md)')
    .option('--nodes <n>', 'how many nodes (1 to 9)', '3')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://127.0.0.1:<port>/metrics (0: a free port; default: none)')
    .addHelpText('after', `
Ctrl-C or SIGTERM leaves gracefully (exit 0). Exit 1: the mesh failed to start or stop; 2: bad options.
On a terminal the table redraws in place and takes keys; otherwise it prints plain lines.`)
    .action(async (opts: { nodes: string; metricsPort?: string }) => {
      const nodes = wholeNumber(opts.nodes);
      const metricsPort = opts.metricsPort === undefined ? undefined : wholeNumber(opts.metricsPort);
      if (nodes === undefined || (opts.metricsPort !== undefined && metricsPort === undefined)) {
        writeLine(io.stderr, `omnirelay mesh: error: ${nodes === undefined ? `--nodes ${opts.nodes}` : `--metrics-port ${opts.metricsPort ?? ''}`} is not a whole number (see omnirelay mesh --help)`);
        setExitCode(EXIT.usage);
        return;
      }
      // The process's terminal and signals when run as the command; plain lines to the given streams otherwise (tests, other front ends).
      const owned = io === processIo ? processMeshIo() : undefined;
      const meshIo: MeshIo = owned?.io ?? { stdout: io.stdout, stderr: io.stderr, isTTY: false };
      try {
        setExitCode(await runMesh({ nodes, metricsPort }, meshIo));
      } finally {
        owned?.dispose();
      }
    });

  const certs = program.command('certs').description('certificates for development');
  certs
    .command('dev')
    .description('write a development CA and a certificate per node (server + client, SANs localhost, 127.0.0.1, ::1)')
    .argument('<dir>', 'directory to write ca.pem, ca.crl.pem, <node>.pem and <node>.key into (created if missing)')
    .option('--nodes <names>', 'comma-separated node names', DEFAULT_NODES)
    .option('--force', 'overwrite files that already exist')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (dir: string, opts: { nodes: string; force?: boolean }) => {
      setExitCode(await runCertsDev({ dir, nodes: opts.nodes, force: opts.force }, io));
    });

  tlsFlags(
    program
      .command('probe')
      .description('one gRPC health check (grpc.health.v1.Health/Check) through the client factory: protocol, TLS, peer certificate, timings, why HTTP/3 was not used')
      .argument('<endpoint>', 'https://host:port or host:port (never plaintext)'),
  )
    .option('--service <name>', "health service to ask about ('' = the whole server)", '')
    .option('--timeout <ms>', 'deadline of each call', '5000')
    .option('--rtt <n>', 'calls after the first, for the round-trip time', '5')
    .addHelpText('after', `\nHealthy (exit 0): SERVING, or UNIMPLEMENTED from a server without the health service\n(it answered over verified TLS). Anything else exits 1.\n\n${EXIT_CODES_HELP}`)
    .action(async (endpoint: string, opts: Record<string, unknown>) => {
      setExitCode(await runProbe({ ...(opts as object), endpoint }, io));
    });

  tlsFlags(
    program
      .command('bench')
      .description('unary calls through the client factory, per protocol: throughput and latency percentiles')
      .argument('[endpoint]', 'https://host:port or host:port (or --self)'),
  )
    .option('--self', 'benchmark a local GrpcHost on 127.0.0.1 with development certificates in a temporary directory')
    .option('--calls <n>', 'calls per protocol', '1000')
    .option('--concurrency <n>', 'calls in flight at once', '16')
    .option('--protocols <list>', 'h3, h2 or h3,h2 (HTTP/3 is required by an endpoint hint, HTTP/2 by denying HTTP/3)', 'h3,h2')
    .option('--timeout <ms>', 'deadline of each call', '5000')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (endpoint: string | undefined, opts: Record<string, unknown>) => {
      setExitCode(await runBench({ ...(opts as object), endpoint }, io));
    });

  // Usage errors: one line, exit 2. Help and version: exit 0.
  program.exitOverride();
  for (const command of [program, ...program.commands, ...certs.commands]) {
    command.exitOverride();
    command.configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => {
        const name = command === program ? 'omnirelay' : `omnirelay ${command.parent !== null && command.parent !== program ? `${command.parent.name()} ` : ''}${command.name()}`;
        write(`${name}: ${text.replace(/^error: /, 'error: ').trim()} (see ${name} --help)\n`);
      },
    });
  }
  return program;
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  const commandName = argv.find((a) => !a.startsWith('-')) ?? '';
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      // `omnirelay` alone (or `omnirelay certs`) shows the help on stderr: a usage error.
      return EXIT.usage;
    }
    const { exitCode: code, line } = describeError(error);
    const sub = argv[argv.indexOf(commandName) + 1];
    const name = commandName === 'certs' && sub !== undefined && !sub.startsWith('-') ? `certs ${sub}` : commandName;
    writeLine(io.stderr, `omnirelay${name === '' ? '' : ` ${name}`}: error: ${line}`);
    return code;
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    writeLine(process.stderr, `omnirelay: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = EXIT.failed;
  },
);
