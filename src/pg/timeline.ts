// Timeline history files (pg_wal/%08X.history) and the questions pg_rewind asks of them: the
// entries of one history, where two histories part, and which timeline holds an LSN. Parsing keeps
// the server's rules (readTimeLineHistory): blank and '#' lines skipped, text after the LSN ignored,
// TLIs strictly increasing and below the file's own TLI.

import { RewindError } from '../errors.js'
import { formatLsn, historyFileName, type Lsn } from './lsn.js'

export interface TimelineEntry {
  readonly tli: number
  readonly begin: Lsn
  /** Where the next timeline forked off; null for the newest entry (still open, +∞). */
  readonly end: Lsn | null
}

// sscanf("%u\t%X/%X"): the tab matches any run of white space, including none.
const TLI_FIELD = /^\s*(\d+)/
const LSN_FIELD = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})/

function historyError(tli: number, message: string, detail: string): RewindError {
  return new RewindError('TIMELINE_HISTORY_INVALID', message, { path: `pg_wal/${historyFileName(tli)}`, detail })
}

/**
 * Parses the history file of timeline `tli`. The result ends with the open entry of `tli` itself,
 * `{ tli, begin: last switchpoint, end: null }`.
 */
export function parseTimelineHistory(text: string, tli: number): TimelineEntry[] {
  const entries: TimelineEntry[] = []
  let prevEnd: Lsn = 0n
  for (const line of text.split('\n')) {
    const trimmed = line.trimStart()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    const tliMatch = TLI_FIELD.exec(line)
    if (tliMatch === null) throw historyError(tli, `syntax error in history file: ${line}`, 'Expected a numeric timeline ID.')
    const lsnMatch = LSN_FIELD.exec(line.slice(tliMatch[0].length))
    if (lsnMatch === null) {
      throw historyError(tli, `syntax error in history file: ${line}`, 'Expected a write-ahead log switchpoint location.')
    }
    const entryTli = Number(tliMatch[1])
    const last = entries[entries.length - 1]
    if (!Number.isSafeInteger(entryTli) || entryTli > 0xffffffff || (last !== undefined && entryTli <= last.tli)) {
      throw historyError(tli, `invalid data in history file: ${line}`, 'Timeline IDs must be in increasing sequence.')
    }
    const end = (BigInt(parseInt(lsnMatch[1]!, 16)) << 32n) | BigInt(parseInt(lsnMatch[2]!, 16))
    entries.push({ tli: entryTli, begin: prevEnd, end })
    prevEnd = end
  }
  const last = entries[entries.length - 1]
  if (last !== undefined && tli <= last.tli) {
    throw historyError(tli, 'invalid data in history file', "Timeline IDs must be less than child timeline's ID.")
  }
  entries.push({ tli, begin: prevEnd, end: null })
  return entries
}

/** The history of timeline 1, which has no file. */
export function timelineOneHistory(): TimelineEntry[] {
  return [{ tli: 1, begin: 0n, end: null }]
}

export interface CommonAncestor {
  /** Index of the last shared entry, valid in both histories. */
  readonly index: number
  readonly tli: number
  /** Where the histories diverge; null when neither has left that timeline (the same timeline). */
  readonly lsn: Lsn | null
}

/**
 * pg_rewind's findCommonAncestorTimeline: walk both histories from the start and stop at the first
 * entry whose TLI or begin differs. null when even the first entries differ.
 */
export function findCommonAncestor(a: readonly TimelineEntry[], b: readonly TimelineEntry[]): CommonAncestor | null {
  const n = Math.min(a.length, b.length)
  let i = 0
  // The begin check catches two nodes that used the same TLI number from different start points.
  while (i < n && a[i]!.tli === b[i]!.tli && a[i]!.begin === b[i]!.begin) i++
  if (i === 0) return null
  const ea = a[i - 1]!
  const eb = b[i - 1]!
  return { index: i - 1, tli: ea.tli, lsn: minEnd(ea.end, eb.end) }
}

function minEnd(x: Lsn | null, y: Lsn | null): Lsn | null {
  if (x === null) return y
  if (y === null) return x
  return x < y ? x : y
}

/** tliOfPointInHistory: the timeline whose [begin, end) holds `lsn`; a switchpoint belongs to the child. */
export function timelineForLsn(history: readonly TimelineEntry[], lsn: Lsn): number {
  for (const entry of history) {
    if (entry.begin <= lsn && (entry.end === null || lsn < entry.end)) return entry.tli
  }
  throw new RewindError('TIMELINE_HISTORY_INVALID', `timeline history does not cover WAL location ${formatLsn(lsn)}`)
}
