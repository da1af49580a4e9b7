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
import { DBState, decodeControlFile, updateControlFile, type ControlFile } from '../pg/control.js'
import { formatLsn, parseSegmentFileName, segmentFileName, segmentOf, segmentStart } from '../pg/lsn.js'
import { RewindError } from '../errors.js'
import type { ChunkSink, Source, SourceWalEnd } from '../source/source.js'
import { isNotFound } from '../source/walk.js'
import type { LastCheckpoint } from './diverge.js'
import type { Emit } from './events.js'
import { faultPoint } from './fault.js'
import { AUTO_CONF, removeInterruptedMarker } from './interrupted-marker.js'
import { JOURNAL_FILE, PROGRESS_FILE, type Journal } from './journal.js'
import type { TargetDir } from './target-dir.js'

export const CONTROL_FILE = 'global/pg_control'
/** Where the new pg_control waits, complete and synced, until it is renamed into place. */
export const NEW_CONTROL_FILE = `${CONTROL_FILE}.walrewind-tmp`

/**
 * Where replay must start. If the source is a standby that has replayed the last common checkpoint
 * but not yet made the matching restartpoint, its files may be older than that checkpoint: start
 * from the source's own redo point then (the control file as read before copying).
 */
export function replayStart(checkpoint: LastCheckpoint, sourceBefore: ControlFile): LastCheckpoint {
  if (sourceBefore.checkPointCopy.redo < checkpoint.redo) {
    return { lsn: sourceBefore.checkPoint, redo: sourceBefore.checkPointCopy.redo, tli: sourceBefore.checkPointCopy.ThisTimeLineID }
  }
  return checkpoint
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
  // The source's control file is fetched after the copy, so minRecoveryPoint covers everything copied.
  const afterBytes = await source.readFile(CONTROL_FILE)
  const after = decodeControlFile(afterBytes)
  if (source.kind === 'local' && !afterBytes.equals(journal.sourceControl)) {
    throw new RewindError('SOURCE_CHANGED', 'source system was modified while pg_rewind was running')
  }
  const end = await source.walEnd(after)
  const catchUpBytes = await catchUpWal(input, end)

  emit({ type: 'step', message: 'creating backup label and updating control file' })
  const sourceBefore = decodeControlFile(journal.sourceControl)
  await writeBackupLabel(target, replayStart(journal.checkpoint, sourceBefore), input.segSize, new Date())
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
async function catchUpWal(input: FinishInput, end: SourceWalEnd): Promise<number> {
  const { source, target, journal, segSize, emit } = input
  if (source.kind !== 'server' || end.lsn <= journal.planWalEnd) return 0
  const first = segmentOf(journal.planWalEnd, segSize)
  const last = segmentOf(end.lsn - 1n, segSize)
  const listed = await source.listWalFiles()
  const present = new Set<bigint>()
  let bytes = 0
  for (const file of listed) {
    const parsed = parseSegmentFileName(file.path.slice('pg_wal/'.length), segSize)
    if (parsed === null || parsed.segno < first || parsed.segno > last) continue
    present.add(parsed.segno)
    if (parsed.segno === first) {
      // Copied during the plan up to at least planWalEnd: only the rest, from its page on.
      const from = Number(journal.planWalEnd - segmentStart(first, segSize)) & ~8191
      await target.ensureFile(file.path)
      source.queueRange(file.path, from, segSize - from)
      bytes += segSize - from
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
    emit({ type: 'warning', code: 'SOURCE_WAL_MISSING', message: `the source no longer has WAL segment ${missing[0]}${missing.length > 1 ? ` nor ${missing.length - 1} more after it` : ''}, written during the rewind ` +
      `(before its WAL end at ${formatLsn(end.lsn)}): the rewound server reaches a consistent state only if its restore_command can fetch them from an archive` })
  }
  return bytes
}
