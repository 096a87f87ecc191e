/**
 * `omnirelay certs dev <dir> [--nodes n1,n2,…]`: a development CA and one certificate per node
 * (writeDevPki: ECDSA P-256, usable as server and client, SANs localhost, 127.0.0.1 and ::1),
 * and a list of what was written. Existing files are not overwritten without `--force`.
 */
import { X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeDevPki } from '../../tls/dev-pki.js';
import { CliError, EXIT, type ExitCode } from '../errors.js';
import { writeLine, type CliIo } from '../io.js';

export interface CertsDevOptions {
  readonly dir: string;
  /** Comma-separated node names. */
  readonly nodes?: string | undefined;
  readonly force?: boolean | undefined;
}

export const DEFAULT_NODES = 'node-a,node-b,node-c';
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function parseNodes(text: string): string[] {
  const nodes = text.split(',').map((n) => n.trim()).filter((n) => n.length > 0);
  if (nodes.length === 0) throw new CliError(EXIT.usage, `--nodes ${JSON.stringify(text)} names no node: give e.g. --nodes node-a,node-b`);
  const seen = new Set<string>();
  for (const name of nodes) {
    if (!NODE_NAME.test(name) || name === 'ca' || name.endsWith('.crl')) {
      throw new CliError(EXIT.usage, `invalid node name ${JSON.stringify(name)} (--nodes): use letters, digits, '.', '_' and '-', starting with a letter or digit; not "ca" nor ending in ".crl"`);
    }
    if (seen.has(name)) throw new CliError(EXIT.usage, `node ${JSON.stringify(name)} is listed twice (--nodes)`);
    seen.add(name);
  }
  return nodes;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

function fsReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code !== undefined ? `${e.code}: ${e.message}` : String(error);
}

export async function runCertsDev(options: CertsDevOptions, io: CliIo): Promise<ExitCode> {
  const dir = resolve(options.dir);
  const nodes = parseNodes(options.nodes ?? DEFAULT_NODES);
  const planned = [join(dir, 'ca.pem'), join(dir, 'ca.crl.pem'), ...nodes.flatMap((n) => [join(dir, `${n}.pem`), join(dir, `${n}.key`)])];

  const info = await stat(dir).catch(() => undefined);
  if (info !== undefined && !info.isDirectory()) throw new CliError(EXIT.input, `${dir} exists and is not a directory (certs dev <dir>): choose another directory`);
  if (options.force !== true) {
    for (const file of planned) {
      if (await exists(file)) throw new CliError(EXIT.input, `${file} already exists (certs dev): pass --force to overwrite it, or choose another directory`);
    }
  }

  let pki;
  try {
    pki = await writeDevPki(dir, nodes);
  } catch (error) {
    throw new CliError(EXIT.input, `cannot write the development PKI into ${dir} (${fsReason(error)}): check the directory is writable`);
  }
  const ca = new X509Certificate(await readFile(pki.caFile));
  writeLine(io.stdout, `wrote a development PKI into ${dir} (not for production: the CA key was not kept)`);
  writeLine(io.stdout, `  ${pki.caFile}  CA certificate "${ca.subject.replace(/^CN=/, '')}", valid until ${new Date(ca.validTo).toISOString()}`);
  writeLine(io.stdout, `  ${pki.crlFile}  empty CRL of that CA`);
  for (const name of nodes) {
    const files = pki.files[name];
    if (files === undefined) continue;
    const cert = new X509Certificate(await readFile(files.certFile));
    writeLine(io.stdout, `  ${files.certFile}  certificate CN=${name} (server + client; ${cert.subjectAltName ?? 'no SANs'}), valid until ${new Date(cert.validTo).toISOString()}`);
    writeLine(io.stdout, `  ${files.keyFile}  its private key (PKCS#8, mode 0600)`);
  }
  const example = nodes[0] ?? 'node-a';
  writeLine(io.stdout, `use: omnirelay probe https://127.0.0.1:<port> --cert ${join(dir, `${example}.pem`)} --key ${join(dir, `${example}.key`)} --ca ${pki.caFile}`);
  return EXIT.ok;
}
