// Where replay on the rewound node starts, and the source's changed blocks that this requires.
//
// From the source's checkpoint (the default): every block changed on either side since the fork is
// copied from the source, and replay starts at the redo point of the source's checkpoint as read
// before the copy, as a base backup of the source would. Only the WAL from that point on is copied
// and replayed. Blocks the source changes after that point are restored by replay from their
// full-page images (a running source has full_page_writes on, checked when connecting), so the
// source's WAL is read from the fork up to that point; a stopped source's, to its end.
//
// From the last common checkpoint (pg_rewind's algorithm, --replay-from=last-common-checkpoint, and
// the fallback when the source no longer has its WAL from the fork): only the target's changed
// blocks are copied, and every source record since the last common checkpoint is replayed. Its
// flaw: a CREATE DATABASE that copies a template's files, replayed on blocks the rewind already
// brought to the source's present, copies a template that never was.

import { RewindError } from '../errors.js'
import type { ControlFile } from '../pg/control.js'
import { formatLsn, type Lsn } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import type { VersionProfile } from '../pg/versions.js'
import type { Source, SourceWalEnd } from '../source/source.js'
import { BlockMap } from '../block-map.js'
import type { LastCheckpoint } from './diverge.js'
import type { Emit } from '../events.js'
import type { ReplayFrom } from './plan.js'
import { type SourceScanResult, scanSourceWal } from './scan.js'
import { openSourceWal } from './source-wal.js'

export interface ReplayChoice {
  readonly from: ReplayFrom
  readonly checkpoint: LastCheckpoint
  readonly reason: string
  /** Source WAL records read for changed blocks. */
  readonly sourceRecords: number
}

export interface ReplayStartInput {
  readonly wanted: ReplayFrom
  readonly source: Source
  readonly sourceControl: ControlFile
  readonly sourceHistory: readonly TimelineEntry[]
  readonly sourceWalEnd: SourceWalEnd
  readonly divergence: Lsn
  /**
   * Looks for the last common checkpoint, once, when pg_rewind's algorithm is wanted or forced;
   * null when the target's WAL no longer reaches it (blocks are then compared).
   */
  readonly commonCheckpoint: () => Promise<LastCheckpoint | null>
  /**
   * Blocks are compared with the source: the source's changed blocks need not be read from its WAL
   * (the comparison finds them), only a CREATE DATABASE after the replay start; and there is no
   * falling back to pg_rewind's algorithm.
   */
  readonly comparing?: boolean
  readonly profile: VersionProfile
  readonly relsegSize: number
  /** The target's changed blocks: the source's are added to them. */
  readonly changedBlocks: BlockMap
  /** The source's WAL scan begun beside the target's (beginSourceScan): used if it reads the range wanted. */
  readonly early?: EarlySourceScan | null
  readonly emit: Emit
}

/** A scan of the source's WAL begun before the replay start is chosen, for the range it will likely want. */
export interface EarlySourceScan {
  readonly from: Lsn
  readonly end: Lsn
  /** What it found, apart from the target's blocks until it is used. */
  readonly blocks: BlockMap
  readonly result: Promise<SourceScanResult>
  /** Ends the scan if it still reads (its result is then not used) and waits until it has let go of the source. */
  stop(): Promise<void>
}

/** The source's checkpoint as pg_control tells it: where a base backup taken now would start replay. */
export function sourceCheckpointOf(control: ControlFile): LastCheckpoint {
  return { lsn: control.checkPoint, redo: control.checkPointCopy.redo, tli: control.checkPointCopy.ThisTimeLineID }
}

/**
 * pg_rewind's replay start: the last common checkpoint. If the source is a standby that has
 * replayed that checkpoint but not yet made the matching restartpoint, its files may be older
 * than it: start from the source's own redo point then (its control file as read before copying).
 */
export function commonCheckpointStart(checkpoint: LastCheckpoint, sourceBefore: ControlFile): LastCheckpoint {
  if (sourceBefore.checkPointCopy.redo < checkpoint.redo) {
    return { lsn: sourceBefore.checkPoint, redo: sourceBefore.checkPointCopy.redo, tli: sourceBefore.checkPointCopy.ThisTimeLineID }
  }
  return checkpoint
}

/** pg_rewind's algorithm was needed, and the target's WAL no longer reaches its last common checkpoint. */
export class NoCommonCheckpointError extends Error {}

export async function chooseReplayStart(input: ReplayStartInput): Promise<ReplayChoice> {
  const { source, sourceControl, emit } = input
  const fromCommon = async (reason: string): Promise<ReplayChoice> => {
    const common = await input.commonCheckpoint()
    if (common === null) throw new NoCommonCheckpointError(`no last common checkpoint to replay from (${reason})`)
    return { from: 'last-common-checkpoint', checkpoint: commonCheckpointStart(common, sourceControl), reason, sourceRecords: 0 }
  }
  if (input.wanted === 'last-common-checkpoint') return fromCommon('asked for (--replay-from=last-common-checkpoint)')

  const start = sourceCheckpointOf(sourceControl)
  const { from, end } = sourceScanRange(input)
  emit({ type: 'step', message: `reading WAL in source from ${formatLsn(from)} to ${formatLsn(end)}` })
  const early = input.early?.from === from && input.early.end === end ? input.early : null
  if (early === null) await input.early?.stop()
  try {
    const scanned = early !== null ? await fromEarly(early, input.changedBlocks) : await scanInto(input, from, end, input.changedBlocks)
    const copyAfterStart = scanned.databaseFileCopies.find((lsn) => lsn >= start.redo)
    if (copyAfterStart !== undefined) throw databaseCopiedAfter(copyAfterStart, start, source.description)
    const what =
      input.comparing === true
        ? "blocks that differ from the source's are copied"
        : 'blocks changed on either side since the fork are copied'
    return {
      from: 'source-checkpoint',
      checkpoint: start,
      sourceRecords: scanned.records,
      reason: `${what}; replay starts at the source's checkpoint (redo ${formatLsn(start.redo)})`,
    }
  } catch (err) {
    if (!(err instanceof RewindError) || err.code !== 'WAL_MISSING' || input.comparing === true) throw err
    const segment = err.info.segment ?? err.info.path ?? 'a segment'
    emit({
      type: 'warning',
      code: 'SOURCE_WAL_RECYCLED',
      message:
        `the source no longer has its WAL from the fork (${segment}): ` +
        "replaying from the last common checkpoint instead (pg_rewind's algorithm), which needs the rewound node to get every source record since then",
    })
    return await fromCommon(`the source no longer has its WAL from the fork (${segment})`)
  }
}

/**
 * The range of the source's WAL read for its changed blocks, replaying from its checkpoint: from
 * the fork (from the checkpoint's redo point when blocks are compared or when that point is older
 * than the fork) to that redo point for a running source, to its WAL end for a stopped one. A
 * database made by copying files after the replay start would replay as a copy of the template as
 * the rewind leaves it: found in the WAL read here (a stopped source), or at the end of the copy
 * (a running one: finish.ts).
 */
export function sourceScanRange(input: Pick<ReplayStartInput, 'source' | 'sourceControl' | 'sourceWalEnd' | 'divergence' | 'comparing'>): {
  from: Lsn
  end: Lsn
} {
  const redo = sourceCheckpointOf(input.sourceControl).redo
  const from = input.comparing === true || redo < input.divergence ? redo : input.divergence
  const end = input.source.running ? redo : input.sourceWalEnd.lsn > redo ? input.sourceWalEnd.lsn : redo
  return { from, end }
}

type SourceScanInput = Pick<
  ReplayStartInput,
  'source' | 'sourceControl' | 'sourceHistory' | 'sourceWalEnd' | 'divergence' | 'comparing' | 'profile' | 'relsegSize'
>

/**
 * Begins reading the source's WAL for the range chooseReplayStart will want, unless the range is
 * empty, so that a server's side of it (reading, sending) overlaps the reading of the target's WAL.
 * Its records are decoded in this thread between the target's; nothing else may use the source
 * until it is used or stopped.
 */
export function beginSourceScan(input: SourceScanInput): EarlySourceScan | null {
  const { from, end } = sourceScanRange(input)
  if (end <= from) return null
  const blocks = new BlockMap()
  let stopRequested = false
  const result = scanInto(input, from, end, blocks, () => stopRequested)
  result.catch(() => {}) // never unhandled: chooseReplayStart or stop() reads it
  return {
    from,
    end,
    blocks,
    result,
    stop: async () => {
      stopRequested = true
      await result.catch(() => {})
    },
  }
}

/** The source's records in [from, end) read through a reader of its own, their blocks added to `into`. */
async function scanInto(input: SourceScanInput, from: Lsn, end: Lsn, into: BlockMap, stopped?: () => boolean): Promise<SourceScanResult> {
  const wal = openSourceWal(input.source, input.sourceControl, input.sourceHistory)
  try {
    return await scanSourceWal(wal.reader, from, end, input.profile, input.relsegSize, into, stopped)
  } finally {
    await wal.close()
  }
}

async function fromEarly(early: EarlySourceScan, into: BlockMap): Promise<SourceScanResult> {
  const scanned = await early.result
  into.addAll(early.blocks)
  return scanned
}

export function databaseCopiedAfter(lsn: Lsn, start: LastCheckpoint, sourceDescription: string): RewindError {
  return new RewindError(
    'SOURCE_DATABASE_COPY',
    `the source created a database by copying files at ${formatLsn(lsn)}, after its checkpoint at ${formatLsn(start.lsn)} where replay would start`,
    {
      lsn: formatLsn(lsn),
      detail: `Replaying that CREATE DATABASE on the rewound node would copy the template database as the rewind leaves it, not as it was then on ${sourceDescription}.`,
      hint: 'Run CHECKPOINT on the source (on a standby it makes a restartpoint), then run the same command again.',
    },
  )
}
