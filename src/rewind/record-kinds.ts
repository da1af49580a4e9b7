// How a rewind treats each WAL record (pg_rewind's extractPageInfo): records that create, drop or
// truncate whole files are settled by the file comparison and their payload is ignored; any
// other record flagged XLR_SPECIAL_REL_UPDATE changes files in a way a block map cannot follow,
// so it stops the rewind. Everything else only contributes its block references.

import type { WalRecord } from '../pg/wal/record.js'
import { RM } from '../pg/wal/rmgr.js'
import type { VersionProfile } from '../pg/versions.js'

export type RecordKind = 'checkpoint' | 'whole-file' | 'unknown-special' | 'blocks-only'

export function recordKind(record: WalRecord, profile: VersionProfile): RecordKind {
  const c = profile.codes
  const info = record.xl_info & ~c.XLR_INFO_MASK
  switch (record.xl_rmid) {
    case RM.XLOG:
      if (info === c.XLOG_CHECKPOINT_SHUTDOWN || info === c.XLOG_CHECKPOINT_ONLINE) return 'checkpoint'
      break
    case RM.SMGR:
      if (info === c.XLOG_SMGR_CREATE || info === c.XLOG_SMGR_TRUNCATE) return 'whole-file'
      break
    case RM.DBASE:
      if (info === c.XLOG_DBASE_CREATE_FILE_COPY || info === c.XLOG_DBASE_CREATE_WAL_LOG || info === c.XLOG_DBASE_DROP) return 'whole-file'
      break
    case RM.XACT: {
      // Dropped relations of a commit or abort: the files are missing on one side, and copied or removed.
      const op = record.xl_info & c.XLOG_XACT_OPMASK
      if (op === c.XLOG_XACT_COMMIT || op === c.XLOG_XACT_ABORT || op === c.XLOG_XACT_COMMIT_PREPARED || op === c.XLOG_XACT_ABORT_PREPARED)
        return 'whole-file'
      break
    }
  }
  return (record.xl_info & c.XLR_SPECIAL_REL_UPDATE) !== 0 ? 'unknown-special' : 'blocks-only'
}

export function isCheckpointRecord(record: WalRecord, profile: VersionProfile): boolean {
  return recordKind(record, profile) === 'checkpoint'
}

/**
 * CREATE DATABASE by copying the template's directory (STRATEGY FILE_COPY from 15; every CREATE
 * DATABASE before): its replay copies the template as it is on disk at that moment.
 */
export function isDatabaseFileCopy(record: WalRecord, profile: VersionProfile): boolean {
  const c = profile.codes
  return record.xl_rmid === RM.DBASE && (record.xl_info & ~c.XLR_INFO_MASK) === c.XLOG_DBASE_CREATE_FILE_COPY
}
