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

/** Scans [start, end) of the target's WAL; `end` must be where a record ends. */
export async function scanTargetWal(reader: WalReader, start: Lsn, end: Lsn, profile: VersionProfile, relsegSize: number): Promise<ScanResult> {
  const changedBlocks = new BlockMap()
  const pathOf = relationPathCache(profile)
  let records = 0
  let last: WalRecord | null = null
  let failure: unknown = null
  // A callback, not an async iterator: records that fit on their page are delivered without an
  // await in between; `until` stops the reader at the end without an LSN object per record; and
  // one record object is refilled for every record.
  const endOfWal = await reader.forEachRecord(start, (record) => {
    records++
    last = record
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
    return true
  }, { until: end, reuseRecord: true })
  if (failure !== null) throw failure
  if (endOfWal !== null) {
    throw new RewindError('WAL_INVALID', `could not read WAL record at ${formatLsn(endOfWal.lsn)}: ${endOfWal.message}`,
      { lsn: formatLsn(endOfWal.lsn) })
  }
  // The reader stopped right after the last record (reused, but not refilled since), so its fields
  // are still that record's.
  const lastEnd = (last as WalRecord | null)?.endLsn ?? null
  if (lastEnd !== end) {
    throw new RewindError('WAL_INVALID', `end pointer ${formatLsn(lastEnd ?? start)} is not a valid end point; expected ${formatLsn(end)}`,
      { lsn: formatLsn(lastEnd ?? start) })
  }
  return { changedBlocks, records, walBytes: Number(end - start) }
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

/**
 * Relation paths are built once per relation, not once per block reference; keyed by the
 * relfilenode number, so that no key string is made per block either.
 */
function relationPathCache(profile: VersionProfile): (spc: number, db: number, rel: number, segno: number) => string {
  const cache = new Map<number, { spc: number; db: number; base: string }>()
  return (spc, db, rel, segno) => {
    let entry = cache.get(rel)
    if (entry === undefined || entry.spc !== spc || entry.db !== db) {
      entry = { spc, db, base: relationFilePath({ spcOid: spc, dbOid: db, relNumber: rel }, MAIN_FORKNUM, 0, profile) }
      cache.set(rel, entry)
    }
    return segno === 0 ? entry.base : `${entry.base}.${segno}`
  }
}
