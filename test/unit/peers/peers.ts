import type { PeerCandidate, PeerChoiceContext } from '../../../src/peers/peer-chooser.js';
import { parseEndpoint } from '../../../src/transport/endpoint.js';

/** `count` peers 10.0.0.1:7001, 10.0.0.2:7001, ... */
export function peerList(count: number): PeerCandidate[] {
  return Array.from({ length: count }, (_, i) => {
    const endpoint = parseEndpoint(`10.0.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}:7001`);
    return { authority: endpoint.authority, endpoint };
  });
}

export function context(extra: Partial<PeerChoiceContext> = {}): PeerChoiceContext {
  return { profile: 'control-plane', attempt: 1, tried: new Set(), ...extra };
}

/** A deterministic random source (mulberry32), uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Returns the given values in turn, then repeats. */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

export function tally(picks: readonly (PeerCandidate | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of picks) if (p !== undefined) counts[p.authority] = (counts[p.authority] ?? 0) + 1;
  return counts;
}
