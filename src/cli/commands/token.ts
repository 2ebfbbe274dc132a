import { InvalidArgumentError, type Command } from 'commander'
import type { Shared } from '../shared.ts'

/**
 * Adds `facet token create [--name N]`, `facet token list` and `facet token revoke NAME`:
 * bearer tokens for a GraphQL server listening beyond loopback. Only each token's
 * SHA-256 is stored, in `tokens.json` (mode 0600) under `FACET_HOME` (default `~/.facet`);
 * `create` prints the token itself once.
 */
/** Parses a user or group id for commander; a usage error when it is not one. */
function id(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > 0xfffffffe) throw new InvalidArgumentError('expected a user or group id, a whole number')
  return n
}

export function register(program: Command, shared: Shared): void {
  const token = program.command('token').description('manage bearer tokens for the GraphQL server')
  const load = () => import('../../graphql/tokens.ts')

  token
    .command('create')
    .description('issue a token; it is printed once and only its SHA-256 is stored')
    .option('--name <name>', 'a label to tell tokens apart (default: token-<n>)')
    .option('--uid <n>', "the user id the token's calls are checked as (default: yours)", id)
    .option('--gid <n>', "the group id the token's calls are checked as (default: yours)", id)
    .option('--identity <name>', 'the FacetFS identity the token speaks for')
    .action(async (options: { name?: string; uid?: number; gid?: number; identity?: string }) => {
      const tokens = await load()
      let created
      try {
        created = await tokens.createToken({
          ...(options.name === undefined ? {} : { name: options.name }),
          ...(options.uid === undefined ? {} : { uid: options.uid }),
          ...(options.gid === undefined ? {} : { gid: options.gid }),
          ...(options.identity === undefined ? {} : { identity: options.identity }),
        })
      } catch (err) {
        throw new shared.CliError(err instanceof Error ? err.message : String(err))
      }
      await shared.print(created.token + '\n')
      shared.note(`token '${created.record.name}' created; its SHA-256 is in ${tokens.tokenFile()}. It is not shown again.`)
      shared.note(`send it as: Authorization: Bearer <token>`)
    })

  token
    .command('list')
    .description('list issued tokens by name (the tokens themselves are not stored)')
    .action(async () => {
      const records = await (await load()).readTokens()
      await shared.print(records.map(r => `${r.name}\t${r.createdAt}\n`).join(''))
    })

  token
    .command('revoke')
    .description('revoke a token by name')
    .argument('<name>', 'the token name')
    .action(async (name: string) => {
      if (!(await (await load()).revokeToken(name))) throw new shared.CliError(`no token named '${name}'`)
      shared.note(`token '${name}' revoked`)
    })
}
