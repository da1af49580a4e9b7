// Fault injection for the interruption tests: named points on the write path where a test can
// have walrewind kill itself (SIGKILL, as a crash or an OOM kill would) or pause until told to go
// on. Off unless WALREWIND_FAULT is set (read at the first point passed); a point costs one
// comparison then.
//
//   WALREWIND_FAULT=POINT[:N][:pause]  the N-th pass (default 1) at POINT kills the process, or
//                                       with :pause creates $WALREWIND_FAULT_PAUSE_FILE and waits
//                                       until that file is removed
//   WALREWIND_FAULT_TRACE=FILE          appends the name of every point passed, a line each
//   WALREWIND_FAULT_GROUP_ENTRIES=N     plan entries per apply group (default 4096): a small plan
//                                       then has several groups, one synced while the next copies

import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export const FAULT_POINTS = [
  'marker-written',
  'journal-written',
  'control-removed',
  'action-create',
  'action-copy-truncated',
  'action-truncate',
  'action-remove',
  'chunk-copy',
  'chunk-copy-tail',
  'chunk-blocks',
  'file-copied',
  'group-flushed',
  'group-synced',
  'progress-recorded',
  'wal-catchup',
  'backup-label-written',
  'standby-settings-written',
  'marker-removed',
  'sync-file',
  'control-tmp-written',
  'journal-removed',
  'control-renamed',
] as const

export type FaultPoint = (typeof FAULT_POINTS)[number]

interface Armed {
  point: string
  nth: number
  pause: boolean
}

function armed(): Armed | null {
  const spec = process.env['WALREWIND_FAULT']
  if (!spec) return null
  const [point = '', nth, mode] = spec.split(':')
  if (!(FAULT_POINTS as readonly string[]).includes(point)) throw new Error(`WALREWIND_FAULT: unknown point "${point}"`)
  return { point, nth: nth ? Number(nth) : 1, pause: mode === 'pause' }
}

let settings: { fault: Armed | null; trace: string | null } | null = null
const passes = new Map<string, number>()

/** The group size a test asked for, or null. */
export function faultGroupEntries(): number | null {
  const n = Number(process.env['WALREWIND_FAULT_GROUP_ENTRIES'] ?? '')
  return Number.isSafeInteger(n) && n > 0 ? n : null
}

/** Marks a point on the write path; kills or pauses the process if a test armed it here. */
export async function faultPoint(point: FaultPoint): Promise<void> {
  settings ??= { fault: armed(), trace: process.env['WALREWIND_FAULT_TRACE'] || null }
  const { fault, trace } = settings
  if (fault === null && trace === null) return
  if (trace !== null) fs.appendFileSync(trace, `${point}\n`)
  if (fault === null || fault.point !== point) return
  const n = (passes.get(point) ?? 0) + 1
  passes.set(point, n)
  if (n !== fault.nth) return
  if (!fault.pause) process.kill(process.pid, 'SIGKILL')
  const file = process.env['WALREWIND_FAULT_PAUSE_FILE']
  if (!file) throw new Error('WALREWIND_FAULT=…:pause needs WALREWIND_FAULT_PAUSE_FILE')
  fs.writeFileSync(file, `${process.pid}\n`)
  while (fs.existsSync(file)) await sleep(20)
}
