import { describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

// The project's own eslint.config.js, with type-aware rules off so snippets at paths that do
// not exist on disk can be linted (the rule under test needs no type information).
const eslint = new ESLint({ cwd: process.cwd(), overrideConfig: [{ files: ['**/*.ts'], ...tseslint.configs.disableTypeChecked }] });

async function ruleHits(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

const BUILDS_A_CLIENT = `import { Client, credentials } from '@grpc/grpc-js';
export const client = new Client('127.0.0.1:7001', credentials.createInsecure());
`;

describe('lint: grpc-js clients, channels and credentials only in src/transport/', () => {
  it('rejects a grpc-js client built outside src/transport/', async () => {
    const hits = await ruleHits(BUILDS_A_CLIENT, 'src/controlplane/gossip/sneaky-client.ts');
    expect(hits).toEqual([
      expect.stringMatching(/^no-restricted-imports: 'Client' import from '@grpc\/grpc-js' is restricted\. Build gRPC clients, channels and credentials only in src\/transport\//),
      expect.stringMatching(/^no-restricted-imports: 'credentials' import from '@grpc\/grpc-js' is restricted/),
    ]);
  });

  it('accepts the same snippet under src/transport/', async () => {
    await expect(ruleHits(BUILDS_A_CLIENT, 'src/transport/http2/another-connector.ts')).resolves.toEqual([]);
  });

  it.each([
    ['a channel and channel credentials', `import { Channel, ChannelCredentials } from '@grpc/grpc-js';\nexport const c = new Channel('x', ChannelCredentials.createInsecure(), {});\n`],
    ['a generated client constructor', `import { makeGenericClientConstructor } from '@grpc/grpc-js';\nexport const C = makeGenericClientConstructor({}, 'S');\n`],
    ['a namespace import', `import * as grpc from '@grpc/grpc-js';\nexport const c = new grpc.Client('x', grpc.credentials.createInsecure());\n`],
    ['a default import', `import grpc from '@grpc/grpc-js';\nexport const c = grpc;\n`],
    ['a dynamic import', `const grpc = await import('@grpc/grpc-js');\nexport const c = new grpc.Client('x', grpc.credentials.createInsecure());\n`],
    ['a deep import', `import { ChannelImplementation } from '@grpc/grpc-js/build/src/channel.js';\nexport const c = ChannelImplementation;\n`],
    ['a re-export', `export { Client } from '@grpc/grpc-js';\n`],
    ['a re-export of everything', `export * from '@grpc/grpc-js';\n`],
  ])('also catches %s', async (_label, code) => {
    const hits = await ruleHits(code, 'src/dispatcher/sneaky.ts');
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => /^no-restricted-(imports|syntax): .*only in src\/transport\//.test(h))).toBe(true);
  });

  it('still lets the server side (GrpcHost) use grpc-js Server and ServerCredentials', async () => {
    const code = `import { Server, ServerCredentials, status } from '@grpc/grpc-js';\nexport const s = [new Server(), ServerCredentials.createInsecure(), status.OK];\n`;
    await expect(ruleHits(code, 'src/server/another-host.ts')).resolves.toEqual([]);
  });

  it('keeps the Math.random rule in src/ alongside it', async () => {
    await expect(ruleHits('export const r = Math.random();\n', 'src/dispatcher/x.ts')).resolves.toEqual([expect.stringMatching(/^no-restricted-syntax: Inject randomness/)]);
  });
});
