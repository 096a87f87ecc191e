import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import {
  connectivityState,
  credentials,
  Client,
  Metadata,
  type ChannelCredentials,
  type ChannelInterface,
  type ChannelOptions,
  type ClientDuplexStream,
  type InterceptingListener,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';

import { RpcError, TlsError } from '../../errors.js';
import { CertificateCache } from '../../tls/certificate-cache.js';
import { classifyTlsFailure, clientCertificateVerdict } from '../../tls/classify.js';
import type { TlsMaterial } from '../../tls/material.js';
import { serverIdentityCheck } from '../../tls/peer-verification.js';
import { GRPC_STATUS, statusName } from '../../grpc/status.js';
import { closedBeforeSettings, isConnectionDropped, isRefusedStream } from './grpc-js-failures.js';
import type { CallMetadata, DialTarget, PeerIdentity, Transport, TransportConnection, WireCall, WireStream, WireStreamCall, WireUnaryResult } from '../types.js';
import { failedWireStream, RequestPump, StreamEnd, wireStream } from '../wire-stream.js';

const identity = (bytes: Buffer): Buffer => bytes;

// What grpc-js says about a refused stream, and every other text we read: grpc-js-failures.ts.
export { GRPC_JS_REFUSED_STREAM_DETAILS } from './grpc-js-failures.js';

/** Credentials shared per (TLS generation, endpoint) so grpc-js can reuse subchannels. */
interface SharedCredentials {
  readonly credentials: ChannelCredentials;
  /** The last verification failure our identity check saw, with when. */
  lastFailure: { error: TlsError; at: number } | undefined;
  /** When a handshake last completed with the peer verified (performance.now()). */
  lastVerifiedAt: number;
  /** The Node TLS error that ended the last connection attempt, if one did (see {@link gateDials}). */
  lastConnectError: Error | undefined;
  /** Open connections built on these credentials; at 0 grpc-js may not dial with them (see {@link gateDials}). */
  open: number;
}

type SecureConnectorFactory = ChannelCredentials['_createSecureConnector'];

/**
 * The reason grpc-js is given when it tries to dial with credentials whose every connection
 * is closed. A unit test pins the hook this relies on to the installed grpc-js.
 */
export const GRPC_JS_DIAL_AFTER_CLOSE = 'OmniRelay: every connection using these credentials is closed; no new dial';

/** What {@link gateDials} reports about each connection attempt it lets through. */
export interface DialObserver {
  /** A connection attempt starts (before its TCP connect). */
  attempt(): void;
  /** The attempt's TLS failed (the connector's rejection), or its TLS socket failed afterwards (an alert after a TLS 1.3 handshake). */
  failed(error: Error): void;
}

/**
 * Lets grpc-js dial with `creds` only while `mayDial()` holds. grpc-js (1.14) keeps a
 * subchannel whose channel was closed in its global pool until a 10 s sweep, and a subchannel
 * in TRANSIENT_FAILURE that had been asked to reconnect dials once more when its backoff timer
 * ends, even with no channel left (after `close()`, and so after `dispose()`): against a peer
 * that fails TLS or is down, a dial every ~3 s. grpc-js asks the credentials' secure connector
 * `waitForReady()` before it opens the TCP socket (`Http2SubchannelConnector.connect`), so a
 * rejection there is a dial that never leaves the process.
 */
export function gateDials(creds: ChannelCredentials, mayDial: () => boolean, observer?: DialObserver): ChannelCredentials {
  const create: SecureConnectorFactory = creds._createSecureConnector.bind(creds);
  creds._createSecureConnector = (...args: Parameters<SecureConnectorFactory>) => {
    const connector = create(...args);
    dropIpServerName(connector);
    // The connector sees the attempt's TLS socket and its Node errors (with `code`), which
    // grpc-js passes on only as message text: recorded here for the transport to classify.
    const failed = (error: unknown): void => {
      if (typeof error === 'object' && error !== null) observer?.failed(error as Error);
    };
    return {
      connect: (socket) =>
        connector.connect(socket).then(
          (result) => {
            if (observer !== undefined) result.socket.once('error', failed);
            return result;
          },
          (error: unknown) => {
            failed(error);
            throw error;
          },
        ),
      waitForReady: async () => {
        if (!mayDial()) throw new Error(GRPC_JS_DIAL_AFTER_CLOSE);
        await connector.waitForReady();
        if (!mayDial()) throw new Error(GRPC_JS_DIAL_AFTER_CLOSE);
        observer?.attempt();
      },
      getCallCredentials: () => connector.getCallCredentials(),
      destroy: () => connector.destroy(),
    };
  };
  return creds;
}

/**
 * grpc-js (1.14) sets the TLS `servername` (SNI) to the target's host, an IP address for an IP
 * target, and Node then prints DEP0123 ("Setting the TLS ServerName to an IP address is not
 * permitted by RFC 6066") once per process. RFC 6066 §3 forbids IP addresses in SNI, so we drop
 * it there: without `servername`, Node checks the certificate against the connection's `host`
 * (grpc-js sets it to the same IP), so the name check is unchanged. The options grpc-js's
 * secure connector passes to `tls.connect` are read from its `connectionOptions` field;
 * test/unit/transport/grpc-js-dial-gate.test.ts pins that to the installed grpc-js, and
 * test/integration/ip-sni-warning.test.ts checks that no warning comes back.
 * Returns whether the connector had such options (false: grpc-js changed shape).
 */
export function dropIpServerName(connector: object): boolean {
  const options = (connector as { connectionOptions?: { servername?: unknown } }).connectionOptions;
  if (typeof options !== 'object' || options === null) return false;
  if (typeof options.servername === 'string' && isIP(options.servername) !== 0) delete options.servername;
  return true;
}

function toMetadata(values: CallMetadata): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(values)) metadata.add(key, value);
  return metadata;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function fromMetadata(metadata: Metadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (metadata === undefined) return out;
  for (const [key, value] of Object.entries(metadata.getMap())) out[key] = typeof value === 'string' ? value : value.toString('base64');
  return out;
}

/** The trailers a grpc-js call error carries ({} for any other error). */
function trailersOf(error: unknown): Record<string, string> {
  const metadata = (error as { metadata?: unknown } | undefined)?.metadata;
  return metadata instanceof Metadata ? fromMetadata(metadata) : {};
}

function channelOptions(target: DialTarget): ChannelOptions {
  const { profile, tls } = target;
  const options: ChannelOptions = {
    'grpc.max_send_message_length': profile.limits.maxSendMessageBytes,
    'grpc.max_receive_message_length': profile.limits.maxReceiveMessageBytes,
    'grpc.keepalive_time_ms': profile.keepalive.timeMs,
    'grpc.keepalive_timeout_ms': profile.keepalive.timeoutMs,
    'grpc.keepalive_permit_without_calls': profile.keepalive.permitWithoutCalls ? 1 : 0,
    // Retries are ours (same policy for HTTP/2 and HTTP/3), so grpc-js must not add its own.
    'grpc.enable_retries': 0,
    'grpc.initial_reconnect_backoff_ms': Math.min(1000, profile.connectTimeoutMs),
    'grpc.max_reconnect_backoff_ms': profile.connectTimeoutMs,
  };
  if (tls.serverNameOverride !== undefined) {
    options['grpc.ssl_target_name_override'] = tls.serverNameOverride;
    options['grpc.default_authority'] = tls.serverNameOverride;
  }
  return options;
}

/** A grpc-js call as the channel creates it (below `Client`'s interceptors and EventEmitter). */
type ChannelCall = ReturnType<ChannelInterface['createCall']>;

/** What a peer is read from: a channel call or one of grpc-js's client call objects. */
interface PeerSource {
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null;
}

/** A call's peer, read lazily: most callers never look at it, and the certificate costs a lookup. */
class GrpcJsPeer implements PeerIdentity {
  readonly #call: PeerSource | undefined;
  readonly #certificates: CertificateCache;
  #address: string | undefined;
  #certificate: X509Certificate | undefined;
  #certificateRead = false;

  constructor(call: PeerSource | undefined, certificates: CertificateCache) {
    this.#call = call;
    this.#certificates = certificates;
  }

  get address(): string | undefined {
    this.#address ??= this.#call?.getPeer();
    return this.#address;
  }

  get certificate(): X509Certificate | undefined {
    if (!this.#certificateRead) {
      this.#certificateRead = true;
      const raw = this.#call?.getAuthContext()?.sslPeerCertificate?.raw;
      this.#certificate = raw !== undefined ? this.#certificates.get(raw) : undefined;
    }
    return this.#certificate;
  }

  /** The accessors live on the prototype: JSON gets them from here. */
  toJSON(): { address: string | undefined; certificate: X509Certificate | undefined } {
    return { address: this.address, certificate: this.certificate };
  }
}

/** A unary call's result; its metadata is converted only if the caller reads it. */
class GrpcJsUnaryResult implements WireUnaryResult {
  readonly message: Buffer;
  readonly peer: PeerIdentity;
  readonly #headerMetadata: Metadata | undefined;
  readonly #trailerMetadata: Metadata;
  #headers: Record<string, string> | undefined;
  #trailers: Record<string, string> | undefined;

  constructor(message: Buffer, headers: Metadata | undefined, trailers: Metadata, peer: PeerIdentity) {
    this.message = message;
    this.peer = peer;
    this.#headerMetadata = headers;
    this.#trailerMetadata = trailers;
  }

  get headers(): Record<string, string> {
    return (this.#headers ??= fromMetadata(this.#headerMetadata));
  }

  get trailers(): Record<string, string> {
    return (this.#trailers ??= fromMetadata(this.#trailerMetadata));
  }

  get protocol(): 'h2' {
    return 'h2';
  }
}

/**
 * HTTP/2 through @grpc/grpc-js. One grpc-js Client (one channel, one connection) per
 * endpoint and generation; TLS from the shared material, with CRLs enforced by OpenSSL
 * (createFromSecureContext) and the name + custom checks in checkServerIdentity.
 * Never builds insecure credentials unless the profile's mode is `insecure`.
 */
export class GrpcJsTransport implements Transport {
  readonly protocol = 'h2' as const;
  readonly #credentials = new WeakMap<TlsMaterial, Map<string, SharedCredentials>>();

  open(target: DialTarget): TransportConnection {
    return new GrpcJsConnection(target, this.#credentialsFor(target));
  }

  #credentialsFor(target: DialTarget): SharedCredentials {
    let byEndpoint = this.#credentials.get(target.tls);
    if (byEndpoint === undefined) {
      byEndpoint = new Map();
      this.#credentials.set(target.tls, byEndpoint);
    }
    const key = target.endpoint.authority;
    const existing = byEndpoint.get(key);
    if (existing !== undefined) return existing;
    const { tls } = target;
    let shared: SharedCredentials;
    if (tls.mode === 'insecure' || tls.secureContext === undefined) {
      const insecure: SharedCredentials = { credentials: credentials.createInsecure(), lastFailure: undefined, lastVerifiedAt: -1, lastConnectError: undefined, open: 0 };
      gateDials(insecure.credentials, () => insecure.open > 0);
      shared = insecure;
    } else {
      const holder: { shared?: SharedCredentials } = {};
      const check = serverIdentityCheck({
        endpoint: target.endpoint.authority,
        profile: target.profileName,
        validator: target.peerValidator,
        onFailure: (error) => {
          if (holder.shared !== undefined) holder.shared.lastFailure = { error, at: performance.now() };
        },
        onVerified: () => {
          if (holder.shared !== undefined) holder.shared.lastVerifiedAt = performance.now();
        },
      });
      const secure: SharedCredentials = { credentials: credentials.createFromSecureContext(tls.secureContext, { checkServerIdentity: check }), lastFailure: undefined, lastVerifiedAt: -1, lastConnectError: undefined, open: 0 };
      gateDials(secure.credentials, () => secure.open > 0, {
        attempt: () => {
          secure.lastConnectError = undefined;
        },
        failed: (error) => {
          secure.lastConnectError = error;
        },
      });
      shared = secure;
      holder.shared = shared;
    }
    byEndpoint.set(key, shared);
    return shared;
  }
}

class GrpcJsConnection implements TransportConnection {
  readonly protocol = 'h2' as const;
  readonly #client: Client;
  readonly #target: DialTarget;
  readonly #shared: SharedCredentials;
  readonly #calls = new Set<{ cancel(): void }>();
  readonly #certificates = new CertificateCache(16);
  #closed = false;

  constructor(target: DialTarget, shared: SharedCredentials) {
    this.#target = target;
    this.#shared = shared;
    const { host, port } = target.endpoint;
    const address = host.includes(':') ? `ipv6:[${host}]:${port}` : `dns:${host}:${port}`;
    this.#client = new Client(address, shared.credentials, channelOptions(target));
    shared.open++;
  }

  /**
   * One unary call on the channel directly, as grpc-js's `Client.makeUnaryRequest` makes it
   * minus what we do not use (interceptors, the caller-stack `Error` it captures per call, its
   * EventEmitter): start with the listener, one read, the message, half-close. The outcomes are
   * grpc-js's: OK without a message is UNIMPLEMENTED "No message received"; a second message
   * is never delivered (one read is requested), so such a call ends only at its deadline, as
   * through `Client` (the "Too many responses received" check is kept as grpc-js has it);
   * cancellation is CANCELLED "Cancelled on client".
   */
  unary(call: WireCall): Promise<WireUnaryResult> {
    const started = performance.now();
    return new Promise<WireUnaryResult>((resolve, reject) => {
      if (this.#closed) {
        reject(this.#rpcErrorClosed());
        return;
      }
      const grpcCall: ChannelCall = this.#client.getChannel().createCall(call.path, call.deadline, null, null, null);
      const signal = call.signal;
      // Tracked so close() cancels it; `cancel` is also the abort listener.
      const running = { cancel: (): void => grpcCall.cancelWithStatus(GRPC_STATUS.CANCELLED, 'Cancelled on client') };
      let headers: Metadata | undefined;
      let response: Buffer | undefined;
      let settled = false;
      const listener: InterceptingListener = {
        onReceiveMetadata: (metadata: Metadata) => {
          headers = metadata;
        },
        onReceiveMessage: (message: Buffer) => {
          if (response !== undefined) grpcCall.cancelWithStatus(GRPC_STATUS.UNIMPLEMENTED, 'Too many responses received');
          response = message;
        },
        onReceiveStatus: (status: StatusObject) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', running.cancel);
          this.#calls.delete(running);
          // A failed call's trailers travel with its error (RpcError.context.trailers), as over HTTP/3.
          const code: number = status.code;
          if (code !== GRPC_STATUS.OK) {
            reject(this.#toError(status, started, fromMetadata(status.metadata), headers !== undefined));
          } else if (response === undefined) {
            reject(this.#toError({ code: GRPC_STATUS.UNIMPLEMENTED, details: 'No message received' }, started, {}, headers !== undefined));
          } else {
            resolve(new GrpcJsUnaryResult(response, headers, status.metadata, new GrpcJsPeer(grpcCall, this.#certificates)));
          }
        },
      };
      this.#calls.add(running);
      // The order of Client.makeUnaryRequest (the read is requested as the call starts).
      grpcCall.start(toMetadata(call.metadata), listener);
      grpcCall.startRead();
      grpcCall.sendMessageWithContext({}, toBuffer(call.message));
      grpcCall.halfClose();
      if (signal !== undefined) {
        if (signal.aborted) running.cancel();
        else signal.addEventListener('abort', running.cancel, { once: true });
      }
    });
  }

  async *serverStream(call: WireCall): AsyncIterable<Uint8Array> {
    if (this.#closed) {
      throw new RpcError(GRPC_STATUS.UNAVAILABLE, 'UNAVAILABLE', 'connection closed', { endpoint: this.#target.endpoint.authority, protocol: 'h2', failure: 'connect' });
    }
    const started = performance.now();
    const stream = this.#client.makeServerStreamRequest<Buffer, Buffer>(
      call.path,
      identity,
      identity,
      toBuffer(call.message),
      toMetadata(call.metadata),
      { deadline: call.deadline },
    );
    this.#calls.add(stream);
    const onAbort = (): void => stream.cancel();
    if (call.signal?.aborted === true) stream.cancel();
    else call.signal?.addEventListener('abort', onAbort, { once: true });
    let responded = false;
    stream.once('metadata', () => {
      responded = true;
    });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        responded = true;
        yield chunk;
      }
    } catch (error) {
      throw this.#toError(error as ServiceError, started, trailersOf(error), responded);
    } finally {
      call.signal?.removeEventListener('abort', onAbort);
      this.#calls.delete(stream);
      stream.cancel();
    }
  }

  /**
   * Client-streaming or bidi call as a grpc-js duplex call (the wire is the same for both). The
   * request pump writes while `write()` returns true and waits for 'drain' otherwise, so
   * grpc-js holds at most its writable high-water mark plus what HTTP/2 flow control took.
   */
  stream(call: WireStreamCall): WireStream {
    if (this.#closed) return failedWireStream(this.#rpcErrorClosed());
    const end = new StreamEnd();
    const started = performance.now();
    const duplex = this.#client.makeBidiStreamRequest<Uint8Array, Buffer>(call.path, toBuffer, identity, toMetadata(call.metadata), { deadline: call.deadline });
    // A failure of ours (the request iterable threw, a message too large) ends the call with this error.
    const local: { error?: RpcError } = {};
    const fail = (status: number, details: string): void => {
      local.error ??= new RpcError(status, statusName(status), details, { endpoint: this.#target.endpoint.authority, protocol: 'h2' });
      duplex.cancel();
    };
    const responses = this.#runStream(call, duplex, end, local, started, fail);
    return wireStream(responses, end, this.#peerOf(duplex), () => fail(GRPC_STATUS.CANCELLED, 'the caller stopped reading the responses'));
  }

  #rpcErrorClosed(): RpcError {
    return new RpcError(GRPC_STATUS.UNAVAILABLE, 'UNAVAILABLE', 'connection closed', { endpoint: this.#target.endpoint.authority, protocol: 'h2', failure: 'connect' });
  }

  async *#runStream(
    call: WireStreamCall,
    duplex: ClientDuplexStream<Uint8Array, Buffer>,
    end: StreamEnd,
    local: { error?: RpcError },
    started: number,
    fail: (status: number, details: string) => void,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    this.#calls.add(duplex);
    let responded = false;
    let trailers: Record<string, string> = {};
    duplex.on('metadata', (metadata: Metadata) => {
      responded = true;
      end.gotHeaders(fromMetadata(metadata));
    });
    duplex.on('status', (status: { metadata?: Metadata }) => {
      trailers = fromMetadata(status.metadata);
    });
    const onAbort = (): void => duplex.cancel();
    if (call.signal?.aborted === true) duplex.cancel();
    else call.signal?.addEventListener('abort', onAbort, { once: true });
    const pump = new RequestPump(
      call.messages,
      {
        write: (message) => (duplex.write(message) ? undefined : new Promise<void>((resolve) => duplex.once('drain', resolve))),
        end: () => void duplex.end(),
      },
      this.#target.profile.limits.maxSendMessageBytes,
      (failure) => fail(failure.status, failure.details),
    );
    pump.start();
    let finished = false;
    try {
      for await (const chunk of duplex as AsyncIterable<Buffer>) {
        responded = true;
        yield chunk;
      }
      finished = true;
    } catch (error) {
      const serviceError = error as ServiceError;
      trailers = { ...trailers, ...trailersOf(error) };
      if (local.error !== undefined) throw new RpcError(local.error.status, local.error.statusName, local.error.details, { ...local.error.context, trailers });
      throw this.#toError(serviceError, started, trailers, responded);
    } finally {
      call.signal?.removeEventListener('abort', onAbort);
      this.#calls.delete(duplex);
      pump.stop();
      if (!finished) duplex.cancel();
      end.finish(trailers);
    }
  }

  /**
   * Resolves once the channel is READY (dialling it if needed), within the profile's
   * `connectTimeoutMs`. Not grpc-js's `Client.waitForReady`: a wait still pending when the
   * channel closes asks the closed channel to connect again (`getConnectivityState(true)` on
   * the SHUTDOWN notification restarts its destroyed load balancer, which then redials for
   * ever). This one stops at `close()` without touching the channel.
   *
   * A TLS failure is a definite answer (the peer's certificate, its name, our client
   * certificate): it rejects at once with its TlsError instead of waiting out the connect
   * timeout while grpc-js reconnects. grpc-js does not expose why a connection attempt failed,
   * so when the channel enters TRANSIENT_FAILURE a health check is started without waiting for
   * readiness: grpc-js fails it at once with the last connection error, nothing is sent
   * (should the channel have become ready meanwhile, the server answers a harmless health check).
   */
  ready(): Promise<void> {
    const started = performance.now();
    const deadline = Date.now() + this.#target.profile.connectTimeoutMs;
    const channel = this.#client.getChannel();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error): void => {
        if (settled) return;
        settled = true;
        if (error === undefined) resolve();
        else reject(error);
      };
      const fail = (message: string): void => settle(this.#toError({ code: GRPC_STATUS.UNAVAILABLE, details: `No connection established: ${message}` }, started, {}, false, true));
      const check = (error?: Error): void => {
        if (settled) return;
        if (this.#closed) return fail('connection closed');
        if (error !== undefined) return fail('Failed to connect before the deadline');
        const state = channel.getConnectivityState(true);
        if (state === connectivityState.READY) return settle();
        if (state === connectivityState.SHUTDOWN) return fail('connection closed');
        if (state === connectivityState.TRANSIENT_FAILURE && this.#target.tls.mode !== 'insecure') this.#lastConnectError(started, (tls) => settle(tls));
        channel.watchConnectivityState(state, deadline, check);
      };
      check();
    });
  }

  /** Calls `onTls` with the TLS failure that ended the last connection attempt, if that is what ended it. */
  #lastConnectError(started: number, onTls: (error: TlsError) => void): void {
    if (this.#closed) return;
    // Tracked like a call, so close() cancels it: nothing of ours outlives the connection.
    const probe = this.#client.makeUnaryRequest<Buffer, Buffer>('/grpc.health.v1.Health/Check', identity, identity, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 1_000 }, (error) => {
      this.#calls.delete(probe);
      if (error === null) return;
      const typed = this.#toError(error, started, {}, false);
      if (typed instanceof TlsError) onTls(typed);
    });
    this.#calls.add(probe);
  }

  /** Read lazily: most callers never look at the peer, and reading it costs a certificate lookup. */
  #peerOf(call: PeerSource | undefined): PeerIdentity {
    return new GrpcJsPeer(call, this.#certificates);
  }

  /**
   * `responded`: response headers or messages arrived (the server was processing the call).
   * `unconnected`: the caller knows no connection was made (`ready()` gave up).
   * Text grpc-js gives is read only through grpc-js-failures.ts, where nothing structured exists.
   */
  #toError(error: Pick<ServiceError, 'code' | 'details'> & { message?: string } | undefined, started: number, trailers: Record<string, string>, responded: boolean, unconnected = false): Error {
    const endpoint = this.#target.endpoint.authority;
    const code: number = error?.code ?? GRPC_STATUS.UNKNOWN;
    const details = error?.details ?? error?.message ?? 'unknown error';
    if (code === GRPC_STATUS.UNAVAILABLE && isRefusedStream(details) && !responded) {
      return new RpcError(code, statusName(code), 'the server refused the request without processing it (HTTP/2 RST_STREAM REFUSED_STREAM, or a GOAWAY whose last stream id is below this stream)', {
        endpoint,
        protocol: 'h2',
        failure: 'refused',
        trailers,
      });
    }
    // grpc-js fails a call for want of a connection only from pick_first's UnavailablePicker,
    // which comes with the channel state TRANSIENT_FAILURE and stays until a connection is READY.
    const noConnection = code === GRPC_STATUS.UNAVAILABLE && !responded && (unconnected || this.#client.getChannel().getConnectivityState(false) === connectivityState.TRANSIENT_FAILURE);
    if (code === GRPC_STATUS.UNAVAILABLE && this.#target.tls.mode !== 'insecure') {
      const recorded = this.#shared.lastFailure;
      if (recorded !== undefined && recorded.at >= started - 1) return recorded.error;
      if (noConnection) {
        // The Node TLS error of the last connection attempt (our connector saw it), by its code.
        const classified = classifyTlsFailure(this.#shared.lastConnectError, { peer: endpoint, profile: this.#target.profileName });
        if (classified !== undefined) return clientCertificateVerdict(classified, this.#target.tls.mode === 'mtls');
        // TLS 1.3: the client's handshake completes before the server has checked our
        // certificate. A server that rejects it without an alert (Node's TLS servers verify
        // after the handshake, then close) shows up as a connection that closed right after a
        // verified handshake and before HTTP/2 settings.
        if (this.#target.tls.mode === 'mtls' && closedBeforeSettings(details) && this.#shared.lastVerifiedAt >= started) {
          // Our own certificate being past its expiry is the likeliest reason, and one we can see: say so (HTTP/3 learns it from the server's alert 45).
          const ours = this.#target.tls.clientCertificate;
          if (ours !== undefined && new Date(ours.validTo).getTime() <= Date.now()) {
            return new TlsError(
              'TLS_CLIENT_CERT_EXPIRED',
              `Peer ${endpoint} closed the connection right after the TLS handshake (profile "${this.#target.profileName}"): our client certificate (${ours.subject.replace(/\n/g, ', ')}) expired on ${new Date(ours.validTo).toISOString()}. Renew it; the new files are picked up live. Underlying error: ${details}`,
              { peer: endpoint, profile: this.#target.profileName },
            );
          }
          return new TlsError(
            'TLS_CLIENT_CERT_REJECTED',
            `Peer ${endpoint} closed the connection right after the TLS handshake (profile "${this.#target.profileName}"): it rejected our client certificate (not issued by a CA it trusts, revoked, or expired). Underlying error: ${details}`,
            { peer: endpoint, profile: this.#target.profileName },
          );
        }
      }
    }
    // A connection that closed under a running call may have carried the request: 'stream'
    // (as over HTTP/3), never 'connect' ("nothing reached the server"), which a draining peer's
    // refusal memory could turn into a transparent retry and so a second execution.
    const failure = noConnection ? 'connect' : code === GRPC_STATUS.UNAVAILABLE && isConnectionDropped(details) ? 'stream' : undefined;
    return new RpcError(code, statusName(code), details, { endpoint, protocol: 'h2', failure, trailers });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#shared.open--;
    for (const call of this.#calls) call.cancel();
    this.#calls.clear();
    this.#client.close();
  }
}
