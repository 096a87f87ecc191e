/**
 * grpc-js sets the TLS SNI to the target host, so an IP target made Node print DEP0123
 * ("Setting the TLS ServerName to an IP address is not permitted by RFC 6066"). Our HTTP/2
 * transport drops an IP servername (dropIpServerName). A child process dials IP targets over
 * HTTP/2 through the factory and must print no warning, while the certificate is still checked
 * against the IP: a certificate without that IP in its SANs is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode, show } from './cli-run.js';

const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

const CHILD = `
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createControlPlaneClientFactory, createDevCertificateAuthority, GrpcHost, healthV1 } from ${JSON.stringify(DIST)};
const dir = process.argv[2];
const ca = await createDevCertificateAuthority();
const write = async (name, text) => { const file = join(dir, name); await writeFile(file, text); return file; };
const caFile = await write('ca.pem', ca.certPem);
const good = await ca.issue({ commonName: 'good', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], usage: 'both' });
const named = await ca.issue({ commonName: 'named', dnsNames: ['localhost'], usage: 'both' });
const client = await ca.issue({ commonName: 'client', usage: 'client' });
const serve = async (issued, host) => GrpcHost.start({ host, http3: false, tls: { certFile: await write(issued.serialHex + '.pem', issued.certPem), keyFile: await write(issued.serialHex + '.key', issued.keyPem), caFile } }, []);
const v4 = await serve(good, '127.0.0.1');
const v6 = await serve(good, '::1').catch(() => undefined);
const wrongName = await serve(named, '127.0.0.1');
const factory = createControlPlaneClientFactory({
  http3Transport: null,
  options: { profiles: { 'control-plane': { tls: { mode: 'mtls', certFile: await write('client.pem', client.certPem), keyFile: await write('client.key', client.keyPem), caFile } } } },
});
const check = (url) => factory.unary(healthV1.HealthDefinition, 'check', { service: '' }, { endpoint: url, deadlineMs: 5000 });
for (const host of [v4, v6]) if (host) console.log('ok', host.url, (await check(host.url)).protocol);
try { await check(wrongName.url); console.log('accepted', wrongName.url); } catch (error) { console.log('refused', error.code); }
await factory.dispose();
await Promise.all([v4, v6, wrongName].filter(Boolean).map((h) => h.close(1000)));
`;

describe('no DEP0123 warning when dialling an IP over HTTP/2', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omnirelay-ip-sni-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints no warning, and still checks the certificate against the IP', async () => {
    const script = join(dir, 'child.mjs');
    await writeFile(script, CHILD);
    const run = await runNode([script, dir]);
    const observed = {
      code: run.code,
      timedOut: run.timedOut,
      v4: /^ok https:\/\/127\.0\.0\.1:\d+ h2$/m.test(run.stdout),
      refused: /^refused TLS_PEER_NAME_MISMATCH$/m.exec(run.stdout)?.[0],
      stderr: run.stderr,
    };
    try {
      expect(observed).toEqual({ code: 0, timedOut: false, v4: true, refused: 'refused TLS_PEER_NAME_MISMATCH', stderr: '' });
    } catch (error) {
      (error as Error).message += `\n${show(run)}`;
      throw error;
    }
  });
});
