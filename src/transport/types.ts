import type { X509Certificate } from 'node:crypto';
import type { ProfileOptions } from '../config/types.js';
import type { TlsMaterial } from '../tls/material.js';
import type { PeerCertificateValidator } from '../tls/peer-verification.js';
import type { CallMetadata } from '../grpc/mapping.js';

/** The wire protocol a call actually used. */
export type WireProtocol = 'h2' | 'h3';

/** An endpoint URL taken apart. */
export interface ParsedEndpoint {
  /** The URL as configured, e.g. `https://127.0.0.1:7001`. */
  readonly url: string;
  /** Host without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
  /** `host:port`, IPv6 hosts in brackets: the endpoint's name in errors, metrics and hints. */
  readonly authority: string;
  readonly secure: boolean;
}

/** Everything a transport needs to dial one endpoint with one generation of settings. */
export interface DialTarget {
  readonly endpoint: ParsedEndpoint;
  readonly profileName: string;
  readonly profile: ProfileOptions;
  readonly tls: TlsMaterial;
  readonly peerValidator: PeerCertificateValidator | undefined;
}

export type { CallMetadata };

/** One call as the transport sees it: serialized bytes, absolute deadline. */
export interface WireCall {
  /** `/package.Service/Method` */
  readonly path: string;
  readonly message: Uint8Array;
  readonly metadata: CallMetadata;
  /** Absolute deadline, ms since the epoch; `Infinity` for none (no timer, no `grpc-timeout`). */
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * A call whose requests come from an async iterable (client streaming and bidi streaming).
 * The iterable is pulled with back-pressure (the next message only once the transport can
 * take the previous one), concurrently with the responses being read; its end half-closes the
 * request. When the iterator is created: over HTTP/3 once the request stream is open (a call
 * that fails before, in the dial, the handshake or waiting for stream credit, has not touched
 * the iterable); over HTTP/2 when the call starts (grpc-js holds the first messages until its
 * connection is ready). A failed call returns the iterator if it created one.
 */
export interface WireStreamCall {
  /** `/package.Service/Method` */
  readonly path: string;
  /** Serialized requests. Throwing cancels the call (CANCELLED naming the cause). */
  readonly messages: AsyncIterable<Uint8Array>;
  readonly metadata: CallMetadata;
  /** Absolute deadline, ms since the epoch; `Infinity` for none (no timer, no `grpc-timeout`). */
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * The response side of a streaming call: iterate for messages (once). The call starts when
 * `stream()` returns; iteration throws `RpcError` / `TlsError` on failure, like `unary`.
 * Leaving the iteration early (`break`, `return()`) cancels the call on the wire. Once the
 * response side is over, the request iterator is `return()`ed if still open.
 */
export interface WireStream extends AsyncIterable<Uint8Array> {
  /** Response headers when they arrive; undefined if the call ended without any. Never rejects. */
  readonly headers: Promise<Readonly<Record<string, string>> | undefined>;
  /** Trailers when the call ends, whatever the outcome (an error's trailers too). Never rejects. */
  readonly trailers: Promise<Readonly<Record<string, string>>>;
  readonly peer: PeerIdentity;
}

/** Who answered. */
export interface PeerIdentity {
  /** Remote socket address as the transport reports it. */
  readonly address: string | undefined;
  /** The server's leaf certificate (undefined without TLS). */
  readonly certificate: X509Certificate | undefined;
}

export interface WireUnaryResult {
  readonly message: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly trailers: Readonly<Record<string, string>>;
  readonly peer: PeerIdentity;
  readonly protocol: WireProtocol;
}

/**
 * A live connection (or connection pool) to one endpoint, owned by the channel cache.
 * Calls reject with `RpcError` (gRPC status) or `TlsError` (TLS failure, typed).
 */
export interface TransportConnection {
  readonly protocol: WireProtocol;
  unary(call: WireCall): Promise<WireUnaryResult>;
  /** Server-streaming call: yields each response message; throws RpcError/TlsError at the end on failure. */
  serverStream(call: WireCall): AsyncIterable<Uint8Array>;
  /** Client-streaming or bidi-streaming call (the wire is the same for both); see {@link WireStream}. */
  stream(call: WireStreamCall): WireStream;
  /**
   * Resolves once the connection is established (TLS/QUIC handshake done on our side),
   * dialling it if needed; rejects like a call would (RpcError with a failure kind, or
   * TlsError). The factory uses it to race HTTP/3 against HTTP/2 ("happy eyeballs").
   * Optional: a transport without it is used as if it were ready.
   */
  ready?(): Promise<void>;
  /** Closes the connection; calls still running are cancelled. Idempotent. */
  close(): void;
}

/** A way of speaking gRPC to an endpoint: HTTP/2 (grpc-js) or HTTP/3 (QUIC). */
export interface Transport {
  readonly protocol: WireProtocol;
  /** Creates a connection object; dialling may be lazy (on the first call). */
  open(target: DialTarget): TransportConnection;
}
