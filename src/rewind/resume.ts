// What makes an interrupted rewind resumable. Before the first write, the facts only the target's
// own WAL could tell (where it forked, the last common checkpoint, every block it changed since,
// the WAL it needs kept) are saved in the target as walrewind.resume. Copying from the source can
// overwrite the target's WAL, so a second run after a failure cannot read them again; it reads
// them here instead, plans anew against the source as it is now, and finishes the job.

import fs from 'node:fs/promises'
import path from 'node:path'
import { formatLsn, parseLsn, type Lsn } from '../pg/lsn.js'
import type { ControlFile } from '../pg/control.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { BlockMap } from './block-map.js'
import type { LastCheckpoint } from './diverge.js'

export const RESUME_FILE = 'walrewind.resume'

export interface ResumeState {
  readonly startedAt: string
  readonly divergence: { readonly lsn: Lsn; readonly tli: number }
  readonly checkpoint: LastCheckpoint
  readonly targetHistory: readonly TimelineEntry[]
  readonly keepWal: ReadonlySet<string>
  readonly changedBlocks: BlockMap
}

interface ResumeFile {
  formatVersion: 1
  systemIdentifier: string
  /** The target's checkPoint when the rewind began: it stays so until pg_control is written. */
  targetCheckPoint: string
  startedAt: string
  divergence: { lsn: string; tli: number }
  checkpoint: { lsn: string; redo: string; tli: number }
  targetHistory: Array<{ tli: number; begin: string; end: string | null }>
  keepWal: string[]
  changedBlocks: Record<string, Array<[number, number]>>
}

export function encodeResumeState(state: ResumeState, target: ControlFile): string {
  const blocks: Record<string, Array<[number, number]>> = {}
  for (const p of state.changedBlocks.paths()) blocks[p] = state.changedBlocks.ranges(p).map(([s, c]) => [s, c])
  const file: ResumeFile = {
    formatVersion: 1,
    systemIdentifier: target.system_identifier.toString(),
    targetCheckPoint: formatLsn(target.checkPoint),
    startedAt: state.startedAt,
    divergence: { lsn: formatLsn(state.divergence.lsn), tli: state.divergence.tli },
    checkpoint: { lsn: formatLsn(state.checkpoint.lsn), redo: formatLsn(state.checkpoint.redo), tli: state.checkpoint.tli },
    targetHistory: state.targetHistory.map((e) => ({ tli: e.tli, begin: formatLsn(e.begin), end: e.end === null ? null : formatLsn(e.end) })),
    keepWal: [...state.keepWal],
    changedBlocks: blocks,
  }
  return JSON.stringify(file) + '\n'
}

/**
 * The saved state of an interrupted rewind of this target, or null. A file that does not match
 * the target as it is now (another cluster, or the target ran since) is reported as 'stale'.
 */
export async function readResumeState(targetDir: string, target: ControlFile): Promise<ResumeState | 'stale' | null> {
  let text: string
  try {
    text = await fs.readFile(path.join(targetDir, RESUME_FILE), 'utf8')
  } catch {
    return null
  }
  let file: ResumeFile
  try {
    file = JSON.parse(text) as ResumeFile
  } catch {
    return 'stale'
  }
  if (file.formatVersion !== 1 || file.systemIdentifier !== target.system_identifier.toString() ||
      file.targetCheckPoint !== formatLsn(target.checkPoint)) {
    return 'stale'
  }
  const changedBlocks = new BlockMap()
  for (const [p, ranges] of Object.entries(file.changedBlocks)) {
    for (const [start, count] of ranges) for (let b = start; b < start + count; b++) changedBlocks.add(p, b)
  }
  return {
    startedAt: file.startedAt,
    divergence: { lsn: parseLsn(file.divergence.lsn), tli: file.divergence.tli },
    checkpoint: { lsn: parseLsn(file.checkpoint.lsn), redo: parseLsn(file.checkpoint.redo), tli: file.checkpoint.tli },
    targetHistory: file.targetHistory.map((e) => ({ tli: e.tli, begin: parseLsn(e.begin), end: e.end === null ? null : parseLsn(e.end) })),
    keepWal: new Set(file.keepWal),
    changedBlocks,
  }
}
