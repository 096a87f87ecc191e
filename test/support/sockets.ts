import { readFileSync } from 'node:fs';

/**
 * Counts TCP sockets in state ESTABLISHED whose remote port is `port`, from the kernel's
 * own tables (/proc/net/tcp and tcp6): an independent count of the client connections
 * this process (and anything else on the machine) holds to a loopback server.
 */
export function establishedTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const remote = fields[2];
      const state = fields[3];
      if (remote !== undefined && state === '01' && remote.endsWith(`:${hexPort}`)) count++;
    }
  }
  return count;
}
