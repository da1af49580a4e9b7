// Where the two histories part: the most recent point their timeline histories share (anywhere
// in the graph, not only "source is a child of target"), whether the target wrote anything past
// it, and the last checkpoint before it, found by walking the target's WAL backwards.

import { RewindError } from '../errors.js'
import type { ControlFile } from '../pg/control.js'
import { formatLsn, historyFileName, segmentFileName, segmentOf, type Lsn } from '../pg/lsn.js'
import { findCommonAncestor, parseTimelineHistory, timelineOneHistory, type TimelineEntry } from '../pg/timeline.js'
import type { WalReader } from '../pg/wal/reader.js'
import type { WalRecord } from '../pg/wal/record.js'
import type { VersionProfile } from '../pg/versions.js'
import { decodeCheckpoint } from '../pg/checkpoint.js'
import { isCheckpointRecord } from './record-kinds.js'

/** The timeline a cluster is on: a just-promoted server has it in minRecoveryPointTLI only. */
export function currentTimeline(control: ControlFile): number {
  return Math.max(control.checkPointCopy.ThisTimeLineID, control.minRecoveryPointTLI)
}

/** A history for `tli`, from its history file's text (none for timeline 1). */
export function historyOf(tli: number, historyText: string | null, where: string): TimelineEntry[] {
  if (tli === 1) return timelineOneHistory()
  if (historyText === null) {
    throw new RewindError(
      'TIMELINE_HISTORY_INVALID',
      `could not open file "${where}/pg_wal/${historyFileName(tli)}": No such file or directory`,
      { path: `pg_wal/${historyFileName(tli)}` },
    )
  }
  return parseTimelineHistory(historyText, tli)
}

export type Divergence =
  | { readonly kind: 'same-timeline'; readonly tli: number }
  | { readonly kind: 'no-rewind'; readonly lsn: Lsn; readonly tli: number; readonly targetWalEnd: Lsn }
  | { readonly kind: 'rewind'; readonly lsn: Lsn; readonly tli: number; readonly targetWalEnd: Lsn; readonly timelineIndex: number }

/**
 * Compares the histories and the end of the target's WAL.
 * NOTE: `readTargetRecord` reads the target's WAL following the target's history.
 */
export async function findDivergence(opts: {
  source: ControlFile
  target: ControlFile
  sourceHistory: TimelineEntry[]
  targetHistory: TimelineEntry[]
  readTargetRecord: (lsn: Lsn) => Promise<WalRecord>
}): Promise<Divergence> {
  const sourceTli = currentTimeline(opts.source)
  const targetTli = currentTimeline(opts.target)
  const common = findCommonAncestor(opts.sourceHistory, opts.targetHistory)
  // pg_rewind stops at equal timeline numbers. Two nodes promoted independently can carry the same
  // number with different histories, though; only identical histories mean the same timeline.
  if (sourceTli === targetTli && (common === null || common.lsn === null)) return { kind: 'same-timeline', tli: targetTli }
  if (common === null) {
    throw new RewindError('NO_COMMON_ANCESTOR', "could not find common ancestor of the source and target cluster's timelines")
  }
  // Different timelines with identical histories cannot both be current; treat the open end as the
  // target's own end so the WAL comparison below decides.
  const divergenceLsn = common.lsn ?? 0xffffffffffffffffn
  const tli = opts.targetHistory[common.index]!.tli

  // The target's WAL ends at its last (shutdown) checkpoint, or at minRecoveryPoint if it was a
  // standby that had received more (pg_rewind's TAP 008).
  const checkpointRecord = await opts.readTargetRecord(opts.target.checkPoint)
  const checkpointEnd = checkpointRecord.endLsn
  const targetWalEnd = opts.target.minRecoveryPoint > checkpointEnd ? opts.target.minRecoveryPoint : checkpointEnd

  if (targetWalEnd > divergenceLsn) return { kind: 'rewind', lsn: divergenceLsn, tli, targetWalEnd, timelineIndex: common.index }
  return { kind: 'no-rewind', lsn: divergenceLsn, tli, targetWalEnd }
}

export interface LastCheckpoint {
  readonly lsn: Lsn
  readonly redo: Lsn
  readonly tli: number
}

/**
 * Walks back from the divergence point along xl_prev to the last checkpoint record before it.
 */
export async function findLastCommonCheckpoint(
  reader: WalReader,
  divergence: Lsn,
  profile: VersionProfile,
  segSize: number,
  tliOf: (segno: bigint) => number,
): Promise<LastCheckpoint> {
  let found: LastCheckpoint | null = null
  const stopped = await reader.walkBack(divergence, (record) => {
    if (!isCheckpointRecord(record, profile) || record.lsn >= divergence) return true
    const checkpoint = decodeCheckpoint(record.mainData, profile)
    found = { lsn: record.lsn, redo: checkpoint.redo, tli: checkpoint.ThisTimeLineID }
    return false
  })
  if (stopped !== null && 'badPrev' in stopped) {
    throw new RewindError('WAL_INVALID', `could not find previous WAL record at ${formatLsn(stopped.badPrev)}: invalid xl_prev`, {
      lsn: formatLsn(stopped.badPrev),
    })
  }
  if (stopped !== null) {
    const segno = segmentOf(stopped.lsn, segSize)
    throw new RewindError('WAL_INVALID', `could not find previous WAL record at ${formatLsn(stopped.lsn)}: ${stopped.end.message}`, {
      lsn: formatLsn(stopped.lsn),
      segment: segmentFileName(tliOf(segno), segno, segSize),
    })
  }
  return found!
}
