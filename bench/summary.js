// Shared by the bench scripts: one row per headline figure for the table `npm run bench` prints
// at the end (bench/all.js). Each script still prints its own details; `record` adds a row only
// when BENCH_SUMMARY names a file (bench/all.js sets it), so a script run alone is unchanged.
import { appendFileSync } from 'node:fs';

/**
 * Records one figure: `area` (the table's group), `figure` (what was measured), `value` (as
 * printed, with its unit), `goal` (as a sentence, or '' when the figure is reported only) and
 * `met` (true / false, or undefined when there is no goal or the figure could not be taken).
 */
export function record({ area, figure, value, goal = '', met }) {
  const file = process.env.BENCH_SUMMARY;
  if (file === undefined || file === '') return;
  appendFileSync(file, `${JSON.stringify({ area, figure, value, goal, met, script: scriptName() })}\n`);
}

/** `met` for "lower is better" / "higher is better" goals. */
export const atMost = (value, goal) => (Number.isFinite(value) ? value <= goal : undefined);
export const atLeast = (value, goal) => (Number.isFinite(value) ? value >= goal : undefined);

function scriptName() {
  const path = process.argv[1] ?? '';
  return path.slice(path.lastIndexOf('/') + 1);
}
