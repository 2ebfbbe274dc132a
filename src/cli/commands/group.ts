import type { Command } from 'commander'
import type { PublicIdentity } from '../../crypto/identity.ts'
import type { GroupInfo } from '../../chain/groups.ts'
import type { Shared } from '../shared.ts'
import { chainOptions, contact, withChain, type ShareCliOptions } from './share.ts'

/** What `group remove` says the removed member keeps: the keys it unwrapped open what the group's folders held before the removal, until a rekey. */
export const REMOVED_MEMBER_WARNING =
  'keeps the keys it unwrapped before (the group key it had and the keys of the folders granted to the group): the folders\' keys rotated, so nothing written in them from now on opens with those keys, but what they held before does, until facet rekey PATH of each, and forever in any copy of the log made before the rekey'

const short = (hex: string) => hex.slice(0, 16)

/** Adds `facet group create NAME`, `group add NAME MEMBER`, `group remove NAME MEMBER` and `group list [NAME]` on the demo's /files chain. */
export function register(program: Command, shared: Shared): void {
  const group = program
    .command('group')
    .description('groups kept in the /files chain: a key pair whose secret is wrapped for each member; share a folder with one by facet share PATH --with @GROUP. Changes write one block: stop facet up on the chain first')

  chainOptions(group.command('create').description('make a group with a fresh ML-KEM-768 key pair and no members').argument('<name>', 'the group name')).action(
    async (name: string, options: ShareCliOptions) => {
      await withChain(options, shared, false, async chain => {
        const { createGroup } = await import('../../chain/groups.ts')
        const g = await createGroup(chain, name)
        await shared.print(`created group ${g.name} (key ${short(g.keyId)}, epoch ${g.epoch}): no members yet (facet group add ${g.name} MEMBER)\n`)
      })
    },
  )

  chainOptions(
    group
      .command('add')
      .description("add a member (a contact, or one of your identities): the group's secret is wrapped for its key, so it reads every folder granted to the group")
      .argument('<name>', 'the group')
      .argument('<member>', 'the contact or identity to add'),
  ).action(async (name: string, memberName: string, options: ShareCliOptions) => {
    const member = await contact(memberName, options, shared)
    await withChain(options, shared, false, async chain => {
      const { addGroupMember } = await import('../../chain/groups.ts')
      const g = await addGroupMember(chain, name, member)
      await shared.print(`added ${memberName} (key ${short(Buffer.from(member.keyId).toString('hex'))}) to group ${g.name}: members ${g.members.map(m => m.name).join(', ')}\n`)
    })
  })

  chainOptions(
    group
      .command('remove')
      .description("remove a member and rotate the group's key: a new key pair for the members that stay, every grant to the group re-wrapped to it, and the keys of the folders granted to the group rotated, so what is written there afterwards is out of the removed member's reach (what was there before is not, until facet rekey)")
      .argument('<name>', 'the group')
      .argument('<member>', 'the contact, identity, or member name to remove'),
  ).action(async (name: string, memberName: string, options: ShareCliOptions) => {
    let member: PublicIdentity | undefined
    try {
      member = await contact(memberName, options, shared)
    } catch {
      member = undefined // not in the contact book: looked up by the name the group gives it
    }
    await withChain(options, shared, false, async chain => {
      const { listGroups, removeGroupMember } = await import('../../chain/groups.ts')
      const g = listGroups(chain).find(x => x.name === name)
      const keyId = member ? Buffer.from(member.keyId) : g?.members.filter(m => m.name === memberName).map(m => Buffer.from(m.keyId, 'hex'))[0]
      if (g && !keyId) throw new shared.CliError(`'${memberName}' is not a member of group '${name}'`)
      const c = await import('../../crypto/index.ts')
      const home = options.home ?? c.facetHome()
      const readers = [...(await c.listIdentities(home)), ...(await c.listContacts(home))]
      const r = await removeGroupMember(chain, name, keyId ?? Buffer.alloc(32), { readers })
      const left = listGroups(chain).find(x => x.name === name)!.members.map(m => m.name)
      await shared.print(
        `removed ${memberName} from group ${name}: the group's key rotated (epoch ${r.epoch}), ${r.rewrapped} grant${r.rewrapped === 1 ? '' : 's'} re-wrapped for the ${left.length ? `members that stay (${left.join(', ')})` : 'owner alone (no members left)'}\n`,
      )
      if (r.rotation) await shared.print(`rotated the keys of ${r.rotation.inodes} inode${r.rotation.inodes === 1 ? '' : 's'} in ${r.rotation.paths.join(', ')}\n`)
      shared.note(`WARNING: ${memberName} ${REMOVED_MEMBER_WARNING}`)
    })
  })

  chainOptions(group.command('list').description('list the groups of the chain (or one), with members and the folders granted to each').argument('[name]', 'only this group')).action(
    async (name: string | undefined, options: ShareCliOptions) => {
      await withChain(options, shared, true, async chain => {
        const { listGroups } = await import('../../chain/groups.ts')
        const groups = listGroups(chain).filter(g => name === undefined || g.name === name)
        if (name !== undefined && groups.length === 0) throw new shared.CliError(`no group named '${name}' in the chain`)
        await shared.print(groups.map(g => describe(g, name !== undefined)).join(''))
      })
    },
  )
}

/** One line per group (`name`, gid, epoch, members, granted folders, tab-separated), or with `detail` a line per member and grant. */
function describe(g: GroupInfo, detail: boolean): string {
  const folders = g.grants.map(x => x.path ?? `inode ${x.ino}`)
  if (!detail) return `${g.name}\tgid ${g.gid}\tepoch ${g.epoch}\tmembers: ${g.members.map(m => m.name).join(', ') || '(none)'}\tgrants: ${folders.join(', ') || '(none)'}\n`
  return [`group ${g.name}\tkey ${short(g.keyId)}\tgid ${g.gid}\tepoch ${g.epoch}\n`, ...g.members.map(m => `member\t${m.name}\t${short(m.keyId)}\n`), ...folders.map(f => `grant\t${f}\tread\n`)].join('')
}
