/**
 * `runMesh(options, io)`: what `omnirelay mesh` does — starts the mesh, shows the live table
 * (redrawn in place on a terminal; plain lines otherwise), takes keys on a terminal, and on
 * `q`, Ctrl-C or the io's signal shuts everything down gracefully. Resolves with the exit code.
 */
import { ConfigError } from '../../errors.js';
import { startMesh, type Mesh, type MeshOptions, type MeshSnapshot } from './mesh.js';
import { PlainPrinter, renderTable } from './render.js';

/** Where the mesh talks: the CLI passes the process's streams (see {@link processMeshIo}), tests pass their own. */
export interface MeshIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** Read for keys when `isTTY` (raw mode is set when it has `setRawMode`). */
  readonly stdin?: (NodeJS.ReadableStream & { setRawMode?(mode: boolean): unknown }) | undefined;
  /** A terminal: redraw the table in place and take keys. Otherwise: plain lines, no keys. */
  readonly isTTY: boolean;
  /** Aborting it shuts the mesh down (the CLI aborts on SIGINT / SIGTERM). */
  readonly signal?: AbortSignal | undefined;
  /** The terminal's width now, to cut the table's lines. */
  readonly columns?: (() => number | undefined) | undefined;
}

/** Exit codes: 0 after a graceful shutdown, 1 when the mesh could not start or stop, 2 for bad options. */
export const MESH_EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const ESC = '\u001b';
const CTRL_C = '\u0003';
const VERBS = { k: 'kill', r: 'restart', h: 'flip the HTTP/3 hint of' } as const;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Starts the mesh and runs it until `q`, Ctrl-C (on a terminal) or `io.signal`; resolves with the exit code. */
export async function runMesh(options: MeshOptions, io: MeshIo): Promise<number> {
  const line = (text: string): void => void io.stdout.write(`${text}\n`);
  const aborted = (): boolean => io.signal?.aborted === true;
  if (aborted()) return MESH_EXIT.ok;
  line(`omnirelay mesh: starting ${options.nodes ?? 3} nodes on 127.0.0.1 ...`);
  let mesh: Mesh;
  try {
    mesh = await startMesh(options);
  } catch (error) {
    io.stderr.write(`omnirelay mesh: ${message(error)}\n`);
    return error instanceof ConfigError ? MESH_EXIT.usage : MESH_EXIT.failed;
  }

  let quit: () => void = () => undefined;
  const quitting = new Promise<void>((resolve) => (quit = resolve));
  const onAbort = (): void => quit();
  io.signal?.addEventListener('abort', onAbort, { once: true });
  if (aborted()) quit();

  let ended = false;
  let latest: MeshSnapshot | undefined;
  let drawn = 0;
  let status: string | undefined;
  const actions = new Set<Promise<void>>();
  const tty = io.isTTY;
  const plain = new PlainPrinter(line);

  const draw = (): void => {
    if (ended || latest === undefined) return;
    const lines = renderTable(latest, { events: mesh.events, status, columns: io.columns?.() });
    let out = drawn > 0 ? `${ESC}[${drawn}F` : `${ESC}[?25l`;
    for (const l of lines) out += `${ESC}[2K${l}\n`;
    io.stdout.write(`${out}${ESC}[J`);
    drawn = lines.length;
  };

  if (!tty) {
    line(`omnirelay mesh: ${mesh.ids.length} nodes up; dev CA in ${mesh.dir}; metrics ${mesh.metricsUrl ?? 'off'}; plain output (not a terminal): one line per event and per node change`);
  }
  const subscription = mesh.snapshots$.subscribe((snapshot) => {
    latest = snapshot;
    if (tty) draw();
    else plain.print(snapshot);
  });

  const act = (verb: keyof typeof VERBS, n: number): void => {
    if (n > mesh.ids.length) {
      status = `no node ${n}: the mesh has nodes 1-${mesh.ids.length}`;
      return;
    }
    const id = mesh.ids[n - 1] ?? '';
    if (verb === 'h') {
      status = `${id}: HTTP/3 hint now ${mesh.flipHttp3(n)} on every node`;
      return;
    }
    status = `${verb === 'k' ? 'killing' : 'restarting'} ${id} ...`;
    const action = (verb === 'k' ? mesh.kill(n) : mesh.restart(n)).then(
      () => {
        status = `${id} ${verb === 'k' ? 'killed (no leave, no resignation)' : 'restarted'}`;
      },
      (error: unknown) => {
        status = `${id}: ${message(error)}`;
      },
    );
    const tracked = action.finally(() => {
      actions.delete(tracked);
      draw();
    });
    actions.add(tracked);
  };

  let pending: keyof typeof VERBS | undefined;
  const onKey = (chunk: Buffer | string): void => {
    for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
      if (ch === CTRL_C || ch === 'q' || ch === 'Q') {
        status = 'stopping: every node leaves the gossip and resigns ...';
        draw();
        quit();
        return;
      }
      if (ch === ESC) {
        pending = undefined;
        status = undefined;
      } else if (ch === 'k' || ch === 'r' || ch === 'h') {
        pending = ch;
        status = `${VERBS[ch]} which node? (1-${mesh.ids.length}, Esc cancels)`;
      } else if (ch >= '1' && ch <= '9') {
        if (pending === undefined) status = 'press k, r or h first, then the node number';
        else act(pending, Number(ch));
        pending = undefined;
      }
    }
    draw();
  };
  const stdin = tty ? io.stdin : undefined;
  if (stdin !== undefined) {
    stdin.setRawMode?.(true);
    stdin.on('data', onKey);
    stdin.resume();
  }

  await quitting;
  io.signal?.removeEventListener('abort', onAbort);
  if (stdin !== undefined) {
    stdin.off('data', onKey);
    stdin.setRawMode?.(false);
    stdin.pause();
  }
  await Promise.all(actions);
  subscription.unsubscribe();
  ended = true;
  if (tty) io.stdout.write(`${ESC}[?25h`);
  try {
    await mesh.close();
  } catch (error) {
    io.stderr.write(`omnirelay mesh: shutdown failed: ${message(error)}\n`);
    return MESH_EXIT.failed;
  }
  line('omnirelay mesh: stopped (every node left the gossip and resigned; hosts and containers closed; temp dir removed)');
  return MESH_EXIT.ok;
}

/** The process as a MeshIo: its streams, a terminal when stdin and stdout are, and a signal aborted by SIGINT or SIGTERM. `dispose()` removes the signal handlers. */
export function processMeshIo(): { readonly io: MeshIo; dispose(): void } {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    io: {
      stdout: process.stdout,
      stderr: process.stderr,
      stdin: process.stdin,
      isTTY: process.stdout.isTTY === true && process.stdin.isTTY === true,
      signal: controller.signal,
      columns: () => process.stdout.columns,
    },
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
