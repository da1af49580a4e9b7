// walrewind as a library: what the CLI uses is what a Node program can use.

export { rewind, openSource } from './rewind/rewind.js'
export type { RewindOptions, RewindResult, SourceSpec } from './rewind/rewind.js'
export type { RewindEvent, Emit } from './rewind/events.js'
export type { Plan, PlanEntry, Action } from './rewind/plan.js'
export { RewindError, exitStatusOf } from './errors.js'
export type { RewindCode } from './errors.js'
export type { Source, FileEntry } from './source/source.js'
export { decodeControlFile } from './pg/control.js'
export { parseLsn, formatLsn } from './pg/lsn.js'
