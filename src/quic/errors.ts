/** Errors of the QUIC driver: connection ends, stream ends, dial failures. */

/** Where a connection's end came from. */
export type QuicCloseSource =
  /** We closed it (application or transport code). */
  | 'local'
  /** The peer sent CONNECTION_CLOSE. */
  | 'peer'
  /** No packet from the peer within the idle timeout. */
  | 'idle-timeout'
  /** The UDP socket failed (e.g. ICMP port unreachable on a connected socket). */
  | 'socket'
  /** quiche reported an error it did not close the connection for. */
  | 'internal';

/** Why a QUIC connection ended (a clean local close too, with `code` H3_NO_ERROR or 0). */
export class QuicConnectionError extends Error {
  override readonly name = 'QuicConnectionError';
  constructor(
    readonly source: QuicCloseSource,
    /** An application close (CONNECTION_CLOSE 0x1d) rather than a transport one (0x1c). */
    readonly isApp: boolean,
    readonly code: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(QuicConnectionError.#describe(source, isApp, code, reason), options);
  }

  static #describe(source: QuicCloseSource, isApp: boolean, code: number, reason: string): string {
    const why = reason === '' ? '' : ` (${reason})`;
    switch (source) {
      case 'idle-timeout':
        return 'the QUIC connection timed out: no packet from the peer within the idle timeout';
      case 'socket':
        return `the UDP socket failed${why}`;
      case 'internal':
        return `quiche failed${why}`;
      default:
        return `${source === 'peer' ? 'the peer' : 'we'} closed the QUIC connection with ${isApp ? 'application' : 'transport'} code 0x${code.toString(16)}${why}`;
    }
  }

  /** The TLS alert behind a transport close with a crypto error (0x100 + alert), if any. */
  get tlsAlert(): number | undefined {
    return !this.isApp && this.code >= 0x100 && this.code <= 0x1ff ? this.code - 0x100 : undefined;
  }
}

/** Why a stream operation failed. */
export type QuicStreamErrorKind =
  /** The peer reset its sending side (RESET_STREAM): reads fail. */
  | 'reset'
  /** The peer asked us to stop sending (STOP_SENDING): writes fail. */
  | 'stopped'
  /** We reset or stopped the stream ourselves. */
  | 'cancelled'
  /** The connection ended; `cause` is its QuicConnectionError. */
  | 'closed'
  /** quiche refused the operation (e.g. an invalid stream state). */
  | 'invalid';

export class QuicStreamError extends Error {
  override readonly name = 'QuicStreamError';
  constructor(
    readonly kind: QuicStreamErrorKind,
    /** The application error code (reset, stopped, cancelled). */
    readonly code: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The peer ended the stream (RESET_STREAM or STOP_SENDING). */
  get byPeer(): boolean {
    return this.kind === 'reset' || this.kind === 'stopped';
  }
}

/** Why a dial failed before the connection was up. */
export type QuicDialFailure =
  /** No completed handshake within the connect timeout. */
  | 'timeout'
  /** The peer's host answered ICMP port unreachable (nothing listens on that UDP port). */
  | 'refused'
  /** The handshake ended with a CONNECTION_CLOSE (`cause` is the QuicConnectionError). */
  | 'handshake'
  /** Our own verification refused the peer's certificate. */
  | 'verify'
  /** The UDP socket could not be opened or used. */
  | 'socket'
  /** The caller aborted the dial. */
  | 'aborted';

export class QuicDialError extends Error {
  override readonly name = 'QuicDialError';
  constructor(
    readonly failure: QuicDialFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Opening a stream past the peer's MAX_STREAMS credit. */
export class QuicStreamLimitError extends Error {
  override readonly name = 'QuicStreamLimitError';
}
