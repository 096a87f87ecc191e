/**
 * The QUIC binding is loaded lazily and only where it exists: HTTP/2-only users never load the
 * native addon, and where no prebuilt binding is published (faked here as linux-arm64) the
 * package still loads and works over HTTP/2, with exactly one warning naming why. Each case runs
 * in a child process (test/support/quic-binding-probe.mjs), so the binding's load state and the
 * faked platform start fresh.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

const PROBE = fileURLToPath(new URL('../support/quic-binding-probe.mjs', import.meta.url));

interface ProbeResult {
  readonly protocols: string[];
  readonly hostProtocols: string[];
  readonly addonLoads: string[];
  readonly warnings: string[];
}

function probe(scenario: 'h2-only' | 'no-binding'): ProbeResult {
  const child = spawnSync(process.execPath, [PROBE, scenario], { encoding: 'utf8', timeout: 60_000 });
  if (child.status !== 0) throw new Error(`the probe (${scenario}) exited with ${String(child.status ?? child.signal)}: ${child.stderr}`);
  const line = child.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as ProbeResult;
}

describe('loading the QUIC binding', () => {
  it('an HTTP/2-only user (host http3: false, profile http3 disable) never loads the native addon', () => {
    const result = probe('h2-only');
    expect(result.protocols).toEqual(['h2', 'h2', 'h2']);
    expect(result.hostProtocols).toEqual(['h2']);
    expect(result.addonLoads).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it('without a binding for the platform: the package loads, GrpcHost serves HTTP/2 only, calls with the default profile use HTTP/2, one warning names why', () => {
    const result = probe('no-binding');
    expect(result.protocols).toEqual(['h2', 'h2', 'h2']);
    expect(result.hostProtocols).toEqual(['h2']);
    expect(result.addonLoads).toEqual([]);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/^OMNIRELAY_HTTP3_UNAVAILABLE: HTTP\/3 is off: no prebuilt QUIC \(quiche\) binding is published for linux-arm64/);
  });
});
