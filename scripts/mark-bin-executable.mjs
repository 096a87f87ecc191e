#!/usr/bin/env node
/**
 * Part of `npm run build`, after tsc: makes every `bin` file of package.json executable
 * (`dist/cli/main.js`). npm sets that mode itself when a user installs the package, but inside
 * this repository `npx omnirelay …` runs the file in place, and tsc writes it without the
 * executable bit (sh: omnirelay: Permission denied). Fails, naming the file, when one is missing.
 */
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const bins = typeof manifest.bin === 'string' ? [manifest.bin] : Object.values(manifest.bin ?? {});
for (const bin of bins) {
  const file = join(root, bin);
  if (!existsSync(file)) {
    console.error(`mark-bin-executable: package.json bin ${bin} does not exist (did tsc -p tsconfig.build.json run?)`);
    process.exit(1);
  }
  chmodSync(file, 0o755);
}
