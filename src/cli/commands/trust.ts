import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface TrustCliOptions {
  home?: string
}

/** Adds `facet trust accept|list`: the chains the trust store pins, by location (a log file, a PostgreSQL store), and accepting a changed one explicitly. */
export function register(program: Command, shared: Shared): void {
  const cmd = program.command('trust').description('the trust store: the chain id and owner pinned for each chain location (log file or PostgreSQL table), and the last head seen of each chain')
  const homeOption = '--home <dir>'
  const homeHelp = 'FacetFS home whose trust store is used (default: $FACET_HOME or ~/.facet)'

  cmd
    .command('accept')
    .description('trust the chain now at LOCATION from now on, though its chain id or owner differs from the one pinned there (or its pin was lost); it must verify')
    .argument('<location>', 'a chain log file, a chain name under $FACET_HOME/chains, or a postgres://[USER@]HOST[:PORT]/DB URL (its ?table= the blocks table, default facet_chain_blocks; ?options=-c search_path=SCHEMA as for --files-store), as `facet trust list` shows it')
    .option(homeOption, homeHelp)
    .action(async (arg: string, options: TrustCliOptions) => {
      const chain = await import('../../chain/index.ts')
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      const postgres = chain.isPostgresLocation(arg)
      let path = postgres ? (await import('../../demo/files-store.ts')).describeFilesStore(arg) : chain.resolveChainPath(arg, home)
      let r
      try {
        r = await chain.acceptChain(postgres ? chain.postgresBackend(chain.postgresLocation(arg)) : path, { home })
      } catch (err) {
        throw new shared.CliError(`not accepted: ${path}: ${(err as Error).message}`)
      }
      if (postgres) path = r.pin.path
      for (const file of r.replacedDamaged) shared.note(`replaced the damaged trust store file ${file}`)
      const whose = async (keyId: string) => {
        const who = await c.whoIs(keyId, home)
        return who ? (who.own ? ` — your identity '${who.name}'` : ` — your contact '${who.name}'`) : ' — a key this home does not know'
      }
      const known = await whose(r.pin.owner.keyId)
      const same = r.previous && r.previous.chainId === r.pin.chainId && r.previous.owner.keyId === r.pin.owner.keyId
      const was = !r.previous ? '' : same ? ' (unchanged)' : `\n  was ${chain.describeChainPin(r.previous)}${await whose(r.previous.owner.keyId)}`
      const head = r.recordedHead ? `\n  recorded head ${r.recordedHead.seq} as the last one seen` : ''
      await shared.print(`pinned ${path}: ${chain.describeChainPin(r.pin)}${known}${was}${head}\n`)
    })

  cmd
    .command('list')
    .description('list the pinned chain locations: location, chain id, owner name, owner key id')
    .option(homeOption, homeHelp)
    .action(async (options: TrustCliOptions) => {
      const chain = await import('../../chain/index.ts')
      const c = await import('../../crypto/index.ts')
      const pins = await chain.listPins(options.home ?? c.facetHome())
      const lines = pins.map(p => ('file' in p ? `damaged\t${p.file}\n` : `${p.path}\t${p.chainId}\t${p.owner.name}\t${p.owner.keyId.slice(0, 16)}${p.accepted ? `\taccepted ${p.accepted}` : ''}\n`))
      await shared.print(lines.join(''))
    })
}
