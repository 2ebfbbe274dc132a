import { memoryMount } from '../../src/vfs/memory.ts'
import { FULL_POSIX, runMountConformance } from '../../src/testing/index.ts'

runMountConformance('memory', () => memoryMount(), { capabilities: FULL_POSIX })
