import { join } from 'node:path'
import { facetHome } from '../crypto/identity.ts'

/**
 * Turns a `CHAIN` argument into a log path: a path (it has a `/` or ends in `.chain`)
 * is used as it is; a bare name means `<home>/chains/<name>.chain`.
 */
export function resolveChainPath(arg: string, home: string = facetHome()): string {
  if (arg.includes('/') || arg.endsWith('.chain')) return arg
  return join(home, 'chains', `${arg}.chain`)
}
