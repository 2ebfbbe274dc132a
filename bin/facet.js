#!/usr/bin/env node
// The facet CLI. An installed package runs its compiled JS from dist/ (tsx is loaded only
// to read a TypeScript config). A dev checkout, where src/ sits beside bin/ (the published
// package ships no src/), runs the TypeScript sources through tsx, so edits need no build.
import { existsSync } from 'node:fs'

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(`facet: FacetFS needs Node 22.15 or later, or Node 24; this is Node ${process.version}\n`)
  process.exit(1)
}

const source = new URL('../src/cli/main.ts', import.meta.url)
let main
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api')
  register()
  globalThis[Symbol.for('facetfs.tsx-registered')] = true
  ;({ main } = await import(source.href))
} else {
  ;({ main } = await import('../dist/src/cli/main.js'))
}
process.exitCode = await main(process.argv)
