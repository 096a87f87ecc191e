import type { Config } from 'jest';

// Jest runs in ESM mode (node --experimental-vm-modules): inversify 8 ships ESM only.
// Tiers above `unit` import the library as `omnirelay`, which maps to the built `dist/`,
// never to `src/`: they test the artifact we ship.
const tsJest: [string, Record<string, unknown>] = [
  'ts-jest',
  { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false },
];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': tsJest },
  testEnvironment: 'node',
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' } as Record<string, string>,
};

const builtArtifact = {
  ...common,
  moduleNameMapper: { '^omnirelay$': '<rootDir>/dist/index.js', ...common.moduleNameMapper },
};

const config: Config = {
  // A safety net against hangs, not a speed target (benchmarks measure speed): the integration
  // tiers start servers and make thousands of calls on a shared 2-core machine.
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...builtArtifact, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...builtArtifact, displayName: 'feature', testMatch: ['<rootDir>/test/feature/**/*.test.ts'] },
    { ...builtArtifact, displayName: 'hyperscale', testMatch: ['<rootDir>/test/hyperscale/**/*.test.ts'] },
    // Real network faults (network namespaces, veth links, nftables drops) against node processes
    // running the built dist/; needs root, iproute2 and nftables (.ci/run installs them).
    { ...builtArtifact, displayName: 'chaos', testMatch: ['<rootDir>/test/chaos/**/*.test.ts'] },
    // The tarball `npm pack` makes, installed into a new project and run there (the README example).
    { ...common, displayName: 'package', testMatch: ['<rootDir>/test/package/**/*.test.ts'] },
  ],
};

export default config;
