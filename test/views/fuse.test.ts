import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, type Vfs } from '../../src/index.ts'
import { hostView } from '../../plugins/host/index.ts'
import { procView } from '../../plugins/proc/index.ts'
import { queueView } from '../../plugins/queue/index.ts'
import { fuseSkip, mountForTest, sh } from '../helpers/fuse.ts'
import { sampleUsers, UserStore, usersView } from './helpers.ts'


const pretty = (u: object) => JSON.stringify(u, null, 2) + '\n'

describe.skipIf(fuseSkip)('views through a real FUSE mount', () => {
  let vfs: Vfs
  let mnt: { dir: string; unmount(): Promise<void> }
  let work: string
  let hostDir: string
  const json = new UserStore(sampleUsers)
  const yaml = new UserStore(sampleUsers)
  const csv = new UserStore(sampleUsers)
  let m = ''

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'facet-views-fuse-'))
    hostDir = join(work, 'host')
    await sh(`mkdir -p ${hostDir} && printf 'on disk\\n' > ${hostDir}/h.txt`)
    vfs = createVfs({
      logger: silentLogger,
      mounts: {
        '/users': usersView({ store: json }),
        '/yusers': usersView({ store: yaml, format: 'yaml' }),
        '/cusers': usersView({ store: csv, format: 'csv' }),
        '/q': queueView({ dir: join(work, 'queues') }),
        '/host': hostView({ dir: hostDir, readOnly: false }),
        '/proc': procView(),
      },
    })
    mnt = await mountForTest(vfs)
    m = mnt.dir
  })

  afterAll(async () => {
    await mnt?.unmount()
    await vfs?.close()
    await rm(work, { recursive: true, force: true })
  })

  it('lists records with ls and reads them with cat, wc -c, grep -r, jq and cp with exact content', async () => {
    expect((await sh(`ls ${m}/users`)).stdout).toBe('alice.json\nall.csv\nall.ndjson\nbob.json\ncarol.json\n')
    const alice = pretty({ id: 'alice', name: 'Alice', age: 31, version: 1 })
    expect((await sh(`cat ${m}/users/alice.json`)).stdout).toBe(alice)
    expect((await sh(`wc -c < ${m}/users/alice.json`)).stdout.trim()).toBe(String(Buffer.byteLength(alice)))
    expect((await sh(`ls -l ${m}/users/alice.json`)).stdout).toMatch(new RegExp(`^-rw-r--r-- 1 \\S+ \\S+ ${Buffer.byteLength(alice)} `))
    expect((await sh(`grep -rl '"Bob"' ${m}/users | sort`)).stdout).toBe(`${m}/users/all.ndjson\n${m}/users/bob.json\n`)
    expect((await sh(`jq -r .name ${m}/users/carol.json`)).stdout).toBe('Carol\n')
    expect((await sh(`cp ${m}/users/alice.json ${work}/copy.json && cat ${work}/copy.json`)).stdout).toBe(alice)
    expect((await sh(`tail -c 8 ${m}/users/all.csv`)).stdout).toBe('ol,27,1\n')
    expect((await sh(`cat ${m}/yusers/bob.yaml`)).stdout).toBe('id: bob\nname: Bob\nage: 42\nversion: 1\n')
    expect((await sh(`cat ${m}/cusers/bob.csv`)).stdout).toBe('id,name,age,version\nbob,Bob,42,1\n')
  })

  it('edits a record with sed -i, writes with echo > and tee, removes with rm and re-keys with mv', async () => {
    let r = await sh(`sed -i 's/"Alice"/"Alicia"/' ${m}/users/alice.json`)
    expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(json.rows.get('alice')!.name).toBe('Alicia')
    expect((await sh(`cat ${m}/users/alice.json`)).stdout).toBe(pretty({ id: 'alice', name: 'Alicia', age: 31, version: 2 }))

    r = await sh(`echo '{"id":"dave","name":"Dave","age":50}' > ${m}/users/dave.json`)
    expect(r.code).toBe(0)
    expect(json.rows.get('dave')).toEqual({ id: 'dave', name: 'Dave', age: 50, version: 1 })

    r = await sh(`echo '{"name":"Erin","age":22}' | tee ${m}/users/erin.json > /dev/null`)
    expect(r.code).toBe(0)
    expect(json.rows.get('erin')).toEqual({ id: 'erin', name: 'Erin', age: 22, version: 1 })

    expect((await sh(`rm ${m}/users/dave.json`)).code).toBe(0)
    expect(json.rows.has('dave')).toBe(false)

    expect((await sh(`mv ${m}/users/erin.json ${m}/users/erin2.json`)).code).toBe(0)
    expect(json.rows.has('erin')).toBe(false)
    expect(json.rows.get('erin2')!.name).toBe('Erin')
    expect((await sh(`ls ${m}/users`)).stdout).toBe('alice.json\nall.csv\nall.ndjson\nbob.json\ncarol.json\nerin2.json\n')
  })

  it('edits a record with vim (write to a temp file and rename, or in place)', async () => {
    const has = await sh('command -v vim')
    if (has.code !== 0) return
    const r = await sh(`HOME=${work} vim -u NONE -i NONE -n -E -s -c '%s/"Carol"/"Caroline"/' -c 'wq' ${m}/users/carol.json`)
    expect(r.code).toBe(0)
    expect(csv.rows.get('carol')!.name).toBe('Carol')
    expect(json.rows.get('carol')!.name).toBe('Caroline')
  })

  it('refuses malformed JSON, YAML and CSV and schema violations with EINVAL, keeping the data and a readable reason', async () => {
    const before = structuredClone([...json.rows.entries()])
    let r = await sh(`printf '{"id":"bob",' | tee ${m}/users/bob.json`)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/Invalid argument/)
    expect((await sh(`cat ${m}/users/.bob.json.error`)).stdout).toMatch(/^EINVAL: malformed json: /)

    r = await sh(`printf '{"id":"bob","name":"Bob","age":-4}' | tee ${m}/users/bob.json`)
    expect(r.stderr).toMatch(/Invalid argument/)
    expect((await sh(`cat ${m}/users/.bob.json.error`)).stdout).toMatch(/^EINVAL: invalid record: age: /)
    expect([...json.rows.entries()]).toEqual(before)

    r = await sh(`sed -i 's/"age": 42/"age": "old"/' ${m}/users/bob.json`)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/Invalid argument/)
    expect([...json.rows.entries()]).toEqual(before)

    const yBefore = structuredClone([...yaml.rows.entries()])
    r = await sh(`printf 'id: bob\\nname: [unclosed\\n' | tee ${m}/yusers/bob.yaml`)
    expect(r.stderr).toMatch(/Invalid argument/)
    expect((await sh(`cat ${m}/yusers/.bob.yaml.error`)).stdout).toMatch(/^EINVAL: malformed yaml: /)
    expect([...yaml.rows.entries()]).toEqual(yBefore)

    const cBefore = structuredClone([...csv.rows.entries()])
    r = await sh(`printf 'id,name,age\\nbob,"open,1\\n' | tee ${m}/cusers/bob.csv`)
    expect(r.stderr).toMatch(/Invalid argument/)
    expect((await sh(`cat ${m}/cusers/.bob.csv.error`)).stdout).toMatch(/^EINVAL: malformed csv: /)
    expect([...csv.rows.entries()]).toEqual(cBefore)
  })

  it('refuses a 50 MiB write to a record with EFBIG and changes nothing', async () => {
    const before = (await sh(`cat ${m}/users/carol.json`)).stdout
    const r = await sh(`dd if=/dev/zero of=${m}/users/carol.json bs=1M count=50 2>&1`, { timeoutMs: 30_000 })
    expect(r.code).not.toBe(0)
    expect(r.stdout).toMatch(/File too large/)
    expect((await sh(`cat ${m}/users/carol.json`)).stdout).toBe(before)
    expect((await sh(`cat ${m}/users/.carol.json.error`)).stdout).toMatch(/^EFBIG: /)
  })

  it("refuses names that are not records or hold '/' and leaves the source unchanged", async () => {
    const before = structuredClone([...json.rows.entries()])
    let r = await sh(`echo '{}' > ${m}/users/no/such.json`)
    expect(r.stderr).toMatch(/No such file or directory|Directory nonexistent/)
    r = await sh(`mkdir ${m}/users/sub`)
    expect(r.stderr).toMatch(/Operation not permitted/)
    r = await sh(`mv ${m}/users/alice.json ${m}/q/`)
    expect(r.code).not.toBe(0)
    expect([...json.rows.entries()]).toEqual(before)
  })

  it('runs a queue: enqueue with echo, peek with cat, claim with mv (once only), ack with rm', async () => {
    expect((await sh(`mkdir ${m}/q/jobs && echo resize > ${m}/q/jobs/job1 && echo crop > ${m}/q/jobs/job2`)).code).toBe(0)
    expect((await sh(`ls ${m}/q/jobs`)).stdout).toBe('claimed\ndead\njob1\njob2\n')
    expect((await sh(`cat ${m}/q/jobs/job1`)).stdout).toBe('resize\n')
    const claims = await Promise.all([sh(`mv ${m}/q/jobs/job1 ${m}/q/jobs/claimed/`), sh(`mv ${m}/q/jobs/job1 ${m}/q/jobs/claimed/`)])
    expect(claims.map(c => c.code === 0).sort()).toEqual([false, true])
    expect((await sh(`ls ${m}/q/jobs/claimed`)).stdout).toBe('job1\n')
    expect((await sh(`rm ${m}/q/jobs/claimed/job1 && ls ${m}/q/jobs ${m}/q/jobs/claimed`)).stdout).toBe(`${m}/q/jobs:\nclaimed\ndead\njob2\n\n${m}/q/jobs/claimed:\n`)
  })

  it('mirrors a host folder both ways, live', async () => {
    expect((await sh(`cat ${m}/host/h.txt`)).stdout).toBe('on disk\n')
    expect((await sh(`echo from fuse > ${m}/host/new.txt`)).code).toBe(0)
    expect(await readFile(join(hostDir, 'new.txt'), 'utf8')).toBe('from fuse\n')
    await writeFile(join(hostDir, 'h.txt'), 'changed on disk, longer\n')
    expect((await sh(`cat ${m}/host/h.txt`)).stdout).toBe('changed on disk, longer\n')
  })

  it('shows FacetFS figures in /proc', async () => {
    expect((await sh(`cat ${m}/proc/mounts`)).stdout).toContain('users /users facet rw 0 0\n')
    const r = await sh(`jq -r '.mounts["/users"].ops.open > 0' ${m}/proc/stats.json`)
    expect(r.stdout).toBe('true\n')
  })
})
