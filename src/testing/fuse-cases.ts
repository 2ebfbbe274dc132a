import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { FuseCaseContext, MountCapabilities, MountCase } from './mount-conformance.ts'
import { hasCommand, run, sh, type RunResult } from './fuse-harness.ts'

type Caps = Required<MountCapabilities>
type FuseCase = MountCase<FuseCaseContext>

/** The message `strerror` gives for the errnos the cases expect. */
const MESSAGE = {
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EROFS: 'Read-only file system',
  EOPNOTSUPP: 'Operation not supported',
  ENOENT: 'No such file or directory',
} as const

/** Runs `script` in the case's folder on the mount, with `$LOCAL` the case's local folder, UTC times and umask 022. */
function shell(c: FuseCaseContext, script: string, timeoutMs = 15_000): Promise<RunResult> {
  const env = { LOCAL: c.local, TZ: 'UTC', HOME: c.local, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'FacetFS', GIT_AUTHOR_EMAIL: 'facet@example.invalid', GIT_COMMITTER_NAME: 'FacetFS', GIT_COMMITTER_EMAIL: 'facet@example.invalid' }
  return sh(`umask 022\n${script}`, { cwd: c.dir, env, timeoutMs })
}

/** Expects `r` to have exited 0, naming `what` and showing stderr when it did not. */
function succeeded(r: RunResult, what: string): RunResult {
  expect(`${what}: exit ${r.code}${r.stderr ? `, stderr: ${r.stderr.trim()}` : ''}`).toBe(`${what}: exit 0`)
  return r
}

/** Expects `r` to have failed with the message of `code` on stderr. */
function failedWith(r: RunResult, code: keyof typeof MESSAGE, what: string): void {
  expect(r.code, `${what} should fail`).not.toBe(0)
  expect(r.stderr, what).toContain(MESSAGE[code])
}

/** Runs `file args` as uid/gid 65534 with no supplementary groups. */
function asOther(file: string, args: string[]): Promise<RunResult> {
  return run('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', file, ...args])
}

function needOther(c: FuseCaseContext): void {
  if (c.allowOtherSkip) c.skip(c.allowOtherSkip)
}

async function vimCommand(): Promise<string | undefined> {
  for (const name of ['vim', 'vim.tiny', 'vim.basic', 'vi']) if (await hasCommand(name)) return name
  return undefined
}

function writeCases(caps: Caps): FuseCase[] {
  const cases: FuseCase[] = [
    {
      name: 'lists, stats and reads with ls, stat, cat and wc, the stat size equal to the bytes read',
      run: async c => {
        succeeded(await shell(c, `printf 'hello, world\\n' > a.txt && mkdir d`), 'write and mkdir')
        expect(succeeded(await shell(c, 'ls -a'), 'ls -a').stdout).toBe('.\n..\na.txt\nd\n')
        expect(succeeded(await shell(c, `stat -c '%s %F %a' a.txt && stat -c '%F %a' d`), 'stat').stdout).toBe('13 regular file 644\ndirectory 755\n')
        expect(succeeded(await shell(c, 'wc -c < a.txt && cat a.txt'), 'wc and cat').stdout).toBe('13\nhello, world\n')
        const missing = await shell(c, 'cat missing.txt')
        failedWith(missing, 'ENOENT', 'cat of a missing file')
      },
    },
    {
      name: 'writes with >, appends with >>, and the VFS reads the same bytes in-process',
      run: async c => {
        succeeded(await shell(c, `echo first > note.txt && echo second >> note.txt`), '> and >>')
        expect((await c.vfs.readFile(c.here('note.txt'))).toString()).toBe('first\nsecond\n')
        succeeded(await shell(c, `echo over > note.txt`), '> over an existing file')
        expect(succeeded(await shell(c, 'cat note.txt'), 'cat').stdout).toBe('over\n')
        expect((await c.vfs.stat(c.here('note.txt'))).size).toBe(5)
      },
    },
    {
      name: 'edits in place with sed -i, which writes a temporary file and renames it over the original, keeping its mode',
      run: async c => {
        succeeded(await shell(c, `printf 'hello world\\nsecond line\\n' > doc.txt && chmod 640 doc.txt && sed -i 's/world/mount/' doc.txt`), 'sed -i')
        expect(succeeded(await shell(c, 'cat doc.txt && ls -a && stat -c %a doc.txt'), 'cat').stdout).toBe(`hello mount\nsecond line\n.\n..\ndoc.txt\n${caps.chmod ? '640' : '644'}\n`)
      },
    },
    {
      name: 'saves with vim through a swap file, the original renamed to a backup, and a fresh write',
      run: async c => {
        const vim = await vimCommand()
        if (!vim) return c.skip('vim is not installed (apt-get install -y vim-tiny)')
        const seen: string[] = []
        const stop = c.vfs.watch(c.here(), e => seen.push(`${e.type} ${e.path.slice(c.here().length + 1)}${e.oldPath ? ' from ' + e.oldPath.slice(c.here().length + 1) : ''}`))
        try {
          succeeded(await shell(c, `printf 'hello world\\n' > doc.txt`), 'write')
          // backupskip= : the default skips backups of files under /tmp, where test mounts live
          const r = await shell(c, `${vim} -Nu NONE -i NONE -es --cmd 'set swapfile directory=. nobackup writebackup backupcopy=no backupskip=' -c '%s/world/vim/' -c 'wq' doc.txt`)
          succeeded(r, 'vim -es')
        } finally {
          stop()
        }
        expect(succeeded(await shell(c, 'cat doc.txt && ls -a'), 'cat').stdout).toBe('hello vim\n.\n..\ndoc.txt\n')
        expect(seen, 'the swap file was made').toContain('create .doc.txt.swp')
        expect(seen, 'the original was renamed to the backup').toContain('rename doc.txt~ from doc.txt')
        expect(seen, 'the backup was removed').toContain('delete doc.txt~')
      },
    },
    {
      name: 'copies with cp -p into and out of the mount, keeping mode and times',
      run: async c => {
        const mode = caps.chmod ? '640' : '644'
        succeeded(await shell(c, `printf data > "$LOCAL/src.txt" && chmod ${mode} "$LOCAL/src.txt" && touch -d '2020-01-02 03:04:05.123456789' "$LOCAL/src.txt" && cp -p "$LOCAL/src.txt" in.txt && cp -p in.txt "$LOCAL/back.txt"`), 'cp -p in and out')
        expect(succeeded(await shell(c, `stat -c '%a %Y %s' in.txt "$LOCAL/back.txt" && cat "$LOCAL/back.txt"`), 'stat').stdout).toBe(`${mode} 1577934245 4\n${mode} 1577934245 4\ndata`)
        if (caps.nanosecondTimes) expect(succeeded(await shell(c, `stat -c '%y' in.txt "$LOCAL/back.txt"`), 'stat %y').stdout).toBe('2020-01-02 03:04:05.123456789 +0000\n'.repeat(2))
      },
    },
    {
      name: `extracts a tarball with tar x keeping modes and times${caps.symlinks ? ', symlinks' : ''}${caps.hardLinks ? ', hard links' : ''}, and diff -r finds no difference`,
      run: async c => {
        const build = [
          'mkdir -p "$LOCAL/tree/bin" "$LOCAL/tree/deep/x/y" "$LOCAL/tree/empty"',
          `printf 'alpha\\n' > "$LOCAL/tree/a.txt"`,
          `printf '#!/bin/sh\\necho run\\n' > "$LOCAL/tree/bin/run.sh" && chmod 755 "$LOCAL/tree/bin/run.sh"`,
          `head -c 200000 /dev/zero | tr '\\0' 'z' > "$LOCAL/tree/deep/x/y/z.txt"`,
          caps.chmod ? 'chmod 600 "$LOCAL/tree/deep/x/y/z.txt"' : '',
          caps.symlinks ? 'ln -s a.txt "$LOCAL/tree/latest"' : '',
          caps.hardLinks ? 'ln "$LOCAL/tree/a.txt" "$LOCAL/tree/a-twin.txt"' : '',
          `find "$LOCAL/tree" -exec touch -h -d '2021-03-04 05:06:07' {} +`,
          'tar -C "$LOCAL" -cf "$LOCAL/tree.tar" tree',
        ].filter(Boolean)
        succeeded(await shell(c, build.join('\n')), 'build the tarball')
        succeeded(await shell(c, 'tar -xpf "$LOCAL/tree.tar"'), 'tar x')
        succeeded(await shell(c, 'diff -r "$LOCAL/tree" tree'), 'diff -r')
        // folder sizes differ between filesystems; file sizes, kinds, modes and whole seconds must not
        const list = `find . \\( -type d -printf '%P %y %m %T@\\n' \\) -o -printf '%P %y %m %s %T@\\n' | sed 's/\\.[0-9]*$//' | sort`
        const want = succeeded(await shell(c, `cd "$LOCAL/tree" && ${list}`), 'list the local tree').stdout
        expect(succeeded(await shell(c, `cd tree && ${list}`), 'list the extracted tree').stdout).toBe(want)
        if (caps.hardLinks) expect(succeeded(await shell(c, 'stat -c %h tree/a.txt tree/a-twin.txt'), 'stat %h').stdout).toBe('2\n2\n')
        expect(succeeded(await shell(c, './tree/bin/run.sh'), 'run an extracted script').stdout).toBe('run\n')
      },
    },
    {
      name: 'runs git init, add, commit, checkout -b, merge, status and fsck',
      run: async c => {
        const script = [
          'git -c init.defaultBranch=main init -q repo',
          'cd repo',
          `printf 'one\\n' > a.txt && mkdir src && printf 'x\\n' > src/b.txt`,
          'git add -A && git commit -qm first',
          `git checkout -qb feature && printf 'two\\n' >> a.txt && git rm -q src/b.txt && git commit -qam second`,
          'git checkout -q main && git merge -q --ff-only feature',
          'git status --porcelain',
          'git log --oneline | wc -l',
          'cat a.txt',
          'git fsck --strict 2>&1',
        ]
        expect(succeeded(await shell(c, script.join('\n'), 30_000), 'git').stdout).toBe('2\none\ntwo\n')
      },
    },
    {
      name: 'renames with mv over an existing file and into folders, and removes a tree with rm -r',
      run: async c => {
        succeeded(await shell(c, 'echo a > a && echo b > b && mv a b && mkdir -p d/e && mv b d/e/ && mv d moved'), 'mv')
        expect(succeeded(await shell(c, 'cat moved/e/b && ls'), 'cat').stdout).toBe('a\nmoved\n')
        succeeded(await shell(c, 'rm -r moved'), 'rm -r')
        expect(succeeded(await shell(c, 'ls -a'), 'ls -a').stdout).toBe('.\n..\n')
        failedWith(await shell(c, 'rm gone'), 'ENOENT', 'rm of a missing file')
      },
    },
    {
      name: 'grows with zeros and cuts with truncate -s',
      run: async c => {
        succeeded(await shell(c, 'printf abcdef > cut.bin && truncate -s 10 cut.bin'), 'truncate -s 10')
        expect((await c.vfs.readFile(c.here('cut.bin'))).equals(Buffer.from('abcdef\0\0\0\0'))).toBe(true)
        expect(succeeded(await shell(c, 'truncate -s 2 cut.bin && cat cut.bin && stat -c %s cut.bin'), 'truncate -s 2').stdout).toBe('ab2\n')
      },
    },
    caps.chmod
      ? {
          name: `sets modes with chmod and times with touch -d${caps.nanosecondTimes ? ', to the nanosecond' : ''}`,
          run: async c => {
            succeeded(await shell(c, `echo x > t && chmod 600 t && touch -d '2020-01-02 03:04:05.123456789' t`), 'chmod and touch')
            expect(succeeded(await shell(c, `stat -c '%a %Y %X' t`), 'stat').stdout).toBe('600 1577934245 1577934245\n')
            if (caps.nanosecondTimes) expect(succeeded(await shell(c, `stat -c '%y' t`), 'stat %y').stdout).toBe('2020-01-02 03:04:05.123456789 +0000\n')
            succeeded(await shell(c, `touch -m -d '2001-01-01 00:00:00' t`), 'touch -m')
            expect(succeeded(await shell(c, `stat -c '%Y %X' t`), 'stat').stdout).toBe('978307200 1577934245\n')
          },
        }
      : {
          name: 'refuses chmod with EPERM "Operation not permitted"',
          run: async c => {
            succeeded(await shell(c, 'echo x > t'), 'write')
            failedWith(await shell(c, 'chmod 600 t'), 'EPERM', 'chmod')
          },
        },
  ]
  if (caps.chown) {
    cases.push({
      name: 'changes owner and group with chown',
      run: async c => {
        if (process.getuid?.() !== 0) return c.skip('giving a file away needs root')
        succeeded(await shell(c, 'echo x > owned && chown 123:456 owned && chown :789 owned'), 'chown')
        expect(succeeded(await shell(c, `stat -c '%u %g' owned`), 'stat').stdout).toBe('123 789\n')
      },
    })
  }
  cases.push(
    caps.symlinks
      ? {
          name: 'makes symlinks with ln -s that readlink, stat and cat follow',
          run: async c => {
            succeeded(await shell(c, 'echo target > real.txt && ln -s real.txt link.txt && mkdir d && ln -s ../real.txt d/up'), 'ln -s')
            expect(succeeded(await shell(c, `readlink link.txt && stat -c '%F %s' link.txt && cat link.txt d/up`), 'follow').stdout).toBe('real.txt\nsymbolic link 8\ntarget\ntarget\n')
          },
        }
      : {
          name: 'refuses ln -s with EROFS "Read-only file system" on a mount without symlinks',
          run: async c => {
            succeeded(await shell(c, 'echo target > real.txt'), 'write')
            failedWith(await shell(c, 'ln -s real.txt link.txt'), 'EROFS', 'ln -s')
          },
        },
    caps.hardLinks
      ? {
          name: 'makes hard links with ln that share content and count their names',
          run: async c => {
            succeeded(await shell(c, 'echo x > solo && ln solo twin && echo more >> twin'), 'ln')
            expect(succeeded(await shell(c, 'cat solo && stat -c %h solo twin && rm solo && stat -c %h twin'), 'stat %h').stdout).toBe('x\nmore\n2\n2\n1\n')
            // -d: ln itself refuses folders; so the kernel answers link(2)
            failedWith(await shell(c, 'mkdir dd && ln -d dd dd-link'), 'EPERM', 'ln of a folder')
          },
        }
      : {
          name: 'refuses ln with EPERM "Operation not permitted" on a mount without hard links',
          run: async c => {
            succeeded(await shell(c, 'echo x > solo'), 'write')
            failedWith(await shell(c, 'ln solo twin'), 'EPERM', 'ln')
            expect(succeeded(await shell(c, 'ls'), 'ls').stdout).toBe('solo\n')
          },
        },
    caps.specialFiles
      ? {
          name: 'makes a fifo with mkfifo that carries data between processes, and device nodes with mknod',
          run: async c => {
            succeeded(await shell(c, 'mkfifo pipe && mknod null c 1 3 && mknod disk b 8 1'), 'mkfifo and mknod')
            expect(succeeded(await shell(c, `stat -c '%F %t:%T' pipe null disk`), 'stat').stdout).toBe('fifo 0:0\ncharacter special file 1:3\nblock special file 8:1\n')
            expect(succeeded(await shell(c, '(echo through > pipe &) ; cat pipe'), 'fifo').stdout).toBe('through\n')
          },
        }
      : {
          name: 'refuses mkfifo with EPERM "Operation not permitted" on a mount without special files',
          run: async c => {
            failedWith(await shell(c, 'mkfifo pipe'), 'EPERM', 'mkfifo')
          },
        },
    caps.xattrs
      ? {
          name: 'sets, reads and removes user.* attributes with setfattr and getfattr',
          run: async c => {
            if (!(await hasCommand('setfattr'))) return c.skip('setfattr is not installed (apt-get install -y attr)')
            succeeded(await shell(c, 'echo x > f && setfattr -n user.origin -v "the mount" f && setfattr -n user.other -v 2 f && setfattr -x user.other f'), 'setfattr')
            expect(succeeded(await shell(c, 'getfattr --absolute-names -d f'), 'getfattr').stdout).toBe('# file: f\nuser.origin="the mount"\n\n')
            expect(Buffer.from(await c.vfs.getxattr(c.here('f'), 'user.origin')).toString()).toBe('the mount')
          },
        }
      : {
          name: 'refuses setfattr and getfattr with EOPNOTSUPP "Operation not supported" on a mount without extended attributes',
          run: async c => {
            if (!(await hasCommand('setfattr'))) return c.skip('setfattr is not installed (apt-get install -y attr)')
            succeeded(await shell(c, 'echo x > f'), 'write')
            failedWith(await shell(c, 'setfattr -n user.origin -v x f'), 'EOPNOTSUPP', 'setfattr')
            // what ls -l asks of every file; "not supported" lets it stop asking on this mount
            failedWith(await shell(c, 'getfattr -n security.selinux f'), 'EOPNOTSUPP', 'getfattr')
          },
        },
    {
      name: 'refuses cat of a 0600 file by another user with EACCES "Permission denied"',
      run: async c => {
        needOther(c)
        succeeded(await shell(c, 'echo secret > secret && chmod 600 secret'), 'write')
        failedWith(await asOther('cat', [join(c.dir, 'secret')]), 'EACCES', 'cat as uid 65534')
      },
    },
    {
      name: 'lets another user read a 0644 file and refuses its write with EACCES "Permission denied"',
      run: async c => {
        needOther(c)
        succeeded(await shell(c, 'echo shared > shared'), 'write')
        expect(succeeded(await asOther('cat', [join(c.dir, 'shared')]), 'cat as uid 65534').stdout).toBe('shared\n')
        failedWith(await asOther('sh', ['-c', `echo defaced > '${join(c.dir, 'shared')}'`]), 'EACCES', 'write as uid 65534')
        failedWith(await asOther('touch', [join(c.dir, 'intruder')]), 'EACCES', 'create in a 0755 folder as uid 65534')
        expect((await c.vfs.readFile(c.here('shared'))).toString()).toBe('shared\n')
      },
    },
    {
      name: 'gives a file made by another user in a 0777 folder to 65534:65534',
      run: async c => {
        needOther(c)
        succeeded(await shell(c, 'mkdir open && chmod 777 open'), 'mkdir')
        succeeded(await asOther('sh', ['-c', `echo mine > '${join(c.dir, 'open/mine')}' && mkdir '${join(c.dir, 'open/mydir')}'`]), 'create as uid 65534')
        expect(succeeded(await shell(c, `stat -c '%u:%g %n' open/mine open/mydir`), 'stat').stdout).toBe('65534:65534 open/mine\n65534:65534 open/mydir\n')
        const st = await c.vfs.stat(c.here('open/mine'))
        expect([st.uid, st.gid]).toEqual([65534, 65534])
      },
    },
    {
      name: 'refuses chmod by a non-owner with EPERM "Operation not permitted"',
      run: async c => {
        needOther(c)
        succeeded(await shell(c, 'echo x > roots'), 'write')
        failedWith(await asOther('chmod', ['666', join(c.dir, 'roots')]), 'EPERM', 'chmod as uid 65534')
        expect(succeeded(await shell(c, 'stat -c %a roots'), 'stat').stdout).toBe('644\n')
      },
    },
  )
  return cases
}

function readOnlyCases(): FuseCase[] {
  const file = (c: FuseCaseContext): string => {
    if (c.fixture.file === undefined) throw new Error('the mount holds no file to test with: an empty fixture')
    return c.fixture.file
  }
  return [
    {
      name: 'lists content with ls and reads every file with cat, the stat size equal to the bytes read (an empty mount fails)',
      run: async c => {
        const listed = succeeded(await shell(c, 'ls -A'), 'ls -A').stdout
        expect(listed.trim().length, 'names listed by ls -A').toBeGreaterThan(0)
        file(c)
        for (const f of c.fixture.files.slice(0, 20)) {
          const r = succeeded(await shell(c, `stat -c %s '${f}' && wc -c < '${f}'`), `stat and wc of ${f}`)
          const [size, counted] = r.stdout.trim().split('\n')
          expect(size, f).toBe(counted)
          expect(Number(size), f).toBe((await c.vfs.readFile(c.path(f))).length)
        }
      },
    },
    {
      name: 'refuses writes with EROFS "Read-only file system", mkfifo too, and leaves the files as they were',
      run: async c => {
        const f = file(c)
        const before = await c.vfs.readFile(c.path(f))
        failedWith(await shell(c, `echo changed > '${f}'`), 'EROFS', '>')
        failedWith(await shell(c, `echo more >> '${f}'`), 'EROFS', '>>')
        failedWith(await shell(c, 'touch new-file'), 'EROFS', 'touch')
        failedWith(await shell(c, 'mkdir new-dir'), 'EROFS', 'mkdir')
        failedWith(await shell(c, `rm -f '${f}'`), 'EROFS', 'rm')
        failedWith(await shell(c, `truncate -s 0 '${f}'`), 'EROFS', 'truncate')
        failedWith(await shell(c, `mv '${f}' renamed`), 'EROFS', 'mv')
        failedWith(await shell(c, 'ln -s x new-link'), 'EROFS', 'ln -s')
        failedWith(await shell(c, `chmod 600 '${f}'`), 'EROFS', 'chmod')
        // as on a read-only Linux filesystem, before asking whether the mount holds special files
        failedWith(await shell(c, 'mkfifo new-pipe'), 'EROFS', 'mkfifo')
        expect((await c.vfs.readFile(c.path(f))).equals(before)).toBe(true)
      },
    },
    {
      name: 'copies the tree out with cp -r and tar c, byte for byte',
      run: async c => {
        file(c)
        succeeded(await shell(c, 'cp -r . "$LOCAL/copy" && diff -r . "$LOCAL/copy"', 30_000), 'cp -r and diff -r')
        succeeded(await shell(c, 'tar -cf "$LOCAL/out.tar" . && mkdir "$LOCAL/x" && tar -C "$LOCAL/x" -xf "$LOCAL/out.tar" && diff -r . "$LOCAL/x"', 30_000), 'tar c, x and diff -r')
      },
    },
    {
      name: 'lets another user read a file whose mode grants it',
      run: async c => {
        needOther(c)
        const f = file(c)
        const r = await asOther('stat', ['-c', '%a %u', join(c.dir, f)])
        succeeded(r, 'stat as uid 65534')
        const [mode, uid] = r.stdout.trim().split(' ')
        const bits = parseInt(mode!, 8)
        if (!(uid === '65534' ? bits & 0o400 : bits & 0o004)) return c.skip(`${f} grants another user no read (mode ${mode})`)
        const read = succeeded(await asOther('sha256sum', [join(c.dir, f)]), 'sha256sum as uid 65534')
        expect(read.stdout.split(' ')[0]).toBe(createHash('sha256').update(await c.vfs.readFile(c.path(f))).digest('hex'))
      },
    },
  ]
}

/** The FUSE cases for a mount with these capabilities: shell and editor sequences, and a second user's rights. */
export function fuseCases(caps: Caps): FuseCase[] {
  return [
    ...(caps.write ? writeCases(caps) : readOnlyCases()),
    {
      name: 'leaves no handle open once the commands are done',
      run: async c => {
        for (let i = 0; i < 40 && c.vfs.openHandles > 0; i++) await new Promise(r => setTimeout(r, 50))
        expect(c.vfs.openHandles).toBe(0)
      },
    },
  ]
}
