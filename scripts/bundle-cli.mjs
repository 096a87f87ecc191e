#!/usr/bin/env node
/**
 * The bundled CLI (issue 16's one artifact): `src/cli/main.ts` and everything it imports — our
 * code, the generated protobuf code, grpc-js, commander, the OpenTelemetry SDK and exporter —
 * in one ES module, `dist-cli/omnirelay.mjs`, with the native QUIC binding beside it at
 * `dist-cli/node_modules/@matrixai/quic-linux-x64/` (where the unchanged loader's
 * `createRequire(import.meta.url)` finds it; a native addon cannot be inlined into JavaScript).
 * Copy the `dist-cli/` directory anywhere with Node >= 20.18 and run `node omnirelay.mjs`.
 *
 * Bundles from the TypeScript sources with esbuild (no type check: `npm run build` does that),
 * so it also serves `npm start` on a fresh clone in about a second. Needs src/gen/ (buf generate).
 */
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist-cli');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const started = performance.now();

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: join(out, 'omnirelay.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.18',
  sourcemap: 'linked',
  // Smaller to parse at every start (the first RPC's budget); names kept for error classes and stack traces.
  minify: true,
  keepNames: true,
  // The QUIC binding is a native addon, loaded at run time from beside the bundle.
  external: ['@matrixai/quic-*'],
  define: { OMNIRELAY_VERSION: JSON.stringify(manifest.version) },
  // Bundled CommonJS dependencies (grpc-js, commander) call require() for Node built-ins.
  banner: { js: "import { createRequire as __omnirelayCreateRequire } from 'node:module'; const require = __omnirelayCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});

// The native binding for this platform, if installed (HTTP/3 is off without it; calls use HTTP/2).
const binding = `@matrixai/quic-${process.platform}-${process.arch}`;
let copied = 'none';
try {
  const from = dirname(createRequire(join(root, 'package.json')).resolve(`${binding}/package.json`));
  const to = join(out, 'node_modules', binding);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true });
  copied = binding;
} catch {
  // Not installed for this platform: the bundle runs HTTP/2-only and says so when HTTP/3 is asked for.
}
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ name: 'omnirelay-cli', version: manifest.version, private: true, type: 'module', bin: { omnirelay: 'omnirelay.mjs' } }, null, 2)}\n`);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
if (!existsSync(join(out, 'omnirelay.mjs'))) throw new Error('bundle-cli: no output');
console.log(`bundle-cli: dist-cli/omnirelay.mjs (${(bytes / 2 ** 20).toFixed(1)} MiB with its source map), native binding ${copied}, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
