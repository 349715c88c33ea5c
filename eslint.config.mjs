import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  // libs/nn/wasm/*.ts is AssemblyScript (decorators such as @inline), compiled by wasm/build.mjs, not by tsc.
  { ignores: ['**/dist', '**/node_modules', '**/*.wasm', '.nx', 'libs/nn/wasm/*.ts'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    rules: {
      // Who may import whom (README, Layout): cli imports nothing of ours; nn only cli; data nn and cli; train nn, data
      // and cli, never the queue; cluster nn, data, cli; apps any lib but never each other; libs never import apps.
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib'] },
            { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['scope:cli'], bannedExternalImports: ['bullmq', 'ioredis'] },
            { sourceTag: 'scope:nn', onlyDependOnLibsWithTags: ['scope:nn', 'scope:cli'], bannedExternalImports: ['bullmq', 'ioredis'] },
            {
              sourceTag: 'scope:data',
              onlyDependOnLibsWithTags: ['scope:data', 'scope:nn', 'scope:cli'],
              bannedExternalImports: ['bullmq', 'ioredis'],
            },
            {
              sourceTag: 'scope:train',
              onlyDependOnLibsWithTags: ['scope:train', 'scope:nn', 'scope:data', 'scope:cli'],
              bannedExternalImports: ['bullmq', 'ioredis'],
            },
            { sourceTag: 'scope:cluster', onlyDependOnLibsWithTags: ['scope:cluster', 'scope:nn', 'scope:data', 'scope:cli'] },
            {
              sourceTag: 'scope:coordinator',
              onlyDependOnLibsWithTags: ['scope:cluster', 'scope:train', 'scope:nn', 'scope:data', 'scope:cli'],
            },
            {
              sourceTag: 'scope:worker',
              onlyDependOnLibsWithTags: ['scope:cluster', 'scope:train', 'scope:nn', 'scope:data', 'scope:cli'],
            },
            { sourceTag: 'scope:bench', onlyDependOnLibsWithTags: ['scope:cluster', 'scope:train', 'scope:nn', 'scope:data', 'scope:cli'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The gradq bin is the composition root: it adds the worker's and the bench's commands to the coordinator's
    // CLI so that no app's source imports another.
    files: ['apps/coordinator/bin/gradq.js'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  {
    // Build-tool configs share the root's vitest settings by relative import; they are not project code.
    files: ['**/vitest.config.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
];
