import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface CompactCliOptions {
  home?: string
  identity?: string
  passphraseFile?: string
  allowRollback?: boolean
}

/** Adds `facet compact CHAIN`: rewrites a chain's live state into a new log, atomically. */
export function register(program: Command, shared: Shared): void {
  program
    .command('compact')
    .description('rewrite the live state of a chain into a new log (a log file: atomic rename, a crash leaves the old or the new log, whole; PostgreSQL: in place, in one transaction, while other nodes keep the chain mounted)')
    .argument('<chain>', 'a chain log file, a chain name under $FACET_HOME/chains, or a postgres://HOST/DB[?table=TABLE] URL whose table (default facet_chain_blocks) holds the chain')
    .option('--home <dir>', 'FacetFS home (default: $FACET_HOME or ~/.facet)')
    .option('--identity <name>', 'the owner identity to sign with', 'default')
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file (else FACET_PASSPHRASE, else a prompt)')
    .option('--allow-rollback', 'accept a log older than the last one seen on this machine, or whose last block was damaged since')
    .action(async (arg: string, options: CompactCliOptions) => {
      const chain = await import('../../chain/index.ts')
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      const { chainArgument } = await import('../../demo/files-store.ts')
      // on PostgreSQL as a writer among the mounted nodes: the compaction takes the write lease like any change
      const { where, shown: path } = chainArgument(arg, home, (shown, why) => new shared.CliError(`cannot compact ${shown}: ${why}`), { sharedWriters: true })
      const identity = await shared.unlockIdentity({ home, identity: options.identity, passphraseFile: options.passphraseFile })
      let r
      try {
        r = await chain.compactChainFile(where, { identity, home, allowRollback: options.allowRollback === true })
      } catch (err) {
        throw new shared.CliError(`cannot compact ${path}: ${(err as Error).message}`)
      }
      await shared.print(`${path}: compacted ${r.beforeBytes} -> ${r.afterBytes} bytes, ${r.inodes} inodes, ${r.chunks} chunks in ${r.blocks} blocks from seq ${r.baseSeq}\n`)
    })
}
