import { readFileSync } from 'node:fs'
import type { CallerContext } from '../vfs/vfs.ts'
import type { FuseRequestContext } from './binding.ts'

/**
 * The supplementary groups of process `pid`, from the `Groups:` line of
 * `/proc/<pid>/status` (what libfuse's `fuse_getgroups` reads); none when the process is
 * gone or the line is missing.
 */
export function groupsOf(pid: number): number[] {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1')
  } catch {
    return []
  }
  const line = /^Groups:[ \t]*(.*)$/m.exec(status)
  if (!line) return []
  return line[1]!.trim().split(/\s+/).filter(Boolean).map(Number).filter(Number.isSafeInteger)
}

/**
 * The caller of a FUSE request for the router to check rights for: its uid and gid, and
 * its supplementary groups read from `/proc` the first time a check needs them (a caller
 * who owns the file, or whose primary group is the file's, costs no read). Read while
 * the request is being handled, so they are the groups of the process making the call.
 */
export function routerCaller(c: FuseRequestContext): CallerContext {
  let groups: number[] | undefined
  return { uid: c.uid, gid: c.gid, findGroups: () => (groups ??= groupsOf(c.pid)) }
}
