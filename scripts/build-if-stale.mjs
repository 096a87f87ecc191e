#!/usr/bin/env node
/**
 * `npm start`'s and `npm run demo`'s pre-script: builds only what is stale, so a start after a
 * build runs at once.
 * - `buf generate` when a protos/ file (or buf.gen.yaml) is newer than src/gen/, or src/gen/ is missing;
 * - `bundle` (npm start): scripts/bundle-cli.mjs (esbuild, about a second) when a src/ file,
 *   a tsconfig or package.json is newer than dist-cli/omnirelay.mjs, or it is missing;
 * - `dist` (npm run demo): `tsc -p tsconfig.build.json` (no lint, no test type-check:
 *   `npm run build` does those) when one of them is newer than dist/, or dist/ is missing.
 * Fresh: prints nothing and takes a few tens of milliseconds. Stale: says so on its first line,
 * before the build starts. Newer means a later modification time than the oldest output checked.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (...parts) => join(root, ...parts);

/** The newest file under `dir` (recursively) as { path, mtimeMs }, or undefined when there is none. */
function newest(dir, accept = () => true) {
  let best;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const found = entry.isDirectory() ? newest(path, accept) : entry.isFile() && accept(path) ? { path, mtimeMs: statSync(path).mtimeMs } : undefined;
    if (found !== undefined && (best === undefined || found.mtimeMs > best.mtimeMs)) best = found;
  }
  return best;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function newer(candidates, than) {
  return candidates.filter((c) => c !== undefined).find((c) => than === undefined || c.mtimeMs > than);
}

function run(command, args) {
  const bin = at('node_modules', '.bin', process.platform === 'win32' ? `${command}.cmd` : command);
  const result = spawnSync(bin, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    console.error(`prestart: ${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}); fix the errors above, or run \`npm run build\` for the full build`);
    process.exit(result.status ?? 1);
  }
}

const file = (path) => ({ path, mtimeMs: mtime(path) ?? -Infinity });

// Generated code: the oldest generated file must be newer than every proto and the generator config.
const genOldest = (() => {
  const gen = newest(at('src', 'gen'));
  if (gen === undefined) return undefined;
  let oldest = Infinity;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else oldest = Math.min(oldest, statSync(path).mtimeMs);
    }
  };
  walk(at('src', 'gen'));
  return oldest;
})();
const protoChange = newer([newest(at('protos')), file(at('buf.gen.yaml')), file(at('buf.yaml'))], genOldest);
if (genOldest === undefined || protoChange !== undefined) {
  console.log(`prestart: ${genOldest === undefined ? 'src/gen/ is missing' : `${relative(root, protoChange.path)} is newer than src/gen/`}: running buf generate`);
  run('buf', ['generate']);
}

// What is being started: `bundle` (npm start: the bundled CLI, dist-cli/omnirelay.mjs, made by
// esbuild from the sources in about a second, no type check) or `dist` (npm run demo: tsc's dist/).
const target = process.argv[2] ?? 'dist';
const sources = () => [newest(at('src'), (p) => p.endsWith('.ts')), file(at('tsconfig.json')), file(at('tsconfig.build.json')), file(at('package.json'))];

if (target === 'bundle') {
  const bundled = mtime(at('dist-cli', 'omnirelay.mjs'));
  const sourceChange = newer(sources(), bundled);
  if (bundled === undefined || sourceChange !== undefined) {
    console.log(`prestart: ${bundled === undefined ? 'dist-cli/ is missing' : `${relative(root, sourceChange.path)} is newer than dist-cli/`}: bundling the CLI with esbuild (no type check, no lint; about a second)`);
    const result = spawnSync(process.execPath, [at('scripts', 'bundle-cli.mjs')], { cwd: root, stdio: 'inherit' });
    if (result.status !== 0) {
      console.error(`prestart: bundling failed (exit ${result.status ?? result.signal}); fix the errors above`);
      process.exit(result.status ?? 1);
    }
  }
} else {
  // Compiled code: dist/cli/demo.js and dist/index.js must be newer than every source and tsconfig.
  const outputs = [mtime(at('dist', 'index.js')), mtime(at('dist', 'cli', 'demo.js')), mtime(at('dist', 'cli', 'main.js'))];
  const distOldest = outputs.includes(undefined) ? undefined : Math.min(...outputs);
  const sourceChange = newer(sources(), distOldest);
  if (distOldest === undefined || sourceChange !== undefined) {
    console.log(`prestart: ${distOldest === undefined ? 'dist/ is missing' : `${relative(root, sourceChange.path)} is newer than dist/`}: compiling with tsc -p tsconfig.build.json (no lint; about 15 s)`);
    const started = performance.now();
    const result = spawnSync(at('node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
    if (result.status !== 0) {
      // tsc writes its output even with type errors: mark dist/ stale so the next start compiles again.
      for (const path of [at('dist', 'index.js'), at('dist', 'cli', 'demo.js')]) if (mtime(path) !== undefined) utimesSync(path, 0, 0);
      console.error(`prestart: tsc failed (exit ${result.status ?? result.signal}); fix the type errors above`);
      process.exit(result.status ?? 1);
    }
    console.log(`prestart: compiled in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}
