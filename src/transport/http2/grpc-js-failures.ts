/**
 * The only place OmniRelay reads meaning out of message text from @grpc/grpc-js (1.14) or from
 * Node's TLS errors. Everything else about an HTTP/2 failure is classified from structured
 * signals (see `GrpcJsConnection.#toError`):
 *
 * - "no connection" (`failure: 'connect'`): the channel's connectivity state is
 *   TRANSIENT_FAILURE when the call fails (grpc-js fails a call for want of a connection only
 *   from pick_first's UnavailablePicker, which it installs with that state and keeps until a
 *   connection is READY), or `ready()` gave up waiting for READY;
 * - TLS verdicts: the Node TLS error object of the connection attempt, seen by our secure
 *   connector wrapper (`gateDials`) and classified by its `code` (`ERR_SSL_*` for alerts,
 *   OpenSSL's `X509_V_ERR_*` name for verify errors, `ERR_TLS_CERT_ALTNAME_INVALID`), and our
 *   own `checkServerIdentity` verdicts;
 *
 * What is left below has no structured counterpart that reaches us. Each text is pinned by an
 * integration test that provokes the condition with the real library
 * (test/integration/grpc-js-failures.test.ts): a grpc-js or Node upgrade that changes one fails
 * that test instead of silently changing how failures are classified.
 */
import { VERIFY_ERRORS, type CertificateVerifyError } from '../../tls/verify-errors.js';

/**
 * The details grpc-js gives a call whose HTTP/2 stream closed with RST_STREAM REFUSED_STREAM,
 * with status UNAVAILABLE (`subchannel-call.js`, `case http2.constants.NGHTTP2_REFUSED_STREAM:
 * details = 'Stream refused by server'`). nghttp2 closes the streams above a GOAWAY's last
 * stream id the same way, so it also marks requests a draining server's GOAWAY refused.
 * No structured signal: the status does carry `rstCode` (and `progress: 'REFUSED'` from
 * `load-balancing-call.js`), but `RetryingCall.reportStatus` (`retrying-call.js`, "Explicitly
 * construct status object to remove progress field") passes on only code, details and
 * metadata, and every call goes through a RetryingCall, even with retries off.
 */
export const GRPC_JS_REFUSED_STREAM_DETAILS = 'Stream refused by server';

/**
 * The details grpc-js gives a call (UNAVAILABLE) whose connection closed under it:
 * `subchannel-call.js` `onDisconnect()` (`details: 'Connection dropped'`) and its
 * `NGHTTP2_CANCEL` case when `connectionDropped` is set. No structured signal: that flag is
 * private, `rstCode` is dropped as above, and after the drop the channel is IDLE like any
 * channel with no call open.
 */
export const GRPC_JS_CONNECTION_DROPPED_DETAILS = 'Connection dropped';

/**
 * What grpc-js reports (inside "No connection established. Last error: ...") when the
 * connection's socket closed without an error after the TLS handshake and before the
 * server's HTTP/2 SETTINGS: the initial `errorMessage` of `Http2SubchannelConnector.
 * createSession` (`transport.js`, `let errorMessage = 'Failed to connect'`), reported by its
 * socket `close` handler. Our secure connector sees that TLS socket close, but not whether
 * HTTP/2 SETTINGS had arrived on it (the HTTP/2 session is grpc-js's, made after our
 * connector returns), which is what tells a refused client certificate (Node's TLS servers
 * verify it after a TLS 1.3 handshake and then close without an alert) from an established
 * connection that later closed.
 */
export const GRPC_JS_CLOSED_BEFORE_SETTINGS = 'Failed to connect';

/**
 * The details grpc-js gives a call (INTERNAL) whose HTTP/2 stream the server closed with
 * RST_STREAM NO_ERROR before sending a gRPC status (`subchannel-call.js`, `case
 * http2.constants.NGHTTP2_NO_ERROR`: `Received RST_STREAM with code 0 (Call ended without gRPC
 * status)`): what a Go gRPC server that stops (etcd on SIGTERM) does to its open streams.
 * `rstCode` is dropped as above. Pinned by test/integration/etcd-restart.test.ts (a watch
 * while etcd stops).
 */
export const GRPC_JS_ENDED_WITHOUT_STATUS_DETAILS = '(Call ended without gRPC status)';

/** The server closed the stream without a gRPC status ({@link GRPC_JS_ENDED_WITHOUT_STATUS_DETAILS}). */
export function endedWithoutStatus(details: string): boolean {
  return details.endsWith(GRPC_JS_ENDED_WITHOUT_STATUS_DETAILS);
}

/** The call ended with grpc-js's REFUSED_STREAM status ({@link GRPC_JS_REFUSED_STREAM_DETAILS}). */
export function isRefusedStream(details: string): boolean {
  return details === GRPC_JS_REFUSED_STREAM_DETAILS;
}

/** The call ended because its connection closed under it ({@link GRPC_JS_CONNECTION_DROPPED_DETAILS}). */
export function isConnectionDropped(details: string): boolean {
  return details === GRPC_JS_CONNECTION_DROPPED_DETAILS;
}

/** The last connection attempt closed after TLS and before HTTP/2 SETTINGS ({@link GRPC_JS_CLOSED_BEFORE_SETTINGS}). */
export function closedBeforeSettings(details: string): boolean {
  // pick_first's "No connection established. Last error: Failed to connect (<ISO time>). Resolution note: ..."
  return details.includes(`Last error: ${GRPC_JS_CLOSED_BEFORE_SETTINGS} (`);
}

/**
 * Node's code for an OpenSSL verify error it has no name for (`crypto_common.cc`
 * `GetValidationErrorCode` knows a fixed list of `X509_V_ERR_*`; others, e.g.
 * `CA_MD_TOO_WEAK`, `EE_KEY_TOO_SMALL`, `DIFFERENT_CRL_SCOPE`, come as `UNSPECIFIED`). The
 * error's message is then OpenSSL's `X509_verify_cert_error_string`, the only trace of the
 * reason: {@link verifyErrorOfUnnamed} reads it.
 */
export const NODE_UNNAMED_VERIFY_ERROR = 'UNSPECIFIED';

/** Longest message first, so "self-signed certificate in certificate chain" wins over "self-signed certificate". */
const BY_MESSAGE = (Object.entries(VERIFY_ERRORS) as [CertificateVerifyError, { message: string }][]).sort((a, b) => b[1].message.length - a[1].message.length);

/**
 * The verify error a Node TLS error with code {@link NODE_UNNAMED_VERIFY_ERROR} is about, by
 * OpenSSL's message for it (the `message` column of `VERIFY_ERRORS`, OpenSSL 3.0's
 * `X509_verify_cert_error_string`; OpenSSL 1.1 wrote "self signed").
 */
export function verifyErrorOfUnnamed(message: string): CertificateVerifyError | undefined {
  const normalized = message.replace(/self signed/gi, 'self-signed');
  for (const [name, info] of BY_MESSAGE) {
    if (normalized === info.message) return name;
  }
  return undefined;
}
