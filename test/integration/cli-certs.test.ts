/** `omnirelay certs dev`: the built CLI writes a development PKI that Node's TLS accepts. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFile, rm, stat, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, show } from './cli-run.js';

describe('omnirelay certs dev (built CLI, child process)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'omnirelay-cli-certs-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the CA, its CRL and a certificate + key per node, prints each file, and refuses to overwrite without --force', async () => {
    const dir = join(root, 'pki');
    const run = await runCli(['certs', 'dev', dir, '--nodes', 'alpha,beta']);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    for (const file of ['ca.pem', 'ca.crl.pem', 'alpha.pem', 'alpha.key', 'beta.pem', 'beta.key']) expect(run.stdout).toContain(join(dir, file));
    const ca = new X509Certificate(await readFile(join(dir, 'ca.pem')));
    const alpha = new X509Certificate(await readFile(join(dir, 'alpha.pem')));
    expect(alpha.subject).toBe('CN=alpha');
    expect(alpha.checkIssued(ca)).toBe(true);
    expect(alpha.subjectAltName).toContain('IP Address:127.0.0.1');
    expect((await stat(join(dir, 'alpha.key'))).mode & 0o777).toBe(0o600);

    const again = await runCli(['certs', 'dev', dir, '--nodes', 'alpha,beta']);
    expect({ code: again.code, lines: again.stderr.trim().split('\n') }).toEqual({
      code: 3,
      lines: [`omnirelay certs dev: error: ${join(dir, 'ca.pem')} already exists (certs dev): pass --force to overwrite it, or choose another directory`],
    });

    const forced = await runCli(['certs', 'dev', dir, '--nodes', 'alpha,beta', '--force']);
    expect(forced.code).toBe(0);
    expect(new X509Certificate(await readFile(join(dir, 'ca.pem'))).fingerprint256).not.toBe(ca.fingerprint256);
  });

  it('an invalid node name is a usage error (exit 2), nothing written', async () => {
    const dir = join(root, 'bad');
    const run = await runCli(['certs', 'dev', dir, '--nodes', 'ok,../evil']);
    expect({ code: run.code, lines: run.stderr.trim().split('\n') }).toEqual({ code: 2, lines: [expect.stringMatching(/^omnirelay certs dev: error: invalid node name "\.\.\/evil" \(--nodes\)/)] });
    await expect(stat(dir)).rejects.toThrow();
    expect(show(run)).not.toContain('wrote');
  });
});
