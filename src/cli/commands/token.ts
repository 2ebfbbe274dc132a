import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

/**
 * Adds `facet token create [--name N]`, `facet token list` and `facet token revoke NAME`:
 * bearer tokens for a GraphQL server listening beyond loopback. Only each token's
 * SHA-256 is stored, in `tokens.json` (mode 0600) under `FACET_HOME` (default `~/.facet`);
 * `create` prints the token itself once.
 */
export function register(program: Command, shared: Shared): void {
  const token = program.command('token').description('manage bearer tokens for the GraphQL server')
  const load = () => import('../../graphql/tokens.ts')

  token
    .command('create')
    .description('issue a token; it is printed once and only its SHA-256 is stored')
    .option('--name <name>', 'a label to tell tokens apart (default: token-<n>)')
    .action(async (options: { name?: string }) => {
      const tokens = await load()
      let created
      try {
        created = await tokens.createToken(options.name === undefined ? {} : { name: options.name })
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
