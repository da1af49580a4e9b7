// Reads where one node of the family stands (timeline, history, end of WAL), from a data directory
// or a running server, without writing anything: safe on running servers.

import fs from 'node:fs/promises'
import { RewindError } from '../errors.js'
import { dbStateName, decodeControlFile, type ControlFile } from '../pg/control.js'
import { historyFileName, type Lsn } from '../pg/lsn.js'
import { openSource } from '../source/open.js'
import type { Source } from '../source/source.js'
import { currentTimeline, historyOf } from './diverge.js'
import { isCleanlyShutDown } from './inspect.js'
import type { NodeState } from './timeline-graph.js'
import { openDataDirWal } from './wal-source.js'

export interface NodeSpec {
  readonly name: string
  readonly spec: string
}

/** A spec is a data directory if it exists as a directory, else a connection string. */
export async function describeNode(
  node: NodeSpec,
  env: NodeJS.ProcessEnv,
): Promise<NodeState & { control: ControlFile; kind: Source['kind'] }> {
  const isDir = await fs.stat(node.spec).then(
    (s) => s.isDirectory(),
    () => false,
  )
  const source = await openSource(isDir ? { kind: 'local', pgdata: node.spec } : { kind: 'server', conninfo: node.spec }, {
    env,
    emit: () => {},
  })
  try {
    const control = decodeControlFile(await source.readFile('global/pg_control'))
    const tli = currentTimeline(control)
    const historyText = tli === 1 ? null : ((await source.readFileIfExists(`pg_wal/${historyFileName(tli)}`))?.toString('utf8') ?? null)
    const history = historyOf(tli, historyText, source.description)
    let walEnd: Lsn
    let state = dbStateName(control.state)
    if (source.running) {
      walEnd = (await source.walEnd(control)).lsn
      state = control.state === 6 ? 'running primary' : 'running standby'
    } else if (isCleanlyShutDown(control)) {
      walEnd = await stoppedWalEnd(node.spec, control, history)
    } else {
      // Not shut down cleanly: its WAL may go further; the checkpoint is the least it has.
      walEnd = control.minRecoveryPoint > control.checkPoint ? control.minRecoveryPoint : control.checkPoint
    }
    return { name: node.name, tli, history, walEnd, state, control, kind: source.kind }
  } finally {
    await source.close()
  }
}

/** As pg_rewind: the end of the last checkpoint record, or minRecoveryPoint if that is later. */
async function stoppedWalEnd(dataDir: string, control: ControlFile, history: NodeState['history']): Promise<Lsn> {
  const { reader, dir } = openDataDirWal(dataDir, control, history)
  const result = await reader.readRecord(control.checkPoint).finally(() => dir.close())
  if ('end' in result)
    throw new RewindError('WAL_INVALID', `could not read WAL record at checkpoint of "${dataDir}": ${result.end.message}`, {
      path: dataDir,
    })
  return control.minRecoveryPoint > result.record.endLsn ? control.minRecoveryPoint : result.record.endLsn
}
