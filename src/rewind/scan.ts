// Reads WAL and records every block it changes (main fork only: other forks are copied whole).
// Records that create, drop or truncate whole files are ignored here: comparing the file lists
// settles those. A record that changes relation files in a way this table does not know stops the
// rewind. The target's WAL is read from the fork (from the last common checkpoint for pg_rewind's
// algorithm) to its end; the source's from the fork to where replay on the rewound node will start (blocks it changed later are restored
// by that replay from their full-page images), noting the databases created by a file copy.

import { RewindError } from '../errors.js'
import { formatLsn, type Lsn } from '../pg/lsn.js'
import { relationFilePath } from '../pg/relpath.js'
import type { WalReader } from '../pg/wal/reader.js'
import type { WalRecord } from '../pg/wal/record.js'
import type { VersionProfile } from '../pg/versions.js'
import { BlockMap } from '../block-map.js'
import { isDatabaseFileCopy, recordKind } from './record-kinds.js'
import { rmgrName } from '../pg/wal/rmgr.js'

export interface ScanResult {
  readonly changedBlocks: BlockMap
  readonly records: number
  readonly walBytes: number
}

const MAIN_FORKNUM = 0

/**
 * Scans the target's records from the first that starts at or after `from` (the fork, where a
 * record ended, or a checkpoint record) to `end`, which must be where a record ends.
 */
export async function scanTargetWal(
  reader: WalReader,
  from: Lsn,
  end: Lsn,
  profile: VersionProfile,
  relsegSize: number,
): Promise<ScanResult> {
  const start = await reader.findNextRecord(from)
  if (start === null || start >= end) {
    throw new RewindError('WAL_INVALID', `could not find a WAL record of the target between ${formatLsn(from)} and ${formatLsn(end)}`, {
      lsn: formatLsn(from),
    })
  }
  const changedBlocks = new BlockMap()
  const collect = blockCollector(changedBlocks, profile, relsegSize)
  let records = 0
  let last: WalRecord | null = null
  await readUntil(reader, start, end, (record) => {
    records++
    last = record
    collect(record)
    return true
  })
  // The reader stopped right after the last record (reused, but not refilled since), so its fields
  // are still that record's.
  const lastEnd = (last as WalRecord | null)?.endLsn ?? null
  if (lastEnd !== end) {
    throw new RewindError(
      'WAL_INVALID',
      `end pointer ${formatLsn(lastEnd ?? start)} is not a valid end point; expected ${formatLsn(end)}`,
      { lsn: formatLsn(lastEnd ?? start) },
    )
  }
  return { changedBlocks, records, walBytes: Number(end - start) }
}

export interface SourceScanResult {
  readonly records: number
  /** Where CREATE DATABASE copied a template's files (FILE_COPY strategy; every CREATE DATABASE before 15). */
  readonly databaseFileCopies: readonly Lsn[]
}

/**
 * Adds to `into` the blocks changed by the source's records that start in [from, end). `from` may
 * be anywhere (the fork is where a record ended); the records must reach `end`, or the WAL is
 * reported missing or invalid. `stopped` returning true ends the scan early (its result is then
 * not to be used).
 */
export async function scanSourceWal(
  reader: WalReader,
  from: Lsn,
  end: Lsn,
  profile: VersionProfile,
  relsegSize: number,
  into: BlockMap,
  stopped: () => boolean = () => false,
): Promise<SourceScanResult> {
  const databaseFileCopies: Lsn[] = []
  if (end <= from) return { records: 0, databaseFileCopies }
  const start = await reader.findNextRecord(from)
  if (start === null)
    throw new RewindError('WAL_INVALID', `could not find a WAL record at or after ${formatLsn(from)}`, { lsn: formatLsn(from) })
  if (start >= end) return { records: 0, databaseFileCopies }
  const collect = blockCollector(into, profile, relsegSize)
  let records = 0
  await readUntil(reader, start, end, (record) => {
    // The reader stops after the record that reaches `end`; one that starts there is not ours.
    if (record.lsn >= end || stopped()) return false
    records++
    collect(record)
    if (isDatabaseFileCopy(record, profile)) databaseFileCopies.push(record.lsn)
    return true
  })
  return { records, databaseFileCopies }
}

/**
 * Hands `visit` the records from `start` until the one that reaches `end` (false stops sooner);
 * what it throws, and a record that cannot be read, are thrown. A callback, not an async
 * iterator: records that fit on their page come without an await in between; `until` stops the
 * reader without an LSN object per record; one record object is refilled for every record.
 */
async function readUntil(reader: WalReader, start: Lsn, end: Lsn, visit: (record: WalRecord) => boolean): Promise<void> {
  let failure: unknown = null
  const endOfWal = await reader.forEachRecord(
    start,
    (record) => {
      try {
        return visit(record)
      } catch (err) {
        failure = err
        return false
      }
    },
    { until: end, reuseRecord: true },
  )
  if (failure !== null) throw failure
  if (endOfWal !== null) {
    throw new RewindError('WAL_INVALID', `could not read WAL record at ${formatLsn(endOfWal.lsn)}: ${endOfWal.message}`, {
      lsn: formatLsn(endOfWal.lsn),
    })
  }
}

/** Adds a record's main-fork block references to `map`; refuses a record that changes files in an unknown way. */
function blockCollector(map: BlockMap, profile: VersionProfile, relsegSize: number): (record: WalRecord) => void {
  const pathOf = relationPathCache(profile)
  return (record) => {
    checkRecord(record, profile)
    for (const block of record.blocks) {
      if (block.forkNumber !== MAIN_FORKNUM) continue
      const segno = Math.floor(block.blockNumber / relsegSize)
      map.add(pathOf(block.spcOid, block.dbOid, block.relNumber, segno), block.blockNumber % relsegSize)
    }
  }
}

function checkRecord(record: WalRecord, profile: VersionProfile): void {
  const kind = recordKind(record, profile)
  if (kind === 'unknown-special') {
    throw new RewindError(
      'WAL_UNSUPPORTED_RECORD',
      `WAL record modifies a relation, but record type is not recognized: lsn: ${formatLsn(record.lsn)}, rmid: ${record.xl_rmid}, ` +
        `rmgr: ${rmgrName(record.xl_rmid)}, info: ${record.xl_info.toString(16).toUpperCase().padStart(2, '0')}`,
      { lsn: formatLsn(record.lsn) },
    )
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
