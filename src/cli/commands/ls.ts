import type { Command } from 'commander'
import type { Vfs } from '../../vfs/vfs.ts'
import { alignRows, longRow, type LongRow } from '../format.ts'
import type { ConfigOptions, Shared } from '../shared.ts'

interface LsOptions extends ConfigOptions {
  long?: boolean
}

/** Adds `facet ls [PATH] [-l]`: lists a folder of the tree in-process, sorted by name. */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(
      program
        .command('ls')
        .description('list a folder of the tree (in-process, no FUSE needed)')
        .argument('[path]', 'folder or file to list', '/')
        .option('-l, --long', 'one line per entry: mode, links, owner, group, size, modified, name'),
    )
    .action(async (path: string, options: LsOptions) => {
      const text = await shared.withVfs(options, vfs => list(vfs, path, options.long ?? false))
      await shared.print(text)
    })
}

async function list(vfs: Vfs, path: string, long: boolean): Promise<string> {
  const top = await vfs.stat(path)
  if (top.kind !== 'dir') return long ? alignRows([await row(vfs, path, path)]) : path + '\n'
  const names = (await vfs.readdirAll(path)).map(e => e.name).sort(byCodePoint)
  if (!long) return names.map(n => n + '\n').join('')
  const base = path.endsWith('/') ? path : path + '/'
  const rows: LongRow[] = []
  for (const name of names) rows.push(await row(vfs, base + name, name))
  return alignRows(rows)
}

async function row(vfs: Vfs, path: string, name: string): Promise<LongRow> {
  const st = await vfs.lstat(path)
  return longRow(name, st, st.kind === 'symlink' ? await vfs.readlink(path) : undefined)
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
