import { defineConfig } from 'vitest/config'

export default defineConfig({
  // `facetfs` (and facetfs/sql…) imported from tests and examples means the TypeScript sources, never a stale dist/;
  // the rest is Vite's default server conditions.
  ssr: { resolve: { conditions: ['facetfs-source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
  },
})
