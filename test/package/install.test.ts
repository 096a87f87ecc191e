/**
 * The package tier: the package as a user gets it from npm. `npm pack` builds the tarball from
 * the fresh `dist/` (`npm test` builds first), a new project installs it with npm's default
 * settings next to the peer dependencies, and the README's "Example" block runs there under
 * plain Node. Nothing here imports the repository's `src/` or `dist/`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The binding our QUIC driver loads exists for linux-x64 only (see src/quic/native.ts). */
const HAS_PREBUILT_QUIC_BINDING = process.platform === 'linux' && process.arch === 'x64';

/** Printed after the README example's last statement: the script ran to its end. */
const FINISHED = 'pack-probe: example finished';

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Killed after `timeoutMs` instead of exiting by itself. */
  readonly timedOut: boolean;
  readonly ms: number;
  /** Milliseconds from the last stdout chunk to the exit. */
  readonly msAfterLastOutput: number;
}

/**
 * The environment a user's shell would give the child: without the `npm_config_*` variables
 * an enclosing `npm test` exports (among them `npm_config_local_prefix`, the repository root),
 * so the child npm uses its defaults and installs into its own project.
 */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_config_/i.test(name)));
}

function run(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let lastOutput = started;
    let timedOut = false;
    const windows = process.platform === 'win32';
    // npm is npm.cmd on Windows, which spawn runs only through a shell. Elsewhere the child leads
    // its own process group, so a timeout kills npm together with the processes it started.
    const child = spawn(command, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], shell: windows, detached: !windows });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      lastOutput = performance.now();
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      if (!windows && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const ended = performance.now();
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
        ms: Math.round(ended - started),
        msAfterLastOutput: Math.round(ended - lastOutput),
      });
    });
  });
}

function describeRun(what: string, result: Run): string {
  return `${what}: exit ${String(result.code)}${result.signal === null ? '' : ` (${result.signal})`}${result.timedOut ? ', killed after the timeout' : ''} in ${result.ms} ms\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** The first ```ts fenced block after the README's "## Example" heading. */
function readmeExample(readme: string): string {
  const section = readme.split(/^## Example[ \t]*$/m)[1];
  if (section === undefined) throw new Error('README.md has no "## Example" section');
  const block = /^```ts[ \t]*\n([\s\S]*?)^```[ \t]*$/m.exec(section.split(/^## /m)[0] ?? '');
  if (block?.[1] === undefined) throw new Error('README.md\'s "## Example" section has no ```ts block');
  return block[1];
}

/**
 * The README example as a Node ESM script: TypeScript-only syntax stripped (TypeScript's own
 * transpiler, no type check), the development PKI written to `pkiDir` instead of the README's
 * fixed path, and a last line that shows the script ran to its end.
 */
function exampleScript(example: string, pkiDir: string): string {
  const pkiPath = /(writeDevPki\(\s*)(['"`])[^'"`]*\2/;
  if (!pkiPath.test(example)) throw new Error('the README example no longer calls writeDevPki(\'<dir>\', ...): update this test');
  const source = `${example.replace(pkiPath, (_, call: string) => `${call}${JSON.stringify(pkiDir)}`)}\nconsole.log(${JSON.stringify(FINISHED)});\n`;
  const output = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: 'example.mts',
    reportDiagnostics: true,
  });
  const problems = (output.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  if (problems.length > 0) throw new Error(`the README example does not transpile: ${problems.join('; ')}`);
  return output.outputText;
}

describe('package: npm pack, npm install in a new project, the README example', () => {
  let root: string;
  let project: string;
  let tarball: string | undefined;
  let installed = false;
  const durations: Record<string, number> = {};

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'omnirelay-package-'));
    project = join(root, 'pack-probe');
    await mkdir(join(root, 'tarball'));
    await mkdir(project);
    await writeFile(join(project, 'package.json'), `${JSON.stringify({ name: 'pack-probe', private: true, type: 'module' }, null, 2)}\n`);
  });

  afterAll(async () => {
    // One line a run, to follow how long the tier takes.
    console.log(`package tier durations (ms): ${JSON.stringify(durations)}`);
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('npm pack builds the tarball from the repository', async () => {
    const result = await run('npm', ['pack', '--pack-destination', join(root, 'tarball'), '--json'], REPO_ROOT, 120_000);
    durations.pack = result.ms;
    expect({ code: result.code, timedOut: result.timedOut }).toEqual({ code: 0, timedOut: false });
    const [packed] = JSON.parse(result.stdout) as { filename: string; files: { path: string }[] }[];
    expect(packed).toBeDefined();
    const paths = packed!.files.map((f) => f.path);
    expect(paths).toContain('dist/index.js');
    // Sources ship so the source maps resolve; the .proto files and the guides ship too.
    expect([...new Set(paths.map((p) => p.split('/')[0]).filter((top) => paths.some((p) => p.startsWith(`${top}/`))))].sort()).toEqual(['dist', 'docs', 'protos', 'src']);
    expect(paths.filter((p) => /(^|\/)test\/|\.test\.[cm]?[jt]s$/.test(p))).toEqual([]);
    tarball = join(root, 'tarball', packed!.filename);
    expect(existsSync(tarball)).toBe(true);
  }, 150_000);

  it('npm install (default settings) installs it with its peers, no install scripts and only the prebuilt QUIC binding', async () => {
    if (tarball === undefined) throw new Error('no tarball: npm pack failed');
    const result = await run('npm', ['install', tarball, 'inversify@^8', 'reflect-metadata@^0.2', 'rxjs@^7.8'], project, 230_000);
    durations.install = result.ms;
    if (result.code !== 0 || result.timedOut) throw new Error(describeRun('npm install', result));
    installed = true;

    const modules = join(project, 'node_modules');
    expect(existsSync(join(modules, 'omnirelay', 'dist', 'index.js'))).toBe(true);
    const manifest = JSON.parse(await readFile(join(modules, 'omnirelay', 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    const installScripts = Object.keys(manifest.scripts ?? {}).filter((name) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(name));
    expect(installScripts).toEqual([]);
    // The old wrapper (@matrixai/quic and its helper packages) is gone; only the native binding is used.
    expect(existsSync(join(modules, '@matrixai', 'quic'))).toBe(false);
    if (HAS_PREBUILT_QUIC_BINDING) {
      expect(existsSync(join(modules, '@matrixai', 'quic-linux-x64', 'package.json'))).toBe(true);
    }
  }, 240_000);

  it('the `omnirelay` bin works from the installed package: `npx omnirelay --help`, and `certs dev` writes a PKI', async () => {
    if (!installed) throw new Error('the package is not installed: npm install failed');
    const help = await run('npx', ['--no-install', 'omnirelay', '--help'], project, 60_000);
    const helpContext = describeRun('npx omnirelay --help', help);
    if (help.code !== 0 || help.timedOut) throw new Error(helpContext);
    try {
      expect(help.stdout).toMatch(/^Usage: omnirelay/m);
      for (const command of ['certs', 'probe', 'bench']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
      expect(help.stdout).toContain('Exit codes:');
    } catch (error) {
      (error as Error).message += `\n\n${helpContext}`;
      throw error;
    }
    const certs = await run('npx', ['--no-install', 'omnirelay', 'certs', 'dev', join(root, 'bin-pki'), '--nodes', 'probe'], project, 60_000);
    expect({ code: certs.code, stderr: certs.stderr, ca: existsSync(join(root, 'bin-pki', 'ca.pem')), node: existsSync(join(root, 'bin-pki', 'probe.pem')) }).toEqual({ code: 0, stderr: '', ca: true, node: true });
  }, 90_000);

  it('runs the README example with plain Node: the first call goes over HTTP/3, no OmniRelay warning, and the process exits by itself', async () => {
    if (!installed) throw new Error('the package is not installed: npm install failed');
    const example = readmeExample(await readFile(join(REPO_ROOT, 'README.md'), 'utf8'));
    await writeFile(join(project, 'example.mjs'), exampleScript(example, join(root, 'pki')));

    const result = await run(process.execPath, ['example.mjs'], project, 60_000);
    durations.example = result.ms;
    durations.exampleExitAfterLastOutput = result.msAfterLastOutput;
    const context = describeRun('node example.mjs', result);
    if (result.code !== 0 || result.timedOut) throw new Error(context);

    const lines = result.stdout.trim().split('\n');
    // README: console.log(result.protocol, result.endpoint, ...): the first token is the protocol.
    // Where no QUIC binding is published, HTTP/3 is off (one warning) and the call uses HTTP/2.
    const observed = {
      protocol: lines[0]?.split(' ')[0],
      lastLine: lines.at(-1),
      omnirelayWarnings: result.stderr.split('\n').filter((line) => /Warning/.test(line) && /OMNIRELAY_|OmniRelay/.test(line)),
      // The example disposes everything: nothing keeps the event loop alive after its last line.
      exitsPromptly: result.msAfterLastOutput < 5_000,
    };
    const wanted = HAS_PREBUILT_QUIC_BINDING
      ? { protocol: 'h3', lastLine: FINISHED, omnirelayWarnings: [], exitsPromptly: true }
      : { protocol: 'h2', lastLine: FINISHED, omnirelayWarnings: [expect.stringContaining('OMNIRELAY_HTTP3_UNAVAILABLE')], exitsPromptly: true };
    try {
      expect(observed).toEqual(wanted);
    } catch (error) {
      (error as Error).message += `\n\n${context}`;
      throw error;
    }
  }, 90_000);
});
