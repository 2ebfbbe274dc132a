import type { Command } from 'commander'
import { statText } from '../format.ts'
import type { ConfigOptions, Shared } from '../shared.ts'

interface StatOptions extends ConfigOptions {
  json?: boolean
  follow?: boolean
}

/** Adds `facet stat PATH [--json] [--no-follow]`: prints the attributes of a path in-process. */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(
      program
        .command('stat')
        .description('print the attributes of a path (in-process, no FUSE needed)')
        .argument('<path>', 'path to describe')
        .option('--json', 'print one JSON object: path plus the VFS Stat fields (nanosecond times as strings)')
        .option('--no-follow', 'describe a final symlink itself instead of its target'),
    )
    .action(async (path: string, options: StatOptions) => {
      const text = await shared.withVfs(options, async vfs => {
        const st = options.follow === false ? await vfs.lstat(path) : await vfs.stat(path)
        const target = st.kind === 'symlink' ? await vfs.readlink(path) : undefined
        // nanosecond times are exact integers beyond JSON numbers: they print as strings
        if (options.json) return JSON.stringify({ path, ...st, ...(target === undefined ? {} : { target }) }, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 2) + '\n'
        return statText(path, st, target)
      })
      await shared.print(text)
    })
}
