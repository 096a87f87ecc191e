import { createSocket, type Socket } from 'node:dgram';

/**
 * A UDP relay on 127.0.0.1 standing in for the network between QUIC clients and a QUIC server:
 * datagrams to `port` go to `targetPort` from one upstream socket per client address (so the
 * server sees one peer per client, as through a NAT), and the server's answers go back. Then
 * the network can misbehave, with real sockets (`tc netem` is not available on these kernels,
 * see the faults note, so delay and reordering live here):
 * - `delay` (option): every datagram, both ways, is held for its own uniformly random time in
 *   [minMs, maxMs] before it is forwarded, so datagrams overtake each other (with 20–80 ms and
 *   several datagrams in flight, most flights arrive reordered). `reordered` counts the
 *   datagrams forwarded after a datagram of the same client and direction that arrived later;
 * - `drop()`: every datagram, both ways, is silently discarded (a firewall that drops UDP),
 *   including those held for their delay;
 * - `refuse()`: the relay's port is closed, so the kernel answers the clients' datagrams with
 *   ICMP port unreachable (a firewall that rejects UDP); held datagrams are discarded.
 * Every delay timer is cleared by `drop()`, `refuse()` and `close()`: nothing is left scheduled.
 */
export interface UdpRelay {
  readonly port: number;
  /** Datagrams relayed so far, both ways. */
  readonly relayed: number;
  /** Datagrams held for a delay so far, both ways (0 without the `delay` option). */
  readonly delayed: number;
  /** Datagrams forwarded after a later-arrived datagram of the same client and direction had been forwarded. */
  readonly reordered: number;
  /** Datagrams held right now. */
  readonly held: number;
  drop(): void;
  refuse(): Promise<void>;
  close(): Promise<void>;
}

export interface UdpRelayOptions {
  /** Hold each datagram for a uniformly random time in [minMs, maxMs] (ms, 0 ≤ minMs ≤ maxMs). Default: forward at once. */
  readonly delay?: { readonly minMs: number; readonly maxMs: number } | undefined;
  /** The delay's randomness, a number in [0, 1). Default Math.random. */
  readonly random?: (() => number) | undefined;
}

/** The relay's options are out of range. */
export class UdpRelayOptionsError extends RangeError {
  override readonly name = 'UdpRelayOptionsError';
}

const closeSocket = (socket: Socket): Promise<void> =>
  new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });

/** One client's one direction: arrival order vs forwarding order. */
interface Flow {
  arrived: number;
  lastForwarded: number;
}

/**
 * Binds UDP `port` on 127.0.0.1 (rejects with EADDRINUSE when taken) and relays to `targetPort`;
 * throws UdpRelayOptionsError for a delay out of range.
 */
export async function startUdpRelay(port: number, targetPort: number, options: UdpRelayOptions = {}): Promise<UdpRelay> {
  const delay = options.delay;
  if (delay !== undefined && !(Number.isFinite(delay.minMs) && Number.isFinite(delay.maxMs) && delay.minMs >= 0 && delay.maxMs >= delay.minMs)) {
    throw new UdpRelayOptionsError(`delay must satisfy 0 ≤ minMs ≤ maxMs (finite ms), got minMs ${delay.minMs}, maxMs ${delay.maxMs}`);
  }
  const random = options.random ?? Math.random;
  const front = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind({ port, address: '127.0.0.1', exclusive: true }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  front.on('error', () => undefined);
  const upstreams = new Map<string, Socket>();
  const flows = new Map<string, Flow>();
  const timers = new Set<NodeJS.Timeout>();
  let dropping = false;
  let frontOpen = true;
  let relayed = 0;
  let delayed = 0;
  let reordered = 0;

  const clearHeld = (): void => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  };

  /** Forwards now, or after this datagram's random delay; `send` must re-check that the path is still open. */
  const forward = (flowKey: string, send: () => void): void => {
    let flow = flows.get(flowKey);
    if (flow === undefined) {
      flow = { arrived: 0, lastForwarded: 0 };
      flows.set(flowKey, flow);
    }
    const order = ++flow.arrived;
    const deliver = (): void => {
      if (order < flow.lastForwarded) reordered++;
      else flow.lastForwarded = order;
      send();
    };
    if (delay === undefined) {
      deliver();
      return;
    }
    delayed++;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!dropping) deliver();
    }, delay.minMs + random() * (delay.maxMs - delay.minMs));
    timers.add(timer);
  };

  front.on('message', (datagram, from) => {
    if (dropping) return;
    const key = `${from.address}:${from.port}`;
    let upstream = upstreams.get(key);
    if (upstream === undefined) {
      const socket = createSocket('udp4');
      socket.on('error', () => undefined);
      socket.on('message', (answer) => {
        if (dropping || !frontOpen) return;
        forward(`${key}<`, () => {
          if (dropping || !frontOpen) return;
          relayed++;
          front.send(answer, from.port, from.address);
        });
      });
      upstreams.set(key, socket);
      upstream = socket;
    }
    const socket = upstream;
    forward(`${key}>`, () => {
      if (dropping || upstreams.get(key) !== socket) return;
      relayed++;
      socket.send(datagram, targetPort, '127.0.0.1');
    });
  });
  const closeUpstreams = async (): Promise<void> => {
    const sockets = [...upstreams.values()];
    upstreams.clear();
    await Promise.all(sockets.map(closeSocket));
  };
  return {
    port,
    get relayed() {
      return relayed;
    },
    get delayed() {
      return delayed;
    },
    get reordered() {
      return reordered;
    },
    get held() {
      return timers.size;
    },
    drop: () => {
      dropping = true;
      clearHeld();
    },
    refuse: async () => {
      frontOpen = false;
      clearHeld();
      await closeSocket(front);
    },
    close: async () => {
      dropping = true;
      clearHeld();
      if (frontOpen) {
        frontOpen = false;
        await closeSocket(front);
      }
      await closeUpstreams();
    },
  };
}
