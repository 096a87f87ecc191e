// The grpc-go server of the integration tests (test/support/grpc-go/server.go), built and
// started from a bench script. The same build as test/support/grpc-go.ts (which is TypeScript
// and not compiled into dist/, so the bench cannot import it): GOPATH mode against Debian's
// golang-google-grpc-dev in /usr/share/gocode, offline, once per source hash and Go version,
// into the same cache directory the tests use (so either one's build serves the other).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const SOURCE = fileURLToPath(new URL('../test/support/grpc-go/server.go', import.meta.url));
const GOPATH = '/usr/share/gocode';

/**
 * Builds the server; resolves to the binary's path, or to `{ skip: reason }` when Go or
 * golang-google-grpc-dev is missing (the bench prints the reason and goes on without it).
 */
export async function buildGrpcGoServer() {
  let goVersion;
  try {
    goVersion = (await execFileAsync('go', ['version'])).stdout.trim();
  } catch (error) {
    return { skip: `no Go toolchain (${error.code === 'ENOENT' ? '`go` is not on the PATH' : error.message}); apt-get install golang-go golang-google-grpc-dev` };
  }
  if (!existsSync(join(GOPATH, 'src/google.golang.org/grpc'))) return { skip: `grpc-go sources missing in ${GOPATH} (apt-get install golang-google-grpc-dev)` };
  const source = await readFile(SOURCE);
  const hash = createHash('sha256').update(source).update(goVersion).digest('hex').slice(0, 16);
  const root = join(tmpdir(), 'omnirelay-grpc-go');
  const binary = join(root, hash, 'grpc-go-server');
  if (existsSync(binary)) return { binary };
  await mkdir(join(root, hash), { recursive: true });
  const partial = `${binary}.${process.pid}.${Date.now()}.tmp`;
  try {
    await execFileAsync('go', ['build', '-o', partial, SOURCE], {
      cwd: join(root, hash),
      env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(root, 'gocache'), GOFLAGS: '', CGO_ENABLED: '0' },
      timeout: 300_000,
    });
  } catch (error) {
    return { skip: `building ${SOURCE} failed: ${error.stderr || error.message}` };
  }
  await rename(partial, binary);
  return { binary };
}

/** Starts the built server on 127.0.0.1 (ephemeral TCP port; nothing listens on UDP). */
export async function startGrpcGoServer(binary, { certFile, keyFile, caFile, requireClientCert = true }) {
  const args = ['-cert', certFile, '-key', keyFile, '-ca', caFile];
  if (requireClientCert) args.push('-require-client-cert');
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk.toString();
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`grpc-go server did not start: ${stdout}${stderr}`)), 10_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk.toString();
      const match = /port (\d+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`grpc-go server exited (${code}): ${stderr}`));
    });
  });
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
