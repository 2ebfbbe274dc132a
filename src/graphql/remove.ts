import { constants as fsc } from 'node:fs'
import { VfsError } from '../vfs/errors.ts'
import type { NodeKind } from '../vfs/node.ts'
import { dirname, isWithin } from '../vfs/path.ts'
import type { GraphQLContext } from './tree.ts'

interface Planned {
  path: string
  kind: NodeKind
}

const join = (dir: string, name: string) => (dir === '/' ? '/' + name : dir + '/' + name)

/**
 * Removes the folder `path` and everything below it (`rm -r`), after checking the whole
 * subtree, so that a removal that could not finish deletes nothing:
 *
 * - a mount point at or below `path` gives `EBUSY` (a remove never crosses a mount);
 * - a folder that shows no write bits is a read-only part: `EROFS`;
 * - a folder the caller may not list, write or search gives `EACCES`;
 *
 * and the same checks on the folder holding `path`. Symlinks are removed, never
 * followed. What the checks cannot foresee (a view refusing one record, a change made
 * meanwhile) still stops the removal where it happens.
 */
export async function removeTree(ctx: GraphQLContext, path: string): Promise<void> {
  const { vfs, caller } = ctx
  const refuse = (code: 'EBUSY' | 'EROFS', detail: string, at: string) => new VfsError(code, detail, 'rmdir', at)
  const mount = ctx.mounts().find(m => isWithin(m.path, path))
  if (mount) throw refuse('EBUSY', mount.path === path ? 'it is a mount point' : `'${mount.path}' below it is a mount point`, path)

  const mayChange = async (dir: string, mode: number) => {
    if ((mode & 0o222) === 0) throw refuse('EROFS', dir === path ? 'it is read-only' : `'${dir}' is read-only`, path)
    await vfs.access(dir, fsc.W_OK | fsc.X_OK, caller)
  }
  if (path !== '/') await mayChange(dirname(path), (await vfs.stat(dirname(path), caller)).mode)

  // children before their folder, so the plan runs in order
  const plan: Planned[] = []
  const visit = async (dir: string, mode: number): Promise<void> => {
    await mayChange(dir, mode)
    const entries = await vfs.readdirAll(dir, caller)
    const stats = await vfs.lstatEntries(dir, entries.map(e => e.name), caller)
    for (const [i, e] of entries.entries()) {
      const child = join(dir, e.name)
      if (e.kind === 'dir') await visit(child, (stats[i] ?? (await vfs.lstat(child, caller))).mode)
      else plan.push({ path: child, kind: e.kind })
    }
    plan.push({ path: dir, kind: 'dir' })
  }
  await visit(path, (await vfs.lstat(path, caller)).mode)

  for (const p of plan) {
    try {
      if (p.kind === 'dir') await vfs.rmdir(p.path, caller)
      else await vfs.unlink(p.path, caller)
    } catch (err) {
      // gone meanwhile is what was wanted
      if (!(err instanceof VfsError && err.code === 'ENOENT')) throw err
    }
  }
}
