// What `walrewind verify` compares, and what it leaves out and why. Two nodes of one cluster that
// hold the same data still differ in what each keeps for itself: its WAL, its control file, its
// configuration, statistics, free space maps, unlogged relations. What a rewind never copies
// (the planner's exclusions) is not compared either.

import { exclusionReason, TARGET_CONFIG_FILES } from '../rewind/plan.js'
import { JOURNAL_FILE, PROGRESS_FILE } from '../rewind/journal.js'
import type { PageFork } from './page-mask.js'

export type SkipReason =
  | 'wal'
  | 'control-file'
  | 'configuration'
  | 'node-state'
  | 'free-space-map'
  | 'unlogged'
  | 'temporary'
  | 'not-copied'

export const SKIP_DESCRIPTIONS: Readonly<Record<SkipReason, string>> = {
  wal: 'pg_wal: each node keeps, recycles and names its own segments',
  'control-file': "global/pg_control: each node's own checkpoint and recovery state",
  configuration:
    "each node's own configuration and recovery settings (postgresql.conf, postgresql.auto.conf, pg_hba.conf, pg_ident.conf, *.signal, backup_label.old, tablespace_map.old)",
  'node-state':
    "state a node keeps for itself: statistics (pg_stat), logical decoding (pg_logical), server logs (log), current_logfiles, an unfinished rewind's journal",
  'free-space-map': 'free space maps (_fsm): hints, not WAL-logged',
  unlogged: 'unlogged relations (those with an _init fork), all forks but _init: not replicated, reset by recovery',
  temporary: 'temporary relations (t<backend>_<relfilenode>): removed when a server starts',
  'not-copied':
    "what a rewind never copies (pg_rewind's exclusions: pgsql_tmp, pg_stat_tmp, pg_replslot, pg_dynshmem, pg_notify, pg_serial, pg_snapshots, pg_subtrans contents, backup_label, postmaster.pid, pg_internal.init, ...)",
}

const RELATION_FILE = /^((?:global|base\/\d+|pg_tblspc\/\d+\/[^/]+\/\d+)\/\d+)(?:_(fsm|vm|init))?(?:\.(\d+))?$/
const TEMP_RELATION_FILE = /^(?:base\/\d+|pg_tblspc\/\d+\/[^/]+\/\d+)\/t\d+_\d+/
const RECOVERY_FILES = new Set(['standby.signal', 'recovery.signal', 'backup_label.old', 'tablespace_map.old'])
const NODE_STATE_DIRS = ['pg_stat/', 'pg_logical/', 'log/']
const NODE_STATE_FILES = new Set(['current_logfiles', JOURNAL_FILE, PROGRESS_FILE])

export interface RelationFile {
  /** The relation's path without fork and segment, e.g. `base/5/16384`. */
  readonly relation: string
  readonly fork: PageFork | 'fsm'
  readonly segno: number
}

/** A relation file of any fork: `base/5/16384_vm.2` is the second segment of 16384's visibility map. */
export function relationFileOf(path: string): RelationFile | null {
  const m = RELATION_FILE.exec(path)
  if (m === null) return null
  return { relation: m[1]!, fork: (m[2] as 'fsm' | 'vm' | 'init' | undefined) ?? 'main', segno: m[3] === undefined ? 0 : Number(m[3]) }
}

/** The relations that have an _init fork on either side: unlogged ones. */
export function unloggedRelations(paths: Iterable<string>): Set<string> {
  const out = new Set<string>()
  for (const path of paths) {
    const rel = relationFileOf(path)
    if (rel?.fork === 'init') out.add(rel.relation)
  }
  return out
}

/** Why `path` is not compared, or null. */
export function skipReason(path: string, unlogged: ReadonlySet<string>): SkipReason | null {
  if (path === 'pg_wal' || path.startsWith('pg_wal/')) return 'wal'
  if (path === 'global/pg_control') return 'control-file'
  if (TARGET_CONFIG_FILES.has(path) || RECOVERY_FILES.has(path)) return 'configuration'
  if (NODE_STATE_FILES.has(path) || NODE_STATE_DIRS.some((dir) => path.startsWith(dir))) return 'node-state'
  if (exclusionReason(path) !== null || path.endsWith('.DS_Store')) return 'not-copied'
  if (TEMP_RELATION_FILE.test(path)) return 'temporary'
  const rel = relationFileOf(path)
  if (rel !== null) {
    if (rel.fork === 'fsm') return 'free-space-map'
    if (rel.fork !== 'init' && unlogged.has(rel.relation)) return 'unlogged'
  }
  return null
}
