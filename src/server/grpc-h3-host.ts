import type { X509Certificate } from 'node:crypto';
import type { QuicConnection } from '../quic/connection.js';
import { QuicStreamError } from '../quic/errors.js';
import type { QuicServer } from '../quic/server.js';
import type { QuicStream } from '../quic/stream.js';
import type { MethodDefinition, ServiceDefinition } from '../grpc/service-definition.js';
import { commonNameOf } from '../grpc/peer-identity.js';
import { CertificateCache } from '../tls/certificate-cache.js';
import { GRPC_STATUS } from '../grpc/status.js';
import { H3_ERROR_CODES, Http3Error } from '../http3/error-codes.js';
import { decodeGrpcTimeout, encodeGrpcMessage, frameGrpcMessage, GrpcDeframeError, GrpcMessageDeframer, headerRecord } from '../grpc/mapping.js';
import { H3Session } from '../http3/session.js';
import { encodeMessage, RequestStreamReader, type RequestStreamEvent } from '../http3/request-stream.js';
import { QpackError, type HeaderField } from '../http3/qpack/index.js';
import { startH3QuicServer, stopH3QuicServer, type H3QuicServerOptions } from './h3-quic-server.js';
import {
  CallTrailers,
  cancelledRequests,
  toServiceError,
  type BidiStreamHandler,
  type ClientStreamHandler,
  type ServerCallInfo,
  type ServerStreamHandler,
  type ServiceRegistrations,
  type UnaryHandler,
} from './service-handlers.js';

export interface GrpcH3HostOptions extends H3QuicServerOptions {
  /** Largest accepted request message. Default 4 MiB. */
  readonly maxReceiveMessageBytes?: number | undefined;
}

/** What {@link GrpcH3Host.connectionStats} (and {@link GrpcHost.http3Connections}) report. */
export interface Http3ConnectionStats {
  /** Connections whose handshake (and client certificate check) is done and that are not closed. */
  readonly open: number;
  /** Connections accepted (handshake done) since the host started. */
  readonly accepted: number;
}

interface Route {
  readonly method: MethodDefinition<unknown, unknown>;
  readonly handler: UnaryHandler<unknown, unknown> | ServerStreamHandler<unknown, unknown> | ClientStreamHandler<unknown, unknown> | BidiStreamHandler<unknown, unknown>;
}

interface ConnectionState {
  readonly connection: QuicConnection;
  readonly session: H3Session;
  /** The next client bidi stream id (for GOAWAY). */
  nextStreamId: bigint;
  certificate: X509Certificate | undefined | null;
}

const certificates = new CertificateCache(1024);

/** Request headers the transport owns: not handed to handlers as metadata. */
const NOT_METADATA = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding']);

const RESPONSE_HEADERS: readonly HeaderField[] = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
];

function statusFields(code: number, message: string): HeaderField[] {
  const fields: HeaderField[] = [['grpc-status', String(code)]];
  if (message !== '') fields.push(['grpc-message', encodeGrpcMessage(message)]);
  return fields;
}

/**
 * A gRPC server over HTTP/3 (QUIC on UDP, our driver over quiche), serving the same
 * `ServiceImplementation`s as {@link GrpcHost}, with mTLS (client certificates required by
 * default, CA and CRLs checked in the handshake).
 */
export class GrpcH3Host {
  #server!: QuicServer;
  readonly #routes: ReadonlyMap<string, Route>;
  readonly #maxReceive: number;
  readonly #connections = new Set<ConnectionState>();
  readonly #calls = new Set<AbortController>();
  /** HTTP/3 sessions started (handshake and client certificate check done) since start. */
  #accepted = 0;
  #closing = false;
  #onIdle: (() => void) | undefined;

  private constructor(routes: ReadonlyMap<string, Route>, maxReceive: number) {
    this.#routes = routes;
    this.#maxReceive = maxReceive;
  }

  /** The bound UDP port (still readable after close()). */
  get port(): number {
    return this.#server.port;
  }

  /** The bound address. */
  get host(): string {
    return this.#server.host;
  }

  /** `https://host:port`. */
  get url(): string {
    return `https://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /**
   * HTTP/3 connections: `open` now (handshake and client check done, not yet closed) and
   * `accepted` since start. A read-only snapshot, e.g. for a gauge and a counter.
   */
  get connectionStats(): Http3ConnectionStats {
    return { open: this.#connections.size, accepted: this.#accepted };
  }

  static async start<const T extends readonly ServiceDefinition[]>(options: GrpcH3HostOptions, services: ServiceRegistrations<T>): Promise<GrpcH3Host> {
    const routes = new Map<string, Route>();
    for (const [definition, implementation] of services) {
      for (const [key, def] of Object.entries(definition.methods)) {
        const method = def as MethodDefinition<unknown, unknown>;
        const handler = (implementation as Record<string, unknown>)[key];
        if (typeof handler !== 'function') throw new Error(`GrpcH3Host: no handler for ${definition.fullName}/${method.name}`);
        routes.set(`/${definition.fullName}/${method.name}`, { method, handler: handler as Route['handler'] });
      }
    }
    const host = new GrpcH3Host(routes, options.maxReceiveMessageBytes ?? 4 * 1024 * 1024);
    host.#server = await startH3QuicServer(options, host.#onConnection);
    return host;
  }

  /** A new QUIC connection: its HTTP/3 session starts once the handshake (and client certificate check) is done. */
  readonly #onConnection = (connection: QuicConnection): void => {
    connection.established.then(() => this.#startSession(connection), () => undefined);
  };

  #startSession(connection: QuicConnection): void {
    if (connection.isClosed) return;
    const state: ConnectionState = {
      connection,
      session: undefined as unknown as H3Session,
      nextStreamId: 0n,
      certificate: null,
    };
    const session = new H3Session(connection, {
      role: 'server',
      onRequestStream: (stream) => void this.#serve(state, stream),
      onClosed: () => this.#connections.delete(state),
    });
    (state as { session: H3Session }).session = session;
    this.#connections.add(state);
    this.#accepted++;
    session.start();
    if (this.#closing) session.sendGoaway(0n);
  }

  #clientCertificate(state: ConnectionState): X509Certificate | undefined {
    if (state.certificate === null) {
      const der = state.connection.peerCertificates()[0];
      state.certificate = der !== undefined ? certificates.get(Buffer.from(der)) : undefined;
    }
    return state.certificate;
  }

  async #serve(state: ConnectionState, stream: QuicStream): Promise<void> {
    const id = BigInt(stream.id);
    if (id + 4n > state.nextStreamId) state.nextStreamId = id + 4n;
    if (this.#closing) {
      stream.reset(H3_ERROR_CODES.H3_REQUEST_REJECTED);
      return;
    }
    const controller = new AbortController();
    this.#calls.add(controller);
    const reader = new RequestStreamReader(stream, state.session, 'server', this.#maxReceive);
    const trailers = new CallTrailers();
    let responded = false; // HEADERS sent
    let done = false; // trailers sent or stream abandoned
    let timer: NodeJS.Timeout | undefined;
    const cancel = (): void => {
      if (!controller.signal.aborted) controller.abort(new Error('the call was cancelled'));
    };
    // A cancelled call stops reading its request: a streaming handler's pending read ends.
    controller.signal.addEventListener('abort', () => reader.stop(H3_ERROR_CODES.H3_REQUEST_CANCELLED), { once: true });
    const finish = async (code: number, message: string): Promise<void> => {
      if (done) return;
      done = true;
      const status = [...statusFields(code, message), ...trailers.fields()];
      const fields = responded ? status : [...RESPONSE_HEADERS, ...status];
      responded = true;
      try {
        await stream.end(encodeMessage({ headers: fields }));
      } catch {
        cancel();
      }
    };
    /** A request this server refuses or cannot read: the status (stream error) or the connection error it calls for. */
    const refuse = async (error: unknown): Promise<void> => {
      if (error instanceof GrpcDeframeError) {
        await finish(error.status, error.message);
      } else if (error instanceof QpackError && error.kind === 'field-section-too-large') {
        // RFC 9114 §4.2.2: refuse this request only; the connection stays.
        await finish(GRPC_STATUS.RESOURCE_EXHAUSTED, `the request header section is larger than the server's SETTINGS_MAX_FIELD_SECTION_SIZE (${state.session.maxFieldSectionSize} bytes)`);
      } else if (error instanceof Http3Error && error.scope === 'stream' && error.code === H3_ERROR_CODES.H3_EXCESSIVE_LOAD) {
        // A request message above our limit fails this call only, as over HTTP/2.
        await finish(GRPC_STATUS.RESOURCE_EXHAUSTED, `the request message is larger than the server's limit (${this.#maxReceive} bytes): ${error.message}`);
      } else if (error instanceof Http3Error && error.scope === 'connection') {
        state.session.fail(error);
      } else if (error instanceof Http3Error && !done) {
        done = true;
        stream.reset(error.code);
      } else if (error instanceof QpackError) {
        state.session.fail({ code: error.code, message: error.message });
      } else if (!done) {
        done = true;
        stream.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      }
    };
    // A STOP_SENDING from the client (or a reset) ends the stream before we finish.
    void stream.closed.then(() => {
      if (!done) cancel();
    });
    try {
      const fields = await this.#readHeaders(reader);
      if (fields === undefined) return;
      const method = fields.find(([n]) => n === ':method')?.[1];
      const path = fields.find(([n]) => n === ':path')?.[1] ?? '';
      const contentType = fields.find(([n]) => n === 'content-type')?.[1] ?? '';
      if (method !== 'POST' || !/^application\/grpc($|[+;])/.test(contentType)) {
        await finish(GRPC_STATUS.INTERNAL, `not a gRPC request (${method ?? 'no method'}, content-type "${contentType}")`);
        return;
      }
      const route = this.#routes.get(path);
      if (route === undefined) {
        await finish(GRPC_STATUS.UNIMPLEMENTED, `Method not found: ${path}`);
        return;
      }
      const deframer = new GrpcMessageDeframer(this.#maxReceive);
      let request: unknown;
      if (!route.method.requestStream) {
        const messages = await this.#readSingle(reader, deframer);
        if (messages === undefined) return;
        const only = messages[0];
        if (messages.length !== 1 || only === undefined) {
          await finish(GRPC_STATUS.INTERNAL, `expected one request message, got ${messages.length}`);
          return;
        }
        try {
          request = route.method.requestType.decode(only);
        } catch (error) {
          await finish(GRPC_STATUS.INTERNAL, `cannot decode the request: ${(error as Error).message}`);
          return;
        }
      }
      const timeoutRaw = fields.find(([n]) => n === 'grpc-timeout')?.[1];
      const timeoutMs = timeoutRaw !== undefined ? decodeGrpcTimeout(timeoutRaw) : undefined;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cancel();
          void finish(GRPC_STATUS.DEADLINE_EXCEEDED, 'Deadline exceeded');
        }, timeoutMs);
      }
      const info = this.#callInfo(state, fields, controller.signal, timeoutMs !== undefined ? Date.now() + timeoutMs : undefined, trailers);
      const requests = route.method.requestStream
        ? this.#requests(
            reader,
            deframer,
            route.method,
            async (error) => {
              await refuse(error);
              cancel();
            },
            cancel,
          )
        : undefined;
      try {
        if (route.method.responseStream) {
          const responses =
            requests !== undefined ? (route.handler as BidiStreamHandler<unknown, unknown>)(requests, info) : (route.handler as ServerStreamHandler<unknown, unknown>)(request, info);
          for await (const message of responses) {
            if (done || controller.signal.aborted) return;
            const bytes = encodeMessage({ headers: responded ? undefined : RESPONSE_HEADERS, data: [frameGrpcMessage(route.method.responseType.encode(message).finish())] });
            responded = true;
            await stream.write(bytes);
          }
          await finish(GRPC_STATUS.OK, '');
        } else {
          const response =
            requests !== undefined ? await (route.handler as ClientStreamHandler<unknown, unknown>)(requests, info) : await (route.handler as UnaryHandler<unknown, unknown>)(request, info);
          if (done || controller.signal.aborted) return;
          const message = frameGrpcMessage(route.method.responseType.encode(response).finish());
          done = true;
          responded = true;
          await stream.end(encodeMessage({ headers: RESPONSE_HEADERS, data: [message], trailers: [...statusFields(GRPC_STATUS.OK, ''), ...trailers.fields()] }));
        }
      } catch (error) {
        if (controller.signal.aborted && !done) {
          stream.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
          done = true;
          return;
        }
        const { code, details } = toServiceError(error);
        await finish(code === GRPC_STATUS.OK ? GRPC_STATUS.UNKNOWN : code, details);
      }
    } catch (error) {
      await refuse(error);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      this.#calls.delete(controller);
      if (!done) {
        done = true;
        stream.reset(H3_ERROR_CODES.H3_REQUEST_CANCELLED);
      } else {
        // Answered before the client finished its request (a client-streaming handler that did
        // not need the rest): RFC 9114 §4.1.1, stop its sending with H3_NO_ERROR.
        reader.stop(H3_ERROR_CODES.H3_NO_ERROR);
      }
      if (this.#calls.size === 0) this.#onIdle?.();
    }
  }

  /**
   * The next request event; 'reset' when the client reset the stream (or we stopped reading). A
   * request refused at the stream level stops being read (nothing more is buffered) and throws.
   */
  async #nextEvent(reader: RequestStreamReader): Promise<RequestStreamEvent | null | 'reset'> {
    try {
      return await reader.next();
    } catch (error) {
      if (error instanceof QuicStreamError) return 'reset';
      if ((error instanceof QpackError && error.kind === 'field-section-too-large') || error instanceof GrpcDeframeError || (error instanceof Http3Error && error.scope === 'stream')) {
        reader.stop(H3_ERROR_CODES.H3_NO_ERROR);
      }
      throw error;
    }
  }

  /** The request's header section; undefined when the client reset the stream first. */
  async #readHeaders(reader: RequestStreamReader): Promise<HeaderField[] | undefined> {
    for (;;) {
      const event = await this.#nextEvent(reader);
      if (event === 'reset') return undefined;
      if (event === null) throw Http3Error.stream(H3_ERROR_CODES.H3_REQUEST_INCOMPLETE, 'request without headers');
      if (event.kind === 'headers') return event.fields; // the frame validator puts HEADERS first
    }
  }

  /** The rest of a single-message request, until the client's FIN; undefined when the client reset it. */
  async #readSingle(reader: RequestStreamReader, deframer: GrpcMessageDeframer): Promise<Uint8Array[] | undefined> {
    const messages: Uint8Array[] = [];
    for (;;) {
      const event = await this.#nextEvent(reader);
      if (event === 'reset') return undefined;
      if (event === null) break;
      if (event.kind === 'headers') continue; // request trailers carry nothing gRPC uses
      try {
        messages.push(...deframer.push(event.payload));
        // A method that takes one request message: a second is refused at once rather than
        // buffered until the client's FIN (grpc-js does the same).
        if (messages.length > 1) throw new GrpcDeframeError(GRPC_STATUS.INTERNAL, 'expected one request message, got more');
      } catch (error) {
        reader.stop(H3_ERROR_CODES.H3_NO_ERROR);
        throw error;
      }
    }
    if (deframer.bufferedBytes > 0) throw new GrpcDeframeError(GRPC_STATUS.INTERNAL, 'the request ended inside a message');
    return messages;
  }

  /**
   * A streaming request's messages, decoded, read as the handler pulls them (QUIC flow control
   * holds the client meanwhile). Ends at the client's FIN; throws CANCELLED when the client
   * resets the stream or the call is cancelled. A message the server refuses (too large,
   * malformed, undecodable) ends the call with its status through `refuse` and throws.
   */
  async *#requests(
    reader: RequestStreamReader,
    deframer: GrpcMessageDeframer,
    method: MethodDefinition<unknown, unknown>,
    refuse: (error: unknown) => Promise<void>,
    cancelled: () => void,
  ): AsyncGenerator<unknown, void, undefined> {
    const failed = async (error: unknown): Promise<never> => {
      await refuse(error);
      throw cancelledRequests(`the request stream failed: ${error instanceof Error ? error.message : String(error)}`);
    };
    for (;;) {
      let event: RequestStreamEvent | null | 'reset';
      try {
        event = await this.#nextEvent(reader);
      } catch (error) {
        return await failed(error);
      }
      if (event === 'reset') {
        cancelled();
        throw cancelledRequests('the call was cancelled (by the client, the deadline, or the server closing)');
      }
      if (event === null) {
        if (deframer.bufferedBytes > 0) await failed(new GrpcDeframeError(GRPC_STATUS.INTERNAL, 'the request ended inside a message'));
        return;
      }
      if (event.kind === 'headers') continue; // request trailers carry nothing gRPC uses
      let messages: Uint8Array[];
      try {
        messages = deframer.push(event.payload);
      } catch (error) {
        reader.stop(H3_ERROR_CODES.H3_NO_ERROR);
        return await failed(error);
      }
      for (const bytes of messages) {
        let decoded: unknown;
        try {
          decoded = method.requestType.decode(bytes);
        } catch (error) {
          reader.stop(H3_ERROR_CODES.H3_NO_ERROR);
          return await failed(new GrpcDeframeError(GRPC_STATUS.INTERNAL, `cannot decode a request message: ${(error as Error).message}`));
        }
        yield decoded;
      }
    }
  }

  #callInfo(state: ConnectionState, fields: readonly HeaderField[], signal: AbortSignal, deadline: number | undefined, trailers: CallTrailers): ServerCallInfo {
    let identity: string | undefined;
    let metadata: Record<string, string> | undefined;
    const read = (): X509Certificate | undefined => this.#clientCertificate(state);
    return {
      get clientCertificate() {
        return read();
      },
      get clientIdentity() {
        identity ??= commonNameOf(read()?.subject);
        return identity;
      },
      get metadata() {
        if (metadata === undefined) {
          metadata = headerRecord(fields);
          for (const key of NOT_METADATA) delete metadata[key];
        }
        return metadata;
      },
      protocol: 'h3',
      signal,
      deadline,
      setTrailer: (name, value) => trailers.set(name, value),
    };
  }

  /**
   * Sends GOAWAY on every connection, refuses new requests, lets running calls finish for up
   * to `graceMs`, then closes every connection (H3_NO_ERROR) and the UDP socket.
   */
  async close(graceMs = 5_000): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      for (const state of this.#connections) state.session.sendGoaway(state.nextStreamId);
    }
    if (this.#calls.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#onIdle = undefined;
    for (const controller of this.#calls) controller.abort(new Error('the server closed'));
    const sessions = [...this.#connections].map((state) => state.session);
    this.#connections.clear();
    await stopH3QuicServer(this.#server, sessions);
  }
}
