// Resource managers: ids and names (access/rmgrlist.h), record type names as pg_waldump prints
// them (the per-major tables live in versions.ts), and decoders for the main data of the records a
// rewind looks at. Payload layouts are from each branch's headers; they are packed structs read at
// fixed offsets, except xact commit/abort whose optional parts follow one another unaligned.

import { RewindError } from '../../errors.js'
import { decodeCheckpoint, type CheckPoint } from '../checkpoint.js'
import type { RelFileLocator } from '../relpath.js'
import type { VersionProfile } from '../versions.js'

export { decodeCheckpoint, type CheckPoint }

/** Built-in resource manager ids, the same in 13–18. */
export const RM = Object.freeze({
  XLOG: 0,
  XACT: 1,
  SMGR: 2,
  CLOG: 3,
  DBASE: 4,
  TBLSPC: 5,
  MULTIXACT: 6,
  RELMAP: 7,
  STANDBY: 8,
  HEAP2: 9,
  HEAP: 10,
  BTREE: 11,
  HASH: 12,
  GIN: 13,
  GIST: 14,
  SEQ: 15,
  SPGIST: 16,
  BRIN: 17,
  COMMIT_TS: 18,
  REPLORIGIN: 19,
  GENERIC: 20,
  LOGICALMSG: 21,
} as const)

const RMGR_NAMES: readonly string[] = Object.freeze([
  'XLOG',
  'Transaction',
  'Storage',
  'CLOG',
  'Database',
  'Tablespace',
  'MultiXact',
  'RelMap',
  'Standby',
  'Heap2',
  'Heap',
  'Btree',
  'Hash',
  'Gin',
  'Gist',
  'Sequence',
  'SPGist',
  'BRIN',
  'CommitTs',
  'ReplicationOrigin',
  'Generic',
  'LogicalMessage',
])

/** The rmgr's name; custom ones (15+, ids 128–255) as pg_waldump names them when not loaded: custom###. */
export function rmgrName(rmid: number): string {
  return RMGR_NAMES[rmid] ?? `custom${String(rmid).padStart(3, '0')}`
}

/** The record type as pg_waldump's and pg_walinspect's rm_identify print it. */
export function recordTypeName(rmid: number, info: number, profile: VersionProfile): string {
  const name = profile.recordTypeNames[rmid]?.[info >> 4]
  return name ?? `UNKNOWN (${(info & ~profile.codes.XLR_INFO_MASK & 0xff).toString(16)})`
}

function expectLength(what: string, data: Buffer, ok: boolean): void {
  if (!ok) throw new RewindError('WAL_INVALID', `invalid ${what} record: ${data.length} bytes of data`)
}

function locatorAt(data: Buffer, off: number): RelFileLocator {
  return { spcOid: data.readUInt32LE(off), dbOid: data.readUInt32LE(off + 4), relNumber: data.readUInt32LE(off + 8) }
}

export interface EndOfRecovery {
  /** TimestampTz: microseconds since 2000-01-01 UTC. */
  readonly end_time: bigint
  readonly ThisTimeLineID: number
  readonly PrevTimeLineID: number
  /** 17+ only. */
  readonly wal_level?: number
}

/** xl_end_of_recovery (XLOG_END_OF_RECOVERY): 16 bytes, 24 from 17. */
export function decodeEndOfRecovery(mainData: Buffer, profile: VersionProfile): EndOfRecovery {
  expectLength('end-of-recovery', mainData, mainData.length === profile.endOfRecoverySize)
  const base = {
    end_time: mainData.readBigInt64LE(0),
    ThisTimeLineID: mainData.readUInt32LE(8),
    PrevTimeLineID: mainData.readUInt32LE(12),
  }
  return profile.endOfRecoverySize > 16 ? { ...base, wal_level: mainData.readInt32LE(16) } : base
}

export interface SmgrCreate extends RelFileLocator {
  readonly forkNum: number
}

/** xl_smgr_create (XLOG_SMGR_CREATE). */
export function decodeSmgrCreate(mainData: Buffer): SmgrCreate {
  expectLength('smgr create', mainData, mainData.length >= 16)
  return { ...locatorAt(mainData, 0), forkNum: mainData.readInt32LE(12) }
}

/** SMGR_TRUNCATE_* flags of xl_smgr_truncate. */
export const SMGR_TRUNCATE = Object.freeze({ HEAP: 0x0001, VM: 0x0002, FSM: 0x0004 } as const)

export interface SmgrTruncate extends RelFileLocator {
  readonly blkno: number
  readonly flags: number
}

/** xl_smgr_truncate (XLOG_SMGR_TRUNCATE): new length in blocks, relation, flags. */
export function decodeSmgrTruncate(mainData: Buffer): SmgrTruncate {
  expectLength('smgr truncate', mainData, mainData.length >= 20)
  return { blkno: mainData.readUInt32LE(0), ...locatorAt(mainData, 4), flags: mainData.readInt32LE(16) }
}

export interface DbaseCreateFileCopy {
  readonly db_id: number
  readonly tablespace_id: number
  readonly src_db_id: number
  readonly src_tablespace_id: number
}

/** xl_dbase_create_file_copy_rec (15+), xl_dbase_create_rec before: the directory copied whole. */
export function decodeDbaseCreateFileCopy(mainData: Buffer): DbaseCreateFileCopy {
  expectLength('database create', mainData, mainData.length >= 16)
  return {
    db_id: mainData.readUInt32LE(0),
    tablespace_id: mainData.readUInt32LE(4),
    src_db_id: mainData.readUInt32LE(8),
    src_tablespace_id: mainData.readUInt32LE(12),
  }
}

export interface DbaseCreateWalLog {
  readonly db_id: number
  readonly tablespace_id: number
}

/** xl_dbase_create_wal_log_rec (15+): only the new directory; its files come as ordinary records. */
export function decodeDbaseCreateWalLog(mainData: Buffer): DbaseCreateWalLog {
  expectLength('database create', mainData, mainData.length >= 8)
  return { db_id: mainData.readUInt32LE(0), tablespace_id: mainData.readUInt32LE(4) }
}

export interface DbaseDrop {
  readonly db_id: number
  readonly tablespace_ids: readonly number[]
}

/** xl_dbase_drop_rec: database, then a counted list of tablespaces. */
export function decodeDbaseDrop(mainData: Buffer): DbaseDrop {
  expectLength('database drop', mainData, mainData.length >= 8)
  const n = mainData.readInt32LE(4)
  expectLength('database drop', mainData, n >= 0 && mainData.length >= 8 + 4 * n)
  const tablespace_ids: number[] = []
  for (let i = 0; i < n; i++) tablespace_ids.push(mainData.readUInt32LE(8 + 4 * i))
  return { db_id: mainData.readUInt32LE(0), tablespace_ids }
}

export interface RelmapUpdate {
  readonly dbid: number
  readonly tsid: number
  readonly nbytes: number
  /** The new pg_filenode.map image. */
  readonly data: Buffer
}

/** xl_relmap_update (XLOG_RELMAP_UPDATE). */
export function decodeRelmapUpdate(mainData: Buffer): RelmapUpdate {
  expectLength('relmap update', mainData, mainData.length >= 12)
  const nbytes = mainData.readInt32LE(8)
  expectLength('relmap update', mainData, nbytes >= 0 && mainData.length >= 12 + nbytes)
  return { dbid: mainData.readUInt32LE(0), tsid: mainData.readUInt32LE(4), nbytes, data: mainData.subarray(12, 12 + nbytes) }
}

/** XACT_XINFO_* bits (access/xact.h); HAS_DROPPED_STATS is in the profile (15+). */
export const XACT_XINFO = Object.freeze({
  HAS_DBINFO: 1 << 0,
  HAS_SUBXACTS: 1 << 1,
  HAS_RELFILELOCATORS: 1 << 2,
  HAS_INVALS: 1 << 3,
  HAS_TWOPHASE: 1 << 4,
  HAS_ORIGIN: 1 << 5,
  HAS_AE_LOCKS: 1 << 6,
  HAS_GID: 1 << 7,
} as const)

const SIZE_OF_SHARED_INVALIDATION_MESSAGE = 16

export interface XactCommitAbort {
  readonly op: 'commit' | 'abort' | 'commit_prepared' | 'abort_prepared'
  /** TimestampTz: microseconds since 2000-01-01 UTC. */
  readonly xact_time: bigint
  readonly xinfo: number
  readonly dbId?: number
  readonly tsId?: number
  readonly subxacts: readonly number[]
  /** The relation files the transaction drops. */
  readonly rels: readonly RelFileLocator[]
  readonly nstats: number
  readonly nmsgs: number
  readonly twophase_xid?: number
  readonly twophase_gid?: string
  readonly origin_lsn?: bigint
  readonly origin_timestamp?: bigint
}

/** A cursor over packed main data; any overrun is a WAL_INVALID error naming the record kind. */
class Cursor {
  pos = 0
  constructor(
    private readonly data: Buffer,
    private readonly what: string,
  ) {}
  need(n: number): void {
    if (n < 0 || this.pos + n > this.data.length) {
      throw new RewindError('WAL_INVALID', `invalid ${this.what} record: ${this.data.length} bytes of data end inside its contents`)
    }
  }
  u32(): number {
    this.need(4)
    const v = this.data.readUInt32LE(this.pos)
    this.pos += 4
    return v
  }
  i32(): number {
    this.need(4)
    const v = this.data.readInt32LE(this.pos)
    this.pos += 4
    return v
  }
  i64(): bigint {
    this.need(8)
    const v = this.data.readBigInt64LE(this.pos)
    this.pos += 8
    return v
  }
  u64(): bigint {
    this.need(8)
    const v = this.data.readBigUInt64LE(this.pos)
    this.pos += 8
    return v
  }
  skip(n: number): void {
    this.need(n)
    this.pos += n
  }
  locator(): RelFileLocator {
    this.need(12)
    const l = locatorAt(this.data, this.pos)
    this.pos += 12
    return l
  }
  cstring(): string {
    const end = this.data.indexOf(0, this.pos)
    if (end < 0) this.need(this.data.length + 1 - this.pos)
    const s = this.data.toString('utf8', this.pos, end)
    this.pos = end + 1
    return s
  }
}

function xactOp(info: number, profile: VersionProfile): XactCommitAbort['op'] | null {
  const c = profile.codes
  switch (info & c.XLOG_XACT_OPMASK) {
    case c.XLOG_XACT_COMMIT:
      return 'commit'
    case c.XLOG_XACT_ABORT:
      return 'abort'
    case c.XLOG_XACT_COMMIT_PREPARED:
      return 'commit_prepared'
    case c.XLOG_XACT_ABORT_PREPARED:
      return 'abort_prepared'
    default:
      return null
  }
}

/**
 * ParseCommitRecord / ParseAbortRecord: the optional parts of a commit or abort in their fixed
 * order. null for other transaction records (PREPARE, ASSIGNMENT, INVALIDATIONS).
 */
export function decodeXactCommitAbort(info: number, mainData: Buffer, profile: VersionProfile): XactCommitAbort | null {
  const op = xactOp(info, profile)
  if (op === null) return null
  const c = new Cursor(mainData, `transaction ${op}`)
  const xact_time = c.i64()
  const xinfo = (info & profile.codes.XLOG_XACT_HAS_INFO) !== 0 ? c.u32() : 0
  let dbId: number | undefined
  let tsId: number | undefined
  if (xinfo & XACT_XINFO.HAS_DBINFO) {
    dbId = c.u32()
    tsId = c.u32()
  }
  const subxacts: number[] = []
  if (xinfo & XACT_XINFO.HAS_SUBXACTS) {
    const n = c.i32()
    c.need(4 * n)
    for (let i = 0; i < n; i++) subxacts.push(c.u32())
  }
  const rels: RelFileLocator[] = []
  if (xinfo & XACT_XINFO.HAS_RELFILELOCATORS) {
    const n = c.i32()
    c.need(12 * n)
    for (let i = 0; i < n; i++) rels.push(c.locator())
  }
  let nstats = 0
  if (xinfo & profile.xinfoHasDroppedStats) {
    nstats = c.i32()
    c.skip(nstats * profile.droppedStatsItemSize)
  }
  let nmsgs = 0
  if (xinfo & XACT_XINFO.HAS_INVALS && (op === 'commit' || op === 'commit_prepared')) {
    nmsgs = c.i32()
    c.skip(nmsgs * SIZE_OF_SHARED_INVALIDATION_MESSAGE)
  }
  let twophase_xid: number | undefined
  let twophase_gid: string | undefined
  if (xinfo & XACT_XINFO.HAS_TWOPHASE) {
    twophase_xid = c.u32()
    if (xinfo & XACT_XINFO.HAS_GID) twophase_gid = c.cstring()
  }
  let origin_lsn: bigint | undefined
  let origin_timestamp: bigint | undefined
  if (xinfo & XACT_XINFO.HAS_ORIGIN) {
    origin_lsn = c.u64()
    origin_timestamp = c.i64()
  }
  return { op, xact_time, xinfo, dbId, tsId, subxacts, rels, nstats, nmsgs, twophase_xid, twophase_gid, origin_lsn, origin_timestamp }
}

/**
 * The relation files a commit, abort, commit-prepared or abort-prepared record drops (formats §3.4);
 * empty for any other transaction record. Only the parts before the list are read, so a later
 * layout change cannot break it.
 */
export function decodeXactDroppedRelations(info: number, mainData: Buffer, profile: VersionProfile): RelFileLocator[] {
  const op = xactOp(info, profile)
  if (op === null) return []
  const c = new Cursor(mainData, `transaction ${op}`)
  c.skip(8) // xact_time
  const xinfo = (info & profile.codes.XLOG_XACT_HAS_INFO) !== 0 ? c.u32() : 0
  if (xinfo & XACT_XINFO.HAS_DBINFO) c.skip(8)
  if (xinfo & XACT_XINFO.HAS_SUBXACTS) c.skip(4 * c.i32())
  const rels: RelFileLocator[] = []
  if (xinfo & XACT_XINFO.HAS_RELFILELOCATORS) {
    const n = c.i32()
    c.need(12 * n)
    for (let i = 0; i < n; i++) rels.push(c.locator())
  }
  return rels
}
