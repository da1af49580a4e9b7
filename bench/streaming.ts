// Time to streaming (issue 13): from the start of the rewind (from the running source, with -R)
// until the rewound node, started as a standby of that source, is consistent (accepts read-only
// connections) and streaming (pg_is_in_recovery() and pg_stat_wal_receiver.status = 'streaming'),
// and how much WAL it replayed to get consistent: from the backup_label's START WAL LOCATION (the
// redo point recovery starts from) to the replay LSN when the first connection was accepted.

import fs from 'node:fs'
import path from 'node:path'
import type { Kit, Node } from '../test/kit/index.js'
import { parseLsn } from '../test/kit/index.js'
import { timedRun, type TimedRun } from './measure.js'
import { PG15 } from './shapes.js'
import { appendNodeSettings } from './store.js'
import type { Settings } from '../test/kit/conf.js'

const POLL_MS = 25

export interface StreamingRun extends TimedRun {
  /** Rewind alone (= wallSeconds). */
  rewindSeconds: number
  /** From the rewind's start until a read-only connection was accepted. */
  consistentSeconds: number
  /** From the rewind's start until status 'streaming' was seen. */
  streamingSeconds: number
  startLsn: string
  consistentLsn: string
  streamingLsn: string
  /** Bytes of WAL from startLsn to consistentLsn. */
  replayedToConsistent: number
  replayedToStreaming: number
}

/**
 * One run: the target and source are in place (the source running). Rewinds with `argv`, appends the
 * target's own settings (pg_rewind copied the source's postgresql.conf: its port), starts the target
 * without waiting, and polls it. The target is left running.
 */
export async function timeToStreaming(
  kit: Kit,
  target: Node,
  argv: string[],
  targetSettings: Settings,
  timeoutMs: number,
): Promise<StreamingRun | TimedRun> {
  const t0 = process.hrtime.bigint()
  const since = () => Number(process.hrtime.bigint() - t0) / 1e9
  const run = await timedRun(kit, argv)
  const rewindSeconds = since()
  if (run.code !== 0) return run
  appendNodeSettings(target, targetSettings)
  const startLsn = await recoveryStart(kit, target)
  const started = await target.pgCtl(['start', '-W', '-l', target.logFile])
  if (started.code !== 0) throw new Error(`pg_ctl start of the rewound ${target.name} failed:\n${started.stderr}\n${target.logTail()}`)
  let consistentSeconds = NaN,
    consistentLsn = ''
  let gone = 0
  for (;;) {
    if (since() - rewindSeconds > timeoutMs / 1000)
      throw new Error(`the rewound node was not streaming after ${timeoutMs / 1000} s\n${target.logTail()}`)
    let row: { r: boolean; lsn: string | null; s: string | null } | undefined
    try {
      row = (
        await target.query<{ r: boolean; lsn: string | null; s: string | null }>(
          'select pg_is_in_recovery() as r, pg_last_wal_replay_lsn()::text as lsn, (select status from pg_stat_wal_receiver) as s',
        )
      )[0]
    } catch {
      // not consistent yet (or not listening yet); a server that went away is a failure
      if (!(await target.isRunning()) && ++gone > 40) throw new Error(`the rewound ${target.name} stopped:\n${target.logTail()}`)
      await sleep(POLL_MS)
      continue
    }
    if (!row) throw new Error('no row')
    if (Number.isNaN(consistentSeconds)) {
      consistentSeconds = since()
      consistentLsn = row.lsn ?? ''
    }
    if (!row.r) throw new Error(`the rewound ${target.name} is not in recovery (no standby.signal?)`)
    if (row.s === 'streaming') {
      const streamingSeconds = since()
      const streamingLsn = row.lsn ?? ''
      return {
        ...run,
        rewindSeconds,
        consistentSeconds,
        streamingSeconds,
        startLsn,
        consistentLsn,
        streamingLsn,
        replayedToConsistent: distance(startLsn, consistentLsn),
        replayedToStreaming: distance(startLsn, streamingLsn),
      }
    }
    await sleep(POLL_MS)
  }
}

/** Where recovery of the rewound node starts: backup_label's START WAL LOCATION, else pg_control's redo. */
async function recoveryStart(kit: Kit, node: Node): Promise<string> {
  try {
    const label = fs.readFileSync(path.join(node.dataDir, 'backup_label'), 'utf8')
    const m = /^START WAL LOCATION: ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/m.exec(label)
    if (m) return m[1]!
  } catch {
    // no backup_label
  }
  const r = await kit.run(path.join(PG15, 'pg_controldata'), [node.dataDir])
  const m = /^Latest checkpoint's REDO location:\s+(\S+)/m.exec(r.stdout)
  if (!m) throw new Error(`no backup_label and no REDO location in pg_controldata of ${node.dataDir}:\n${r.stdout}${r.stderr}`)
  return m[1]!
}

function distance(from: string, to: string): number {
  if (!from || !to) return NaN
  return Number(parseLsn(to) - parseLsn(from))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
