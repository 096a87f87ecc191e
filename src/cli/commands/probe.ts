/**
 * `omnirelay probe <endpoint>`: one health check through the control-plane client factory, as a
 * program would make it, and what the connection looks like: protocol, TLS, the peer's
 * certificate, timings, and why HTTP/3 was not used when it was not.
 *
 * The call is the standard gRPC health check, `grpc.health.v1.Health/Check` (every `GrpcHost`
 * serves it). SERVING is healthy. A server without the health service answers UNIMPLEMENTED:
 * that round trip went through TLS and gRPC, so it counts as reachable and healthy (said so in
 * the output). Any other answer or failure is unhealthy (exit 1).
 */
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { resolveOptions } from '../../config/schema.js';
import { RpcError } from '../../errors.js';
import { HealthCheckResponse_ServingStatus, HealthDefinition, healthCheckResponse_ServingStatusToJSON } from '../../gen/grpc/health/v1/health.js';
import { GRPC_STATUS } from '../../grpc/status.js';
import type { IGrpcControlPlaneClientFactory, UnaryResult } from '../../factory/types.js';
import { ATTR_FALLBACK_REASON, ATTR_PROTOCOL, ATTR_PROTOCOL_REASON } from '../../telemetry/names.js';
import { EXIT, type ExitCode } from '../errors.js';
import { writeLine, type CliIo } from '../io.js';
import { SpanRecorder, type RecordedSpan } from '../span-recorder.js';
import { buildFactory, positiveInt, resolveTarget, sniFor, type CliTarget, type Endpoint, type TargetFlags } from '../target.js';

export interface ProbeOptions extends TargetFlags {
  /** https://host:port, host:port, or an endpoint name of the --options file. */
  readonly endpoint: string;
  /** The health service asked ('' = the whole server). */
  readonly service?: string | undefined;
  /** Deadline of each call, ms (text as given on the command line). */
  readonly timeout?: string | undefined;
  /** Calls after the first, timed for the round-trip figure. */
  readonly rtt?: string | undefined;
}

const PROTOCOL_NAMES = { h3: 'h3 (HTTP/3 over QUIC)', h2: 'h2 (HTTP/2 over TLS/TCP)' } as const;

/** Why the factory used HTTP/2, in words, from the call's span (docs/http3.md, "Preference, racing, fallback"). */
const REASONS: Record<string, string> = {
  'profile-disabled': 'the profile disables HTTP/3',
  'hint-denied': 'an endpoint hint denies HTTP/3',
  'http3-broken': 'HTTP/3 failed recently for this endpoint (backoff window)',
  'no-http3-transport': 'no HTTP/3 transport (quiche binding unavailable on this platform)',
  insecure: 'the profile is not TLS',
  'http3-pending': 'the HTTP/3 dial was still pending and HTTP/2 was ready first',
  'race-delay': 'QUIC did not finish its handshake within the race delay, HTTP/2 was ready first',
  connect: 'HTTP/3 connect failed (no QUIC answer, or the UDP port refused)',
  handshake: 'the HTTP/3 handshake failed',
};

function why(span: RecordedSpan | undefined): string | undefined {
  if (span === undefined) return undefined;
  const parts: string[] = [];
  for (const key of [ATTR_PROTOCOL_REASON, ATTR_FALLBACK_REASON]) {
    const value = span.attributes[key];
    if (typeof value === 'string') parts.push(`${REASONS[value] ?? value} [${key}=${value}]`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

interface TcpTls {
  readonly tcpMs: number;
  readonly tlsMs: number;
  readonly version: string | null;
  readonly cipher: string;
  readonly alpn: string | false | null;
  readonly certificate: X509Certificate | undefined;
}

/**
 * A TCP connect and a TLS handshake with the same material, timed apart (grpc-js does not
 * expose its socket's TLS version). Verified like the factory's HTTP/2 dial: the CA, the name.
 */
/** A TLS dial of the TCP port with the TLS material the profile uses (files or PKCS#12). */
function tlsDial(endpoint: Endpoint, tlsInput: CliTarget['tls'], timeoutMs: number): Promise<TcpTls> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const timer = setTimeout(() => {
      socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    const socket: Socket = tcpConnect({ host: endpoint.host, port: endpoint.port });
    socket.once('error', fail);
    socket.once('connect', () => {
      const tcpMs = performance.now() - started;
      const serverName = tlsInput.serverNameOverride;
      const servername = serverName ?? sniFor(endpoint.host);
      const tls: TLSSocket = tlsConnect({
        socket,
        ALPNProtocols: ['h2'],
        ...(servername !== undefined ? { servername } : {}),
        ...(serverName !== undefined ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(serverName, cert) } : {}),
        ...(tlsInput.caFile !== undefined ? { ca: readFileSync(tlsInput.caFile) } : {}),
        ...(tlsInput.certFile !== undefined && tlsInput.keyFile !== undefined ? { cert: readFileSync(tlsInput.certFile), key: readFileSync(tlsInput.keyFile) } : {}),
        ...(tlsInput.pfxFile !== undefined ? { pfx: readFileSync(tlsInput.pfxFile), ...(tlsInput.pfxPassword !== undefined ? { passphrase: tlsInput.pfxPassword } : {}) } : {}),
      });
      tls.once('error', fail);
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        const result: TcpTls = {
          tcpMs,
          tlsMs: performance.now() - started - tcpMs,
          version: tls.getProtocol(),
          cipher: tls.getCipher().name,
          alpn: tls.alpnProtocol,
          certificate: tls.getPeerX509Certificate(),
        };
        tls.destroy();
        resolve(result);
      });
    });
  });
}

type HealthResult = UnaryResult<{ status: HealthCheckResponse_ServingStatus }>;

/** One health check; UNIMPLEMENTED (no health service) comes back as `'unimplemented'`. */
async function check(factory: IGrpcControlPlaneClientFactory, endpoint: Endpoint, profile: string, service: string, deadlineMs: number): Promise<HealthResult | 'unimplemented'> {
  try {
    return await factory.unary(HealthDefinition, 'check', { service }, { endpoint: endpoint.url, profile, deadlineMs });
  } catch (error) {
    if (error instanceof RpcError && error.status === GRPC_STATUS.UNIMPLEMENTED && error.failure === undefined) return 'unimplemented';
    throw error;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

function describeCertificate(out: (key: string, value: string) => void, cert: X509Certificate): void {
  out('peer', cert.subject.replace(/\n/g, ', '));
  out('issuer', cert.issuer.replace(/\n/g, ', '));
  out('sans', cert.subjectAltName ?? '(none)');
  const expires = new Date(cert.validTo);
  const days = (expires.getTime() - Date.now()) / 86_400_000;
  out('expires', `${expires.toISOString()} (${days >= 0 ? `in ${days.toFixed(1)} days` : `${(-days).toFixed(1)} days ago`})`);
}

export async function runProbe(options: ProbeOptions, io: CliIo): Promise<ExitCode> {
  const target = await resolveTarget(options.endpoint, options);
  const { endpoint, profile } = target;
  const deadlineMs = options.timeout === undefined ? 5000 : positiveInt('--timeout', options.timeout, 86_400_000);
  const rttCalls = options.rtt === undefined ? 5 : positiveInt('--rtt', options.rtt, 10_000);
  const service = options.service ?? '';
  const recorder = new SpanRecorder();
  const out = (key: string, value: string): void => writeLine(io.stdout, `${`${key}:`.padEnd(14)}${value}`);

  const factory = buildFactory(target.options, recorder);
  try {
    const from = options.options !== undefined ? ` from ${options.options}` : '';
    writeLine(io.stdout, `probe ${endpoint.url} (profile ${profile}${from}, ${target.tls.mode === 'mtls' ? 'mTLS' : 'TLS, no client certificate'}, grpc.health.v1.Health/Check${service === '' ? '' : ` service ${JSON.stringify(service)}`})`);
    const started = performance.now();
    // A failure here (unreachable, TLS refused, deadline) is the command's error: one line on stderr, exit 1.
    const first = await check(factory, endpoint, profile, service, deadlineMs);
    const firstMs = performance.now() - started;
    const firstSpan = recorder.last();
    const rtts: number[] = [];
    const rttProtocols = new Set<string>();
    for (let i = 0; i < rttCalls; i++) {
      const t = performance.now();
      await check(factory, endpoint, profile, service, deadlineMs);
      rtts.push(performance.now() - t);
      const used = recorder.last()?.attributes[ATTR_PROTOCOL];
      if (typeof used === 'string') rttProtocols.add(used);
    }

    // An UNIMPLEMENTED answer has no result object; the call's span still says which protocol carried it.
    const spanProtocol = firstSpan?.attributes[ATTR_PROTOCOL];
    const protocol = first !== 'unimplemented' ? first.protocol : spanProtocol === 'h3' || spanProtocol === 'h2' ? spanProtocol : undefined;
    out('protocol', protocol !== undefined ? PROTOCOL_NAMES[protocol] : 'unknown');
    if (protocol !== 'h3') {
      // The factory records a reason only when the profile prefers HTTP/3; a profile that disables it is said here.
      const disabled = resolveOptions(target.options).profiles[profile]?.http3 === 'disable' ? `${REASONS['profile-disabled'] ?? ''} (http3: 'disable')` : undefined;
      const reason = why(firstSpan) ?? disabled ?? 'the factory recorded no reason';
      const probe = await factory.probeHttp3({ endpoint: endpoint.url, profile });
      out('http3', `not used: ${reason}${probe.ok ? '; an HTTP/3 health probe now succeeds' : `; HTTP/3 probe: ${probe.reason ?? 'failed'}`}`);
    } else {
      out('http3', 'used');
    }

    let tcp: TcpTls | undefined;
    let tcpError: string | undefined;
    try {
      tcp = await tlsDial(endpoint, target.tls, deadlineMs);
    } catch (error) {
      tcpError = error instanceof Error ? error.message : String(error);
    }
    if (protocol === 'h3') out('tls', `TLSv1.3 over QUIC (RFC 9001)${tcp !== undefined ? `; the TCP port negotiates ${tcp.version ?? '?'} ${tcp.cipher}, ALPN ${tcp.alpn || 'none'}` : ''}`);
    else if (tcp !== undefined) out('tls', `${tcp.version ?? '?'} ${tcp.cipher}, ALPN ${tcp.alpn || 'none'}`);
    else out('tls', `unknown (a separate TLS dial failed: ${tcpError ?? ''})`);
    const certificate = (first === 'unimplemented' ? undefined : first.peer.certificate) ?? tcp?.certificate;
    if (certificate !== undefined) describeCertificate(out, certificate);
    out('first call', `${ms(firstMs)} (connection setup, TLS handshake and one Health/Check)`);
    if (tcp !== undefined) out('tcp + tls', `TCP connect ${ms(tcp.tcpMs)}, TLS handshake ${ms(tcp.tlsMs)} (a separate dial of the TCP port with the same TLS material)`);
    if (rtts.length > 0) {
      const protocols = [...rttProtocols].join(', ') || 'unknown';
      out('rtt', `median ${ms(median(rtts))}, min ${ms(Math.min(...rtts))}, max ${ms(Math.max(...rtts))} over ${rtts.length} calls on the open connection (${protocols})`);
    }
    if (first === 'unimplemented') {
      out('result', 'HEALTHY (reachable: the server has no grpc.health.v1 service and answered UNIMPLEMENTED over verified TLS)');
      return EXIT.ok;
    }
    const status = first.message.status;
    if (status === HealthCheckResponse_ServingStatus.SERVING) {
      out('result', 'HEALTHY (SERVING)');
      return EXIT.ok;
    }
    out('result', `UNHEALTHY: the server reports ${healthCheckResponse_ServingStatusToJSON(status)}`);
    return EXIT.failed;
  } finally {
    await factory.dispose();
  }
}

