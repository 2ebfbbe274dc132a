import type { Command } from 'commander'
import type { ConfigOptions, Shared } from '../shared.ts'

/** Adds `facet cat PATH...`: prints files of the tree in-process, byte for byte. */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(
      program
        .command('cat')
        .description('print files of the tree (in-process, no FUSE needed)')
        .argument('<path...>', 'files to print, in order'),
    )
    .action(async (paths: string[], options: ConfigOptions) => {
      await shared.withVfs(options, async vfs => {
        for (const path of paths) await shared.print(await vfs.readFile(path))
      })
    })
}
