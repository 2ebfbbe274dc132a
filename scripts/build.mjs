#!/usr/bin/env node
// Builds the published JS and .d.ts: `node scripts/build.mjs [--out DIR]` (default dist/).
// tsc compiles src/ and plugins/ (tsconfig.build.json); the worker scripts, plain .mjs that
// tsc does not copy, are copied beside their pools.
import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'dist') } } })
const out = resolve(values.out)

rmSync(out, { recursive: true, force: true })
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' })
for (const name of readdirSync(join(root, 'src/crypto')).filter(n => n.endsWith('.mjs'))) {
  cpSync(join(root, 'src/crypto', name), join(out, 'src/crypto', name))
}
