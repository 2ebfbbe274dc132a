import { spawn } from 'node:child_process'
import { access, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fuseSkip, sh, testMountDir } from '../helpers/fuse.ts'
import { FACET, ROOT } from './run.ts'
import { isMounted, killRunning, startUp, waitForLine } from './up-harness.ts'

describe.skipIf(fuseSkip)('facet up with FUSE', () => {
  let dir: string

  beforeEach(async () => {
    dir = await testMountDir()
  })

  afterEach(async () => {
    await killRunning()
    for (const mounted of [dir, join(dir, 'a', 'mnt')]) {
      if (await isMounted(mounted)) await sh(`fusermount -uz '${mounted}' || umount -l '${mounted}'`)
    }
    // Never recurse into a folder that is still mounted: that would delete through the mount.
    if (!(await isMounted(dir))) await rm(dir, { recursive: true, force: true })
  })

  it('mounts the demo, serves ls and cat through the mount, and unmounts on SIGTERM with exit code 0', async () => {
    const up = startUp(['--mount', dir, '--graphql', '127.0.0.1:0'])
    const [, where, mounts] = await waitForLine(up, /^FacetFS mounted at (.+) \(mounts: (.+)\)$/)
    expect([where, mounts]).toEqual([dir, '/hello, /scratch, /db, /proc'])
    const [, url] = await waitForLine(up, /^GraphQL at (http:\/\/127\.0\.0\.1:\d+\/graphql) /)
    const answer = await fetch(url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ node(path: "/hello/README.txt") { size } }' }) })
    expect(((await answer.json()) as { data: { node: { size: number } } }).data.node.size).toBe(Number((await sh(`stat -c %s '${dir}/hello/README.txt'`)).stdout))
    expect(await isMounted(dir)).toBe(true)

    expect((await sh(`ls '${dir}' '${dir}/hello'`)).stdout).toBe(`${dir}:\ndb\nhello\nproc\nscratch\n\n${dir}/hello:\nREADME.txt\nplanets\nsummary.txt\n`)
    expect((await sh(`cat '${dir}/hello/planets/mars.json'`)).stdout).toBe('{\n  "name": "mars",\n  "order": 4,\n  "kind": "rocky",\n  "rings": false\n}\n')
    expect(await sh(`cat '${dir}/hello/planets/pluto.json'`)).toMatchObject({ code: 1, stderr: expect.stringContaining('No such file or directory') })
    expect(await sh(`echo x > '${dir}/hello/x.txt'`)).toMatchObject({ code: 2, stderr: expect.stringContaining('Read-only file system') })
    expect(await sh(`echo hi > '${dir}/scratch/note.txt' && cat '${dir}/scratch/note.txt'`)).toMatchObject({ code: 0, stdout: 'hi\n' })

    up.child.kill('SIGTERM')
    expect(await up.exited).toEqual({ code: 0, signal: null })
    expect(up.stdout).toBe(`FacetFS mounted at ${dir} (mounts: /hello, /scratch, /db, /proc)\nGraphQL at ${url} (GraphiQL in a browser, subscriptions at ${url!.replace('http', 'ws')})\nFacetFS unmounted\n`)
    expect(await isMounted(dir)).toBe(false)
  })

  it('mounts again on a folder whose facet up was killed with SIGKILL, here with the example config', async () => {
    const first = startUp(['--mount', dir])
    await waitForLine(first, /^FacetFS mounted at /)
    first.child.kill('SIGKILL')
    expect((await first.exited).signal).toBe('SIGKILL')

    const second = startUp(['--mount', dir, '--config', 'examples/hello/facet.config.ts'])
    const [, mounts] = await waitForLine(second, /^FacetFS mounted at .+ \(mounts: (.+)\)$/)
    expect(mounts).toBe('/greetings, /notes')
    expect((await sh(`cat '${dir}/greetings/people/grace.txt'`)).stdout).toBe('Hello, grace!\n')

    second.child.kill('SIGINT')
    expect(await second.exited).toEqual({ code: 0, signal: null })
    expect(await isMounted(dir)).toBe(false)
  })

  it('creates the mount folder when it is missing', async () => {
    const nested = join(dir, 'a', 'mnt')
    const up = startUp(['--mount', nested])
    await waitForLine(up, /^FacetFS mounted at /)
    expect((await sh(`ls '${nested}'`)).stdout).toBe('db\nhello\nproc\nscratch\n')
    up.child.kill('SIGTERM')
    expect((await up.exited).code).toBe(0)
    expect(await isMounted(nested)).toBe(false)
  })
})

const canHideFuse = process.getuid?.() === 0 && (await access('/usr/bin/unshare').then(() => true, () => false))

describe.skipIf(!canHideFuse)('facet up without FUSE', () => {
  it('says FUSE is unavailable, keeps running, and stops with exit code 0 on SIGTERM', async () => {
    const dir = await testMountDir()
    let child: ReturnType<typeof spawn> | undefined
    try {
      // A private mount namespace whose /dev has no fuse device; the host's /dev is untouched.
      const script = [
        'mount -t tmpfs none /dev',
        'mknod -m 666 /dev/null c 1 3',
        'mknod -m 666 /dev/zero c 1 5',
        'mknod -m 666 /dev/urandom c 1 9',
        `exec "$0" "${FACET}" up --no-graphql --mount "${dir}/mnt"`,
      ].join(' && ')
      child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, process.execPath], { cwd: ROOT })
      let stdout = ''
      const started = child
      started.stdout!.setEncoding('utf8').on('data', d => (stdout += d))
      const exited = new Promise<number | null>(done => started.on('exit', code => done(code)))
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no output: ${stdout}`)), 20_000)
        started.stdout!.on('data', () => {
          if (stdout.includes('Ctrl-C to stop\n')) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      started.kill('SIGTERM')
      expect(await exited).toBe(0)
      expect(stdout).toMatch(/^FUSE unavailable: \/dev\/fuse is missing or not usable/)
      expect(stdout.split('\n').slice(1)).toEqual([
        'FacetFS is running without a mount (mounts: /hello, /scratch, /db, /proc); Ctrl-C to stop',
        'FacetFS stopped',
        '',
      ])
    } finally {
      if (child?.exitCode === null) child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  })
})
