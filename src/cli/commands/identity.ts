import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface IdentityOptions {
  home?: string
  passphraseFile?: string
  /** False with `--no-passphrase`. */
  passphrase?: boolean
  as?: string
}

type PublicId = { name: string; keyId: Uint8Array; signingPublicKey: Uint8Array; kemPublicKey: Uint8Array }

function summary(id: PublicId, tag = ''): string {
  return `${id.name}\t${Buffer.from(id.keyId).toString('hex').slice(0, 16)}${tag}`
}

function details(id: PublicId, sha: (b: Uint8Array) => string): string {
  return [
    `name:        ${id.name}`,
    `key id:      ${Buffer.from(id.keyId).toString('hex')}`,
    `signing key: ML-DSA-65, ${id.signingPublicKey.length} bytes, sha256 ${sha(id.signingPublicKey)}`,
    `kem key:     ML-KEM-768, ${id.kemPublicKey.length} bytes, sha256 ${sha(id.kemPublicKey)}`,
  ].join('\n')
}

/** Adds `facet identity create|list|show|export|import`: post-quantum identities stored encrypted under the FacetFS home, and a contact book of others' public identities. */
export function register(program: Command, shared: Shared): void {
  const cmd = program.command('identity').description('manage identities: an ML-DSA-65 signing pair and an ML-KEM-768 pair, stored encrypted with a passphrase; and contacts, the public identities of others')
  const homeOption = '--home <dir>'
  const homeHelp = 'FacetFS home (default: $FACET_HOME or ~/.facet)'

  cmd
    .command('create')
    .description('make a new identity, encrypted under a passphrase (from --passphrase-file, FACET_PASSPHRASE or a prompt); an empty passphrase is refused')
    .argument('<name>', 'identity name (letters, digits, . _ -)')
    .option(homeOption, homeHelp)
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file')
    .option('--no-passphrase', 'store the secret keys WITHOUT a passphrase: anyone who can read the file can use the identity')
    .action(async (name: string, options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      const unprotected = options.passphrase === false
      if (unprotected && options.passphraseFile) throw shared.usageError('--no-passphrase and --passphrase-file contradict each other')
      let passphrase = ''
      if (!unprotected) {
        try {
          passphrase = await c.resolvePassphrase({ passphraseFile: options.passphraseFile, confirm: true, prompt: `New passphrase for '${name}': ` })
        } catch (err) {
          if (err instanceof c.PassphraseRequiredError) throw new shared.CliError(err.message)
          throw err
        }
      }
      let id
      try {
        id = await c.createIdentity(name, passphrase, { home, allowEmptyPassphrase: unprotected })
      } catch (err) {
        throw new shared.CliError((err as Error).message)
      }
      if (unprotected) shared.note(`WARNING: identity '${name}' is stored WITHOUT a passphrase: anyone who can read ${c.identityPath(home, name)} can sign and read as '${name}'`)
      shared.note(`created identity '${name}' in ${c.identityPath(home, name)}`)
      await shared.print(Buffer.from(id.keyId).toString('hex') + '\n')
    })

  cmd
    .command('list')
    .description('list the identities under the FacetFS home (name and short key id), then the contacts (marked "contact")')
    .option(homeOption, homeHelp)
    .action(async (options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      const ids = await c.listIdentities(home)
      const contacts = await c.listContacts(home)
      await shared.print([...ids.map(id => summary(id) + '\n'), ...contacts.map(id => summary(id, '\tcontact') + '\n')].join(''))
    })

  cmd
    .command('show')
    .description('show the public keys of an identity or a contact (no passphrase needed)')
    .argument('<name>', 'identity or contact name')
    .option(homeOption, homeHelp)
    .action(async (name: string, options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const id = await findPublic(c, name, options.home ?? c.facetHome(), shared)
      await shared.print(details(id, b => c.sha256(b).toString('hex')) + (id.contact ? '\nkind:        contact (public keys only)' : '') + '\n')
    })

  cmd
    .command('export')
    .description('print the public keys of an identity (or a contact) as JSON, for others to import; no secret is in it')
    .argument('<name>', 'identity or contact name')
    .option(homeOption, homeHelp)
    .action(async (name: string, options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const id = await findPublic(c, name, options.home ?? c.facetHome(), shared)
      await shared.print(JSON.stringify(c.exportPublicIdentity(id), null, 2) + '\n')
    })

  cmd
    .command('import')
    .description("add a public identity (what 'facet identity export' prints) to the contact book; compare its key id with its owner before you trust it")
    .argument('<file>', "the exported JSON, or '-' for stdin")
    .option('--as <name>', 'the name to know it by (default: the name it carries)')
    .option(homeOption, homeHelp)
    .action(async (file: string, options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      let text: string
      try {
        text = file === '-' ? (await shared.readStdin()).toString('utf8') : await (await import('node:fs/promises')).readFile(file, 'utf8')
      } catch (err) {
        throw new shared.CliError(`cannot read ${file}: ${(err as Error).message}`)
      }
      let r
      try {
        const id = c.parsePublicIdentity(text, file === '-' ? 'stdin' : file)
        r = await c.importContact(id, { home, ...(options.as ? { as: options.as } : {}) })
        const keyId = Buffer.from(id.keyId).toString('hex')
        if (r.status === 'known') shared.note(r.own ? `${keyId.slice(0, 16)} is your own identity '${r.name}'; nothing imported` : `already known as contact '${r.name}'; nothing imported`)
        else shared.note(`imported contact '${r.name}' into ${r.path}`)
        await shared.print(`${r.name}\t${keyId}\n`)
      } catch (err) {
        if (err instanceof c.ContactError || /invalid identity name/.test((err as Error).message)) throw new shared.CliError((err as Error).message)
        throw err
      }
    })
}

type Crypto = typeof import('../../crypto/index.ts')

/** The identity named `name` under `home`, else the contact of that name; a CliError when neither exists. */
async function findPublic(c: Crypto, name: string, home: string, shared: Shared): Promise<PublicId & { contact: boolean }> {
  try {
    return { ...(await c.readPublicIdentity(name, home)), contact: false }
  } catch (err) {
    if (!(err instanceof c.IdentityNotFoundError)) throw err
    let contact
    try {
      contact = await c.readContact(name, home)
    } catch (e) {
      throw new shared.CliError((e as Error).message)
    }
    if (contact) return { ...contact, contact: true }
    throw new shared.CliError(err.message)
  }
}
