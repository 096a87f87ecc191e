/**
 * Where a command writes: stdout for results, stderr for progress and errors. Commands take
 * a {@link CliIo} instead of touching `process` so tests and other front ends can drive them.
 */
export interface CliOutput {
  write(text: string): unknown;
  /** True when the stream is a terminal (progress bars are drawn only then). */
  readonly isTTY?: boolean | undefined;
  /** Terminal width in columns, when it is one. */
  readonly columns?: number | undefined;
}

export interface CliIo {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
}

/** The process's own streams. */
export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

/** Writes one line (a newline is added). */
export function writeLine(out: CliOutput, line: string): void {
  out.write(`${line}\n`);
}
