/**
 * Drives one quiche connection, the way quiche's own examples (client.c, server.c) do: hand
 * every received packet to `recv`, then, once per event-loop turn, verify the peer (after the
 * handshake), move stream data between quiche and the streams, send until quiche has nothing
 * more, and arm one timer from `timeout()`. Reads and writes of many packets that arrive in
 * one turn share one send pass, so quiche acknowledges them together.
 *
 * The owner (client dial or server) supplies the UDP transmit function and is told when the
 * connection is over; nothing of a connection runs after that (no timer, no send).
 */
import { QuicConnectionError, QuicStreamError, QuicStreamLimitError } from './errors.js';
import type { NativeConnection, NativeHostPort, QuicheBinding } from './native.js';
import { splitCoalescedPackets } from './packets.js';
import { QuicStream, type StreamOwner } from './stream.js';

export interface QuicConnectionInit {
  readonly role: 'client' | 'server';
  readonly binding: QuicheBinding;
  readonly native: NativeConnection;
  /** Our address as the socket sees it (quiche's RecvInfo.to). */
  readonly local: NativeHostPort;
  /** The peer's address. */
  readonly remote: NativeHostPort;
  /** Sends one UDP datagram: `packet[0..length)` to `to`. */
  readonly transmit: (packet: Buffer, length: number, to: NativeHostPort) => void;
  /** Largest UDP payload we send (quiche's max_send_udp_payload_size). */
  readonly maxPacketBytes: number;
  /**
   * Checks the peer's certificate chain (leaf first, DER) once the handshake completes:
   * returns a TLS alert to refuse it with, or undefined to accept. Without it the peer is not
   * checked by us (quiche/BoringSSL settings decide).
   */
  readonly verify?: ((chain: readonly Uint8Array[]) => number | undefined) | undefined;
  /** Send a PING when this long passes without one (ms); 0 = never. */
  readonly keepAliveMs?: number | undefined;
  /** Called once when the connection is over (the owner releases the socket or its routes). */
  readonly onEnd?: ((connection: QuicConnection) => void) | undefined;
}

/** Packets sent per pass before yielding to the event loop, so a peer in the same process (or a slow reader) can drain its socket. */
const MAX_PACKETS_PER_PASS = 32;

const EMPTY = new Uint8Array(0);

/**
 * @internal Process-wide counts of the driver's work, for tests that pin that an idle or lightly
 * used connection does not spin (a pump, timer or write retry rescheduling itself with nothing
 * to do). Monotonic; compare differences over a window.
 */
export const quicDriverActivity = {
  /** Passes of the pump (verify, streams, send, timer). */
  pumps: 0,
  /** Pumps scheduled on the event loop (setImmediate). */
  scheduledPumps: 0,
  /** Timers armed (setTimeout) from quiche's timeout(). */
  timerArms: 0,
  /** Timers that fired. */
  timerFires: 0,
  /** Write retries of blocked streams. */
  writeRetries: 0,
  /** Datagrams sent and received. */
  datagramsOut: 0,
  datagramsIn: 0,
};

/** Tracks which peer-initiated stream ids were seen, in bounded memory (ids may arrive out of order). */
class PeerStreamIds {
  #next: number;
  readonly #ahead = new Set<number>();
  constructor(first: number) {
    this.#next = first;
  }
  /** True the first time `id` is offered. */
  claim(id: number): boolean {
    if (id < this.#next || this.#ahead.has(id)) return false;
    if (id === this.#next) {
      this.#next += 4;
      while (this.#ahead.delete(this.#next)) this.#next += 4;
    } else {
      this.#ahead.add(id);
    }
    return true;
  }
}

export class QuicConnection implements StreamOwner {
  readonly role: 'client' | 'server';
  readonly native: NativeConnection;
  readonly shutdownRead: number;
  readonly shutdownWrite: number;
  readonly maxPacketBytes: number;
  readonly remote: NativeHostPort;
  readonly #init: QuicConnectionInit;
  readonly #recvInfo: { from: NativeHostPort; to: NativeHostPort };

  readonly #streams = new Map<number, QuicStream>();
  readonly #blocked = new Set<QuicStream>();
  readonly #wantRead = new Set<QuicStream>();
  readonly #peerBidi: PeerStreamIds;
  readonly #peerUni: PeerStreamIds;
  #nextBidi: number;
  #nextUni: number;
  #onStream: ((stream: QuicStream) => void) | undefined;
  readonly #unannounced: QuicStream[] = [];
  #onCredit: (() => void) | undefined;

  #verified = false;
  #ended = false;
  #closeError: QuicConnectionError | undefined;
  #localClose: QuicConnectionError | undefined;
  #pumpScheduled = false;
  #received = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = 0;
  #keepAlive: NodeJS.Timeout | undefined;
  #spare: Buffer | undefined;
  #sentBytes = 0;
  #sentBytesAtReceive = 0;
  #datagramsIn = 0;
  #datagramsOut = 0;

  #resolveEstablished!: () => void;
  #rejectEstablished!: (error: QuicConnectionError) => void;
  /** Resolves once the handshake is complete and the peer passed `verify`; rejects if the connection ends first. */
  readonly established: Promise<void>;
  #resolveClosed!: () => void;
  /** Resolves when the connection is over. */
  readonly closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(init: QuicConnectionInit) {
    this.#init = init;
    this.role = init.role;
    this.native = init.native;
    this.remote = init.remote;
    this.maxPacketBytes = init.maxPacketBytes;
    this.shutdownRead = init.binding.Shutdown.Read;
    this.shutdownWrite = init.binding.Shutdown.Write;
    this.#recvInfo = { from: init.remote, to: init.local };
    const client = init.role === 'client';
    this.#nextBidi = client ? 0 : 1;
    this.#nextUni = client ? 2 : 3;
    this.#peerBidi = new PeerStreamIds(client ? 1 : 0);
    this.#peerUni = new PeerStreamIds(client ? 3 : 2);
    this.established = new Promise<void>((resolve, reject) => {
      this.#resolveEstablished = resolve;
      this.#rejectEstablished = reject;
    });
    this.established.catch(() => undefined);
    const keepAliveMs = init.keepAliveMs ?? 0;
    if (keepAliveMs > 0) {
      this.#keepAlive = setInterval(() => {
        if (this.#ended || !this.#verified) return;
        this.native.sendAckEliciting();
        this.#pump();
      }, keepAliveMs);
    }
  }

  // ---- facts -----------------------------------------------------------------------------------

  /** The handshake completed and the peer passed verification. */
  get isEstablished(): boolean {
    return this.#verified && !this.#ended;
  }

  /** The connection is over. */
  get isClosed(): boolean {
    return this.#ended;
  }

  /** Why the connection ended (also set for a clean close of ours), once it has. */
  get closeError(): QuicConnectionError | undefined {
    return this.#closeError;
  }

  /** The peer's certificate chain (leaf first, DER); empty before the handshake. */
  peerCertificates(): Uint8Array[] {
    return this.native.peerCertChain() ?? [];
  }

  /** The negotiated ALPN protocol. */
  get alpn(): string {
    return Buffer.from(this.native.applicationProto()).toString('latin1');
  }

  /** Bidirectional streams the peer still lets us open. */
  peerStreamsLeftBidi(): number {
    return this.#ended ? 0 : this.native.peerStreamsLeftBidi();
  }

  /** Unidirectional streams the peer still lets us open. */
  peerStreamsLeftUni(): number {
    return this.#ended ? 0 : this.native.peerStreamsLeftUni();
  }

  /** UDP datagrams received and sent, and quiche's packet counters. */
  stats(): { datagramsIn: number; datagramsOut: number; lost: number; retransmitted: number; rttMs: number | undefined } {
    const native = this.#ended ? undefined : this.native.stats();
    const path = this.#ended ? undefined : this.native.pathStats()[0];
    return { datagramsIn: this.#datagramsIn, datagramsOut: this.#datagramsOut, lost: native?.lost ?? 0, retransmitted: native?.retrans ?? 0, rttMs: path !== undefined ? path.rtt / 1e6 : undefined };
  }

  // ---- streams ---------------------------------------------------------------------------------

  /**
   * Opens a stream. Throws `QuicStreamLimitError` past the peer's credit (check
   * {@link peerStreamsLeftBidi} first) and `QuicStreamError` (`closed`) once the connection ended.
   */
  openStream(bidi: boolean): QuicStream {
    if (this.#ended) throw new QuicStreamError('closed', undefined, 'the QUIC connection is closed', { cause: this.#closeError });
    if (!this.#verified) throw new QuicStreamError('invalid', undefined, 'the QUIC handshake is not complete');
    const left = bidi ? this.native.peerStreamsLeftBidi() : this.native.peerStreamsLeftUni();
    if (left <= 0) throw new QuicStreamLimitError(`the peer allows no more ${bidi ? 'bidirectional' : 'unidirectional'} streams now (MAX_STREAMS)`);
    const id = bidi ? this.#nextBidi : this.#nextUni;
    if (bidi) this.#nextBidi += 4;
    else this.#nextUni += 4;
    const stream = new QuicStream(id, true, this);
    this.#streams.set(id, stream);
    // Creates the stream in quiche now, so it takes its share of the credit at once.
    try {
      this.native.streamSend(id, EMPTY, false);
    } catch (error) {
      this.#streams.delete(id);
      throw new QuicStreamLimitError(`quiche refused stream ${id}: ${(error as Error).message}`);
    }
    return stream;
  }

  /** Receives the streams the peer opens (including any that arrived before this was set). */
  onStream(handler: (stream: QuicStream) => void): void {
    this.#onStream = handler;
    for (const stream of this.#unannounced.splice(0)) handler(stream);
  }

  /** Called after packets arrived while the peer grants bidirectional stream credit (set undefined to stop). */
  onCredit(handler: (() => void) | undefined): void {
    this.#onCredit = handler;
    if (handler !== undefined) this.scheduleFlush();
  }

  // ---- StreamOwner ---------------------------------------------------------------------------------

  sentSinceReceive(): number {
    return this.#sentBytes - this.#sentBytesAtReceive;
  }

  scheduleFlush(): void {
    if (this.#pumpScheduled || this.#ended) return;
    this.#pumpScheduled = true;
    quicDriverActivity.scheduledPumps++;
    setImmediate(this.#scheduledPump);
  }

  blocked(stream: QuicStream): void {
    this.#blocked.add(stream);
    this.scheduleFlush();
  }

  wantsRead(stream: QuicStream): void {
    this.#wantRead.add(stream);
    this.scheduleFlush();
  }

  released(stream: QuicStream): void {
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    this.#wantRead.delete(stream);
  }

  // ---- I/O -------------------------------------------------------------------------------------

  /** @internal one UDP datagram from the peer. */
  receive(datagram: Uint8Array, from: NativeHostPort): void {
    if (this.#ended) return;
    this.#datagramsIn++;
    quicDriverActivity.datagramsIn++;
    this.#recvInfo.from = from;
    for (const packet of splitCoalescedPackets(datagram)) {
      try {
        this.native.recv(packet, this.#recvInfo);
      } catch {
        // A packet quiche cannot use is dropped; a fatal error (TLS failure, protocol
        // violation) leaves quiche closing, which the pump notices and reports.
      }
    }
    this.#received = true;
    this.#sentBytesAtReceive = this.#sentBytes;
    this.scheduleFlush();
  }

  /** @internal the socket failed (e.g. ICMP port unreachable): the connection is over. */
  socketFailed(error: Error): void {
    if (this.#ended) return;
    this.#end(new QuicConnectionError('socket', false, 0, (error as NodeJS.ErrnoException).code ?? error.message, { cause: error }));
  }

  /** @internal sends the first flight (client) or answers at once. */
  kick(): void {
    this.#pump();
  }

  readonly #scheduledPump = (): void => {
    this.#pumpScheduled = false;
    this.#pump();
  };

  #pump(): void {
    if (this.#ended) return;
    quicDriverActivity.pumps++;
    const native = this.native;
    if (!this.#verified && native.isEstablished() && !native.isDraining() && !native.isClosed()) {
      const alert = this.#init.verify?.(this.peerCertificates());
      if (alert !== undefined) {
        this.close(0x100 + alert, '', false);
        return;
      }
      this.#verified = true;
      this.#resolveEstablished();
    }
    if (this.#verified) {
      const received = this.#received;
      this.#received = false;
      if (received) this.#processReadable();
      for (const stream of this.#wantRead) stream.pull();
      this.#wantRead.clear();
      for (const stream of this.#blocked) {
        quicDriverActivity.writeRetries++;
        if (!stream.retryWrites()) this.#blocked.delete(stream);
      }
      if (received && this.role === 'server') {
        for (const stream of this.#streams.values()) if (stream.bidi && !stream.local) stream.checkStopped();
      }
    }
    this.#flush();
    if (this.#ended) return;
    if (native.isClosed() || native.isDraining()) {
      this.#end(this.#endReason());
      return;
    }
    if (this.#onCredit !== undefined && native.peerStreamsLeftBidi() > 0) this.#onCredit();
    this.#armTimer();
  }

  #processReadable(): void {
    const native = this.native;
    if (!native.isReadable()) return;
    for (const id of native.readable()) {
      let stream = this.#streams.get(id);
      if (stream === undefined) {
        const peerInitiated = (id & 1) === (this.role === 'client' ? 1 : 0);
        const fresh = peerInitiated && ((id & 0b10) === 0 ? this.#peerBidi : this.#peerUni).claim(id);
        if (!fresh) {
          // A stream we are done with: drop whatever still arrives for it.
          try {
            native.streamShutdown(id, this.shutdownRead, 0);
          } catch {
            // already over in quiche
          }
          continue;
        }
        stream = new QuicStream(id, false, this);
        this.#streams.set(id, stream);
        if (this.#onStream !== undefined) this.#onStream(stream);
        else this.#unannounced.push(stream);
      }
      stream.pull();
    }
  }

  #flush(limit = MAX_PACKETS_PER_PASS): void {
    const native = this.native;
    for (let count = 0; ; count++) {
      if (count === limit) {
        this.scheduleFlush();
        return;
      }
      const packet = this.#spare ?? Buffer.allocUnsafe(this.maxPacketBytes);
      this.#spare = undefined;
      let result: ReturnType<NativeConnection['send']>;
      try {
        result = native.send(packet);
      } catch (error) {
        this.#end(new QuicConnectionError('internal', false, 0, (error as Error).message, { cause: error }));
        return;
      }
      if (result === null) {
        this.#spare = packet;
        return;
      }
      const [length, info] = result;
      this.#sentBytes += length;
      this.#datagramsOut++;
      quicDriverActivity.datagramsOut++;
      try {
        this.#init.transmit(packet, length, info.to);
      } catch (error) {
        this.#end(new QuicConnectionError('socket', false, 0, (error as Error).message, { cause: error }));
        return;
      }
    }
  }

  #armTimer(): void {
    const timeout = this.native.timeout();
    if (timeout === null) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      return;
    }
    const at = performance.now() + timeout;
    if (this.#timer !== undefined && Math.abs(at - this.#timerAt) < 1) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    quicDriverActivity.timerArms++;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(timeout)));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#ended) return;
    quicDriverActivity.timerFires++;
    this.native.onTimeout();
    this.#pump();
  };

  #endReason(): QuicConnectionError {
    if (this.#localClose !== undefined) return this.#localClose;
    const native = this.native;
    if (native.isTimedOut()) return new QuicConnectionError('idle-timeout', false, 0, '');
    const peer = native.peerError();
    if (peer !== null) return new QuicConnectionError('peer', peer.isApp, peer.errorCode, Buffer.from(peer.reason).toString('utf8'));
    const local = native.localError();
    if (local !== null) return new QuicConnectionError('local', local.isApp, local.errorCode, Buffer.from(local.reason).toString('utf8'));
    return new QuicConnectionError('internal', false, 0, 'the connection closed without an error code');
  }

  // ---- ending ----------------------------------------------------------------------------------

  /**
   * Closes the connection now: one CONNECTION_CLOSE with `code` (an application code by
   * default, e.g. H3_NO_ERROR) is sent, before any stream reset, and everything pending fails.
   * We do not linger in the closing state (RFC 9000 §10.2.1 allows it): nothing of ours runs
   * after this returns.
   */
  close(code: number, reason = '', isApp = true): void {
    if (this.#ended) return;
    this.#localClose = new QuicConnectionError('local', isApp, code, reason);
    // What the streams handed to quiche goes out first, as far as the congestion window allows:
    // quiche sends nothing but the CONNECTION_CLOSE once closed.
    if (this.#verified) this.#flush(Infinity);
    try {
      this.native.close(isApp, code, Buffer.from(reason.slice(0, 200)));
    } catch {
      // already closing
    }
    this.#flush();
    this.#end(this.#localClose);
  }

  #end(error: QuicConnectionError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closeError = error;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
    this.#timer = undefined;
    this.#keepAlive = undefined;
    this.#onCredit = undefined;
    const streamError = new QuicStreamError('closed', undefined, `the QUIC connection ended: ${error.message}`, { cause: error });
    for (const stream of [...this.#streams.values(), ...this.#unannounced]) stream.abort(streamError);
    this.#streams.clear();
    this.#blocked.clear();
    this.#wantRead.clear();
    this.#unannounced.length = 0;
    this.#rejectEstablished(error);
    this.#init.onEnd?.(this);
    this.#resolveClosed();
  }
}
