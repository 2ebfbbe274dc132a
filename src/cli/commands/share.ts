import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import type { Identity, PublicIdentity } from '../../crypto/identity.ts'
import type { Chain } from '../../chain/store.ts'
import type { Shared } from '../shared.ts'

export interface ShareCliOptions {
  with?: string
  write?: boolean
  list?: boolean
  filesStore?: string
  home?: string
  identity?: string
  passphraseFile?: string
  cwd?: string
}

/** What `unshare` and `share --list` say about read access that was given: it cannot be taken back until keys rotate. */
export const NO_ROTATION_WARNING = 'read access cannot be taken back yet (no key rotation): a reader keeps every key it unwrapped, and can read the folder, including what is written there later, with a client that ignores the withdrawal'

/** Adds the options naming the /files chain and the owner opening it, as `share`, `unshare` and `group` take them. */
export function chainOptions(cmd: Command): Command {
  return cmd
    .option('--files-store <path|url>', 'the /files chain in this log file or postgres://HOST/DB, as facet up --files-store takes it (default: <home>/chains/files.chain)')
    .option('--home <dir>', 'FacetFS home (default: $FACET_HOME or ~/.facet)')
    .option('--identity <name>', "the chain owner's identity", 'default')
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file (else FACET_PASSPHRASE, else a prompt)')
}

/** Adds `facet share PATH --with NAME [--write]`, `facet share --list` and `facet unshare PATH --with NAME` on the demo's /files chain. */
export function register(program: Command, shared: Shared): void {
  chainOptions(
    program
      .command('share')
      .description("give a contact (facet identity import) read access to a folder of the /files chain and everything below it, made later included; with --write, let it write there too (in that folder's subtree only, or anywhere for /); --list shows the grants. Writes one block: stop facet up on the chain first")
      .argument('[path]', 'a folder of the chain, e.g. /projects (/ for the whole chain)')
      .option('--with <name>', 'the contact (or one of your identities) to share with, or @GROUP for a group of the chain (facet group)')
      .option('--write', 'also let it write in PATH and below (blocks it signs that touch anything else are refused); on /, anywhere')
      .option('--list', 'list the grants and writers of the chain instead'),
  ).action(async (path: string | undefined, options: ShareCliOptions) => {
    if (options.list) {
      if (path !== undefined || options.with || options.write) throw shared.usageError('--list takes no path, --with or --write')
      return list(options, shared)
    }
    if (path === undefined || !options.with) throw shared.usageError('share needs a PATH and --with NAME or @GROUP (or --list)')
    const group = groupName(options.with)
    if (group !== undefined && options.write) throw shared.usageError('--write is for an identity: a group can only be given read access')
    const person = group === undefined ? await contact(options.with, options, shared) : undefined
    await withChain(options, shared, false, async chain => {
      const { shareChainPath } = await import('../../chain/sharing.ts')
      const { groupAsReader } = await import('../../chain/groups.ts')
      const reader = person ?? groupAsReader(chain, group!)
      const r = await shareChainPath(chain, path, reader, { write: options.write === true })
      const who = group === undefined ? `'${options.with}' (key ${Buffer.from(reader.keyId).toString('hex').slice(0, 16)})` : `group '${group}' (its members now and later)`
      if (options.write) shared.note(`${options.with} may now write ${r.writeScope ? `only in ${r.writeScope.join(', ')} (and below)` : 'anywhere in the chain'}${r.authorised ? '' : ' (it was a writer already)'}`)
      shared.note(`WARNING: this cannot be fully undone: ${NO_ROTATION_WARNING}`)
      await shared.print(`shared ${r.path} with ${who}: ${options.write ? 'read and write' : 'read'}\n`)
    })
  })

  chainOptions(
    program
      .command('unshare')
      .description('take back what facet share gave: the grant on PATH and writing there (for /, or the last folder it may write in, writing altogether: its later blocks are refused). Read access stays with the reader (no key rotation yet): it keeps the keys it had')
      .argument('<path>', 'the folder shared')
      .requiredOption('--with <name>', 'the contact, or @GROUP, to take it back from')
      .option('--write', 'take back only writing in PATH (/ for a writer of the whole chain): the contact stays a reader'),
  ).action(async (path: string, options: ShareCliOptions) => {
    const group = groupName(options.with!)
    if (group !== undefined && options.write) throw shared.usageError('--write is for an identity: a group has only read access')
    const person = group === undefined ? await contact(options.with!, options, shared) : undefined
    await withChain(options, shared, false, async chain => {
      const { unshareChainPath } = await import('../../chain/sharing.ts')
      const { groupAsReader } = await import('../../chain/groups.ts')
      const reader = person ?? groupAsReader(chain, group!)
      const r = await unshareChainPath(chain, path, reader, { onlyWrite: options.write === true })
      if (r.revokedWrite) await shared.print(`${options.with} may no longer write: blocks it signs from now on are refused\n`)
      if (r.writeScope) await shared.print(`${options.with} may no longer write in ${path}; it still may in ${r.writeScope.join(', ')}\n`)
      if (r.droppedGrant) {
        await shared.print(`withdrew the grant of ${path} to ${options.with}\n`)
        shared.note(`WARNING: ${options.with} can still read ${path}: ${NO_ROTATION_WARNING}`)
      }
    })
  })
}

async function list(options: ShareCliOptions, shared: Shared): Promise<void> {
  const c = await import('../../crypto/index.ts')
  const home = options.home ?? c.facetHome()
  const known = new Map<string, string>()
  for (const id of [...(await c.listIdentities(home)), ...(await c.listContacts(home))]) known.set(Buffer.from(id.keyId).toString('hex'), id.name)
  await withChain(options, shared, true, async chain => {
    const { listShares } = await import('../../chain/sharing.ts')
    const lines = listShares(chain).map(s => `${s.path ?? '(no grant)'}\t${s.everyone ? 'everyone (o+r)' : s.group !== undefined ? `@${s.group}` : (known.get(s.keyId) ?? s.writerName ?? '?')}\t${s.write ? 'read+write' : 'read'}\t${s.keyId.slice(0, 16)}\n`)
    await shared.print(lines.join(''))
  })
}

/** The group a `--with @GROUP` names, or undefined for an identity's name. */
function groupName(withName: string): string | undefined {
  return withName.startsWith('@') ? withName.slice(1) : undefined
}

/** The public identity `name`: a contact, else one of the home's own identities. */
export async function contact(name: string, options: ShareCliOptions, shared: Shared): Promise<PublicIdentity> {
  const c = await import('../../crypto/index.ts')
  const home = options.home ?? c.facetHome()
  let found: PublicIdentity | undefined
  try {
    found = await c.readContact(name, home)
  } catch (err) {
    throw new shared.CliError((err as Error).message)
  }
  if (found) return found
  try {
    return await c.readPublicIdentity(name, home)
  } catch (err) {
    if (err instanceof c.IdentityNotFoundError) throw new shared.CliError(`no contact or identity named '${name}': import it first (facet identity import FILE --as ${name})`)
    throw err
  }
}

/** Opens the /files chain (read-write unless `readOnly`) as the owner, runs `fn`, and closes it; errors become CliErrors naming the store. */
export async function withChain(options: ShareCliOptions, shared: Shared, readOnly: boolean, fn: (chain: Chain) => Promise<void>): Promise<void> {
  const c = await import('../../crypto/index.ts')
  const { Chain, ChainLockedError } = await import('../../chain/index.ts')
  const { ShareError } = await import('../../chain/sharing.ts')
  const { describeFilesStore, filesStoreLocation } = await import('../../demo/files-store.ts')
  const home = options.home ?? c.facetHome()
  const store = options.filesStore ?? join(home, 'chains', 'files.chain')
  const shown = describeFilesStore(store)
  let where
  try {
    const loc = filesStoreLocation(store)
    where = 'path' in loc ? resolve(options.cwd ?? process.cwd(), loc.path) : loc.backend
  } catch (err) {
    throw shared.usageError(`--files-store: ${(err as Error).message}`)
  }
  const identity: Identity = await shared.unlockIdentity({ home, identity: options.identity, passphraseFile: options.passphraseFile })
  let chain: Chain
  try {
    chain = await Chain.open(where, { identity, home, readOnly })
  } catch (err) {
    if (err instanceof ChainLockedError) throw new shared.CliError(`${shown}: ${err.message}; sharing writes a block, so stop facet up on this chain first`)
    throw new shared.CliError(`cannot open ${shown}: ${(err as Error).message}`)
  }
  try {
    await fn(chain)
  } catch (err) {
    if (err instanceof ShareError) throw new shared.CliError(`${shown}: ${err.message}`)
    throw err
  } finally {
    await chain.close()
  }
}
