import { createSocket, type Socket } from 'node:dgram';

/**
 * A UDP relay on 127.0.0.1 standing in for the network between QUIC clients and a QUIC server:
 * datagrams to `port` go to `targetPort` from one upstream socket per client address (so the
 * server sees one peer per client, as through a NAT), and the server's answers go back. Then
 * the network can fail, with real sockets:
 * - `drop()`: every datagram, both ways, is silently discarded (a firewall that drops UDP);
 * - `refuse()`: the relay's port is closed, so the kernel answers the clients' datagrams with
 *   ICMP port unreachable (a firewall that rejects UDP).
 */
export interface UdpRelay {
  readonly port: number;
  /** Datagrams relayed so far, both ways. */
  readonly relayed: number;
  drop(): void;
  refuse(): Promise<void>;
  close(): Promise<void>;
}

const closeSocket = (socket: Socket): Promise<void> =>
  new Promise<void>((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });

/** Binds UDP `port` on 127.0.0.1 (rejects with EADDRINUSE when taken) and relays to `targetPort`. */
export async function startUdpRelay(port: number, targetPort: number): Promise<UdpRelay> {
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
  let dropping = false;
  let frontOpen = true;
  let relayed = 0;
  front.on('message', (datagram, from) => {
    if (dropping) return;
    const key = `${from.address}:${from.port}`;
    let upstream = upstreams.get(key);
    if (upstream === undefined) {
      const socket = createSocket('udp4');
      socket.on('error', () => undefined);
      socket.on('message', (answer) => {
        if (dropping || !frontOpen) return;
        relayed++;
        front.send(answer, from.port, from.address);
      });
      upstreams.set(key, socket);
      upstream = socket;
    }
    relayed++;
    upstream.send(datagram, targetPort, '127.0.0.1');
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
    drop: () => {
      dropping = true;
    },
    refuse: async () => {
      frontOpen = false;
      await closeSocket(front);
    },
    close: async () => {
      dropping = true;
      if (frontOpen) {
        frontOpen = false;
        await closeSocket(front);
      }
      await closeUpstreams();
    },
  };
}
