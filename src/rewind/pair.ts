// The last common checkpoint of a pair, read from a stopped target's WAL: what `timelines` shows
// without running a rewind.

import path from 'node:path'
import type { ControlFile } from '../pg/control.js'
import type { Lsn } from '../pg/lsn.js'
import { WalReader } from '../pg/wal/reader.js'
import { findLastCommonCheckpoint, type LastCheckpoint } from './diverge.js'
import type { NodeState } from './timeline-graph.js'
import { timelineChooser, WalDirectory } from './wal-source.js'

export async function findLastCommonCheckpointOf(targetDir: string, target: NodeState & { control: ControlFile }, divergence: Lsn): Promise<LastCheckpoint> {
  const control = target.control
  const segSize = control.xlog_seg_size
  const tliOf = timelineChooser([...target.history], segSize)
  const dir = new WalDirectory({ dir: path.join(targetDir, 'pg_wal'), segSize, timelineOf: tliOf })
  try {
    const reader = new WalReader({ profile: control.profile, segSize, blockSize: control.blcksz, systemIdentifier: control.system_identifier, source: dir })
    return await findLastCommonCheckpoint(reader, divergence, control.profile, segSize, tliOf)
  } finally {
    await dir.close()
  }
}
