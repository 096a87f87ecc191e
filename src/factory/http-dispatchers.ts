import type { TLSSocket } from 'node:tls';
import { buildConnector, Dispatcher, Pool } from 'undici';
import type { Subscription } from 'rxjs';
import type { OptionsMonitor } from '../config/options-monitor.js';
import { DisposedError, TlsError } from '../errors.js';
import type { HttpTelemetry } from '../telemetry/index.js';
import { classifyTlsFailure } from '../tls/classify.js';
import type { TlsMaterial } from '../tls/material.js';
import { serverIdentityCheck } from '../tls/peer-verification.js';
import type { ITlsProvider } from '../tls/tls-provider.js';
import type { ParsedEndpoint } from '../transport/types.js';

/** One undici Pool built from one TLS generation, with the ALPN protocol it negotiated. */
interface Generation {
  readonly pool: Pool;
  readonly tlsGeneration: number;
  alpn: 'h1' | 'h2' | undefined;
}

const HANDLER_METHODS = [
  'onRequestStart', 'onRequestUpgrade', 'onResponseStart', 'onResponseData', 'onResponseEnd', 'onResponseError',
  'onConnect', 'onError', 'onUpgrade', 'onResponseStarted', 'onHeaders', 'onData', 'onComplete', 'onBodySent',
] as const;

/**
 * An undici Dispatcher for one endpoint and profile that always dispatches on the pool of
 * the current TLS generation. When the TLS provider emits a new generation, the next
 * request builds a new pool and the old one closes gracefully (undici lets its running
 * requests finish). TLS comes from the same material as gRPC: the same secure context
 * (CA, client certificate, CRLs), name check and custom peer check; HTTP/2 via ALPN.
 */
class RotatingDispatcher extends Dispatcher {
  #current: Generation | undefined;
  #closed = false;

  constructor(
    private readonly profile: string,
    private readonly endpoint: ParsedEndpoint,
    private readonly tls: ITlsProvider,
    private readonly connections: () => number,
    private readonly telemetry: HttpTelemetry,
  ) {
    super();
  }

  rotate(material: TlsMaterial): void {
    const current = this.#current;
    if (current !== undefined && current.tlsGeneration !== material.generation) {
      this.#current = undefined;
      void current.pool.close();
    }
  }

  #generation(): Generation {
    const material = this.tls.current(this.profile);
    if (this.#current !== undefined && this.#current.tlsGeneration === material.generation) return this.#current;
    this.rotate(material);
    const endpoint = this.endpoint.authority;
    const profile = this.profile;
    const base = buildConnector({
      secureContext: material.secureContext,
      servername: material.serverNameOverride ?? (/^[\d.:]+$/.test(this.endpoint.host) ? undefined : this.endpoint.host),
      rejectUnauthorized: true,
      allowH2: true,
      checkServerIdentity: serverIdentityCheck({ endpoint, profile, validator: this.tls.peerValidator, onFailure: () => undefined }),
    });
    const generation: Generation = { pool: undefined as unknown as Pool, tlsGeneration: material.generation, alpn: undefined };
    const connect: buildConnector.connector = (options, callback) => {
      base({ ...options, servername: material.serverNameOverride ?? options.servername }, (error, socket) => {
        if (error !== null) {
          callback(classifyTlsFailure(error, { peer: endpoint, profile }) ?? error, null);
          return;
        }
        const alpn = (socket as TLSSocket).alpnProtocol;
        generation.alpn = alpn === 'h2' ? 'h2' : 'h1';
        callback(null, socket);
      });
    };
    (generation as { pool: Pool }).pool = new Pool(this.endpoint.url, { connections: this.connections(), allowH2: true, connect });
    this.#current = generation;
    return generation;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed) throw new DisposedError(`The HTTP dispatcher for ${this.endpoint.authority}`);
    const generation = this.#generation();
    const observation = this.telemetry.start({ method: options.method, endpoint: this.endpoint.authority, profile: this.profile });
    let status: number | undefined;
    const inner = handler as Record<string, unknown>;
    const wrapped: Record<string, unknown> = {};
    for (const name of HANDLER_METHODS) {
      const fn = inner[name];
      if (typeof fn !== 'function') continue;
      wrapped[name] = (...args: unknown[]): unknown => {
        if (name === 'onResponseStart') status = args[1] as number;
        if (name === 'onHeaders') status = args[0] as number;
        if (name === 'onResponseEnd' || name === 'onComplete') {
          if (generation.alpn !== undefined) observation.setProtocol(generation.alpn);
          observation.end(status);
        }
        if (name === 'onResponseError' || name === 'onError') {
          const error = args[args.length - 1] as Error;
          if (generation.alpn !== undefined) observation.setProtocol(generation.alpn);
          observation.end(status, error);
        }
        return (fn as (...a: unknown[]) => unknown).apply(handler, args);
      };
    }
    return generation.pool.dispatch(options, wrapped);
  }

  override async close(): Promise<void> {
    this.#closed = true;
    const current = this.#current;
    this.#current = undefined;
    if (current !== undefined) await current.pool.close();
  }

  override async destroy(): Promise<void> {
    this.#closed = true;
    const current = this.#current;
    this.#current = undefined;
    if (current !== undefined) await current.pool.destroy();
  }
}

/**
 * Owns the undici dispatchers the factory hands out: one per (profile, endpoint), each
 * following TLS rotation. Disposed with the factory.
 */
export class HttpDispatcherPool {
  readonly #dispatchers = new Map<string, RotatingDispatcher>();
  readonly #subscription: Subscription;
  #disposed = false;

  constructor(
    private readonly tls: ITlsProvider,
    private readonly options: OptionsMonitor,
    private readonly telemetry: HttpTelemetry,
  ) {
    this.#subscription = tls.changes$.subscribe((material) => {
      for (const [key, dispatcher] of this.#dispatchers) if (key.startsWith(`${material.profile}\u0000`)) dispatcher.rotate(material);
    });
  }

  dispatcherFor(profile: string, endpoint: ParsedEndpoint): Dispatcher {
    if (this.#disposed) throw new DisposedError('The HTTP dispatcher pool');
    if (this.options.current.profiles[profile]?.tls.mode === 'insecure') {
      throw new TlsError('TLS_HANDSHAKE_FAILED', `Profile "${profile}" is insecure; the factory's HTTP dispatchers only speak HTTPS.`, { profile, peer: endpoint.authority });
    }
    const key = `${profile}\u0000${endpoint.authority}`;
    let dispatcher = this.#dispatchers.get(key);
    if (dispatcher === undefined) {
      dispatcher = new RotatingDispatcher(profile, endpoint, this.tls, () => this.options.current.profiles[profile]?.http.connectionsPerEndpoint ?? 4, this.telemetry);
      this.#dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#subscription.unsubscribe();
    await Promise.all([...this.#dispatchers.values()].map((d) => d.destroy()));
    this.#dispatchers.clear();
  }
}
