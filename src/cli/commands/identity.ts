import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface IdentityOptions {
  home?: string
  passphraseFile?: string
}

type PublicId = { name: string; keyId: Uint8Array; signingPublicKey: Uint8Array; kemPublicKey: Uint8Array }

function summary(id: PublicId): string {
  return `${id.name}\t${Buffer.from(id.keyId).toString('hex').slice(0, 16)}`
}

function details(id: PublicId, sha: (b: Uint8Array) => string): string {
  return [
    `name:        ${id.name}`,
    `key id:      ${Buffer.from(id.keyId).toString('hex')}`,
    `signing key: ML-DSA-65, ${id.signingPublicKey.length} bytes, sha256 ${sha(id.signingPublicKey)}`,
    `kem key:     ML-KEM-768, ${id.kemPublicKey.length} bytes, sha256 ${sha(id.kemPublicKey)}`,
  ].join('\n')
}

/** Adds `facet identity create|list|show`: post-quantum identities stored encrypted under the FacetFS home. */
export function register(program: Command, shared: Shared): void {
  const cmd = program.command('identity').description('manage identities: an ML-DSA-65 signing pair and an ML-KEM-768 pair, stored encrypted with a passphrase')
  const homeOption = '--home <dir>'
  const homeHelp = 'FacetFS home (default: $FACET_HOME or ~/.facet)'

  cmd
    .command('create')
    .description('make a new identity, encrypted under a passphrase (from --passphrase-file, FACET_PASSPHRASE or a prompt)')
    .argument('<name>', 'identity name (letters, digits, . _ -)')
    .option(homeOption, homeHelp)
    .option('--passphrase-file <file>', 'read the passphrase from the first line of this file')
    .action(async (name: string, options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      let passphrase: string
      try {
        passphrase = await c.resolvePassphrase({ passphraseFile: options.passphraseFile, confirm: true, prompt: `New passphrase for '${name}': ` })
      } catch (err) {
        if (err instanceof c.PassphraseRequiredError) throw new shared.CliError(err.message)
        throw err
      }
      let id
      try {
        id = await c.createIdentity(name, passphrase, { home })
      } catch (err) {
        throw new shared.CliError((err as Error).message)
      }
      shared.note(`created identity '${name}' in ${c.identityPath(home, name)}`)
      await shared.print(Buffer.from(id.keyId).toString('hex') + '\n')
    })

  cmd
    .command('list')
    .description('list the identities under the FacetFS home (name and short key id)')
    .option(homeOption, homeHelp)
    .action(async (options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      const ids = await c.listIdentities(options.home ?? c.facetHome())
      await shared.print(ids.map(id => summary(id) + '\n').join(''))
    })

  cmd
    .command('show')
    .description('show the public keys of an identity (no passphrase needed)')
    .argument('<name>', 'identity name')
    .option(homeOption, homeHelp)
    .action(async (name: string, options: IdentityOptions) => {
      const c = await import('../../crypto/index.ts')
      try {
        const id = await c.readPublicIdentity(name, options.home ?? c.facetHome())
        await shared.print(details(id, b => c.sha256(b).toString('hex')) + '\n')
      } catch (err) {
        if (err instanceof c.IdentityNotFoundError) throw new shared.CliError(err.message)
        throw err
      }
    })
}
