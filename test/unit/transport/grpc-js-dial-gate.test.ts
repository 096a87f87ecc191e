/**
 * Pins the grpc-js hook `gateDials` relies on (issue 13, defect 4): grpc-js asks the
 * credentials' secure connector `waitForReady()` before it opens a TCP socket, so credentials
 * whose connections are all closed can refuse a dial before anything leaves the process.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { Client, credentials } from '@grpc/grpc-js';
import { dropIpServerName, gateDials } from '../../../src/transport/http2/grpc-js-transport.js';

async function countingServer(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function waitForReady(client: Client, ms: number): Promise<Error | undefined> {
  return new Promise((resolve) => client.waitForReady(Date.now() + ms, (error) => resolve(error ?? undefined)));
}

describe('gateDials (grpc-js dial gate)', () => {
  it('lets grpc-js dial while the gate is open and opens no socket once it is shut', async () => {
    const server = await countingServer();
    try {
      let open = true;
      const creds = gateDials(credentials.createInsecure(), () => open);
      const options = { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 100, 'grpc.use_local_subchannel_pool': 1 };
      const dialling = new Client(`dns:127.0.0.1:${server.port}`, creds, options);
      await waitForReady(dialling, 300);
      dialling.close();
      expect(server.accepted()).toBeGreaterThan(0);

      open = false;
      const before = server.accepted();
      const gated = new Client(`dns:127.0.0.1:${server.port}`, creds, options);
      expect(await waitForReady(gated, 500)).toBeInstanceOf(Error);
      gated.close();
      expect(server.accepted()).toBe(before);
    } finally {
      await server.close();
    }
  });
});

describe('dropIpServerName (no IP address as TLS SNI, RFC 6066)', () => {
  const connectorFor = (path: string): { connectionOptions?: { servername?: string; host?: string } } =>
    credentials.createSsl()._createSecureConnector({ scheme: 'dns', path }, {}) as unknown as { connectionOptions?: { servername?: string; host?: string } };

  it('finds the options grpc-js passes to tls.connect, and removes an IP servername while the host stays', () => {
    for (const [path, host] of [['127.0.0.1:443', '127.0.0.1'], ['[::1]:443', '::1']] as const) {
      const connector = connectorFor(path);
      expect(connector.connectionOptions?.servername).toBe(host); // what grpc-js does: DEP0123 at tls.connect
      expect(dropIpServerName(connector)).toBe(true);
      expect(connector.connectionOptions).not.toHaveProperty('servername');
      expect(connector.connectionOptions?.host).toBe(host); // Node checks the certificate against it
    }
  });

  it('keeps a DNS name as the servername', () => {
    const connector = connectorFor('localhost:443');
    expect(dropIpServerName(connector)).toBe(true);
    expect(connector.connectionOptions?.servername).toBe('localhost');
  });
});
