// The last writes of a rewind, in an order that survives a crash at any point:
//
//   1. WAL the source wrote while the copy ran (a running source): fetched up to its end now
//   2. backup_label (where replay starts), the interrupted-marker removed (or the source's
//      postgresql.auto.conf copied over it, when the plan copies it), standby settings (-R)
//   3. everything written synced
//   4. the new pg_control written beside its place and synced
//   5. the journal removed (durably)
//   6. the new pg_control renamed into place (durably): from here on the directory can start
//
// Until 6 PostgreSQL cannot start the directory (no pg_control), and a rerun finds either the
// journal (and finishes again) or, after 5, the new pg_control beside its place (and renames it).

import fs from 'node:fs/promises'
import { formatRewindBackupLabel } from '../pg/backup-label.js'
import { DBState, decodeControlFile, updateControlFile } from '../pg/control.js'
import { formatLsn, parseLsn, parseSegmentFileName, segmentFileName, segmentOf, segmentStart, type Lsn } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { RewindError } from '../errors.js'
import type { ChunkSink, Source, SourceWalEnd } from '../source/source.js'
import { isNotFound } from '../source/walk.js'
import type { LastCheckpoint } from './diverge.js'
import type { Emit } from '../events.js'
import { faultPoint } from './fault.js'
import { AUTO_CONF, removeInterruptedMarker } from './interrupted-marker.js'
import { controlFileOf, JOURNAL_FILE, PROGRESS_FILE, type Journal } from './journal.js'
import { BlockMap } from '../block-map.js'
import { refreshToCheckpoint } from './refresh.js'
import { commonCheckpointStart, databaseCopiedAfter, sourceCheckpointOf } from './replay-start.js'
import { scanSourceWal, type SourceScanResult } from './scan.js'
import { openDataDirWal } from './wal-source.js'
import type { TargetDir } from './target-dir.js'

export const CONTROL_FILE = 'global/pg_control'
/** Where the new pg_control waits, complete and synced, until it is renamed into place. */
export const NEW_CONTROL_FILE = `${CONTROL_FILE}.walrewind-tmp`
/** A source that keeps creating databases by copying files is refused after this many passes. */
const MAX_REFRESH_PASSES = 3

/** Where the journaled plan starts replay: the source's checkpoint, or pg_rewind's start (journals before 0.2 say nothing: pg_rewind's). */
export function replayStartOf(journal: Journal): LastCheckpoint {
  const replay = journal.plan.replay
  if (replay?.from === 'source-checkpoint') {
    return { lsn: parseLsn(replay.checkpoint.lsn), redo: parseLsn(replay.checkpoint.redo), tli: replay.checkpoint.tli }
  }
  return commonCheckpointStart(journal.checkpoint, decodeControlFile(journal.sourceControl))
}

/**
 * A running source may have created a database by copying files while we copied: its replay on
 * the rewound node would copy the template as the rewind left it. The source's WAL from the replay
 * start to its end is in the target's pg_wal now (copied, then caught up): read it there.
 */
async function databaseCopyIn(input: FinishInput, start: LastCheckpoint, end: SourceWalEnd): Promise<Lsn | null> {
  try {
    const scanned = await scanCopiedSourceWal(input, start.redo, end.lsn, new BlockMap())
    return scanned.databaseFileCopies[0] ?? null
  } catch (err) {
    if (!(err instanceof RewindError) || (err.code !== 'WAL_MISSING' && err.code !== 'WAL_INVALID')) throw err
    input.emit({
      type: 'warning',
      code: 'SOURCE_WAL_MISSING',
      message: `could not check the source's WAL from ${formatLsn(start.redo)} for a CREATE DATABASE that copied files: ${err.message}`,
    })
    return null
  }
}

/** The source's WAL in [from, to), as copied into the target's pg_wal: its changed blocks added to `into`. */
export async function scanCopiedSourceWal(input: FinishInput, from: Lsn, to: Lsn, into: BlockMap): Promise<SourceScanResult> {
  const control = controlFileOf(input.journal)
  const { reader, dir } = openDataDirWal(input.target.abs('.'), control, input.sourceHistory)
  try {
    return await scanSourceWal(reader, from, to, control.profile, control.relseg_size, into)
  } finally {
    await dir.close()
  }
}

export async function writeBackupLabel(target: TargetDir, start: LastCheckpoint, segSize: number, now: Date): Promise<string> {
  const label = formatRewindBackupLabel({ redo: start.redo, redoTli: start.tli, checkpoint: start.lsn, startTime: now, segSize })
  await target.writeFile('backup_label', label)
  return label
}

/** The source's control file, marked in archive recovery until `end` has been replayed. */
export function newControlFile(sourceAfter: Buffer, end: SourceWalEnd): Buffer {
  return updateControlFile(sourceAfter, { state: DBState.IN_ARCHIVE_RECOVERY, minRecoveryPoint: end.lsn, minRecoveryPointTLI: end.tli })
}

/** Quotes a value for postgresql.conf. */
export function quoteConfValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

const RECOVERY_CONF_COMMENT = '# Added by walrewind (pg_rewind --write-recovery-conf)\n'

/**
 * standby.signal plus primary_conninfo appended to postgresql.auto.conf, as pg_rewind -R does;
 * not appended twice when a resumed run finishes again.
 */
export async function writeRecoveryConfig(target: TargetDir, primaryConninfo: string): Promise<void> {
  const lines = `${RECOVERY_CONF_COMMENT}primary_conninfo = ${quoteConfValue(primaryConninfo)}\n`
  const current = await fs.readFile(target.abs('postgresql.auto.conf'), 'utf8').catch((err) => {
    if (isNotFound(err)) return ''
    throw err
  })
  if (!current.endsWith(lines)) await target.appendFile('postgresql.auto.conf', lines)
  await target.writeFile('standby.signal', '')
}

export interface FinishInput {
  readonly source: Source
  readonly target: TargetDir
  readonly journal: Journal
  readonly segSize: number
  readonly sync: boolean
  readonly syncMethod: 'fsync' | 'syncfs'
  /** primary_conninfo for -R, or null. */
  readonly primaryConninfo: string | null
  /** The source's timeline history, to read its WAL. */
  readonly sourceHistory: readonly TimelineEntry[]
  /** The plan copies the source's postgresql.auto.conf: done here, where it replaces the marker. */
  readonly copyAutoConf?: boolean
  readonly emit: Emit
}

export interface FinishResult {
  /** The WAL end the new pg_control asks replay to reach. */
  readonly end: SourceWalEnd
  readonly catchUpBytes: number
}

export async function finishRewind(input: FinishInput): Promise<FinishResult> {
  const { source, target, journal, emit } = input
  let start = replayStartOf(journal)
  let walFrom = journal.planWalEnd
  let catchUpBytes = 0
  let afterBytes: Buffer
  let end: SourceWalEnd
  for (let pass = 1; ; pass++) {
    // The source's control file is fetched after the copy, so minRecoveryPoint covers everything copied.
    afterBytes = await source.readFile(CONTROL_FILE)
    const after = decodeControlFile(afterBytes)
    if (!source.running && !afterBytes.equals(journal.sourceControl)) {
      throw new RewindError('SOURCE_CHANGED', 'source system was modified while pg_rewind was running')
    }
    end = await source.walEnd(after)
    catchUpBytes += await catchUpWal(input, walFrom, end)
    if (end.lsn > walFrom) walFrom = end.lsn
    if (journal.plan.replay?.from !== 'source-checkpoint' || !source.running) break
    const copy = await databaseCopyIn(input, start, end)
    if (copy === null) break
    // Replay must start after that CREATE DATABASE: at the source's checkpoint now, once what
    // changed on the source since the first start is copied again.
    const later = sourceCheckpointOf(after)
    if (later.redo <= copy || pass === MAX_REFRESH_PASSES) throw databaseCopiedAfter(copy, start, source.description)
    emit({
      type: 'info',
      message:
        `the source created a database by copying files at ${formatLsn(copy)}, during the rewind: ` +
        `copying again what it changed before its checkpoint at ${formatLsn(later.lsn)}, where replay will start`,
    })
    catchUpBytes += await refreshToCheckpoint({ ...input, from: start, to: later, sourceWalEnd: end.lsn })
    start = later
  }

  emit({ type: 'step', message: 'creating backup label and updating control file' })
  await writeBackupLabel(target, start, input.segSize, new Date())
  await faultPoint('backup-label-written')
  if (input.copyAutoConf === true) {
    const copy = await source.readFileIfExists(AUTO_CONF)
    if (copy === null) await target.removeDurably(AUTO_CONF)
    else await target.replaceFileDurably(AUTO_CONF, copy)
  } else {
    await removeInterruptedMarker(target)
  }
  await faultPoint('marker-removed')
  if (input.primaryConninfo !== null) {
    await writeRecoveryConfig(target, input.primaryConninfo)
    await faultPoint('standby-settings-written')
  }
  if (input.sync) {
    emit({ type: 'step', message: 'syncing target data directory' })
    await target.sync(input.syncMethod, { onFile: () => faultPoint('sync-file') })
  }
  await target.replaceFileDurably(CONTROL_FILE, newControlFile(afterBytes, end), async () => {
    await faultPoint('control-tmp-written')
    await removeJournal(target)
    await faultPoint('journal-removed')
  })
  await faultPoint('control-renamed')
  return { end, catchUpBytes }
}

export async function removeJournal(target: TargetDir): Promise<void> {
  await target.removeDurably(PROGRESS_FILE)
  await target.removeDurably(JOURNAL_FILE)
}

/**
 * A running source went on writing WAL while we copied: the segment its WAL end was in when
 * planned was copied as it was then, and later ones were left out as not yet written. Both are
 * brought up to the end read now, so the rewound node reaches consistency from its own pg_wal.
 * Segments of the range that the source no longer has are reported: only an archive has them.
 */
async function catchUpWal(input: FinishInput, from: Lsn, end: SourceWalEnd): Promise<number> {
  const { source, target, segSize, emit } = input
  if (!source.running || end.lsn <= from) return 0
  const first = segmentOf(from, segSize)
  const last = segmentOf(end.lsn - 1n, segSize)
  const listed = await source.listWalFiles()
  const present = new Set<bigint>()
  let bytes = 0
  for (const file of listed) {
    const parsed = parseSegmentFileName(file.path.slice('pg_wal/'.length), segSize)
    if (parsed === null || parsed.segno < first || parsed.segno > last) continue
    present.add(parsed.segno)
    if (parsed.segno === first) {
      // Copied up to at least `from` already: only the rest, from its page on.
      const fromPage = Number(from - segmentStart(first, segSize)) & ~8191
      await target.ensureFile(file.path)
      source.queueRange(file.path, fromPage, segSize - fromPage)
      bytes += segSize - fromPage
    } else {
      await target.truncateForCopy(file.path)
      source.queueFile(file.path, segSize)
      bytes += segSize
    }
  }
  if (bytes > 0) {
    emit({ type: 'debug', message: `fetching ${bytes} bytes of WAL the source wrote during the copy (up to ${formatLsn(end.lsn)})` })
    const sink: ChunkSink = {
      chunk: (path, offset, data) => target.writeAt(path, offset, data),
      missing: async (path) => emit({ type: 'debug', message: `WAL file "${path}" was removed from the source during the copy` }),
    }
    try {
      await source.flush(sink)
    } finally {
      await target.closeAll()
    }
    await faultPoint('wal-catchup')
  }
  const missing: string[] = []
  for (let segno = first + 1n; segno <= last; segno++) if (!present.has(segno)) missing.push(segmentFileName(end.tli, segno, segSize))
  if (missing.length > 0) {
    emit({
      type: 'warning',
      code: 'SOURCE_WAL_MISSING',
      message:
        `the source no longer has WAL segment ${missing[0]}${missing.length > 1 ? ` nor ${missing.length - 1} more after it` : ''}, written during the rewind ` +
        `(before its WAL end at ${formatLsn(end.lsn)}): the rewound server reaches a consistent state only if its restore_command can fetch them from an archive`,
    })
  }
  return bytes
}
