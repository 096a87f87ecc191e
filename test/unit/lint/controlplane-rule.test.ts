import { readFile } from 'node:fs/promises';
import { describe, expect, it } from '@jest/globals';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';

// The project's own eslint.config.js, with type-aware rules off so snippets at paths that do
// not exist on disk can be linted (the rules under test need no type information).
const eslint = new ESLint({ cwd: process.cwd(), overrideConfig: [{ files: ['**/*.ts'], ...tseslint.configs.disableTypeChecked }] });

async function ruleHits(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

const DISPATCHER_HIT = /^no-restricted-(imports|syntax): .*src\/controlplane\/ must not import src\/dispatcher\//;
const GRPC_CLIENT_HIT = /^no-restricted-(imports|syntax): .*only in src\/transport\//;

const IMPORTS_THE_DISPATCHER = `import { Dispatcher } from '../../dispatcher/dispatcher.js';\nexport const d = Dispatcher;\n`;

describe('lint: nothing under src/controlplane/ imports src/dispatcher/', () => {
  it('rejects a dispatcher import in src/controlplane/', async () => {
    const hits = await ruleHits(IMPORTS_THE_DISPATCHER, 'src/controlplane/discovery/sneaky.ts');
    expect(hits).toEqual([expect.stringMatching(DISPATCHER_HIT)]);
  });

  it.each([
    ['one level up', 'src/controlplane/sneaky.ts', `import { GrpcOutbound } from '../dispatcher/grpc-outbound.js';\nexport const o = GrpcOutbound;\n`],
    ['a type-only import', 'src/controlplane/gossip/sneaky.ts', `import type { Outbound } from '../../dispatcher/outbound.js';\nexport type O = Outbound;\n`],
    ['a re-export', 'src/controlplane/leadership/sneaky.ts', `export { createDispatcher } from '../../dispatcher/module.js';\n`],
    ['a re-export of everything', 'src/controlplane/leadership/sneaky.ts', `export * from '../../dispatcher/procedures.js';\n`],
    ['a dynamic import', 'src/controlplane/gossip/sneaky.ts', `export const m = await import('../../dispatcher/dispatcher.js');\n`],
    ['a dispatcher name through the package root', 'src/controlplane/discovery/sneaky.ts', `import { GrpcOutbound } from '../../index.js';\nexport const o = GrpcOutbound;\n`],
    ['a namespace import of the package root', 'src/controlplane/discovery/sneaky.ts', `import * as lib from '../../index.js';\nexport const o = lib;\n`],
    ['a dispatcher name through the package name', 'src/controlplane/discovery/sneaky.ts', `import { createDispatcher } from 'omnirelay';\nexport const c = createDispatcher;\n`],
  ])('also catches %s', async (_label, filePath, code) => {
    const hits = await ruleHits(code, filePath);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => DISPATCHER_HIT.test(h))).toBe(true);
  });

  it('still rejects a grpc-js client built in src/controlplane/ (the rule is repeated there, not lost)', async () => {
    const code = `import { Client, credentials } from '@grpc/grpc-js';\nexport const c = new Client('127.0.0.1:7001', credentials.createInsecure());\n`;
    const hits = await ruleHits(code, 'src/controlplane/gossip/sneaky-client.ts');
    expect(hits).toEqual([
      expect.stringMatching(/^no-restricted-imports: 'Client' import from '@grpc\/grpc-js' is restricted\. Build gRPC clients/),
      expect.stringMatching(/^no-restricted-imports: 'credentials' import from '@grpc\/grpc-js' is restricted/),
    ]);
    for (const other of [`export const g = await import('@grpc/grpc-js');\n`, `import { ChannelImplementation } from '@grpc/grpc-js/build/src/channel.js';\nexport const c = ChannelImplementation;\n`]) {
      const more = await ruleHits(other, 'src/controlplane/gossip/sneaky-client.ts');
      expect(more.length).toBeGreaterThan(0);
      expect(more.every((h) => GRPC_CLIENT_HIT.test(h))).toBe(true);
    }
  });

  it('keeps the Math.random rule in src/controlplane/', async () => {
    await expect(ruleHits('export const r = Math.random();\n', 'src/controlplane/gossip/x.ts')).resolves.toEqual([expect.stringMatching(/^no-restricted-syntax: Inject randomness/)]);
  });

  it('accepts the factory, the member list, the server side and non-dispatcher names from the package root', async () => {
    const code = [
      `import type { IGrpcControlPlaneClientFactory } from '../../factory/types.js';`,
      `import { MembershipSource } from '../membership.js';`,
      `import { GrpcHost } from '../../server/grpc-host.js';`,
      `import { Server, ServerCredentials } from '@grpc/grpc-js';`,
      `import { TOKENS, RpcError } from '../../index.js';`,
      `import { dispatch } from './dispatcher.js';`,
      `export type F = IGrpcControlPlaneClientFactory;`,
      `export const all = [MembershipSource, GrpcHost, Server, ServerCredentials, TOKENS, RpcError, dispatch];`,
      '',
    ].join('\n');
    await expect(ruleHits(code, 'src/controlplane/discovery/fine.ts')).resolves.toEqual([]);
  });

  it('leaves dispatcher imports elsewhere alone', async () => {
    await expect(ruleHits(IMPORTS_THE_DISPATCHER, 'src/cli/uses-dispatcher.ts')).resolves.toEqual([]);
    await expect(ruleHits(`import { Dispatcher } from './dispatcher.js';\nexport const d = Dispatcher;\n`, 'src/dispatcher/module-2.ts')).resolves.toEqual([]);
    await expect(ruleHits(`import { GrpcOutbound } from '../index.js';\nexport const o = GrpcOutbound;\n`, 'src/server/x.ts')).resolves.toEqual([]);
  });

  it('names every dispatcher export of src/index.ts in the package-root restriction', async () => {
    const config = (await eslint.calculateConfigForFile('src/controlplane/discovery/x.ts')) as Linter.Config;
    const rule = config.rules?.['no-restricted-imports'] as [unknown, { paths: { name: string; importNames?: string[] }[] }];
    const restricted = rule[1].paths.find((p) => p.name === 'omnirelay')?.importNames ?? [];
    const index = await readFile('src/index.ts', 'utf8');
    const exported = [...index.matchAll(/export (?:type )?\{([^}]*)\} from '\.\/dispatcher\//g)].flatMap((m) =>
      m[1]!
        .split(',')
        .map((name) => name.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!)
        .filter((name) => name !== ''),
    );
    expect(exported.length).toBeGreaterThan(10);
    expect([...restricted].sort()).toEqual([...new Set(exported)].sort());
  });
});
