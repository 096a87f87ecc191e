/**
 * Feature tier: the bundled CLI on a real terminal. `script(1)` (util-linux, in Debian's
 * essential bsdutils) gives the child a pseudo-terminal, so `process.stdout.isTTY` and raw-mode
 * stdin are what a person's shell gives it; what we write to `script`'s stdin arrives as key
 * presses, and everything the CLI draws comes back through it.
 *
 * - `omnirelay mesh`: the table is redrawn in place (cursor-up escapes, one frame per redraw);
 *   the keys a person uses do what the table says: k2 kills node 2 (the others see it dead, a
 *   scope it led gets another leader), r2 brings it back, h3 flips node 3's HTTP/3 hint (calls
 *   to node 3 go over HTTP/2, with the hint shown as the reason), q leaves gracefully (exit 0,
 *   cursor shown again, nothing left running).
 * - `omnirelay bench --self`: the progress bar is redrawn in place on a terminal and erased
 *   before the figures.
 * Waits are for conditions with generous limits; nothing is timed.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI } from '../integration/cli-run.js';

const ESC = '\u001b';

/** A CLI run on a pseudo-terminal through script(1). */
interface TerminalRun {
  /** Everything written to the terminal so far. */
  output(): string;
  press(keys: string): void;
  readonly exited: Promise<number | null>;
  kill(): void;
}

const runs: TerminalRun[] = [];

function onTerminal(args: readonly string[]): TerminalRun {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  delete env.NODE_OPTIONS; // jest's flags are not the user's
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  // -q quiet, -f flush each write, -e exit with the child's code, -c the command; no typescript file.
  const child: ChildProcessWithoutNullStreams = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`script(1) could not run (util-linux's bsdutils): ${error.message}`)));
    child.once('close', (code) => resolve(code));
  });
  const run: TerminalRun = {
    output: () => out,
    press: (keys) => void child.stdin.write(keys),
    exited,
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  runs.push(run);
  return run;
}

afterEach(async () => {
  for (const run of runs.splice(0)) {
    run.kill();
    await run.exited.catch(() => undefined);
  }
});

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(done: () => boolean, limitMs = 45_000): Promise<boolean> {
  for (let waited = 0; !done() && waited < limitMs; waited += 100) await pause(100);
  return done();
}

/** The text of each drawn frame: the table redraws by moving the cursor up (`ESC[<n>F`) over the last one. */
function frames(output: string): string[] {
  return output.split(new RegExp(`${ESC}\\[\\d+F`)).map((frame) => frame.replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '').replaceAll('\r', ''));
}

interface MemberRow {
  readonly state: string;
  /** What this node sees of each member, by column (node-1, node-2, ...). */
  readonly sees: Record<string, string>;
}

/** The MEMBERS section of a frame: `<n> node-<n>  <state>  <endpoint>  <status per member> ...`. */
function members(frame: string): Map<string, MemberRow> {
  const rows = new Map<string, MemberRow>();
  const lines = frame.split('\n');
  const header = lines.findIndex((l) => l.startsWith('NODE '));
  if (header < 0) return rows;
  const columns = lines[header]!.split(/\s+/).filter((c) => /^node-\d+$/.test(c));
  for (const line of lines.slice(header + 1)) {
    const match = /^\d+ (node-\d+)\s+(\S+)\s+https:\/\/\S+\s*(.*)$/.exec(line);
    if (match === null) break;
    const cells = match[3]!.split(/\s+/);
    const sees: Record<string, string> = {};
    // A killed node shows no member columns; a running one shows one status per column first.
    if (match[2] === 'running') columns.forEach((column, i) => (sees[column] = cells[i] ?? ''));
    rows.set(match[1]!, { state: match[2]!, sees });
  }
  return rows;
}

/** The PEERS section: caller → peer → { proto, hint }. */
function peers(frame: string): { caller: string; peer: string; proto: string; hint: string }[] {
  const lines = frame.split('\n');
  const header = lines.findIndex((l) => l.startsWith('CALLER '));
  if (header < 0) return [];
  const rows = [];
  for (const line of lines.slice(header + 1)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 7 || !/^node-\d+$/.test(cells[0]!)) break;
    rows.push({ caller: cells[0]!, peer: cells[1]!, proto: cells[2]!, hint: cells[6]! });
  }
  return rows;
}

/** The LEADERS section: scope → leader. */
function leaders(frame: string): Map<string, string> {
  const result = new Map<string, string>();
  const lines = frame.split('\n');
  const header = lines.findIndex((l) => l.startsWith('SCOPE '));
  if (header < 0) return result;
  for (const line of lines.slice(header + 1)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 2 || cells[0] === '') break;
    result.set(cells[0]!, cells[1]!);
  }
  return result;
}

const IDS = ['node-1', 'node-2', 'node-3'];

describe('omnirelay mesh on a terminal', () => {
  it('redraws the table in place and follows the keys: k2 kills node 2, r2 restarts it, h3 moves calls to node 3 onto HTTP/2, q leaves with exit 0', async () => {
    const run = onTerminal(['mesh', '--nodes', '3']);
    const last = (): string => frames(run.output()).at(-1) ?? '';
    const allAlive = (): boolean => {
      const rows = members(last());
      return IDS.every((id) => rows.get(id)?.state === 'running' && IDS.every((m) => rows.get(id)?.sees[m] === 'alive'));
    };
    expect(await eventually(allAlive)).toBe(true);
    // Drawn in place: the cursor was hidden and the table redrawn over itself several times.
    expect(run.output()).toContain(`${ESC}[?25l`);
    expect(await eventually(() => frames(run.output()).length > 3)).toBe(true);

    // k2: node 2 is killed; the others see it dead; no scope is led by it any more.
    const ledBy2 = [...leaders(last())].filter(([, leader]) => leader === 'node-2').map(([scope]) => scope);
    run.press('k2');
    const killedSeen = (): boolean => {
      const rows = members(last());
      const led = leaders(last());
      return rows.get('node-2')?.state === 'killed' && ['node-1', 'node-3'].every((id) => rows.get(id)?.sees['node-2'] === 'dead') && ledBy2.every((scope) => ![undefined, 'node-2', '-'].includes(led.get(scope)));
    };
    expect({ killedSeen: await eventually(killedSeen), frame: killedSeen() ? '' : last() }).toEqual({ killedSeen: true, frame: '' });

    // r2: it comes back and everyone sees everyone alive again.
    run.press('r2');
    expect({ back: await eventually(allAlive), frame: allAlive() ? '' : last() }).toEqual({ back: true, frame: '' });

    // h3: node 3's HTTP/3 hint flips to deny on every node; calls to node 3 go over HTTP/2.
    run.press('h3');
    const deniedToH2 = (): boolean => {
      const toNode3 = peers(last()).filter((p) => p.peer === 'node-3');
      return toNode3.length === 2 && toNode3.every((p) => p.hint === 'deny' && p.proto === 'h2');
    };
    expect(await eventually(() => last().includes('node-3: HTTP/3 hint now deny on every node'))).toBe(true);
    expect({ deniedToH2: await eventually(deniedToH2), frame: deniedToH2() ? '' : last() }).toEqual({ deniedToH2: true, frame: '' });

    run.press('q');
    expect(await run.exited).toBe(0);
    const output = run.output();
    expect(output).toContain('omnirelay mesh: stopped (every node left the gossip and resigned');
    expect(output).toContain(`${ESC}[?25h`); // the cursor is shown again
    expect(output).not.toMatch(/Warning|Error:/);
  }, 120_000);
});

describe('omnirelay bench on a terminal', () => {
  it('draws a progress bar in place per protocol and erases it before the figures', async () => {
    const run = onTerminal(['bench', '--self', '--calls', '400']);
    expect(await run.exited).toBe(0);
    const output = run.output();
    // The bar: `\r<protocol> [###...] done/total`, redrawn with carriage returns, then erased (`\r ESC[2K`).
    for (const protocol of ['h3', 'h2']) expect(output).toMatch(new RegExp(`\\r${protocol} \\[#*\\.*\\] \\d+/400`));
    expect(output).toContain(`\r${ESC}[2K`);
    expect(output).not.toMatch(/^h[23]: \d+\/400 calls$/m); // the plain per-quarter lines are for non-terminals
    expect(output).toMatch(/first successful RPC \d+ ms after process start/);
    expect(output).not.toMatch(/Warning/);
  }, 60_000);
});
