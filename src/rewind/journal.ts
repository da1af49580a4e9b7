// The journal of a rewind in progress: what makes an interrupted rewind resumable, and what tells
// a rerun that it must resume. Two files in the target data directory:
//
// - walrewind.resume, written once and durably before the first other write: the whole plan (every
//   action with its block ranges and the target's original sizes), the fork facts only the
//   target's WAL could tell (the copy may overwrite that WAL), the target's own pg_control (which
//   is then taken off its path, so that PostgreSQL cannot start the half-rewound directory) and
//   the source's pg_control as read before copying (where replay starts).
// - walrewind.progress, appended to as the copy goes: the plan entries whose writes are durable.
//   A torn last line (the process died while appending) is ignored: those entries are redone.
//
// A rerun finishes that plan, redoing every entry whose completion was not recorded. Every action
// is safe to redo (see apply.ts), so an entry recorded late is only work repeated, never lost.

import fs from 'node:fs/promises'
import path from 'node:path'
import { RewindError } from '../errors.js'
import { decodeControlFile, type ControlFile } from '../pg/control.js'
import { formatLsn, parseLsn, type Lsn } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { errText, isNotFound } from '../source/walk.js'
import type { LastCheckpoint } from './diverge.js'
import type { Plan } from './plan.js'
import type { TargetDir } from './target-dir.js'

export const JOURNAL_FILE = 'walrewind.resume'
export const PROGRESS_FILE = 'walrewind.progress'
const FORMAT_VERSION = 2

export interface Journal {
  readonly startedAt: string
  /** The target's pg_control as it was before the rewind: off its path until the rewind ends. */
  readonly targetControl: Buffer
  /** The source's pg_control as read before copying: replay starts at its redo point at the latest. */
  readonly sourceControl: Buffer
  readonly targetHistory: readonly TimelineEntry[]
  readonly divergence: { readonly lsn: Lsn; readonly tli: number }
  readonly checkpoint: LastCheckpoint
  /** The source's WAL end the plan was made with: WAL segments past it were left to the catch-up. */
  readonly planWalEnd: Lsn
  readonly plan: Plan
}

interface JournalFile {
  formatVersion: number
  systemIdentifier: string
  startedAt: string
  targetControl: string
  sourceControl: string
  targetHistory: Array<{ tli: number; begin: string; end: string | null }>
  divergence: { lsn: string; tli: number }
  checkpoint: { lsn: string; redo: string; tli: number }
  planWalEnd: string
  plan: Plan
}

export function encodeJournal(journal: Journal): string {
  const file: JournalFile = {
    formatVersion: FORMAT_VERSION,
    systemIdentifier: decodeControlFile(journal.targetControl).system_identifier.toString(),
    startedAt: journal.startedAt,
    targetControl: journal.targetControl.toString('base64'),
    sourceControl: journal.sourceControl.toString('base64'),
    targetHistory: journal.targetHistory.map((e) => ({
      tli: e.tli,
      begin: formatLsn(e.begin),
      end: e.end === null ? null : formatLsn(e.end),
    })),
    divergence: { lsn: formatLsn(journal.divergence.lsn), tli: journal.divergence.tli },
    checkpoint: { lsn: formatLsn(journal.checkpoint.lsn), redo: formatLsn(journal.checkpoint.redo), tli: journal.checkpoint.tli },
    planWalEnd: formatLsn(journal.planWalEnd),
    plan: journal.plan,
  }
  return JSON.stringify(file) + '\n'
}

function corrupt(file: string, why: string): RewindError {
  return new RewindError('JOURNAL_INVALID', `rewind journal "${file}" is not usable: ${why}`, {
    path: file,
    detail: 'A rewind of this data directory was interrupted, and what it recorded cannot be read back.',
    hint: 'Restore the data directory from a base backup (or a new copy of the source).',
  })
}

export function decodeJournal(text: string, file = JOURNAL_FILE): Journal {
  let raw: JournalFile
  try {
    raw = JSON.parse(text) as JournalFile
  } catch {
    throw corrupt(file, 'it is not valid JSON')
  }
  if (raw === null || typeof raw !== 'object') throw corrupt(file, 'it is not a journal')
  if (raw.formatVersion !== FORMAT_VERSION) {
    throw corrupt(file, `it has format version ${String(raw.formatVersion)}, this walrewind reads version ${FORMAT_VERSION}`)
  }
  try {
    const targetControl = Buffer.from(raw.targetControl, 'base64')
    const sourceControl = Buffer.from(raw.sourceControl, 'base64')
    decodeControlFile(targetControl)
    decodeControlFile(sourceControl)
    if (!Array.isArray(raw.plan?.entries)) throw new Error('no plan')
    return {
      startedAt: String(raw.startedAt),
      targetControl,
      sourceControl,
      targetHistory: raw.targetHistory.map((e) => ({ tli: e.tli, begin: parseLsn(e.begin), end: e.end === null ? null : parseLsn(e.end) })),
      divergence: { lsn: parseLsn(raw.divergence.lsn), tli: raw.divergence.tli },
      checkpoint: { lsn: parseLsn(raw.checkpoint.lsn), redo: parseLsn(raw.checkpoint.redo), tli: raw.checkpoint.tli },
      planWalEnd: parseLsn(raw.planWalEnd),
      plan: raw.plan,
    }
  } catch (err) {
    throw corrupt(file, err instanceof Error ? err.message : String(err))
  }
}

/** The journal of an interrupted rewind of `targetDir`, or null if there is none. */
export async function readJournal(targetDir: string): Promise<Journal | null> {
  const file = path.join(targetDir, JOURNAL_FILE)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if (isNotFound(err)) return null
    throw new RewindError('TARGET_DIR', `could not read file "${file}": ${errText(err)}`, { path: file }, { cause: err })
  }
  return decodeJournal(text, file)
}

/** One line of walrewind.progress: the plan entries (by index) whose writes are durable. */
export function formatProgressLine(done: readonly number[]): string {
  return `done ${done.join(' ')}\n`
}

/** The line recorded, durably, right before the target's pg_control is taken off its path. */
const CONTROL_REMOVED_LINE = 'control-removed\n'

export interface Progress {
  /** Plan entries whose writes are durable. */
  readonly done: Set<number>
  /** Whether the target's pg_control may have been taken off its path (and data written since). */
  readonly controlRemoved: boolean
}

/** What walrewind.progress records; a line without its newline (torn by a crash) does not count. */
export function parseProgress(text: string, entryCount: number): Progress {
  const done = new Set<number>()
  let controlRemoved = false
  const lines = text.split('\n')
  lines.pop() // after the last newline: empty, or a torn line
  for (const line of lines) {
    if (`${line}\n` === CONTROL_REMOVED_LINE) controlRemoved = true
    const words = line.split(' ')
    if (words[0] !== 'done') continue
    for (const word of words.slice(1)) {
      const index = Number(word)
      if (Number.isInteger(index) && index >= 0 && index < entryCount && String(index) === word) done.add(index)
    }
  }
  return { done, controlRemoved }
}

export async function readProgress(targetDir: string, entryCount: number): Promise<Progress> {
  try {
    return parseProgress(await fs.readFile(path.join(targetDir, PROGRESS_FILE), 'utf8'), entryCount)
  } catch (err) {
    if (isNotFound(err)) return { done: new Set(), controlRemoved: false }
    throw new RewindError('TARGET_DIR', `could not read file "${path.join(targetDir, PROGRESS_FILE)}": ${errText(err)}`, {}, { cause: err })
  }
}

/** What a rerun finds: how far the interrupted rewind got, judged by the target's pg_control. */
export type JournalState =
  /** pg_control is off its path: the rewind was between its first and last write. */
  | 'in-progress'
  /** pg_control is still the target's own: the journal was written, nothing else that matters. */
  | 'not-started'
  /**
   * pg_control was never taken off its path, yet it changed: the target was started after the
   * journal was written and before anything else was. The journal no longer describes it.
   */
  | 'stale'
  /** Someone put a pg_control in place after the rewind had begun writing: unknown state. */
  | 'conflict'

export function journalState(journal: Journal, currentControl: Buffer | null, progress: Progress): JournalState {
  if (currentControl === null) return 'in-progress'
  if (currentControl.equals(journal.targetControl)) return 'not-started'
  return progress.controlRemoved ? 'conflict' : 'stale'
}

export function controlFileOf(journal: Journal): ControlFile {
  return decodeControlFile(journal.targetControl)
}

/** Records, durably, that the target's pg_control is about to be taken off its path. */
export async function recordControlRemoval(target: TargetDir): Promise<void> {
  await target.appendFile(PROGRESS_FILE, CONTROL_REMOVED_LINE, { durable: true })
}

/** Records plan entries as done; `durable` waits until the record is on disk. */
export async function recordProgress(target: TargetDir, indices: readonly number[], durable: boolean): Promise<void> {
  if (indices.length === 0) return
  await target.appendFile(PROGRESS_FILE, formatProgressLine(indices), { durable })
}
