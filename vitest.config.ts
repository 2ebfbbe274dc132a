import { defineConfig } from 'vitest/config'

/**
 * Files whose tests bound how long a fault takes to surface (a cut network, a killed
 * process, a restarted database): they run one at a time, after the rest, so the load of
 * a neighbouring file cannot push a bound over.
 */
const SERIAL = [
  'test/cli/files-store-netcut.test.ts',
  'test/cli/files-store-faults.test.ts',
  'test/cli/cluster.test.ts',
  'test/chain/postgres-locks-netcut.test.ts',
  'test/chain/postgres-locks.test.ts',
  'test/chain/locks/postgres.test.ts',
  'test/chain/postgres-nodes.test.ts',
  'test/chain/crash.test.ts',
  'test/datasets/crash.test.ts',
]

export default defineConfig({
  // `facetfs` (and facetfs/sql…) imported from tests and examples means the TypeScript sources, never a stale dist/;
  // the rest is Vite's default server conditions.
  ssr: { resolve: { conditions: ['facetfs-source', 'module', 'node', 'development|production'] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
    projects: [
      {
        extends: true,
        // most files wait on FUSE, PostgreSQL and child processes more than on a core: two at a time on a 2-core machine
        test: { name: 'parallel', include: ['test/**/*.test.ts', 'plugins/**/*.test.ts', 'examples/**/*.test.ts'], exclude: SERIAL, maxWorkers: 2 },
      },
      { extends: true, test: { name: 'serial', include: SERIAL, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
})
