// The CheckPoint struct (catalog/pg_control.h): 88 bytes, both inside pg_control (checkPointCopy)
// and as the main data of checkpoint records. 17 put wal_level into what was padding at +20, so the
// size never changed. Padding bytes are not guaranteed to be zero and are never read.

import { RewindError } from '../errors.js'
import type { Lsn } from './lsn.js'
import type { VersionProfile } from './versions.js'

export const SIZE_OF_CHECKPOINT = 88

// CheckPoint field offsets, catalog/pg_control.h
const REDO = 0 /* XLogRecPtr */,
  THIS_TLI = 8 /* TimeLineID */,
  PREV_TLI = 12 /* TimeLineID */
const FULL_PAGE_WRITES = 16 /* bool */,
  WAL_LEVEL = 20 /* int, 17+ */,
  NEXT_XID = 24 /* FullTransactionId */
const NEXT_OID = 32,
  NEXT_MULTI = 36,
  NEXT_MULTI_OFFSET = 40,
  OLDEST_XID = 44,
  OLDEST_XID_DB = 48
const OLDEST_MULTI = 52,
  OLDEST_MULTI_DB = 56,
  TIME = 64 /* pg_time_t */,
  OLDEST_COMMIT_TS_XID = 72
const NEWEST_COMMIT_TS_XID = 76,
  OLDEST_ACTIVE_XID = 80

export interface CheckPoint {
  readonly redo: Lsn
  readonly ThisTimeLineID: number
  readonly PrevTimeLineID: number
  readonly fullPageWrites: boolean
  /** 17+ only. */
  readonly wal_level?: number
  /** FullTransactionId: epoch << 32 | xid. */
  readonly nextXid: bigint
  readonly nextOid: number
  readonly nextMulti: number
  readonly nextMultiOffset: number
  readonly oldestXid: number
  readonly oldestXidDB: number
  readonly oldestMulti: number
  readonly oldestMultiDB: number
  /** Seconds since the Unix epoch. */
  readonly time: number
  readonly oldestCommitTsXid: number
  readonly newestCommitTsXid: number
  readonly oldestActiveXid: number
}

/** Decodes a CheckPoint at `offset` of `buf`; the caller has checked that 88 bytes are there. */
export function decodeCheckPointAt(buf: Buffer, offset: number, profile: VersionProfile): CheckPoint {
  const cp: CheckPoint = {
    redo: buf.readBigUInt64LE(offset + REDO),
    ThisTimeLineID: buf.readUInt32LE(offset + THIS_TLI),
    PrevTimeLineID: buf.readUInt32LE(offset + PREV_TLI),
    fullPageWrites: buf[offset + FULL_PAGE_WRITES] !== 0,
    nextXid: buf.readBigUInt64LE(offset + NEXT_XID),
    nextOid: buf.readUInt32LE(offset + NEXT_OID),
    nextMulti: buf.readUInt32LE(offset + NEXT_MULTI),
    nextMultiOffset: buf.readUInt32LE(offset + NEXT_MULTI_OFFSET),
    oldestXid: buf.readUInt32LE(offset + OLDEST_XID),
    oldestXidDB: buf.readUInt32LE(offset + OLDEST_XID_DB),
    oldestMulti: buf.readUInt32LE(offset + OLDEST_MULTI),
    oldestMultiDB: buf.readUInt32LE(offset + OLDEST_MULTI_DB),
    time: Number(buf.readBigInt64LE(offset + TIME)),
    oldestCommitTsXid: buf.readUInt32LE(offset + OLDEST_COMMIT_TS_XID),
    newestCommitTsXid: buf.readUInt32LE(offset + NEWEST_COMMIT_TS_XID),
    oldestActiveXid: buf.readUInt32LE(offset + OLDEST_ACTIVE_XID),
  }
  if (!profile.control.checkpointHasWalLevel) return cp
  return { ...cp, wal_level: buf.readInt32LE(offset + WAL_LEVEL) }
}

/** The main data of an XLOG_CHECKPOINT_SHUTDOWN / _ONLINE record. */
export function decodeCheckpoint(mainData: Buffer, profile: VersionProfile): CheckPoint {
  if (mainData.length !== SIZE_OF_CHECKPOINT) {
    throw new RewindError('WAL_INVALID', `checkpoint record has ${mainData.length} bytes of data, expected ${SIZE_OF_CHECKPOINT}`)
  }
  return decodeCheckPointAt(mainData, 0, profile)
}
