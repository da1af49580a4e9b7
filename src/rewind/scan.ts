// Reads the target's WAL from the last common checkpoint to its end and records every block the
// target changed after the fork (main fork only: other forks are copied whole). Records that
// create, drop or truncate whole files are ignored here: comparing the file lists settles those.
// A record that changes relation files in a way this table does not know stops the rewind.

import { RewindError } from '../errors.js'
import { formatLsn, type Lsn } from '../pg/lsn.js'
import { relationFilePath } from '../pg/relpath.js'
import type { WalReader } from '../pg/wal/reader.js'
import type { WalRecord } from '../pg/wal/record.js'
import type { VersionProfile } from '../pg/versions.js'
import { BlockMap } from './block-map.js'
import { recordKind } from './record-kinds.js'
import { rmgrName } from '../pg/wal/rmgr.js'

export interface ScanResult {
  readonly changedBlocks: BlockMap
  readonly records: number
  readonly walBytes: number
}

const MAIN_FORKNUM = 0

/** What scanning one stretch of WAL found; a parallel scan joins several. */
export interface RangeScan {
  readonly changedBlocks: BlockMap
  readonly records: number
  /** The first record's start and xl_prev, the last record's start and end. */
  readonly first: { readonly lsn: Lsn; readonly xl_prev: Lsn } | null
  readonly lastLsn: Lsn | null
  readonly lastEnd: Lsn | null
  /** With `stopAt`: the record found there, which this range does not include. */
  readonly stopRecordPrev: Lsn | null
}

/**
 * Scans records from `start` (a record start): until one ends at or past `end`, or, with `stopAt`,
 * until the record that starts there (excluded). Throws at an invalid record before that.
 */
export async function scanRange(reader: WalReader, start: Lsn, limit: { end: Lsn } | { stopAt: Lsn }, profile: VersionProfile,
  relsegSize: number): Promise<RangeScan> {
  const changedBlocks = new BlockMap()
  const pathOf = relationPathCache(profile)
  let records = 0
  let first: RangeScan['first'] = null
  let lastLsn: Lsn | null = null
  let lastEnd: Lsn | null = null
  let stopRecordPrev: Lsn | null = null
  let failure: unknown = null
  const stopAt = 'stopAt' in limit ? limit.stopAt : null
  // A callback, not an async iterator: records that fit on their page are delivered without an
  // await in between, and the scan visits hundreds of thousands of them.
  const endOfWal = await reader.forEachRecord(start, (record) => {
    if (stopAt !== null && record.lsn >= stopAt) {
      if (record.lsn !== stopAt) failure = new RewindError('WAL_INVALID', `WAL record at ${formatLsn(record.lsn)} overlaps the record expected at ${formatLsn(stopAt)}`, { lsn: formatLsn(stopAt) })
      stopRecordPrev = record.xl_prev
      return false
    }
    records++
    first ??= { lsn: record.lsn, xl_prev: record.xl_prev }
    lastLsn = record.lsn
    lastEnd = record.endLsn
    try {
      checkRecord(record, profile)
    } catch (err) {
      failure = err
      return false
    }
    for (const block of record.blocks) {
      if (block.forkNumber !== MAIN_FORKNUM) continue
      const segno = Math.floor(block.blockNumber / relsegSize)
      changedBlocks.add(pathOf(block.spcOid, block.dbOid, block.relNumber, segno), block.blockNumber % relsegSize)
    }
    return 'end' in limit ? record.endLsn < limit.end : true
  })
  if (failure !== null) throw failure
  if (endOfWal !== null) {
    throw new RewindError('WAL_INVALID', `could not read WAL record at ${formatLsn(endOfWal.lsn)}: ${endOfWal.message}`,
      { lsn: formatLsn(endOfWal.lsn) })
  }
  return { changedBlocks, records, first, lastLsn, lastEnd, stopRecordPrev }
}

/** Scans [start, end) of the target's WAL in one pass; `end` must be where a record ends. */
export async function scanTargetWal(reader: WalReader, start: Lsn, end: Lsn, profile: VersionProfile, relsegSize: number): Promise<ScanResult> {
  const scan = await scanRange(reader, start, { end }, profile, relsegSize)
  checkEndPoint(scan.lastEnd, start, end)
  return { changedBlocks: scan.changedBlocks, records: scan.records, walBytes: Number(end - start) }
}

/** The scan must stop exactly where the target's WAL ends (pg_rewind checks the same). */
export function checkEndPoint(lastEnd: Lsn | null, start: Lsn, end: Lsn): void {
  if (lastEnd !== end) {
    throw new RewindError('WAL_INVALID', `end pointer ${formatLsn(lastEnd ?? start)} is not a valid end point; expected ${formatLsn(end)}`,
      { lsn: formatLsn(lastEnd ?? start) })
  }
}

function checkRecord(record: WalRecord, profile: VersionProfile): void {
  const kind = recordKind(record, profile)
  if (kind === 'unknown-special') {
    throw new RewindError('WAL_UNSUPPORTED_RECORD',
      `WAL record modifies a relation, but record type is not recognized: lsn: ${formatLsn(record.lsn)}, rmid: ${record.xl_rmid}, ` +
      `rmgr: ${rmgrName(record.xl_rmid)}, info: ${record.xl_info.toString(16).toUpperCase().padStart(2, '0')}`,
      { lsn: formatLsn(record.lsn) })
  }
}

/** Relation paths are built once per relation, not once per block reference. */
function relationPathCache(profile: VersionProfile): (spc: number, db: number, rel: number, segno: number) => string {
  const cache = new Map<string, string>()
  return (spc, db, rel, segno) => {
    const key = `${spc}/${db}/${rel}`
    let base = cache.get(key)
    if (base === undefined) {
      base = relationFilePath({ spcOid: spc, dbOid: db, relNumber: rel }, MAIN_FORKNUM, 0, profile)
      cache.set(key, base)
    }
    return segno === 0 ? base : `${base}.${segno}`
  }
}
