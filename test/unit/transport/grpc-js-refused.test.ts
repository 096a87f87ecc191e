/**
 * The HTTP/2 transport recognises a request the server refused without processing it
 * (RST_STREAM REFUSED_STREAM, and the streams a GOAWAY refused, which nghttp2 closes with the
 * same code) by the status details grpc-js gives it. This pins that text to the installed
 * grpc-js, so an upgrade that changes it fails here instead of silently counting draining
 * servers as breaker failures again.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { GRPC_JS_REFUSED_STREAM_DETAILS } from '../../../src/transport/http2/grpc-js-failures.js';

describe('grpc-js REFUSED_STREAM mapping', () => {
  it('grpc-js ends a call whose stream closed with REFUSED_STREAM as UNAVAILABLE with the details we match', () => {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('@grpc/grpc-js/package.json'));
    const source = readFileSync(join(root, 'build', 'src', 'subchannel-call.js'), 'utf8');
    const refusedCase = /case http2\.constants\.NGHTTP2_REFUSED_STREAM:\s*code = constants_1\.Status\.UNAVAILABLE;\s*details = '([^']*)';/.exec(source);
    expect(refusedCase?.[1]).toBe(GRPC_JS_REFUSED_STREAM_DETAILS);
    // With grpc.enable_retries 0 (ours), grpc-js does not retry REFUSED itself: the call ends with that status.
    const retrying = readFileSync(join(root, 'build', 'src', 'retrying-call.js'), 'utf8');
    expect(retrying).toMatch(/if \(channel\.getOptions\(\)\['grpc\.enable_retries'\] === 0\) \{\s*this\.state = 'NO_RETRY';/);
  });
});
