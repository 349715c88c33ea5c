import { resolve } from 'node:path';
import type { ViteUserConfig } from 'vitest/config';

/** Vitest settings every project shares: run the TypeScript sources of workspace libs, not their builds. */
export function gradqVitest(projectRoot: string): ViteUserConfig {
  return {
    root: projectRoot,
    resolve: { conditions: ['@gradq/source', 'node', 'import', 'default'] },
    ssr: { resolve: { conditions: ['@gradq/source', 'node', 'import', 'default'] } },
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
