#!/usr/bin/env node
/**
 * `npm run build:sea`: the CLI as a Node single-executable application (SEA), `dist-sea/omnirelay`,
 * with the native QUIC binding beside it at `dist-sea/node_modules/@matrixai/quic-linux-x64/`
 * (a native addon cannot live inside the executable; the unchanged loader finds it there).
 * Copy the `dist-sea/` directory anywhere on Linux x64 and run `./omnirelay …`: no Node needed.
 *
 * Steps: esbuild bundles `src/cli/main.ts` into ONE CommonJS script (Node 20's SEA runs only
 * that; our sources are ES modules, so `import.meta.url` is replaced by the file URL of
 * `__filename`, which inside a SEA is the executable's path — the binding's `createRequire` then
 * searches `<dir of the executable>/node_modules`); `node --experimental-sea-config` turns it
 * into a blob (with V8's code cache, so the start-up skips compiling); this Node's own binary
 * (`process.execPath`, about 99 MB) is copied and the blob injected with postject (a
 * devDependency: the SEA is a release artefact built from the repository, nothing npm users
 * install). Not part of `npm run build` for the size and time.
 *
 * `--out <dir>` writes there instead of dist-sea/ (the SEA test builds outside the repository).
 * Exits 2 with a one-line reason, building nothing, when this Node has no SEA fuse (a Node built
 * without SEA support, e.g. some distributions' packages) — `--check` only reports that.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const root = fileURLToPath(new URL('..', import.meta.url));
const outFlag = process.argv.indexOf('--out');
const out = outFlag === -1 ? join(root, 'dist-sea') : resolve(process.argv[outFlag + 1] ?? '');
const exe = join(out, 'omnirelay');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const started = performance.now();

// The fuse is `NODE_SEA_FUSE_…:0` in a Node that can become a SEA (postject flips it to `:1`).
const node = readFileSync(process.execPath);
if (node.indexOf(`${SEA_FUSE}:0`) === -1) {
  console.error(`build-sea: ${process.execPath} (node ${process.version}) has no single-executable fuse ${SEA_FUSE}:0; it cannot become a SEA`);
  process.exit(2);
}
if (process.argv.includes('--check')) {
  console.log(`build-sea: ${process.execPath} (node ${process.version}) can become a SEA`);
  process.exit(0);
}
const binding = `@matrixai/quic-${process.platform}-${process.arch}`;
let bindingDir;
try {
  bindingDir = dirname(createRequire(join(root, 'package.json')).resolve(`${binding}/package.json`));
} catch {
  console.error(`build-sea: the native QUIC binding ${binding} is not installed (the SEA is built for Linux x64 only, where it is; run npm ci)`);
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'omnirelay-sea-'));
try {
  const script = join(work, 'omnirelay.cjs');
  await build({
    entryPoints: [join(root, 'src/cli/main.ts')],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20.18',
    minify: true,
    keepNames: true,
    // The QUIC binding is a native addon, loaded at run time from beside the executable.
    external: ['@matrixai/quic-*'],
    define: { OMNIRELAY_VERSION: JSON.stringify(manifest.version), 'import.meta.url': '__omnirelayImportMetaUrl' },
    // Inside a SEA `__filename` is the executable (process.execPath); `require` there loads
    // built-ins only, which is all the bundle asks of it.
    banner: { js: "const __omnirelayImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
  });
  const blob = join(work, 'omnirelay.blob');
  const config = join(work, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });

  if (outFlag === -1) rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  if (readdirSync(out).length > 0) throw new Error(`build-sea: --out ${out} is not empty`);
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  // postject's ELF library prints "warning: Can't find string offset for section name '.note…'"
  // for Node's binary (harmless); its output is shown only if it fails.
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  try {
    execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: 'pipe' });
  } catch (error) {
    console.error(`build-sea: postject failed:\n${String(error.stdout)}${String(error.stderr)}`);
    throw error;
  }
  cpSync(bindingDir, join(out, 'node_modules', binding), { recursive: true });
} finally {
  rmSync(work, { recursive: true, force: true });
}
const shown = relative(process.cwd(), exe).startsWith('..') ? exe : relative(process.cwd(), exe);
console.log(`build-sea: ${shown} (${(statSync(exe).size / 2 ** 20).toFixed(1)} MiB, node ${process.version}), native binding ${binding} beside it, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
