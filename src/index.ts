export { createVfs, Vfs } from './vfs/vfs.ts'
export type { CallerContext, ChangeEvent, ChangeListener, MountInfo, ReaddirOptions, Stat, VfsOptions } from './vfs/vfs.ts'
export { ERRNO, VfsError, isVfsError, vfsError } from './vfs/errors.ts'
export type { ErrnoCode } from './vfs/errors.ts'
export type {
  Attr,
  AttrChanges,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeContext,
  NodeKind,
  OpContext,
  OpenFlags,
  PageRequest,
  SpecialKind,
  StatFs,
  VNode,
} from './vfs/node.ts'
export type { ChangeEmitter, ChangeType, Mount, MountChange, RouterFacts, ViewContext, ViewStats } from './vfs/mounts.ts'
export { memoryMount } from './vfs/memory.ts'
export type { MemoryMountOptions } from './vfs/memory.ts'
export { normalize, join, dirname, basename, NAME_MAX, PATH_MAX } from './vfs/path.ts'
export { createLogger, silentLogger } from './vfs/log.ts'
export type { Logger } from './vfs/log.ts'
export { defineView, dir, file, symlink } from './views/view.ts'
export type { Children, Content, DirOptions, FileOptions, View } from './views/view.ts'
export { dirFrom, fileFrom, symlinkFrom } from './views/writable.ts'
export type { Attributes, AttributesOf, DirCapabilities, FileCapabilities, LifecycleCapabilities, SymlinkCapabilities } from './views/writable.ts'
export { collection, formatOf, parseAs, renderAs, validate } from './views/index.ts'
export type { CollectionNode, CollectionOptions, Format, FormatName, FormatOptions, RecordChange, RecordSource, SourcePage, SourcePageRequest, StandardSchemaV1 } from './views/index.ts'
export { defineConfig } from './config.ts'
export type { FacetConfig } from './config.ts'
