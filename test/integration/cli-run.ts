/**
 * Runs the bundled CLI (`dist-cli/omnirelay.mjs`, one file made by scripts/bundle-cli.mjs in
 * `npm run build`, the native QUIC binding beside it) as a child process, the way a user's shell
 * would, and collects its exit code and output. Shared by the cli-*.test.ts files. The package
 * tier runs the `omnirelay` bin of the installed tarball (dist/cli/main.js) as well.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist-cli/omnirelay.mjs', import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Killed after the timeout instead of exiting by itself. */
  readonly timedOut: boolean;
}

/** The child's environment: ours without NODE_OPTIONS (jest's flags are not the user's). */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runNode([CLI, ...args], timeoutMs);
}

export function runNode(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return runProgram(process.execPath, args, timeoutMs);
}

/** Runs an executable (e.g. the single-executable CLI, dist-sea/omnirelay) the same way. */
export function runProgram(file: string, args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), timedOut });
    });
  });
}

/** For failure messages: everything the child said. */
export function show(run: CliRun): string {
  return `exit ${String(run.code)}${run.timedOut ? ' (killed after the timeout)' : ''}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

/** Lines of stderr that are Node warnings (DeprecationWarning, ExperimentalWarning, ...). */
export function warnings(run: CliRun): string[] {
  return run.stderr.split('\n').filter((line) => /Warning|DEP\d{4}/.test(line));
}
