import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface VerifyCliOptions {
  home?: string
  trust?: boolean
}

/** Adds `facet verify CHAIN`: checks a chain log and exits non-zero naming the first bad block, or why the trust store refuses it. */
export function register(program: Command, shared: Shared): void {
  program
    .command('verify')
    .description('check a chain: frame checksums, hash chain, every signature, and the local trust store (the chain pinned for this path, rollbacks); exits 1 naming the first bad block')
    .argument('<chain>', 'a chain log file, a chain name under $FACET_HOME/chains, or a postgres://HOST/DB[?table=TABLE] URL whose table (default facet_chain_blocks) holds the chain')
    .option('--home <dir>', 'FacetFS home whose trust store is checked (default: $FACET_HOME or ~/.facet)')
    .option('--no-trust', 'skip the trust store check (another chain at a pinned path, rolled-back or forked logs)')
    .action(async (arg: string, options: VerifyCliOptions) => {
      const { verifyChain, TrustStoreError } = await import('../../chain/index.ts')
      const { facetHome } = await import('../../crypto/identity.ts')
      const home = options.home ?? facetHome()
      const { chainArgument } = await import('../../demo/files-store.ts')
      const { where, shown: path } = chainArgument(arg, home, (shown, why) => new shared.CliError(`cannot read chain ${shown}: ${why}`))
      let report
      try {
        report = await verifyChain(where, { home, trust: options.trust !== false })
      } catch (err) {
        if (err instanceof TrustStoreError) throw new shared.CliError(`${path}: cannot check the trust store: ${err.message}`)
        throw new shared.CliError(`cannot read chain ${path}: ${(err as Error).message}`)
      }
      if (!report.ok) {
        const p = report.problem!
        if (p.kind === 'trust') throw new shared.CliError(`${path}: refused by the trust store: ${p.reason}`)
        throw new shared.CliError(`${path}: bad block ${p.seq}${p.offset >= 0 ? ` at byte ${p.offset}` : ''}: ${p.reason} (${report.blocks} good blocks before it)`)
      }
      const owner = report.owner ? `, owner '${report.owner.name}' (key ${report.owner.keyId.slice(0, 16)})` : ''
      const pinned = options.trust === false ? '' : report.pin ? ', pinned here' : ', not pinned here yet (the first open pins it)'
      await shared.print(`${path}: ok, ${report.blocks} blocks, ${report.events} events, head ${report.headSeq}, chain ${report.chainId}${owner}${pinned}\n`)
    })
}
