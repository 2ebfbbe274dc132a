import type { Command } from 'commander'
import type { ConfigOptions, Shared } from '../shared.ts'

/** Adds `facet write PATH`: replaces a file's content with stdin, in-process. */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(
      program
        .command('write')
        .description('replace the content of a file with stdin, creating it when missing (in-process)')
        .argument('<path>', 'file to write'),
    )
    .action(async (path: string, options: ConfigOptions) => {
      const data = await shared.readStdin()
      await shared.withVfs(options, vfs => vfs.writeFile(path, data))
    })
}
