// A second pass to a later source checkpoint. A running source created a database by copying
// files during the rewind, after the checkpoint where replay was to start: replaying that copy
// would copy the template as the rewind left it on the target. Replay must then start at a later
// checkpoint of the source, which is correct once everything the source changed between the two
// checkpoints is copied again, after the later one: the blocks its WAL changed in between (read
// from the target's pg_wal, where that WAL was copied), and files created, removed or resized
// since the first listing. The pass is planned and applied like the first one, without a journal
// of its own: an interrupted run finds the same CREATE DATABASE and makes it again.

import { listDataDirectory } from '../source/walk.js'
import { applyPlan } from './apply.js'
import { BlockMap } from '../block-map.js'
import type { LastCheckpoint } from './diverge.js'
import { scanCopiedSourceWal, type FinishInput } from './finish.js'
import { controlFileOf } from './journal.js'
import { plan as makePlan } from './plan.js'
import type { Lsn } from '../pg/lsn.js'

export interface RefreshInput extends FinishInput {
  readonly from: LastCheckpoint
  readonly to: LastCheckpoint
  readonly sourceWalEnd: Lsn
}

/** Copies again what the source changed between `from` and `to`; resolves to the bytes fetched. */
export async function refreshToCheckpoint(input: RefreshInput): Promise<number> {
  const { source, target, journal, emit } = input
  const control = controlFileOf(journal)
  const changedBlocks = new BlockMap()
  await scanCopiedSourceWal(input, input.from.redo, input.to.redo, changedBlocks)
  const [sourceFiles, targetFiles] = await Promise.all([source.listFiles(), listDataDirectory(target.abs('.'))])
  const again = makePlan({
    profile: control.profile,
    blockSize: control.blcksz,
    relsegSize: control.relseg_size,
    walSegSize: control.xlog_seg_size,
    sourceDescription: source.description,
    sourceKind: source.kind,
    targetDir: journal.plan.target,
    sourceFiles,
    targetFiles,
    changedBlocks,
    keepWal: new Set(),
    divergence: journal.divergence,
    checkpoint: journal.checkpoint,
    replay: {
      from: 'source-checkpoint',
      checkpoint: input.to,
      reason: 'a later source checkpoint, after a CREATE DATABASE that copied files',
    },
    sourceWalEnd: input.sourceWalEnd,
    sourceHistory: input.sourceHistory,
    // The target's configuration as it is now: the marker stays in it until finish removes it.
    keepTargetConfig: true,
    debug: (message) => emit({ type: 'debug', message }),
  })
  emit({
    type: 'info',
    message: `copying again ${Math.ceil(again.totals.fetchBytes / 1048576)} MB (${again.totals.blockCount} blocks, ${again.entries.length} files)`,
  })
  const applied = await applyPlan({
    plan: again,
    source,
    target,
    blockSize: control.blcksz,
    emit,
    done: new Set(),
    syncGroup: null,
    recordDone: async () => {},
  })
  return applied.fetchedBytes
}
