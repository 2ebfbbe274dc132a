export { runMountConformance, runMountCase, mountConformanceCases, FULL_POSIX, CaseSkipped } from './mount-conformance.ts'
export type { CaseContext, Fixture, FuseCaseContext, MountCapabilities, MountCase, MountConformanceOptions } from './mount-conformance.ts'
export { runViewConformance, errnoOf } from '../views/testing.ts'
export type { ConformanceOptions, WriteConformance } from '../views/testing.ts'
