// The planner: a pure function from (source file list, target file list, changed blocks) to a
// Plan, plain JSON data that says for each path one action. --dry-run prints it; apply executes
// exactly it. The rules are pg_rewind's decide_file_action() (filemap.c), with one addition from
// PostgreSQL 19: WAL segments wholly before the fork that both sides hold at the same size are
// identical and are not copied again.

import { RewindError } from '../errors.js'
import { formatLsn, parseSegmentFileName, segmentFileName, segmentOf, type Lsn } from '../pg/lsn.js'
import { parseRelationDataFile } from '../pg/relpath.js'
import type { TimelineEntry } from '../pg/timeline.js'
import type { VersionProfile } from '../pg/versions.js'
import { checkRelativePath, checkSourceSymlinks } from '../source/path-policy.js'
import type { FileEntry, FileType } from '../source/source.js'
import type { BlockMap, BlockRange } from '../block-map.js'
import { JOURNAL_FILE, PROGRESS_FILE } from './journal.js'
import { timelineChooser } from './wal-source.js'

export type Action = 'create' | 'copy' | 'copy-tail' | 'none' | 'truncate' | 'remove'
const ACTION_ORDER: Record<Action, number> = { create: 0, copy: 1, 'copy-tail': 2, none: 3, truncate: 4, remove: 5 }

/**
 * Execution order: removals of regular files first, then as filemap.h (create before copy),
 * directories and symlinks removed last, children before parents (a tablespace's link after what
 * is under it). A file's removal never depends on another entry (a path changing type is
 * refused), and going first it frees the disk space the copy needs
 * and runs beside the copy (apply.ts): unlinking a WAL segment costs milliseconds of page-cache work.
 */
function executionRank(entry: PlanEntry): number {
  if (isFileRemoval(entry)) return -1
  return ACTION_ORDER[entry.action]
}

/** A removal of a regular file: runs first, and beside the copy. */
export function isFileRemoval(entry: PlanEntry): boolean {
  return entry.action === 'remove' && entry.target?.type === 'file'
}

export interface PlanSide {
  readonly type: FileType
  readonly size: number
  readonly linkTarget?: string
}

export interface PlanEntry {
  readonly path: string
  readonly isRelFile: boolean
  readonly source: PlanSide | null
  readonly target: PlanSide | null
  readonly action: Action
  /** Changed blocks (in the segment file) to fetch from the source, on top of the action. */
  readonly blocks: readonly BlockRange[]
  /** Bytes this entry fetches from the source. */
  readonly bytes: number
  /**
   * A removed WAL segment renamed to this future segment name instead of unlinked, as the server
   * recycles its own (see recycleWal).
   */
  readonly recycleAs?: string
}

export interface Plan {
  readonly formatVersion: 1
  readonly source: string
  readonly target: string
  readonly divergence: { readonly lsn: string; readonly tli: number }
  readonly checkpoint: { readonly lsn: string; readonly redo: string; readonly tli: number }
  /** Where replay on the rewound node starts, and why there (absent in journals of earlier versions). */
  readonly replay?: PlanReplay
  /** Entries with work to do; unchanged files are only counted in totals. */
  readonly entries: readonly PlanEntry[]
  readonly totals: PlanTotals
  /**
   * WAL segments the rewound server must replay (from the fork to the source's WAL end) that the
   * source no longer has: its checkpoints removed them. The server then needs them from an archive
   * (restore_command); streaming from the source cannot give them.
   */
  readonly sourceWalMissing: readonly string[]
  /**
   * Changed blocks the target holds are fetched as patches of its copies (apply.ts): only their
   * differing pieces cross the network. Absent: fetched whole.
   */
  readonly patchBlocks?: boolean
}

/**
 * `source-checkpoint`: the blocks changed on either side since the fork are copied, and replay
 * starts at the source's checkpoint as read before the copy (a base backup's rule).
 * `last-common-checkpoint`: pg_rewind's algorithm, the target's changed blocks copied and every
 * source record since the last common checkpoint replayed.
 */
export type ReplayFrom = 'source-checkpoint' | 'last-common-checkpoint'

export interface PlanReplay {
  readonly from: ReplayFrom
  readonly checkpoint: { readonly lsn: string; readonly redo: string; readonly tli: number }
  /** Why this start was chosen, for --json and the log. */
  readonly reason: string
}

export interface PlanTotals {
  readonly fetchBytes: number
  readonly blockCount: number
  readonly sourceBytes: number
  readonly actions: Readonly<Record<Action, number>>
}

export interface PlanInput {
  readonly profile: VersionProfile
  readonly blockSize: number
  readonly relsegSize: number
  readonly walSegSize: number
  readonly sourceDescription: string
  /** A server's listing can name symlinks only where tablespaces are; a directory's may hold others. */
  readonly sourceKind: 'local' | 'server'
  readonly targetDir: string
  readonly sourceFiles: readonly FileEntry[]
  readonly targetFiles: readonly FileEntry[]
  readonly changedBlocks: BlockMap
  /** pg_wal files the target needs for its own recovery: never removed. */
  readonly keepWal: ReadonlySet<string>
  readonly divergence: { readonly lsn: Lsn; readonly tli: number }
  readonly checkpoint: { readonly lsn: Lsn; readonly redo: Lsn; readonly tli: number }
  /** Where replay will start. From the source's checkpoint, WAL before its redo point is not copied. */
  readonly replay: {
    readonly from: ReplayFrom
    readonly checkpoint: { readonly lsn: Lsn; readonly redo: Lsn; readonly tli: number }
    readonly reason: string
  }
  /**
   * Where the source's WAL ended when it was listed. Segment files past it are recycled ones with
   * stale contents: recovery never reads them, so they are not copied.
   */
  readonly sourceWalEnd?: Lsn | null
  /** The source's timeline history: with sourceWalEnd, which WAL files it must still hold. */
  readonly sourceHistory?: readonly TimelineEntry[]
  /**
   * Leave the target's own postgresql.conf, pg_hba.conf, pg_ident.conf and postgresql.auto.conf
   * (top level of the data directory) as they are: walrewind's default. pg_rewind copies the
   * source's over them (false).
   */
  readonly keepTargetConfig?: boolean
  /**
   * Recycle the target's WAL segments the plan removes, as the server does at a checkpoint, with
   * the redo point of the target's latest checkpoint and its max_wal_size in bytes if its
   * configuration tells. Absent: they are unlinked (pg_rewind).
   */
  readonly recycleWal?: { readonly targetRedo: Lsn; readonly maxWalSize?: number | null }
  readonly debug?: (message: string) => void
}

/** The configuration files pg_rewind copies from the source and walrewind leaves alone by default. */
export const TARGET_CONFIG_FILES: ReadonlySet<string> = new Set(['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf', 'postgresql.auto.conf'])

// Directories whose contents are never copied (pg_rewind's excludeDirContents).
const EXCLUDED_DIR_CONTENTS = ['pg_stat_tmp', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']
// File names never copied, wherever they are (pg_rewind's excludeFiles).
const EXCLUDED_FILE_NAMES = new Set([
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  'backup_label',
  'tablespace_map',
  'backup_manifest',
  'postmaster.pid',
  'postmaster.opts',
])

/** Why a path is left out of the copy, or null. */
export function exclusionReason(path: string): string | null {
  const base = path.slice(path.lastIndexOf('/') + 1)
  if (base.startsWith('pgsql_tmp') || path.includes('/pgsql_tmp')) return 'temporary file'
  for (const dir of EXCLUDED_DIR_CONTENTS) if (path.startsWith(`${dir}/`)) return `contents of ${dir}`
  if (EXCLUDED_FILE_NAMES.has(base)) return base
  if (base.startsWith('pg_internal.init')) return 'relation cache init file'
  if (base.endsWith('.walrewind-tmp')) return 'walrewind temporary file'
  return null
}

function side(entry: FileEntry | undefined): PlanSide | null {
  if (!entry) return null
  return entry.type === 'symlink'
    ? { type: entry.type, size: 0, linkTarget: entry.linkTarget ?? '' }
    : { type: entry.type, size: entry.size }
}

/** pg_wal may be a symlink on either side; it is a directory for the comparison. */
function comparableType(entry: FileEntry): FileType {
  return entry.path === 'pg_wal' && entry.type === 'symlink' ? 'directory' : entry.type
}

/** Builds the Plan. Throws on a listing no data directory can have. */
export function plan(input: PlanInput): Plan {
  const { profile } = input
  const sources = indexByPath(input.sourceFiles, 'source')
  const targets = indexByPath(input.targetFiles, 'target')
  checkSourceSymlinks(sources, input.sourceKind)
  const divergenceSegment = segmentOf(input.divergence.lsn, input.walSegSize)
  const replaySegment = segmentOf(input.replay.checkpoint.redo, input.walSegSize)
  const entries: PlanEntry[] = []
  const actions: Record<Action, number> = { create: 0, copy: 0, 'copy-tail': 0, none: 0, truncate: 0, remove: 0 }
  let fetchBytes = 0
  let blockCount = 0
  let sourceBytes = 0

  const allPaths = new Set<string>([...sources.keys(), ...targets.keys()])
  const lastSourceSegment = input.sourceWalEnd ? segmentOf(input.sourceWalEnd, input.walSegSize) : null
  for (const path of allPaths) {
    let source = sources.get(path)
    const target = targets.get(path)
    if (source && lastSourceSegment !== null && isRecycledWalSegment(path, lastSourceSegment, input.walSegSize)) {
      input.debug?.(`"${path}" is past the end of the source's WAL: not copied`)
      source = undefined
      if (!target) continue
    }
    if (source?.type === 'file') sourceBytes += source.size
    const isRelFile = parseRelationDataFile(path, profile) !== null
    if (isRelFile && source && source.type !== 'file') {
      throw new RewindError('SOURCE_FILE_LIST', `data file "${path}" in source is not a regular file`, { path })
    }
    const action = decideAction(path, source, target, isRelFile, input, divergenceSegment, replaySegment)
    let blocks: readonly BlockRange[] = []
    if (isRelFile && source && target && target.type === 'file' && action !== 'copy' && action !== 'remove') {
      // Only blocks that exist on both sides: beyond the source's end the file is cut, beyond the
      // target's end copy-tail brings them.
      const limit = Math.floor(Math.min(source.size, target.size) / input.blockSize)
      blocks = input.changedBlocks.ranges(path, limit)
    }
    if (isRelFile && target && target.type !== 'file' && input.changedBlocks.has(path, 0)) {
      throw new RewindError('FILE_TYPE_MISMATCH', `unexpected page modification for non-regular file "${path}"`, { path })
    }
    let bytes = 0
    if (action === 'copy') bytes = source!.size
    else if (action === 'copy-tail') bytes = source!.size - target!.size
    for (const [, count] of blocks) {
      bytes += count * input.blockSize
      blockCount += count
    }
    actions[action]++
    fetchBytes += bytes
    if (action === 'none' && blocks.length === 0) continue
    entries.push({ path, isRelFile, source: side(source), target: side(target), action, blocks, bytes })
  }

  if (input.recycleWal) recycleWal(entries, input, input.recycleWal.targetRedo, input.recycleWal.maxWalSize ?? null)
  entries.sort(compareEntries)
  return {
    formatVersion: 1,
    source: input.sourceDescription,
    target: input.targetDir,
    divergence: { lsn: formatLsn(input.divergence.lsn), tli: input.divergence.tli },
    checkpoint: { lsn: formatLsn(input.checkpoint.lsn), redo: formatLsn(input.checkpoint.redo), tli: input.checkpoint.tli },
    replay: {
      from: input.replay.from,
      checkpoint: {
        lsn: formatLsn(input.replay.checkpoint.lsn),
        redo: formatLsn(input.replay.checkpoint.redo),
        tli: input.replay.checkpoint.tli,
      },
      reason: input.replay.reason,
    },
    entries,
    totals: { fetchBytes, blockCount, sourceBytes, actions },
    sourceWalMissing: missingSourceWal(input, sources),
  }
}

/**
 * The segments replay needs, from the one holding the replay start's redo point to the one
 * holding the source's WAL end, named on the source's timelines as recovery looks for them,
 * that neither the source lists nor the target keeps (before the fork both hold the same WAL).
 */
function missingSourceWal(input: PlanInput, sources: Map<string, FileEntry>): string[] {
  if (!input.sourceWalEnd || !input.sourceHistory || input.sourceHistory.length === 0) return []
  const timelineOf = timelineChooser(input.sourceHistory, input.walSegSize)
  const last = segmentOf(input.sourceWalEnd - 1n, input.walSegSize)
  const missing: string[] = []
  for (let segno = segmentOf(input.replay.checkpoint.redo, input.walSegSize); segno <= last; segno++) {
    const name = segmentFileName(timelineOf(segno), segno, input.walSegSize)
    if (sources.get(`pg_wal/${name}`)?.type !== 'file' && !input.keepWal.has(`pg_wal/${name}`)) missing.push(name)
  }
  return missing
}

function decideAction(
  path: string,
  source: FileEntry | undefined,
  target: FileEntry | undefined,
  isRelFile: boolean,
  input: PlanInput,
  divergenceSegment: bigint,
  replaySegment: bigint,
): Action {
  // The control file is written at the end from the source's, with the recovery point set.
  if (path === 'global/pg_control') return 'none'
  // macOS Finder litter: neither copied nor removed (pg_rewind 18).
  if (path.endsWith('.DS_Store')) return 'none'
  // walrewind's own journal of this rewind stays until the rewind is complete.
  if (path === JOURNAL_FILE || path === PROGRESS_FILE) return 'none'
  // The target's own configuration, unless asked to copy the source's as pg_rewind does.
  if (input.keepTargetConfig === true && TARGET_CONFIG_FILES.has(path)) {
    input.debug?.(`"${path}" is the target's own configuration: kept`)
    return 'none'
  }
  const excluded = exclusionReason(path)
  if (excluded !== null) {
    input.debug?.(`entry "${path}" excluded from source file list`)
    return target ? 'remove' : 'none'
  }
  if (source && input.replay.from === 'source-checkpoint' && isWalSegmentBefore(path, replaySegment, input.walSegSize)) {
    input.debug?.(`"${path}" is before the source checkpoint's redo point, where replay starts: not copied`)
    return 'none'
  }
  if (!target) {
    // Source only: the target lacks it, or dropped it after the fork.
    return source!.type === 'file' ? 'copy' : 'create'
  }
  if (!source) {
    // Target only: created on the target after the fork, or dropped on the source. WAL the target
    // needs to recover from the last common checkpoint stays, though the source recycled it.
    if (input.keepWal.has(path)) {
      input.debug?.(`Not removing file "${path}" because it is required for recovery`)
      return 'none'
    }
    return 'remove'
  }
  if (comparableType(source) !== comparableType(target)) {
    throw new RewindError('FILE_TYPE_MISMATCH', `file "${path}" is of different type in source and target`, { path })
  }
  if (source.type !== 'file') return 'none' // directories and symlinks that both have stay
  // PG_VERSION is the same on both sides; copying it would only risk a torn write.
  if (path === 'PG_VERSION' || path.endsWith('/PG_VERSION')) return 'none'
  if (!isRelFile) {
    if (isCommonWalSegment(path, source.size, target.size, input.walSegSize, divergenceSegment)) return 'none'
    return 'copy'
  }
  // A relation file: its changed blocks come from the block map; only its length is settled here.
  if (target.size < source.size) return 'copy-tail'
  if (target.size > source.size) return 'truncate'
  return 'none'
}

/** PostgreSQL's default max_wal_size, 1 GB: taken when the target's configuration does not tell. */
const DEFAULT_MAX_WAL_SIZE = 1024 * 1024 * 1024

/**
 * Unlinking a 16 MB segment costs milliseconds of the kernel's time (about 7 ms here; a rewind
 * after a failover removes hundreds: the target's WAL after the fork, and older segments the
 * source no longer has), renaming it microseconds. The target's whole-size segments that the
 * plan removes are therefore renamed to segment names past every WAL segment either side lists
 * and past the source's WAL end, on the source's latest timeline: the pre-allocated segments a
 * server keeps ahead of its WAL, which it reuses as its WAL reaches them (the walreceiver writes
 * into them) and removes by its own rules after that. Their stale pages are never read as WAL:
 * each page header carries the address it was written for (xlp_pageaddr), and a recycled
 * segment's segment number is always higher than the one it held, so recovery sees the end of
 * WAL there, as with any recycled segment. At most as many as the target kept from its latest
 * checkpoint on (its own server's pre-allocation) or as fill its max_wal_size (PostgreSQL's default,
 * 1 GB, if its configuration does not tell), whichever is more: a server recycles no more than
 * that ahead of its redo point, and a pg_wal swollen by a stuck slot or a failing archive is
 * still emptied.
 */
function recycleWal(entries: PlanEntry[], input: PlanInput, targetRedo: Lsn, maxWalSize: number | null): void {
  const walSegSize = input.walSegSize
  let highest = input.sourceWalEnd ? segmentOf(input.sourceWalEnd, walSegSize) : 0n
  for (const file of [...input.sourceFiles, ...input.targetFiles]) {
    const segno = walSegmentNumber(file.path, walSegSize)
    if (segno !== null && segno > highest) highest = segno
  }
  const redoSegment = segmentOf(targetRedo, walSegSize)
  const keptAhead = input.targetFiles.filter((file) => {
    const segno = walSegmentNumber(file.path, walSegSize)
    return segno !== null && segno >= redoSegment && file.type === 'file' && file.size === walSegSize
  }).length
  const limit = Math.max(keptAhead, Math.floor((maxWalSize ?? DEFAULT_MAX_WAL_SIZE) / walSegSize))
  const tli = input.sourceHistory?.length ? input.sourceHistory[input.sourceHistory.length - 1]!.tli : input.replay.checkpoint.tli
  const candidates = entries
    .map((entry, index) => ({ entry, index, segno: walSegmentNumber(entry.path, walSegSize) }))
    .filter(
      ({ entry, segno }) =>
        segno !== null && entry.action === 'remove' && entry.target?.type === 'file' && entry.target.size === walSegSize,
    )
    .sort((a, b) => (a.entry.path < b.entry.path ? -1 : 1))
    .slice(0, limit)
  let next = highest + 1n
  for (const { entry, index } of candidates) {
    const recycleAs = `pg_wal/${segmentFileName(tli, next++, walSegSize)}`
    entries[index] = { ...entry, recycleAs }
    input.debug?.(`"${entry.path}" is recycled as "${recycleAs}"`)
  }
}

/** The segment number of a WAL segment file in pg_wal, or null for any other path. */
function walSegmentNumber(path: string, walSegSize: number): bigint | null {
  if (!path.startsWith('pg_wal/')) return null
  return parseSegmentFileName(path.slice('pg_wal/'.length), walSegSize)?.segno ?? null
}

/** A WAL segment that ends before the fork holds the same bytes on both sides. */
function isCommonWalSegment(path: string, sourceSize: number, targetSize: number, walSegSize: number, divergenceSegment: bigint): boolean {
  if (sourceSize !== targetSize) return false
  const segno = walSegmentNumber(path, walSegSize)
  return segno !== null && segno < divergenceSegment
}

function isWalSegmentBefore(path: string, segment: bigint, walSegSize: number): boolean {
  const segno = walSegmentNumber(path, walSegSize)
  return segno !== null && segno < segment
}

function isRecycledWalSegment(path: string, lastSegment: bigint, walSegSize: number): boolean {
  const segno = walSegmentNumber(path, walSegSize)
  return segno !== null && segno > lastSegment
}

function indexByPath(files: readonly FileEntry[], which: 'source' | 'target'): Map<string, FileEntry> {
  const map = new Map<string, FileEntry>()
  for (const entry of files) {
    // A hostile server can name anything: refuse before a single byte is written.
    checkRelativePath(entry.path)
    if (map.has(entry.path)) {
      throw new RewindError('SOURCE_FILE_LIST', `duplicate ${which} file "${entry.path}"`, { path: entry.path })
    }
    map.set(entry.path, entry)
  }
  return map
}

function compareEntries(a: PlanEntry, b: PlanEntry): number {
  const byAction = executionRank(a) - executionRank(b)
  if (byAction !== 0) return byAction
  // Removals run children first, so a directory is empty when its turn comes.
  const byPath = a.path < b.path ? -1 : a.path > b.path ? 1 : 0
  return a.action === 'remove' ? -byPath : byPath
}
