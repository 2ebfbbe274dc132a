import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, mountForTest, run, sh as shell, type TestMount } from '../../test/helpers/fuse.ts'
import { DEMO_SQL } from './demo.ts'
import { BACKENDS, type TestDb } from './test-helpers.ts'
import { sql } from './view.ts'

/** Runs a shell command inside `dir` (the shell changes folder itself: a child's working folder must never be on this process's mount). */
async function sh(dir: string, command: string): Promise<{ code: number; out: string; err: string }> {
  const r = await shell(`cd '${dir}' && ${command}`)
  return { code: r.code, out: r.stdout, err: r.stderr }
}

/** Writes a file from a child process and reports the errno of write/close: 'ok' or e.g. 'EEXIST'. */
async function writeFile(path: string, content: string): Promise<string> {
  const r = await run(process.execPath, ['-e', `try { require('fs').writeFileSync(process.argv[1], process.argv[2]); console.log('ok') } catch (e) { console.log(e.code) }`, path, content])
  return r.stdout.trim()
}

describe.skipIf(fuseSkip)('the sql view through FUSE', () => {
  describe.each(BACKENDS)('$backend', ({ make }) => {
    let t: TestDb
    let vfs: Vfs
    let fuse: TestMount
    let db: string

    beforeEach(async () => {
      t = await make()
      await t.exec(DEMO_SQL)
      vfs = createVfs({ mounts: { '/db': sql({ ...t.connection, schema: t.schema, revalidateMs: 0 }) }, logger: silentLogger })
      fuse = await mountForTest(vfs)
      db = join(fuse.dir, 'db')
    })
    afterEach(async () => {
      await fuse?.unmount()
      await vfs?.close()
      await t.drop()
    })

    it('browses tables and rows with ls and cat', async () => {
      expect((await sh(db, 'ls')).out).toBe('authors\nauthors.csv\nauthors.ndjson\nbooks\nbooks.csv\nbooks.ndjson\nreviews\nreviews.csv\nreviews.ndjson\n')
      expect((await sh(db, 'ls -A reviews')).out).toBe('.schema\n1,babbage.json\n2,church.json\n3,searle.json\n')
      expect(JSON.parse((await sh(db, 'cat authors/2.json')).out)).toEqual({ id: 2, name: 'Alan Turing', born: '1912-06-23' })
      expect((await sh(db, 'cat authors.csv')).out).toBe('id,name,born\n1,Ada Lovelace,1815-12-10\n2,Alan Turing,1912-06-23\n3,Grace Hopper,1906-12-09\n')
      expect((await sh(db, 'wc -c < books/1.json')).out.trim()).toBe(String((await vfs.stat('/db/books/1.json')).size))
    })

    it('finds rows with grep', async () => {
      expect((await sh(db, 'grep -l Turing authors/*.json')).out).toBe('authors/2.json\n')
      expect((await sh(db, 'grep -rl "\\"stars\\": [45]" reviews')).out.split('\n').sort().join(' ').trim()).toBe('reviews/1,babbage.json reviews/2,church.json')
    })

    it('edits a row with sed -i', async () => {
      const r = await sh(db, `sed -i 's/"price": "9.99"/"price": "8.49"/' books/2.json`)
      expect(r).toMatchObject({ code: 0, err: '' })
      expect(await t.exec(`SELECT price::text FROM books WHERE id = 2`)).toEqual([{ price: '8.49' }])
    })

    it('inserts with echo > and deletes with rm', async () => {
      expect((await sh(db, `echo '{"id": 4, "name": "Edsger Dijkstra", "born": "1930-05-11"}' > authors/4.json`)).code).toBe(0)
      expect(await t.exec(`SELECT name, born::text FROM authors WHERE id = 4`)).toEqual([{ name: 'Edsger Dijkstra', born: '1930-05-11' }])
      expect((await sh(db, 'rm authors/4.json')).code).toBe(0)
      expect(await t.exec(`SELECT name FROM authors WHERE id = 4`)).toEqual([])
      const gone = await sh(db, 'cat authors/4.json')
      expect(gone.code).not.toBe(0)
      expect(gone.err).toMatch(/No such file or directory/)
    })

    it('refuses each constraint violation with its errno and explains it in .errors', async () => {
      const book2 = { id: 2, title: 'On Computable Numbers', author_id: 2, published: '1936-11-12', price: '9.99', tags: ['logic'] }
      expect(await writeFile(join(db, 'authors/3.json'), JSON.stringify({ id: 3, name: 'Ada Lovelace', born: null }))).toBe('EEXIST')
      expect(await writeFile(join(db, 'books/2.json'), JSON.stringify({ ...book2, author_id: 42 }))).toBe('EINVAL')
      expect((await sh(db, 'cat books/.errors')).out).toMatch(/^2\.json: EINVAL: insert or update on table "books" violates foreign key constraint "books_author_id_fkey": Key \(author_id\)=\(42\) is not present in table "authors"\.\n$/)
      expect(await writeFile(join(db, 'books/2.json'), JSON.stringify({ ...book2, title: null }))).toBe('EINVAL')
      expect(await writeFile(join(db, 'books/2.json'), JSON.stringify({ ...book2, price: '-5' }))).toBe('EINVAL')
      expect((await sh(db, 'cat books/.2.json.error')).out).toMatch(/violates check constraint "books_price_check"/)
      expect((await sh(db, 'cat authors/.3.json.error')).out).toMatch(/^EEXIST: duplicate key value violates unique constraint "authors_name_key": Key \(name\)=\(Ada Lovelace\) already exists\.\n$/)
      const rm = await sh(db, 'rm authors/1.json')
      expect(rm.err).toMatch(/Invalid argument/)
      expect(await t.exec(`SELECT count(*)::int AS n FROM authors`)).toEqual([{ n: 3 }])
      expect(JSON.parse((await sh(db, 'cat books/2.json')).out)).toEqual(book2)
    })

    it('refuses an edit of a row changed by another client since it was opened with EAGAIN', async () => {
      const path = join(db, 'books/3.json')
      const child = spawn(process.execPath, ['-e', `
        const fs = require('fs')
        const fd = fs.openSync(process.argv[1], 'r+')
        const text = fs.readFileSync(fd, 'utf8')
        console.log('ready')
        process.stdin.once('data', () => {
          try {
            fs.ftruncateSync(fd, 0)
            fs.writeSync(fd, text.replace('"7.00"', '"6.00"'), 0)
            fs.closeSync(fd)
            console.log('ok')
          } catch (e) { console.log(e.code) }
        })`, path], { stdio: ['pipe', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', d => (out += d))
      await new Promise<void>(res => { const poll = setInterval(() => { if (out.includes('ready')) { clearInterval(poll); res() } }, 10) })
      await t.exec(`UPDATE books SET title = 'Can Machines Think?' WHERE id = 3`)
      child.stdin.end('go\n')
      await new Promise(res => child.on('exit', res))
      expect(out.trim().split('\n').pop()).toBe('EAGAIN')
      expect(await t.exec(`SELECT title, price::text FROM books WHERE id = 3`)).toEqual([{ title: 'Can Machines Think?', price: '7.00' }])
    })
  })
})
