import { expect, it } from 'vitest'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { runViewConformance } from '../../src/views/testing.ts'
import greetings from './greetings.ts'

runViewConformance('example greetings', () => greetings({ names: ['ada', 'alan'] }), { folder: '/people', expectNames: ['ada.txt', 'alan.txt'] })

it('greets each name in a file of its own, under an index of them all', async () => {
  const vfs = createVfs({ mounts: { '/g': greetings({ names: ['ada', 'alan'] }) }, logger: silentLogger })
  try {
    expect((await vfs.readFile('/g/index.txt')).toString()).toBe('ada\nalan\n')
    expect((await vfs.readFile('/g/people/alan.txt')).toString()).toBe('Hello, alan!\n')
    await expect(vfs.writeFile('/g/people/ada.txt', 'x')).rejects.toMatchObject({ code: 'EROFS' })
  } finally {
    await vfs.close()
  }
})
