#!/usr/bin/env node
// Runs the facet CLI straight from its TypeScript source: tsx compiles on import, no build step.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv)
