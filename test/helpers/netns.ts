import { execFile } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { promisify } from 'node:util'

const exec = promisify(execFile)
const sh = (cmd: string, args: string[]) => exec(cmd, args, { timeout: 60_000 })

/** Why this machine cannot make network namespaces (root, `ip netns`), else undefined. */
export async function cannotMakeNetns(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces'
  try {
    await exec('ip', ['netns', 'list'])
  } catch (err) {
    return `needs ip netns: ${(err as Error).message}`
  }
  return undefined
}

/** A network namespace joined to this one by a veth pair: another machine, as far as the network goes. */
export interface Netns {
  readonly name: string
  /** This side's address on the link. */
  readonly hostIp: string
  /** The namespace's address on the link. */
  readonly nodeIp: string
  /** The link's /30, for a server's allow list. */
  readonly cidr: string
  /** `argv` run inside the namespace (with nsenter, which execs it: the child's pid is the program's own). */
  wrap(argv: string[]): string[]
  /** Takes the namespace's end of the link down: the node is cut off. */
  down(): Promise<void>
  /** Brings it up again. */
  up(): Promise<void>
  /** Removes the link and the namespace; never throws. */
  destroy(): Promise<void>
}

/** Makes a network namespace with a veth link to this one, both ends up. */
export async function makeNetns(): Promise<Netns> {
  const name = `facetns${randomBytes(3).toString('hex')}`
  const hostIf = `${name}h`
  const nodeIf = `${name}n`
  const net = `10.${randomInt(200, 250)}.${randomInt(0, 250)}`
  const inNs = (args: string[]) => sh('ip', ['netns', 'exec', name, ...args])
  const netns: Netns = {
    name,
    hostIp: `${net}.1`,
    nodeIp: `${net}.2`,
    cidr: `${net}.0/30`,
    wrap: argv => ['nsenter', `--net=/var/run/netns/${name}`, '--', ...argv],
    down: async () => void (await inNs(['ip', 'link', 'set', nodeIf, 'down'])),
    up: async () => void (await inNs(['ip', 'link', 'set', nodeIf, 'up'])),
    async destroy() {
      await sh('ip', ['link', 'del', hostIf]).catch(() => {})
      await sh('ip', ['netns', 'del', name]).catch(() => {})
    },
  }
  await sh('ip', ['netns', 'add', name])
  try {
    await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nodeIf])
    await sh('ip', ['link', 'set', nodeIf, 'netns', name])
    await sh('ip', ['addr', 'add', `${net}.1/30`, 'dev', hostIf])
    await sh('ip', ['link', 'set', hostIf, 'up'])
    await inNs(['ip', 'addr', 'add', `${net}.2/30`, 'dev', nodeIf])
    await inNs(['ip', 'link', 'set', nodeIf, 'up'])
    await inNs(['ip', 'link', 'set', 'lo', 'up'])
  } catch (err) {
    await netns.destroy()
    throw err
  }
  return netns
}
