import { dir, file, symlink } from '../../src/views/view.ts'
import { runMountConformance } from '../../src/testing/index.ts'

/** A read-only view as plugins build them: rendered files, a folder of records, a symlink. */
const helloView = () => ({
  name: 'hello',
  root: dir({
    'greeting.txt': file('hello, world\n'),
    'data': dir({ 'n.json': file('{"n":1}\n'), 'm.json': file(() => JSON.stringify({ m: 22, at: 'rendered' }) + '\n') }),
    'bytes.bin': file(Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 256))),
    'latest': symlink('greeting.txt'),
  }),
})

runMountConformance('read-only view', helloView, {
  capabilities: { write: false, symlinks: true },
  fixture: { names: ['greeting.txt', 'data/n.json', 'data/m.json', 'latest'] },
})
