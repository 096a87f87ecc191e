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
