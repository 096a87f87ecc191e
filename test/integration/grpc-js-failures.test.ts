/**
 * How the HTTP/2 transport classifies grpc-js failures, each provoked for real on 127.0.0.1
 * with the installed @grpc/grpc-js and Node's TLS (issue defect 10). The structured signals
 * (channel state TRANSIENT_FAILURE for "no connection", the Node TLS error's `code` seen by our
 * secure connector, our identity check) and every text grpc-js-failures.ts still matches
 * are covered here: a grpc-js or Node upgrade that changes one of those texts, or stops
 * giving a code, fails a test here rather than changing what users get.
 */
import 'reflect-metadata';
import * as http2 from 'node:http2';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { resolveOptions } from '../../dist/config/schema.js';
import { RpcError, TlsError } from '../../dist/errors.js';
import { loadTlsMaterial } from '../../dist/tls/material.js';
import { parseEndpoint } from '../../dist/transport/endpoint.js';
import { GRPC_JS_CLOSED_BEFORE_SETTINGS, GRPC_JS_CONNECTION_DROPPED_DETAILS } from '../../dist/transport/http2/grpc-js-failures.js';
import { GrpcJsTransport } from '../../dist/transport/http2/grpc-js-transport.js';
import type { TransportConnection } from '../../dist/transport/types.js';
import { failureOf } from '../support/failure.js';
import { hostTls, issueToFiles, startOpenSslServer, startTestHost, type OpenSslServer, type TestHost } from '../support/hosts.js';
import { createTestPki, type Files, type TestPki } from '../support/pki-files.js';

type TlsInput = { mode: 'insecure' } | { mode: 'tls' | 'mtls'; caFile: string; certFile?: string; keyFile?: string; crlFiles?: string[]; checkRevocation?: boolean };

const PING = '/omnirelay.controlplane.v1.ControlPlane/Ping';
const transport = new GrpcJsTransport();
const open: TransportConnection[] = [];

/** A connection of the HTTP/2 transport to `url` with a profile using `tls`. */
function connect(url: string, tls: TlsInput): TransportConnection {
  const options = resolveOptions({ allowInsecure: true, profiles: { p: { http3: 'disable', connectTimeoutMs: 2_000, tls } } });
  const profile = options.profiles['p']!;
  const material = { ...loadTlsMaterial('p', profile.tls, new Date()), generation: 1 };
  const connection = transport.open({ endpoint: parseEndpoint(url), profileName: 'p', profile, tls: material, peerValidator: undefined });
  open.push(connection);
  return connection;
}

/** The error of one unary call on `connection` (an empty message: no server here decodes it). */
function callFailure(connection: TransportConnection): Promise<unknown> {
  return failureOf(() => connection.unary({ path: PING, message: new Uint8Array(), metadata: {}, deadline: Date.now() + 10_000, signal: undefined }));
}

function asRpcError(error: unknown): RpcError {
  if (!(error instanceof RpcError)) throw new Error(`expected an RpcError, got ${String(error)}`);
  return error;
}

function asTlsError(error: unknown): TlsError {
  if (!(error instanceof TlsError)) throw new Error(`expected a TlsError, got ${String(error)}`);
  return error;
}

/** The `code` of the Node error a TlsError was classified from. */
function causeCode(error: TlsError): unknown {
  return (error.cause as { code?: unknown } | undefined)?.code;
}

/** A plaintext HTTP/2 server answering every stream with `onStream`. */
async function h2cServer(onStream: (stream: http2.ServerHttp2Stream) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => undefined);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    onStream(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

afterAll(() => {
  for (const connection of open) connection.close();
});

describe('no connection: the channel is in TRANSIENT_FAILURE', () => {
  let closedPort: number;
  beforeAll(async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  it('a closed port (ECONNREFUSED) -> UNAVAILABLE, failure "connect"', async () => {
    const error = asRpcError(await callFailure(connect(`http://127.0.0.1:${closedPort}`, { mode: 'insecure' })));
    expect({ status: error.statusName, failure: error.failure }).toEqual({ status: 'UNAVAILABLE', failure: 'connect' });
    expect(error.details).toContain('ECONNREFUSED');
  });

  it('the same under a TLS profile: "connect", not a TLS error (no TLS socket was made)', async () => {
    const pki = await createTestPki();
    try {
      const error = asRpcError(await callFailure(connect(`https://127.0.0.1:${closedPort}`, { mode: 'tls', caFile: pki.caFile })));
      expect({ status: error.statusName, failure: error.failure }).toEqual({ status: 'UNAVAILABLE', failure: 'connect' });
    } finally {
      await pki.cleanup();
    }
  });

  it('ready() that gives up -> failure "connect"', async () => {
    const connection = connect(`http://127.0.0.1:${closedPort}`, { mode: 'insecure' });
    const error = asRpcError(await failureOf(() => connection.ready?.()));
    expect({ status: error.statusName, failure: error.failure }).toEqual({ status: 'UNAVAILABLE', failure: 'connect' });
  });

  it('an UNAVAILABLE status from the server itself is not a transport failure, whatever its text says', async () => {
    const server = await h2cServer((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'No connection established: cannot connect ECONNREFUSED' }, { endStream: true });
    });
    try {
      const error = asRpcError(await callFailure(connect(server.url, { mode: 'insecure' })));
      expect({ status: error.statusName, failure: error.failure }).toEqual({ status: 'UNAVAILABLE', failure: undefined });
    } finally {
      await server.close();
    }
  });
});

describe('texts grpc-js gives that have no structured counterpart', () => {
  it(`connection closed under a running call -> "${GRPC_JS_CONNECTION_DROPPED_DETAILS}", failure "stream" (the request may have reached the server)`, async () => {
    const server = await h2cServer((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.session?.destroy();
    });
    try {
      const error = asRpcError(await callFailure(connect(server.url, { mode: 'insecure' })));
      expect({ status: error.statusName, details: error.details, failure: error.failure }).toEqual({ status: 'UNAVAILABLE', details: GRPC_JS_CONNECTION_DROPPED_DETAILS, failure: 'stream' });
    } finally {
      await server.close();
    }
  });

  it('RST_STREAM REFUSED_STREAM -> failure "refused"', async () => {
    const server = await h2cServer((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    try {
      const error = asRpcError(await callFailure(connect(server.url, { mode: 'insecure' })));
      expect({ status: error.statusName, failure: error.failure, refused: error.refused }).toEqual({ status: 'UNAVAILABLE', failure: 'refused', refused: true });
    } finally {
      await server.close();
    }
  });

  it('GOAWAY with a last stream id below the call\'s stream -> failure "refused"', async () => {
    // Node's goaway() turns a last stream id of 0 into the last one it processed, so the
    // first call (stream 1) stays open and the GOAWAY sent on the second (stream 3) names 1.
    let first: () => void = () => undefined;
    const firstArrived = new Promise<void>((resolve) => (first = resolve));
    const server = await h2cServer((stream) => {
      if (stream.id === 1) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        first();
      } else {
        stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
      }
    });
    try {
      const connection = connect(server.url, { mode: 'insecure' });
      const held = callFailure(connection);
      await firstArrived;
      const error = asRpcError(await callFailure(connection));
      expect({ status: error.statusName, failure: error.failure, refused: error.refused }).toEqual({ status: 'UNAVAILABLE', failure: 'refused', refused: true });
      await server.close();
      await held;
    } finally {
      await server.close().catch(() => undefined);
    }
  });
});

describe('TLS verdicts, from the Node TLS error our secure connector saw (by code)', () => {
  const SERVER_SANS = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
  let pki: TestPki;
  let good: TestHost;
  let otherCa: TestHost;
  let wrongName: TestHost;
  let expired: TestHost;
  let revoked: TestHost;
  let plaintext: TestHost;
  let openssl: OpenSslServer;
  const hosts: TestHost[] = [];
  const url = (host: TestHost): string => `https://127.0.0.1:${host.port}`;
  const mtls = (client: Pick<Files, 'certFile' | 'keyFile'>, extra: Partial<TlsInput> = {}): TlsInput => ({ mode: 'mtls', caFile: pki.caFile, certFile: client.certFile, keyFile: client.keyFile, ...extra });

  beforeAll(async () => {
    pki = await createTestPki();
    const otherCaFiles = await issueToFiles(pki.otherCa, pki.dir, 'other-ca-server', { commonName: 'other-ca-server', ...SERVER_SANS, usage: 'server' });
    const start = async (name: string, leaf: Pick<Files, 'certFile' | 'keyFile'>): Promise<TestHost> => {
      const host = await startTestHost(name, hostTls(leaf, pki.caFile, { crlFiles: [pki.crlFile] }));
      hosts.push(host);
      return host;
    };
    good = await start('good', pki.server);
    otherCa = await start('other-ca', otherCaFiles);
    wrongName = await start('wrong-name', pki.wrongNameServer);
    expired = await start('expired', pki.expiredServer);
    revoked = await start('revoked', pki.revokedServer);
    plaintext = await startTestHost('plaintext', 'insecure');
    hosts.push(plaintext);
    openssl = await startOpenSslServer({ certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile, crlFile: pki.crlFile });
  });

  afterAll(async () => {
    for (const connection of open.splice(0)) connection.close();
    await openssl?.close();
    await Promise.all(hosts.map((h) => h.close(200)));
    await pki?.cleanup();
  });

  async function tlsFailure(target: string, tls: TlsInput): Promise<TlsError> {
    return asTlsError(await callFailure(connect(target, tls)));
  }

  it('untrusted server certificate -> TLS_PEER_UNTRUSTED from Node code UNABLE_TO_VERIFY_LEAF_SIGNATURE', async () => {
    const error = await tlsFailure(url(otherCa), mtls(pki.client));
    expect({ code: error.code, verifyError: error.verifyError, cause: causeCode(error) }).toEqual({ code: 'TLS_PEER_UNTRUSTED', verifyError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', cause: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('expired server certificate -> TLS_PEER_EXPIRED from Node code CERT_HAS_EXPIRED', async () => {
    const error = await tlsFailure(url(expired), mtls(pki.client));
    expect({ code: error.code, verifyError: error.verifyError, cause: causeCode(error) }).toEqual({ code: 'TLS_PEER_EXPIRED', verifyError: 'CERT_HAS_EXPIRED', cause: 'CERT_HAS_EXPIRED' });
  });

  it('revoked server certificate (CRL) -> TLS_REVOKED from Node code CERT_REVOKED', async () => {
    const error = await tlsFailure(url(revoked), mtls(pki.client, { crlFiles: [pki.crlFile], checkRevocation: true }));
    expect({ code: error.code, verifyError: error.verifyError, cause: causeCode(error) }).toEqual({ code: 'TLS_REVOKED', verifyError: 'CERT_REVOKED', cause: 'CERT_REVOKED' });
  });

  it('wrong name -> TLS_PEER_NAME_MISMATCH (our checkServerIdentity verdict)', async () => {
    const error = await tlsFailure(url(wrongName), mtls(pki.client));
    expect({ code: error.code, verifyError: error.verifyError }).toEqual({ code: 'TLS_PEER_NAME_MISMATCH', verifyError: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('a plaintext server dialled with TLS -> TLS_HANDSHAKE_FAILED from Node code ERR_SSL_WRONG_VERSION_NUMBER', async () => {
    const error = await tlsFailure(url(plaintext), mtls(pki.client));
    expect({ code: error.code, cause: causeCode(error) }).toEqual({ code: 'TLS_HANDSHAKE_FAILED', cause: 'ERR_SSL_WRONG_VERSION_NUMBER' });
  });

  it('no client certificate to a server requiring one (Node: alert certificate_required after the TLS 1.3 handshake) -> TLS_CLIENT_CERT_REQUIRED', async () => {
    const error = await tlsFailure(url(good), { mode: 'tls', caFile: pki.caFile });
    expect({ code: error.code, cause: causeCode(error) }).toEqual({ code: 'TLS_CLIENT_CERT_REQUIRED', cause: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
  });

  it('client certificate rejected with an alert (OpenSSL server: unknown_ca) -> TLS_CLIENT_CERT_REJECTED', async () => {
    const error = await tlsFailure(openssl.url, mtls(pki.untrustedClient));
    expect({ code: error.code, cause: causeCode(error) }).toEqual({ code: 'TLS_CLIENT_CERT_REJECTED', cause: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' });
  });

  it('revoked client certificate rejected with an alert (OpenSSL server: certificate_revoked) -> TLS_REVOKED', async () => {
    const error = await tlsFailure(openssl.url, mtls(pki.revokedClient));
    expect({ code: error.code, cause: causeCode(error) }).toEqual({ code: 'TLS_REVOKED', cause: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED' });
  });

  it(`client certificate rejected after the TLS 1.3 handshake without an alert (Node server) -> TLS_CLIENT_CERT_REJECTED, read from grpc-js's "${GRPC_JS_CLOSED_BEFORE_SETTINGS}"`, async () => {
    const error = await tlsFailure(url(good), mtls(pki.untrustedClient));
    expect(error.code).toBe('TLS_CLIENT_CERT_REJECTED');
    expect(error.message).toContain(`Last error: ${GRPC_JS_CLOSED_BEFORE_SETTINGS} (`);
  });

  it('(control) the good client certificate: the call is served', async () => {
    const result = await connect(url(good), mtls(pki.client)).unary({ path: PING, message: new Uint8Array(), metadata: {}, deadline: Date.now() + 10_000, signal: undefined });
    expect(result.protocol).toBe('h2');
    expect(good.calls.length).toBe(1);
  });
});

describe("unary outcomes are grpc-js's own (the transport calls the channel, not Client.makeUnaryRequest)", () => {
  /** A gRPC response frame carrying `n` zero bytes. */
  const frame = (n: number): Buffer => {
    const bytes = Buffer.alloc(5 + n);
    bytes.writeUInt32BE(n, 1);
    return bytes;
  };

  /** A server answering every call with `messages` (message sizes) then status OK and a custom trailer. */
  const answering = (messages: number[]): Promise<{ url: string; close(): Promise<void> }> =>
    h2cServer((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-header': 'h' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-trailer': 't' }));
      for (const n of messages) stream.write(frame(n));
      stream.end();
    });

  /** What grpc-js's Client reports for the same call: status and details. */
  async function throughClient(url: string, deadline: number): Promise<{ status: number; details: string } | { message: number }> {
    const client = new Client(url.replace('http://', ''), credentials.createInsecure());
    try {
      return await new Promise((resolve) =>
        client.makeUnaryRequest('/a.B/C', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new Metadata(), { deadline }, (error, response) =>
          resolve(error ? { status: error.code, details: error.details } : { message: response?.length ?? -1 }),
        ),
      );
    } finally {
      client.close();
    }
  }

  const call = (connection: TransportConnection, deadline: number, signal?: AbortSignal) => connection.unary({ path: '/a.B/C', message: new Uint8Array(), metadata: {}, deadline, signal });

  it('one message: the message, headers and trailers read lazily, the peer address', async () => {
    const server = await answering([3]);
    try {
      const result = await call(connect(server.url, { mode: 'insecure' }), Date.now() + 10_000);
      expect(await throughClient(server.url, Date.now() + 10_000)).toEqual({ message: 3 });
      expect({ length: result.message.byteLength, header: result.headers['x-header'], trailer: result.trailers['x-trailer'], protocol: result.protocol }).toEqual({ length: 3, header: 'h', trailer: 't', protocol: 'h2' });
      expect(result.peer.address).toBe(server.url.replace('http://', ''));
      expect(result.peer.certificate).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('deadline Infinity: served', async () => {
    const server = await answering([1]);
    try {
      expect((await call(connect(server.url, { mode: 'insecure' }), Infinity)).message.byteLength).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('status OK without a message -> UNIMPLEMENTED "No message received", as through Client', async () => {
    const server = await answering([]);
    try {
      const error = asRpcError(await failureOf(() => call(connect(server.url, { mode: 'insecure' }), Date.now() + 10_000)));
      const expected = await throughClient(server.url, Date.now() + 10_000);
      expect({ status: error.status, details: error.details }).toEqual(expected);
      expect(expected).toEqual({ status: 12, details: 'No message received' });
    } finally {
      await server.close();
    }
  });

  it('two messages -> what Client gives: grpc-js reads one, so the call runs to its deadline (DEADLINE_EXCEEDED)', async () => {
    const server = await answering([1, 2]);
    try {
      const error = asRpcError(await failureOf(() => call(connect(server.url, { mode: 'insecure' }), Date.now() + 300)));
      const expected = await throughClient(server.url, Date.now() + 300);
      expect({ status: error.status, grpcJs: 'status' in expected ? expected.status : undefined }).toEqual({ status: 4, grpcJs: 4 });
    } finally {
      await server.close();
    }
  });

  it('cancelled by its AbortSignal (before and during the call) or by close() -> CANCELLED "Cancelled on client"', async () => {
    const server = await h2cServer((stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc' })); // never ends
    try {
      const connection = connect(server.url, { mode: 'insecure' });
      const aborted = new AbortController();
      aborted.abort();
      const during = new AbortController();
      const running = failureOf(() => call(connection, Infinity, during.signal));
      const closing = failureOf(() => call(connection, Infinity));
      const before = asRpcError(await failureOf(() => call(connection, Infinity, aborted.signal)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      during.abort();
      const whileRunning = asRpcError(await running);
      connection.close();
      const byClose = asRpcError(await closing);
      for (const error of [before, whileRunning, byClose]) expect({ status: error.statusName, details: error.details }).toEqual({ status: 'CANCELLED', details: 'Cancelled on client' });
    } finally {
      await server.close();
    }
  });
});
