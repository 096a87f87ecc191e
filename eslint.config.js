// ESLint flat config. The users' design card lists `.eslintrc.cjs`; that format was
// deprecated by ESLint 9 and removed in ESLint 10, so the same rules live here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NO_MATH_RANDOM = { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'Inject randomness (see DESIGN.md habits).' };

// Every gRPC client connection goes through the control-plane client factory (src/factory)
// and its transports (src/transport). Outside src/transport/ nothing may build its own
// grpc-js client, channel or credentials, so nothing can bypass the factory's TLS, peer
// choice, breakers, hints and telemetry. Serving (GrpcHost: Server, ServerCredentials) is allowed.
const GRPC_CLIENT_MESSAGE = 'Build gRPC clients, channels and credentials only in src/transport/; elsewhere call through IGrpcControlPlaneClientFactory (see docs/dispatcher.md).';
const GRPC_CLIENT_NAMES = [
  'Client',
  'Channel',
  'ChannelImplementation',
  'ChannelCredentials',
  'CallCredentials',
  'credentials',
  'makeClientConstructor',
  'makeGenericClientConstructor',
  'loadPackageDefinition',
  'InterceptingCall',
];
const NO_GRPC_CLIENT_SYNTAX = [
  { selector: "ImportDeclaration[source.value='@grpc/grpc-js'] > ImportDefaultSpecifier", message: `${GRPC_CLIENT_MESSAGE} (import the server names you need instead of the default export)` },
  { selector: "ExportAllDeclaration[source.value=/^@grpc.grpc-js/]", message: GRPC_CLIENT_MESSAGE },
  { selector: "ImportExpression[source.value=/^@grpc.grpc-js/]", message: GRPC_CLIENT_MESSAGE },
  { selector: "CallExpression[callee.name='require'][arguments.0.value=/^@grpc.grpc-js/]", message: GRPC_CLIENT_MESSAGE },
];

// src/controlplane/ (gossip, discovery, leadership) sits below the dispatcher: nothing under it
// imports src/dispatcher/, by a relative path (`../../dispatcher/...`) or through the package
// root (`../../index.js`, `omnirelay`) by the dispatcher's public names. The agents call through
// the control-plane client factory. Relative paths are matched by shape (one or more `../`, then a
// `dispatcher/` folder), so a folder named `dispatcher` inside src/controlplane/ would be refused too.
const CONTROLPLANE_MESSAGE = 'src/controlplane/ must not import src/dispatcher/ (DESIGN.md layout): call through IGrpcControlPlaneClientFactory (src/factory/) instead.';
const DISPATCHER_PATH = '^(\\.\\./)+dispatcher(/.*)?$';
// The names src/index.ts exports from src/dispatcher/ (test/unit/lint/controlplane-rule.test.ts keeps this list in step).
const DISPATCHER_PUBLIC_NAMES = [
  'Dispatcher', 'DispatcherOptions', 'DispatcherClient', 'CallContext', 'PeerInfo', 'ProcedureKind', 'DispatcherCallOptions',
  'CALLER_METADATA_KEY', 'Middleware', 'UnaryNext', 'OnewayNext', 'ServerStreamNext', 'Outbound', 'OutboundProcedure',
  'unaryProcedure', 'onewayProcedure', 'serverStreamProcedure', 'serviceProcedures', 'Procedure', 'UnaryProcedure',
  'OnewayProcedure', 'ServerStreamProcedure', 'ServiceProcedures', 'ONEWAY_ACK', 'GrpcInbound', 'GrpcOutbound',
  'GrpcOutboundOptions', 'dispatcherModule', 'createDispatcher', 'DispatcherConfig',
];
// The same path for selectors (an esquery regex cannot contain '/': \x2F stands for it).
const DISPATCHER_PATH_SELECTOR = DISPATCHER_PATH.replaceAll('/', '\\x2F');
const NO_DISPATCHER_SYNTAX = [
  { selector: `ImportExpression[source.value=/${DISPATCHER_PATH_SELECTOR}/]`, message: CONTROLPLANE_MESSAGE },
  { selector: `CallExpression[callee.name='require'][arguments.0.value=/${DISPATCHER_PATH_SELECTOR}/]`, message: CONTROLPLANE_MESSAGE },
];

const typed = tseslint.configs.recommendedTypeChecked.map((config) => ({ ...config, files: ['**/*.ts'] }));

export default tseslint.config(
  { ignores: ['dist/**', 'dist-cli/**', 'dist-sea/**', 'build-check/**', 'src/gen/**', 'coverage/**', 'node_modules/**'] },
  js.configs.recommended,
  ...typed,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', NO_MATH_RANDOM],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/transport/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@grpc/grpc-js', importNames: GRPC_CLIENT_NAMES, message: GRPC_CLIENT_MESSAGE }],
          patterns: [{ group: ['@grpc/grpc-js/*'], message: GRPC_CLIENT_MESSAGE }],
        },
      ],
      'no-restricted-syntax': ['error', NO_MATH_RANDOM, ...NO_GRPC_CLIENT_SYNTAX],
    },
  },
  {
    // Replaces the block above for these files (ESLint does not merge a rule's options across
    // config objects), so the grpc-js restriction is repeated here.
    files: ['src/controlplane/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: '@grpc/grpc-js', importNames: GRPC_CLIENT_NAMES, message: GRPC_CLIENT_MESSAGE },
            { name: 'omnirelay', importNames: DISPATCHER_PUBLIC_NAMES, message: CONTROLPLANE_MESSAGE },
          ],
          patterns: [
            { group: ['@grpc/grpc-js/*'], message: GRPC_CLIENT_MESSAGE },
            { regex: DISPATCHER_PATH, message: CONTROLPLANE_MESSAGE },
            { regex: '^(\\.\\./)+index(\\.js)?$', importNames: DISPATCHER_PUBLIC_NAMES, message: CONTROLPLANE_MESSAGE },
          ],
        },
      ],
      'no-restricted-syntax': ['error', NO_MATH_RANDOM, ...NO_GRPC_CLIENT_SYNTAX, ...NO_DISPATCHER_SYNTAX],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', performance: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly', Buffer: 'readonly' },
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-syntax': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
