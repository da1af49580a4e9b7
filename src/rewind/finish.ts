// The last writes of a rewind, in pg_rewind's order: backup_label (where replay starts), the new
// pg_control (how far replay must go before the node is consistent), then, when asked, the
// standby settings. Until pg_control is written the target still looks like its old self.

import { formatRewindBackupLabel } from '../pg/backup-label.js'
import { DBState, updateControlFile, type ControlFile } from '../pg/control.js'
import type { SourceWalEnd } from '../source/source.js'
import type { LastCheckpoint } from './diverge.js'
import type { TargetDir } from './target-dir.js'

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

export async function writeControlFile(target: TargetDir, image: Buffer): Promise<void> {
  await target.writeFile('global/pg_control', image)
}

/** Quotes a value for postgresql.conf. */
export function quoteConfValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

/** standby.signal plus primary_conninfo appended to postgresql.auto.conf, as pg_rewind -R does. */
export async function writeRecoveryConfig(target: TargetDir, primaryConninfo: string): Promise<void> {
  await target.appendFile('postgresql.auto.conf',
    `# Added by walrewind (pg_rewind --write-recovery-conf)\nprimary_conninfo = ${quoteConfValue(primaryConninfo)}\n`)
  await target.writeFile('standby.signal', '')
}

