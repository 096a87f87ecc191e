// Shared by the bench scripts: run a call many times with N callers, and summarise blocks.

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Runs `total` calls with `concurrency` callers; returns the latencies (ms), the elapsed time
 * (s) and the process CPU time (µs, user + system) spent meanwhile.
 */
export async function run(call, total, concurrency) {
  const latencies = new Float64Array(total);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await call(i);
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { latencies, seconds, cpuMicros: cpu.user + cpu.system };
}

/** Throughput, p50, p99 and CPU per call over several blocks of one variant. */
export function summarise(blocks) {
  const all = blocks.flatMap((b) => Array.from(b.latencies)).sort((a, b) => a - b);
  const seconds = blocks.reduce((sum, b) => sum + b.seconds, 0);
  const cpuMicros = blocks.reduce((sum, b) => sum + b.cpuMicros, 0);
  return { throughput: all.length / seconds, p50: percentile(all, 50), p99: percentile(all, 99), cpuPerCall: cpuMicros / all.length };
}

/**
 * Compares variants (call functions) on a shared, noisy machine: `blocks` small blocks of each
 * variant, in an order that rotates every block, latencies pooled per variant. Drift hits
 * every variant alike.
 */
export async function compare(variants, { blocks, total, concurrency }) {
  const results = variants.map(() => []);
  const perBlock = Math.ceil(total / blocks);
  for (let b = 0; b < blocks; b++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (b + k) % variants.length;
      results[v].push(await run(variants[v], perBlock, concurrency));
    }
  }
  return results.map(summarise);
}

/**
 * Options of the hand-made grpc-js baseline clients: they dial 127.0.0.1, and grpc-js would send
 * that IP address as the TLS server name, which Node warns about (DEP0123, RFC 6066 forbids IP
 * SNI); naming the host `localhost` (in the dev certificates' SANs) keeps the bench output clean.
 * The factory drops an IP server name itself.
 */
export const RAW_CLIENT_OPTIONS = { 'grpc.ssl_target_name_override': 'localhost' };
