import { resolve } from 'node:path';
import type { ViteUserConfig } from 'vitest/config';

/**
 * Resolve conditions of the tests: the TypeScript sources of workspace libs. No 'import' here: Vite adds 'import'
 * or 'require' by the kind of each import itself, while Vitest also hands these conditions to Node (--conditions),
 * where 'import' would make require() of a dual package (is-promise, under express's router) load its ES module.
 */
const CONDITIONS = ['@gradq/source', 'node', 'default'];

/** Vitest settings every project shares: run the TypeScript sources of workspace libs, not their builds. */
export function gradqVitest(projectRoot: string): ViteUserConfig {
  return {
    root: projectRoot,
    resolve: { conditions: CONDITIONS },
    ssr: { resolve: { conditions: CONDITIONS } },
    test: {
      include: ['src/**/*.test.ts'],
      environment: 'node',
      testTimeout: 120_000,
      hookTimeout: 60_000,
      // Test files share one Redis and two cores: run them one at a time.
      fileParallelism: false,
      root: resolve(projectRoot),
    },
  };
}
