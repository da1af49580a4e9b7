// The last common checkpoint of a pair, read from a stopped target's WAL: what `timelines` shows
// without running a rewind.

import type { ControlFile } from '../pg/control.js'
import type { Lsn } from '../pg/lsn.js'
import { findLastCommonCheckpoint, type LastCheckpoint } from './diverge.js'
import type { NodeState } from './timeline-graph.js'
import { openDataDirWal } from './wal-source.js'

export async function findLastCommonCheckpointOf(
  targetDir: string,
  target: NodeState & { control: ControlFile },
  divergence: Lsn,
): Promise<LastCheckpoint> {
  const { reader, dir, timelineOf } = openDataDirWal(targetDir, target.control, target.history)
  try {
    return await findLastCommonCheckpoint(reader, divergence, target.control.profile, target.control.xlog_seg_size, timelineOf)
  } finally {
    await dir.close()
  }
}
