/**
 * Exit codes and the one line every CLI error is reported as: what failed, where (the file,
 * endpoint or option), and how to fix it.
 */
import { ConfigError, EndpointError, OmniRelayError, PeerUnavailableError, RpcError, TlsError, UnknownProfileError } from '../errors.js';

/** The exit codes of every `omnirelay` command (README, "CLI"). */
export const EXIT = {
  /** The command did what it was asked; for `probe`, the endpoint is healthy. */
  ok: 0,
  /** A check failed: the endpoint is unhealthy or unreachable, its TLS was refused, calls failed. */
  failed: 1,
  /** The command line is wrong: unknown command or option, missing or malformed argument. */
  usage: 2,
  /** Our own input files or settings are wrong: a TLS file missing or unreadable, a key that does not match, invalid options. */
  input: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok (probe: the endpoint is healthy)
  1  a check failed: unhealthy or unreachable endpoint, TLS refused, failed calls
  2  usage error: unknown command or option, bad argument
  3  input error: a TLS file missing, unreadable or mismatched, invalid options`;

/** An error the CLI itself raises: `message` is the whole line after the `omnirelay <command>: ` prefix. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Our own TLS files and settings (exit 3) as opposed to what the peer presented or did (exit 1). */
const OWN_TLS_CODES = new Set<string>(['TLS_CLIENT_CERT_MISSING', 'TLS_CLIENT_CERT_UNREADABLE', 'TLS_KEY_MISMATCH', 'TLS_CA_UNREADABLE', 'TLS_CRL_UNREADABLE', 'TLS_CLIENT_CERT_EXPIRED']);

/** Which command-line option names a TLS file, for the fix hint. */
function optionForFile(code: string): string {
  switch (code) {
    case 'TLS_CA_UNREADABLE':
      return '--ca';
    case 'TLS_KEY_MISMATCH':
      return '--cert and --key (they must be one pair)';
    default:
      return '--cert / --key';
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** The exit code and the one line for any error a command throws. */
export function describeError(error: unknown): { exitCode: ExitCode; line: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, line: oneLine(error.message) };
  if (error instanceof TlsError) {
    if (OWN_TLS_CODES.has(error.code)) {
      const where = error.file !== undefined ? `file ${error.file}, ` : '';
      return { exitCode: EXIT.input, line: oneLine(`${error.code} (${where}option ${optionForFile(error.code)}): ${error.message}`) };
    }
    const where = error.peer !== undefined ? ` (peer ${error.peer})` : '';
    const why = error.verifyError !== undefined ? ` [${String(error.verifyError)}]` : '';
    return { exitCode: EXIT.failed, line: oneLine(`${error.code}${where}${why}: ${error.message} Fix: check that --ca is the CA that issued the server's certificate and that the server accepts --cert.`) };
  }
  if (error instanceof ConfigError) {
    const issues = error.issues.map((i) => `${i.key}: ${i.message}`).join('; ');
    return { exitCode: EXIT.input, line: oneLine(`${error.code}: ${issues || error.message}`) };
  }
  if (error instanceof UnknownProfileError) return { exitCode: EXIT.usage, line: oneLine(`${error.code} (--profile ${error.profile}): ${error.message}`) };
  if (error instanceof EndpointError) return { exitCode: EXIT.usage, line: oneLine(`${error.code} (endpoint ${error.endpoint}): ${error.message} Fix: give the endpoint as https://host:port or host:port.`) };
  if (error instanceof RpcError) {
    const failure = error.failure !== undefined ? `, ${error.failure}` : '';
    return { exitCode: EXIT.failed, line: oneLine(`${error.code} ${error.statusName}${failure}: ${error.details || error.message}`) };
  }
  if (error instanceof PeerUnavailableError) return { exitCode: EXIT.failed, line: oneLine(`${error.code} (${error.peers.join(', ')}): ${error.message}`) };
  if (error instanceof OmniRelayError) return { exitCode: EXIT.failed, line: oneLine(`${error.code}: ${error.message}`) };
  if (error instanceof Error) return { exitCode: EXIT.failed, line: oneLine(`${error.name}: ${error.message}`) };
  return { exitCode: EXIT.failed, line: oneLine(String(error)) };
}
