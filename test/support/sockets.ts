import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Counts TCP sockets in state ESTABLISHED whose remote port is `port`, from the kernel's
 * own tables (/proc/net/tcp and tcp6): an independent count of the client connections
 * this process (and anything else on the machine) holds to a loopback server.
 */
export function establishedTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const fields of kernelTable(table)) {
      const remote = fields[2];
      const state = fields[3];
      if (remote !== undefined && state === '01' && remote.endsWith(`:${hexPort}`)) count++;
    }
  }
  return count;
}

/** The rows of one of the kernel's socket tables (/proc/net/tcp …), split into fields; none when it cannot be read (no IPv6, say). */
function kernelTable(path: string): string[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/));
}

/**
 * Runs a full garbage collection and lets the destroy hooks it triggers run. undici's
 * request API wraps each request in an AsyncResource that is destroyed only when collected;
 * jest's --detectOpenHandles would otherwise list those (they hold no socket or timer).
 */
export async function collectGarbage(): Promise<void> {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** One socket this process holds, from /proc/self/fd joined with the kernel's tables by inode. */
export interface OwnSocket {
  readonly protocol: 'tcp' | 'udp';
  readonly localPort: number;
  /** 0 for a listening or unconnected socket. */
  readonly remotePort: number;
  /** The kernel's state code (TCP: '01' established, '0A' listening; UDP: '07' unconnected or '01' connected). */
  readonly state: string;
}

/**
 * Every TCP and UDP socket (IPv4 and IPv6) open in this process: the socket inodes of
 * /proc/self/fd looked up in /proc/net/{tcp,tcp6,udp,udp6}. Other sockets (Unix, netlink) are
 * left out; `total` counts every socket descriptor.
 */
export function ownSockets(): { sockets: OwnSocket[]; total: number } {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the readdir's own descriptor, for one)
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1] !== undefined) inodes.add(match[1]);
  }
  const sockets: OwnSocket[] = [];
  for (const [protocol, table] of [['tcp', '/proc/net/tcp'], ['tcp', '/proc/net/tcp6'], ['udp', '/proc/net/udp'], ['udp', '/proc/net/udp6']] as const) {
    for (const fields of kernelTable(table)) {
      const inode = fields[9];
      if (inode === undefined || !inodes.has(inode)) continue;
      const port = (address: string | undefined): number => Number.parseInt(address?.split(':')[1] ?? '0', 16);
      sockets.push({ protocol, localPort: port(fields[1]), remotePort: port(fields[2]), state: fields[3] ?? '' });
    }
  }
  return { sockets, total: inodes.size };
}
