/**
 * gRPC over HTTP/3 through our QUIC driver (quiche) and our own HTTP/3 framing and QPACK: one QUIC
 * connection per endpoint (and TLS generation), dialled lazily on the first call, verified by
 * the verifier HTTP/2's OpenSSL verdict is matched with (`src/tls/chain-verifier.ts`) and the
 * custom check, requests queued for the peer's stream credit.
 */
import type { QuicConnection } from '../../quic/connection.js';
import { QuicConnectionError, QuicDialError, QuicStreamError, QuicStreamLimitError } from '../../quic/errors.js';
import { QuicUnavailableError } from '../../quic/native.js';
import type { QuicStream } from '../../quic/stream.js';
import { RpcError, TlsError, type TransportFailureKind } from '../../errors.js';
import { presentedCertificate, trustStoreOf, verifyChain, TLS_ALERT, type TrustStore } from '../../tls/chain-verifier.js';
import { clientCertificateVerdict } from '../../tls/classify.js';
import { runPeerValidator } from '../../tls/peer-verification.js';
import type { TlsMaterial } from '../../tls/material.js';
import { pemIdentityOf, type PemIdentity } from '../../tls/pkcs12.js';
import { GRPC_STATUS, statusName } from '../../grpc/status.js';
import type { DialTarget, PeerIdentity, Transport, TransportConnection, WireCall, WireStream, WireStreamCall, WireUnaryResult } from '../types.js';
import { deadlineTimer, RequestPump, StreamEnd, timeoutOf, wireStream } from '../wire-stream.js';
import { H3_ERROR_CODES, Http3Error, http3ErrorCodeName } from '../../http3/error-codes.js';
import { frameGrpcMessage, GrpcDeframeError, GrpcMappingError, GrpcMessageDeframer, headerRecord, interpretResponseHeaders, interpretTrailers, requestHeaders, type GrpcOutcome } from '../../grpc/mapping.js';
import { dialH3 } from './h3-dial.js';
import { H3Session, H3SessionClosedError } from '../../http3/session.js';
import { QpackError } from '../../http3/qpack/index.js';
import { encodeMessage, RequestStreamReader } from '../../http3/request-stream.js';
import { abortable, serverAlertError, serverRejectionError } from './quic-support.js';

/** One live QUIC connection with its HTTP/3 session. */
interface Live {
  readonly client: QuicConnection;
  readonly session: H3Session;
  readonly peer: PeerIdentity;
}

/** Why a call's AbortController fired (`local`: our side failed the call with `error`). */
type AbortKind = 'deadline' | 'cancelled' | 'closed' | 'refused' | 'local';
class CallAbort extends Error {
  constructor(
    readonly kind: AbortKind,
    message: string,
    readonly error?: RpcError,
  ) {
    super(message);
    this.name = 'CallAbort';
  }
}

/** Where a call was when it failed: decides whether HTTP/2 may carry it instead. */
type Phase = 'connect' | 'queued' | 'sent';

/** One running call, as a GOAWAY needs to see it. */
interface CallState {
  live: Live | undefined;
  stream: QuicStream | undefined;
  /** The response reader, once the request is sent: `received` says whether response bytes arrived (the server is processing the request). */
  response: RequestStreamReader | undefined;
}

/** What a call sends: one message (unary, server stream) or a pumped stream of them. */
type RequestBody =
  | { readonly kind: 'single'; readonly message: Uint8Array }
  | {
      readonly kind: 'stream';
      readonly messages: AsyncIterable<Uint8Array>;
      readonly end: StreamEnd;
      /** Filled in once the call has a connection (for the stream's `peer`). */
      readonly peer: { live?: Live };
      /** Set by the call: fails it with a local error (the consumer left, or the pump failed). */
      fail?: (error: RpcError) => void;
    };

/** What a finished call carries besides its messages. */
interface CallEnd {
  readonly headers: Record<string, string>;
  readonly trailers: Record<string, string>;
}

/** The TLS alert the server closed the connection with, as our typed error. */
function peerAlertError(cause: unknown, context: { peer: string; profile: string }, sentClientCertificate: boolean): TlsError | undefined {
  const alert = cause instanceof QuicConnectionError && cause.source === 'peer' ? cause.tlsAlert : undefined;
  const typed = alert !== undefined ? serverAlertError(alert, context, cause) : undefined;
  return typed !== undefined ? clientCertificateVerdict(typed, sentClientCertificate) : undefined;
}

/** gRPC status for a peer's stream reset (gRPC's HTTP/2 RST_STREAM mapping, in HTTP/3 codes). */
function statusForResetCode(code: number): number {
  switch (code) {
    case H3_ERROR_CODES.H3_REQUEST_REJECTED:
      return GRPC_STATUS.UNAVAILABLE;
    case H3_ERROR_CODES.H3_REQUEST_CANCELLED:
      return GRPC_STATUS.CANCELLED;
    case H3_ERROR_CODES.H3_EXCESSIVE_LOAD:
      return GRPC_STATUS.RESOURCE_EXHAUSTED;
    default:
      return GRPC_STATUS.INTERNAL;
  }
}

/** Idle timeout and keepalive interval from the profile: a dead peer is noticed like on HTTP/2. */
function idleSettings(target: DialTarget): { maxIdleTimeout: number; keepAliveIntervalTime: number } {
  const { keepalive, connectTimeoutMs } = target.profile;
  const interval = keepalive.timeMs > 0 ? keepalive.timeMs : Math.max(1_000, connectTimeoutMs);
  const maxIdleTimeout = Math.max(interval + Math.max(keepalive.timeoutMs, 1_000), connectTimeoutMs);
  return { maxIdleTimeout, keepAliveIntervalTime: interval };
}

/**
 * HTTP/3 (RFC 9114) for the factory; `grpcControlPlaneModule` binds it to `TOKENS.Http3Transport` by default.
 * Failures before a request left (no UDP answer, handshake failure, idle timeout) are
 * `RpcError`s with `failure` set, so the factory can fall back to HTTP/2; certificate
 * verification failures are `TlsError`s and never fall back.
 */
export class GrpcH3Transport implements Transport {
  readonly protocol = 'h3' as const;
  /**
   * Trust stores (CA bundle and CRLs, parsed) per TLS generation, shared by its connections. A
   * new generation is a new material object, so rotation gets a store of its own.
   */
  readonly #trust = new WeakMap<TlsMaterial, TrustStore>();

  open(target: DialTarget): TransportConnection {
    return new GrpcH3Connection(target, this.#trust);
  }
}

class GrpcH3Connection implements TransportConnection {
  readonly protocol = 'h3' as const;
  readonly #target: DialTarget;
  readonly #calls = new Map<AbortController, CallState>();
  #live: Promise<Live> | undefined;
  #lives = new Set<Promise<Live>>();
  readonly #trust: WeakMap<TlsMaterial, TrustStore>;
  #closed = false;
  /** Aborts dials still under way when the connection closes: no UDP socket or timer outlives close(). */
  readonly #dials = new AbortController();

  constructor(target: DialTarget, trust: WeakMap<TlsMaterial, TrustStore>) {
    this.#target = target;
    this.#trust = trust;
  }

  get #context(): { peer: string; profile: string } {
    return { peer: this.#target.endpoint.authority, profile: this.#target.profileName };
  }

  #rpcError(status: number, details: string, failure?: TransportFailureKind, trailers?: Record<string, string>): RpcError {
    return new RpcError(status, statusName(status), details, { endpoint: this.#target.endpoint.authority, protocol: 'h3', failure, trailers });
  }

  // ---- connection ------------------------------------------------------------------------

  ready(): Promise<void> {
    return this.#connect().then(() => undefined);
  }

  #connect(): Promise<Live> {
    if (this.#live !== undefined) return this.#live;
    const dialling = this.#dial();
    this.#live = dialling;
    this.#lives.add(dialling);
    dialling.then(
      (live) => {
        if (this.#closed) void this.#shutdown(live);
      },
      () => {
        this.#lives.delete(dialling);
        if (this.#live === dialling) this.#live = undefined;
      },
    );
    return dialling;
  }

  async #dial(): Promise<Live> {
    const { endpoint, profile, tls } = this.#target;
    if (tls.mode === 'insecure') throw this.#rpcError(GRPC_STATUS.UNAVAILABLE, 'HTTP/3 needs TLS', 'connect');
    // A PKCS#12 identity goes to QUIC as PEM (extracted once per TLS generation); its CA
    // certificates join the trust store, as Node's OpenSSL adds them to HTTP/2's.
    let identity: PemIdentity | undefined;
    if (tls.pfx !== undefined && tls.cert === undefined) {
      try {
        identity = await pemIdentityOf(tls);
      } catch (error) {
        throw this.#rpcError(GRPC_STATUS.UNAVAILABLE, `HTTP/3 cannot use the PKCS#12 client certificate: ${error instanceof Error ? error.message : String(error)}`, 'handshake');
      }
    }
    // Parsed when a handshake first needs it (1.7 ms warm, more cold): a dial that gets no
    // QUIC answer (an HTTP/2-only server) never pays for it.
    const trustStore = (): TrustStore => {
      let trust = this.#trust.get(tls);
      if (trust === undefined) {
        trust = trustStoreOf(tls.ca, tls.crl, identity?.caPems);
        this.#trust.set(tls, trust);
      }
      return trust;
    };
    let trustFailure: { error: unknown } | undefined;
    const name = tls.serverNameOverride ?? endpoint.host;
    let verificationFailure: TlsError | undefined;
    const { maxIdleTimeout, keepAliveIntervalTime } = idleSettings(this.#target);
    const connectTimeout = Math.max(1, profile.connectTimeoutMs);
    let client: QuicConnection;
    try {
      client = await dialH3({
        host: endpoint.host,
        port: endpoint.port,
        serverName: name,
        ca: tls.ca?.toString('utf8'),
        cert: identity?.certPem ?? tls.cert?.toString('utf8'),
        key: identity?.keyPem ?? tls.key?.toString('utf8'),
        maxIdleTimeout,
        keepAliveIntervalTime,
        connectTimeoutMs: connectTimeout,
        signal: this.#dials.signal,
        verify: (certs) => {
          let trust: TrustStore;
          try {
            trust = trustStore();
          } catch (error) {
            // Runs inside the QUIC driver's pump: the dial fails with this error, as it did when the store was built first.
            trustFailure = { error };
            return TLS_ALERT.HANDSHAKE_FAILURE;
          }
          const rejection = verifyChain(certs, trust, { peer: 'server', name });
          if (rejection !== undefined) {
            verificationFailure = serverRejectionError(rejection, this.#context);
            return rejection.alert;
          }
          const custom = runPeerValidator(this.#target.peerValidator, { endpoint: endpoint.authority, profile: this.#target.profileName, protocol: 'h3' }, () =>
            certs.map((der) => presentedCertificate(der)),
          );
          if (custom !== undefined) {
            verificationFailure = custom;
            return TLS_ALERT.BAD_CERTIFICATE;
          }
          return undefined;
        },
      });
    } catch (error) {
      if (trustFailure !== undefined) throw trustFailure.error;
      if (verificationFailure !== undefined) throw verificationFailure;
      throw this.#dialError(error, connectTimeout);
    }
    const holder: { live?: Promise<Live> } = {};
    const session = new H3Session(client, {
      role: 'client',
      maxFieldSectionSize: undefined,
      onGoaway: (id) => {
        // New calls dial a new connection; this one closes once its requests are done.
        if (this.#live === holder.live) this.#live = undefined;
        // RFC 9114 §5.2: requests on stream ids at or above the GOAWAY id were not processed
        // and will not be; end them now (reset, H3_REQUEST_CANCELLED) so they are retried.
        this.#refuseAbove(session, id);
        this.#closeWhenIdle(holder.live);
      },
      onClosed: () => {
        if (this.#live === holder.live) this.#live = undefined;
        if (holder.live !== undefined) this.#lives.delete(holder.live);
        client.close(H3_ERROR_CODES.H3_NO_ERROR);
      },
    });
    session.start();
    const certificate = client.peerCertificates()[0];
    const live: Live = {
      client,
      session,
      peer: {
        address: `${client.remote.host.includes(':') ? `[${client.remote.host}]` : client.remote.host}:${client.remote.port}`,
        // The verifier decoded it already (and keeps it for the next handshake with this peer).
        certificate: certificate !== undefined ? presentedCertificate(certificate) : undefined,
      },
    };
    holder.live = this.#live;
    return live;
  }

  /** Ends every call on `session` whose stream id is at or above a GOAWAY's `id` and that has no response yet: refused. */
  #refuseAbove(session: H3Session, id: bigint): void {
    for (const [controller, call] of this.#calls) {
      if (call.live?.session !== session || call.stream === undefined || call.response?.received === true || BigInt(call.stream.id) < id) continue;
      if (!controller.signal.aborted) controller.abort(new CallAbort('refused', `stream ${call.stream.id} is at or above the server's GOAWAY id ${id}: the server is shutting down and did not process the request`));
    }
  }

  #closeWhenIdle(dialling: Promise<Live> | undefined): void {
    if (dialling === undefined) return;
    void dialling.then(async (live) => {
      await live.session.whenIdle();
      if (!live.session.closed) await this.#shutdown(live);
    });
  }

  #dialError(error: unknown, connectTimeout: number): Error {
    if (this.#closed) return this.#rpcError(GRPC_STATUS.UNAVAILABLE, 'connection closed while dialling HTTP/3', 'connect');
    if (error instanceof QuicUnavailableError) return this.#rpcError(GRPC_STATUS.UNAVAILABLE, error.message, 'connect');
    if (error instanceof QuicDialError) {
      if (error.failure === 'timeout') {
        return this.#rpcError(GRPC_STATUS.UNAVAILABLE, `no HTTP/3 (QUIC) answer within ${connectTimeout} ms: UDP blocked or no HTTP/3 server`, 'connect');
      }
      const typed = peerAlertError(error.cause, this.#context, this.#target.tls.mode === 'mtls');
      if (typed !== undefined) return typed;
      if (error.failure === 'refused' || error.failure === 'socket') return this.#rpcError(GRPC_STATUS.UNAVAILABLE, `HTTP/3 connect failed: ${error.message}`, 'connect');
    }
    return this.#rpcError(GRPC_STATUS.UNAVAILABLE, `HTTP/3 handshake failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, 'handshake');
  }

  /** The typed error for a call that died with its connection. */
  #connectionError(cause: unknown, phase: Phase): Error {
    if (cause instanceof QuicConnectionError && cause.source === 'idle-timeout') {
      return this.#rpcError(GRPC_STATUS.UNAVAILABLE, 'the HTTP/3 connection timed out (no packets from the peer within the idle timeout)', 'idle-timeout');
    }
    const typed = peerAlertError(cause, this.#context, this.#target.tls.mode === 'mtls');
    if (typed !== undefined) return typed;
    if (cause instanceof Http3Error) {
      // We closed the connection because the server broke HTTP/3 (RFC 9114 §8): like an HTTP/2 PROTOCOL_ERROR.
      return this.#rpcError(GRPC_STATUS.INTERNAL, `HTTP/3 protocol error by the server, connection closed with ${cause.message}`, phase === 'sent' ? 'stream' : 'connect');
    }
    if (cause instanceof QuicConnectionError && cause.source === 'peer' && cause.isApp) {
      return this.#rpcError(GRPC_STATUS.UNAVAILABLE, `the server closed the HTTP/3 connection with ${http3ErrorCodeName(cause.code)}`, phase === 'sent' ? 'stream' : 'connect');
    }
    const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : 'closed';
    return this.#rpcError(GRPC_STATUS.UNAVAILABLE, `the HTTP/3 connection closed (${what})`, phase === 'sent' ? 'stream' : 'connect');
  }

  async #shutdown(live: Live): Promise<void> {
    if (!live.session.closed) live.session.markClosed();
    live.client.close(H3_ERROR_CODES.H3_NO_ERROR);
    await live.client.closed;
  }

  // ---- calls -------------------------------------------------------------------------------

  async unary(call: WireCall): Promise<WireUnaryResult> {
    const messages: Uint8Array[] = [];
    const run = this.#run(call, { kind: 'single', message: call.message });
    let peer: PeerIdentity;
    let end: CallEnd;
    for (;;) {
      const next = await run.next();
      if (next.done === true) {
        end = next.value.end;
        peer = next.value.peer;
        break;
      }
      messages.push(next.value);
      if (messages.length > 1) {
        // As grpc-js: a second response message ends the call at once (its stream is reset by
        // the generator's cleanup), rather than collecting messages until the deadline.
        await run.return(undefined as never);
        throw this.#rpcError(GRPC_STATUS.UNIMPLEMENTED, 'a unary response must carry exactly one message, got more');
      }
    }
    const message = messages[0];
    if (messages.length !== 1 || message === undefined) {
      throw this.#rpcError(GRPC_STATUS.UNIMPLEMENTED, `a unary response must carry exactly one message, got ${messages.length}`, undefined, end.trailers);
    }
    return { message, headers: end.headers, trailers: end.trailers, peer, protocol: 'h3' };
  }

  async *serverStream(call: WireCall): AsyncIterable<Uint8Array> {
    yield* this.#run(call, { kind: 'single', message: call.message });
  }

  /**
   * Client-streaming or bidi call on one request stream: the header section, then each
   * message in a DATA frame as the pump pulls it (an awaited QUIC write: stream and connection
   * flow control hold the producer), FIN when the iterable ends.
   */
  stream(call: WireStreamCall): WireStream {
    const end = new StreamEnd();
    const body: RequestBody = { kind: 'stream', messages: call.messages, end, peer: {} };
    const run = this.#run(call, body);
    const responses = (async function* (): AsyncGenerator<Uint8Array, void, undefined> {
      yield* run;
    })();
    const peer: PeerIdentity = {
      get address() {
        return body.peer.live?.peer.address;
      },
      get certificate() {
        return body.peer.live?.peer.certificate;
      },
    };
    return wireStream(responses, end, peer, () => body.fail?.(this.#rpcError(GRPC_STATUS.CANCELLED, 'the caller stopped reading the responses')));
  }

  /** One call: yields each response message, returns headers/trailers, throws RpcError/TlsError. */
  async *#run(call: WireCall | WireStreamCall, body: RequestBody): AsyncGenerator<Uint8Array, { end: CallEnd; peer: PeerIdentity }, undefined> {
    const streaming = body.kind === 'stream' ? body : undefined;
    if (this.#closed) {
      streaming?.end.finish({});
      throw this.#rpcError(GRPC_STATUS.UNAVAILABLE, 'connection closed', 'connect');
    }
    const controller = new AbortController();
    const abort = (kind: AbortKind, message: string, error?: RpcError): void => {
      if (!controller.signal.aborted) controller.abort(new CallAbort(kind, message, error));
    };
    if (streaming !== undefined) streaming.fail = (error) => abort('local', error.details, error);
    const state: CallState = { live: undefined, stream: undefined, response: undefined };
    this.#calls.set(controller, state);
    const stopTimer = deadlineTimer(call.deadline, () => abort('deadline', 'deadline exceeded'));
    const onCallerAbort = (): void => abort('cancelled', 'the caller cancelled the call');
    if (call.signal?.aborted === true) onCallerAbort();
    else call.signal?.addEventListener('abort', onCallerAbort, { once: true });

    // eslint-disable-next-line no-useless-assignment -- read by the catch below when the dial fails
    let phase: Phase = 'connect';
    let live: Live | undefined;
    let stream: QuicStream | undefined;
    let pump: RequestPump | undefined;
    let finished = false;
    let trailers: Record<string, string> = {};
    try {
      // Connect (bounded by connectTimeoutMs and the deadline), then wait for stream credit.
      for (let attempt = 0; ; attempt++) {
        live = await abortable(this.#connect(), controller.signal);
        state.live = live;
        if (streaming !== undefined) streaming.peer.live = live;
        phase = 'queued';
        try {
          stream = await live.session.openRequestStream(controller.signal);
          state.stream = stream;
          break;
        } catch (error) {
          // GOAWAY or a connection that just closed: nothing was sent, try a fresh connection once.
          if (error instanceof H3SessionClosedError && attempt === 0) {
            phase = 'connect';
            continue;
          }
          throw error;
        }
      }
      phase = 'sent';
      const opened = stream;
      const onAbort = (): void => opened.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      controller.signal.addEventListener('abort', onAbort, { once: true });
      if (controller.signal.aborted) onAbort();

      const { profile, endpoint, tls } = this.#target;
      if (body.kind === 'single' && body.message.byteLength > profile.limits.maxSendMessageBytes) {
        throw this.#rpcError(GRPC_STATUS.RESOURCE_EXHAUSTED, `request message larger than max (${body.message.byteLength} vs. ${profile.limits.maxSendMessageBytes})`);
      }
      const fields = requestHeaders({
        authority: tls.serverNameOverride !== undefined ? `${tls.serverNameOverride}:${endpoint.port}` : endpoint.authority,
        path: call.path,
        timeoutMs: timeoutOf(call.deadline),
        metadata: call.metadata,
      });
      try {
        if (body.kind === 'single') {
          await opened.end(encodeMessage({ headers: fields, data: [frameGrpcMessage(body.message)] }));
        } else {
          await opened.write(encodeMessage({ headers: fields }));
          pump = new RequestPump(
            body.messages,
            { write: (message) => opened.write(encodeMessage({ data: [frameGrpcMessage(message)] })), end: () => opened.end() },
            profile.limits.maxSendMessageBytes,
            (failure) => abort('local', failure.details, this.#rpcError(failure.status, failure.details)),
          );
          pump.start();
        }
      } catch (error) {
        // RFC 9114 §4.1.1: a server may answer before the request is complete and ask us to
        // stop sending (STOP_SENDING H3_NO_ERROR), e.g. to refuse a message above its limit:
        // its response follows, so read it.
        if (!(error instanceof QuicStreamError && error.kind === 'stopped' && error.code === H3_ERROR_CODES.H3_NO_ERROR)) throw error;
      }

      const maxReceive = profile.limits.maxReceiveMessageBytes;
      const response = new RequestStreamReader(opened, live.session, 'client', maxReceive);
      state.response = response;
      const deframer = new GrpcMessageDeframer(maxReceive);
      let headers: Record<string, string> | undefined;
      let outcome: GrpcOutcome | undefined;
      for (let event = await response.next(); event !== null; event = await response.next()) {
        if (event.kind === 'headers') {
          if (headers === undefined) {
            headers = headerRecord(event.fields);
            const interpreted = interpretResponseHeaders(event.fields);
            // A trailers-only response has no headers of its own (as grpc-js reports it over HTTP/2).
            if (!interpreted.trailersOnly) streaming?.end.gotHeaders(headers);
            if (interpreted.outcome !== undefined) {
              outcome = interpreted.outcome;
              if (interpreted.trailersOnly) trailers = headers;
            }
          } else {
            trailers = headerRecord(event.fields);
            outcome = interpretTrailers(event.fields);
          }
        } else if (outcome === undefined) {
          for (const message of deframer.push(event.payload)) yield message;
        }
      }
      finished = true;
      outcome ??= { status: GRPC_STATUS.INTERNAL, statusName: 'INTERNAL', message: headers === undefined ? 'the stream ended without a response' : 'the stream ended without trailers' };
      if (outcome.status === GRPC_STATUS.OK && deframer.bufferedBytes > 0) {
        outcome = { status: GRPC_STATUS.INTERNAL, statusName: 'INTERNAL', message: 'the stream ended inside a message' };
      }
      if (outcome.status !== GRPC_STATUS.OK) throw this.#rpcError(outcome.status, outcome.message, undefined, trailers);
      return { end: { headers: headers ?? {}, trailers }, peer: live.peer };
    } catch (error) {
      const typed = this.#callError(error, controller.signal, phase, live, stream, state.response?.received === true);
      if (typed instanceof RpcError && typed.context.trailers !== undefined) trailers = { ...typed.context.trailers };
      throw typed;
    } finally {
      stopTimer();
      call.signal?.removeEventListener('abort', onCallerAbort);
      this.#calls.delete(controller);
      pump?.stop();
      if (!finished && stream !== undefined) stream.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      // The response is complete but the request is not (a server that answered without
      // reading all of it): abandon our sending side, so the stream is released.
      else if (stream !== undefined && !stream.writeEnded) stream.reset(H3_ERROR_CODES.H3_NO_ERROR);
      streaming?.end.finish(trailers);
    }
  }

  #callError(error: unknown, signal: AbortSignal, phase: Phase, live: Live | undefined, stream: QuicStream | undefined, received: boolean): Error {
    if (error instanceof RpcError || error instanceof TlsError) return error;
    if (signal.aborted) {
      const reason = signal.reason as CallAbort;
      if (reason.kind === 'deadline') {
        // A dial that did not finish within the deadline says nothing reached the server.
        return this.#rpcError(GRPC_STATUS.DEADLINE_EXCEEDED, phase === 'connect' ? 'deadline exceeded while connecting over HTTP/3' : 'deadline exceeded', phase === 'connect' ? 'connect' : undefined);
      }
      if (reason.kind === 'cancelled') return this.#rpcError(GRPC_STATUS.CANCELLED, 'the caller cancelled the call');
      if (reason.kind === 'refused') return this.#refused(reason.message);
      if (reason.kind === 'local' && reason.error !== undefined) return reason.error;
      return this.#rpcError(GRPC_STATUS.UNAVAILABLE, 'connection closed', phase === 'sent' ? 'stream' : 'connect');
    }
    const refusal = received ? undefined : this.#refusal(error, live, stream);
    if (refusal !== undefined) return this.#refused(refusal);
    if (error instanceof QpackError && error.kind === 'field-section-too-large') {
      // RFC 9114 §4.2.2: a client may discard a response it cannot process; the connection stays.
      stream?.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      const limit = live?.session.maxFieldSectionSize;
      return this.#rpcError(GRPC_STATUS.RESOURCE_EXHAUSTED, `the response header section is larger than our SETTINGS_MAX_FIELD_SECTION_SIZE (${String(limit)} bytes): ${error.message}`);
    }
    if (error instanceof Http3Error && error.scope === 'stream') {
      // A stream error (RFC 9114 §8) ends this call only; the connection stays.
      stream?.reset(error.code);
      if (error.code === H3_ERROR_CODES.H3_EXCESSIVE_LOAD) {
        return this.#rpcError(GRPC_STATUS.RESOURCE_EXHAUSTED, `the response message is larger than the profile's maxReceiveMessageBytes (${this.#target.profile.limits.maxReceiveMessageBytes} bytes): ${error.message}`);
      }
      return this.#rpcError(GRPC_STATUS.INTERNAL, `HTTP/3 stream error: ${error.message}`, 'stream');
    }
    if (error instanceof Http3Error || error instanceof QpackError) {
      if (live !== undefined) live.session.fail(error instanceof QpackError ? { code: error.code, message: error.message } : error);
      return this.#rpcError(GRPC_STATUS.INTERNAL, `HTTP/3 protocol error: ${error.message}`, 'stream');
    }
    if (error instanceof GrpcDeframeError) {
      stream?.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      return this.#rpcError(error.status, error.message);
    }
    if (error instanceof GrpcMappingError) return this.#rpcError(GRPC_STATUS.INTERNAL, error.message);
    if (error instanceof QuicStreamError && error.kind === 'closed') return this.#connectionError(live?.session.closeError ?? error.cause, phase);
    if (error instanceof H3SessionClosedError || (live !== undefined && live.session.closed)) {
      return live !== undefined ? this.#connectionError(live.session.closeError ?? live.client.closeError, phase) : this.#rpcError(GRPC_STATUS.UNAVAILABLE, error instanceof Error ? error.message : 'closed', 'connect');
    }
    if (error instanceof QuicStreamError && error.byPeer && error.code === H3_ERROR_CODES.H3_REQUEST_CANCELLED && live?.session.goawayId !== undefined) {
      // The server announced GOAWAY and then cut this call: it shut down before the call finished.
      return this.#rpcError(GRPC_STATUS.UNAVAILABLE, 'the server shut down (GOAWAY) before the call finished', 'stream');
    }
    if (error instanceof QuicStreamError && error.byPeer) {
      return this.#rpcError(statusForResetCode(error.code ?? 0), `stream reset by the server with ${http3ErrorCodeName(error.code ?? 0)}`);
    }
    if (error instanceof QuicStreamLimitError) {
      return this.#rpcError(GRPC_STATUS.UNAVAILABLE, error.message, 'stream');
    }
    return this.#rpcError(GRPC_STATUS.INTERNAL, error instanceof Error ? error.message : String(error), phase === 'sent' ? 'stream' : 'connect');
  }

  /**
   * Why the server did not process this request, when that is certain (the caller checked no
   * response arrived): a reset with H3_REQUEST_REJECTED (RFC 9114 §4.1.1), a stream id at or
   * above the server's GOAWAY id (§5.2), or a GOAWAY before the request could be sent.
   */
  #refusal(error: unknown, live: Live | undefined, stream: QuicStream | undefined): string | undefined {
    if (error instanceof H3SessionClosedError && error.goaway) return 'the server sent GOAWAY (it is shutting down) before the request could be sent';
    if (error instanceof QuicStreamError && error.byPeer && error.code === H3_ERROR_CODES.H3_REQUEST_REJECTED) {
      return 'the server refused the request without processing it (stream reset with H3_REQUEST_REJECTED)';
    }
    const goaway = live?.session.goawayId;
    if (stream !== undefined && goaway !== undefined && BigInt(stream.id) >= goaway) {
      return `stream ${stream.id} is at or above the server's GOAWAY id ${goaway}: the server is shutting down and did not process the request`;
    }
    return undefined;
  }

  #refused(details: string): RpcError {
    return this.#rpcError(GRPC_STATUS.UNAVAILABLE, details, 'refused');
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const controller of this.#calls.keys()) {
      if (!controller.signal.aborted) controller.abort(new CallAbort('closed', 'connection closed'));
    }
    this.#calls.clear();
    this.#dials.abort(new Error('connection closed'));
    for (const dialling of this.#lives) {
      dialling.then((live) => this.#shutdown(live)).catch(() => undefined);
    }
    this.#lives.clear();
    this.#live = undefined;
  }
}
