import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import type { Identity, PublicIdentity } from '../../crypto/identity.ts'
import type { Chain } from '../../chain/store.ts'
import type { Shared } from '../shared.ts'

export interface ShareCliOptions {
  with?: string
  write?: boolean
  list?: boolean
  rekey?: boolean
  filesStore?: string
  home?: string
  identity?: string
  passphraseFile?: string
  cwd?: string
}

/** What `share` and `unshare` say about read access that was given: what is there now can be read with the keys kept, until a rekey (and always in copies of the log made before it). */
export const NO_ROTATION_WARNING =
  'a reader keeps every key it unwrapped: facet unshare rotates the keys, so nothing written after it is readable with them, but what was there before stays readable with them until facet rekey PATH (or unshare --rekey) rewrites it, and forever in any copy of the log made before the rekey'

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
      .description("give a contact (facet identity import) read access to a folder of the /files chain and everything below it, made later included, or to one file alone; with --write (folders only), let it write there too (in that folder's subtree only, or anywhere for /); --list shows the grants. Writes one block: stop facet up on the chain first")
      .argument('[path]', 'a folder of the chain, e.g. /projects (/ for the whole chain), or a file')
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
      .description(
        'take back what facet share gave: the grant on PATH and writing there (for /, or the last folder it may write in, writing altogether: its later blocks are refused). The keys of PATH and everything below it rotate in the same block: nothing written there afterwards opens with the keys the reader kept; what was there before does, until facet rekey PATH (or --rekey)',
      )
      .argument('<path>', 'the folder or file shared')
      .requiredOption('--with <name>', 'the contact, or @GROUP, to take it back from')
      .option('--write', 'take back only writing in PATH (/ for a writer of the whole chain): the contact stays a reader')
      .option('--rekey', 'then re-encrypt what PATH holds now under fresh keys and compact the log (facet rekey PATH); log files only'),
  ).action(async (path: string, options: ShareCliOptions) => {
    const group = groupName(options.with!)
    if (group !== undefined && options.write) throw shared.usageError('--write is for an identity: a group has only read access')
    if (options.rekey && options.write) throw shared.usageError('--rekey goes with taking back read access, not --write')
    const person = group === undefined ? await contact(options.with!, options, shared) : undefined
    const readers = await knownReaders(options)
    await withChain(options, shared, false, async chain => {
      const { unshareChainPath } = await import('../../chain/sharing.ts')
      const { groupAsReader } = await import('../../chain/groups.ts')
      const { ShareError } = await import('../../chain/sharing.ts')
      const reader = person ?? groupAsReader(chain, group!)
      if (options.rekey && chain.backend.kind !== 'file') throw new ShareError(`--rekey works on log files only (on a postgres store its rewrite of old chunks would race other nodes' writes); nothing was changed (unshare without --rekey still rotates the keys)`)
      const r = await unshareChainPath(chain, path, reader, { onlyWrite: options.write === true, readers })
      if (r.revokedWrite) await shared.print(`${options.with} may no longer write: blocks it signs from now on are refused\n`)
      if (r.writeScope) await shared.print(`${options.with} may no longer write in ${path}; it still may in ${r.writeScope.join(', ')}\n`)
      if (r.droppedGrant) {
        await shared.print(`withdrew the grant of ${path} to ${options.with}\n`)
        if (r.rotation) {
          await shared.print(`rotated the keys of ${r.rotation.inodes} inode${r.rotation.inodes === 1 ? '' : 's'} in ${path}: what is written there from now on is out of ${options.with}'s reach; ${r.rotation.regranted} grant${r.rotation.regranted === 1 ? '' : 's'} made again for the readers that stay\n`)
          for (const p of r.rotation.stillOpen) shared.note(`WARNING: ${options.with} still holds a grant of ${p}, which opens (part of) ${path}: unshare it there too`)
        }
        if (options.rekey) await rekey(chain, path, shared, false)
        else shared.note(`NOTE: ${options.with} can still read what ${path} holds now with the keys it kept, until facet rekey ${path}`)
      }
    })
  })

  chainOptions(
    program
      .command('rekey')
      .description(
        'rotate the keys of a folder and everything below it, re-encrypt its content under the new keys, and compact the log (a new log written beside the old one, fsync\'d and renamed over it): after it, no key used there before opens anything in the log. Copies of the old log stay readable with the old keys. Log files only',
      )
      .argument('<path>', 'the folder, e.g. /projects (/ for the whole chain)'),
  ).action(async (path: string, options: ShareCliOptions) => {
    const readers = await knownReaders(options)
    await withChain(options, shared, false, chain => rekey(chain, path, shared, true, readers))
  })
}

/** Re-encrypts `path` (rekey.ts) and says what it did. */
async function rekey(chain: Chain, path: string, shared: Shared, rotate: boolean, readers?: PublicIdentity[]): Promise<void> {
  const { rekeyChainPath } = await import('../../chain/rekey.ts')
  const r = await rekeyChainPath(chain, path, { rotate, readers })
  await shared.print(`re-encrypted ${r.chunks} chunk${r.chunks === 1 ? '' : 's'} of ${r.files} file${r.files === 1 ? '' : 's'} in ${path} under new keys and compacted the log (${r.compaction.beforeBytes} → ${r.compaction.afterBytes} bytes): the keys used there before open nothing in it\n`)
}

/** The public keys of the home's identities and contacts: the readers a key rotation may have to make grants again for. */
async function knownReaders(options: ShareCliOptions): Promise<PublicIdentity[]> {
  const c = await import('../../crypto/index.ts')
  const home = options.home ?? c.facetHome()
  return [...(await c.listIdentities(home)), ...(await c.listContacts(home))]
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
