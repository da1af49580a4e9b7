// global/pg_control: decoding ControlFileData (catalog/pg_control.h) for 13–18 and writing the
// copy pg_rewind leaves in the target (new state and minRecoveryPoint, fresh CRC). Checks run in
// pg_rewind's digestControlFile order with its messages: size, WAL segment size, CRC, then version.

import { RewindError } from '../errors.js'
import { decodeCheckPointAt, type CheckPoint } from './checkpoint.js'
import { crc32c } from './crc32c.js'
import { isValidSegmentSize, type Lsn } from './lsn.js'
import { CONTROL_CRC_OFFSETS, findProfileByCatalogVersion, NEWEST_PROFILE, SUPPORTED_TEXT, type VersionProfile } from './versions.js'

export const PG_CONTROL_FILE_SIZE = 8192
/** sizeof(ControlFileData) in every major 13–18; the rest of the file is zero. */
const SIZE_OF_CONTROL_FILE_DATA = 296

// ControlFileData field offsets, catalog/pg_control.h (x86-64/arm64 alignment)
const SYSTEM_IDENTIFIER = 0 /* uint64 */,
  PG_CONTROL_VERSION = 8 /* uint32 */,
  CATALOG_VERSION_NO = 12 /* uint32 */
const STATE = 16 /* DBState, 4-byte enum */,
  TIME = 24 /* pg_time_t */,
  CHECKPOINT = 32 /* XLogRecPtr */
const CHECKPOINT_COPY = 40 /* CheckPoint, 88 bytes */,
  UNLOGGED_LSN = 128,
  MIN_RECOVERY_POINT = 136
const MIN_RECOVERY_POINT_TLI = 144,
  BACKUP_START_POINT = 152,
  BACKUP_END_POINT = 160,
  BACKUP_END_REQUIRED = 168 /* bool */
const WAL_LEVEL = 172,
  WAL_LOG_HINTS = 176 /* bool */,
  MAX_CONNECTIONS = 180,
  MAX_WORKER_PROCESSES = 184
const MAX_WAL_SENDERS = 188,
  MAX_PREPARED_XACTS = 192,
  MAX_LOCKS_PER_XACT = 196,
  TRACK_COMMIT_TIMESTAMP = 200 /* bool */
const MAX_ALIGN = 204,
  FLOAT_FORMAT = 208 /* double */,
  BLCKSZ = 216,
  RELSEG_SIZE = 220,
  XLOG_BLCKSZ = 224
const XLOG_SEG_SIZE = 228,
  NAME_DATA_LEN = 232,
  INDEX_MAX_KEYS = 236,
  TOAST_MAX_CHUNK_SIZE = 240,
  LOBLKSIZE = 244
const FLOAT8_BY_VAL = 248 /* bool */,
  DATA_CHECKSUM_VERSION = 252
const MOCK_AUTH_NONCE_LEN = 32

/** DBState (catalog/pg_control.h); the same values in 13–18. */
export const DBState = Object.freeze({
  STARTUP: 0,
  SHUTDOWNED: 1,
  SHUTDOWNED_IN_RECOVERY: 2,
  SHUTDOWNING: 3,
  IN_CRASH_RECOVERY: 4,
  IN_ARCHIVE_RECOVERY: 5,
  IN_PRODUCTION: 6,
} as const)
export type DBStateValue = (typeof DBState)[keyof typeof DBState]

const DB_STATE_NAMES = [
  'starting up',
  'shut down',
  'shut down in recovery',
  'shutting down',
  'in crash recovery',
  'in archive recovery',
  'in production',
] as const

/** The state as pg_controldata prints it. */
export function dbStateName(state: number): string {
  return DB_STATE_NAMES[state] ?? 'unrecognized status code'
}

const WAL_LEVEL_NAMES = ['minimal', 'replica', 'logical'] as const

/** wal_level as pg_controldata prints it. */
export function walLevelName(level: number): string {
  return WAL_LEVEL_NAMES[level] ?? 'unrecognized wal_level'
}

export interface ControlFile {
  readonly system_identifier: bigint
  readonly pg_control_version: number
  readonly catalog_version_no: number
  readonly state: number
  /** Seconds since the Unix epoch. */
  readonly time: number
  readonly checkPoint: Lsn
  readonly checkPointCopy: CheckPoint
  readonly unloggedLSN: Lsn
  readonly minRecoveryPoint: Lsn
  readonly minRecoveryPointTLI: number
  readonly backupStartPoint: Lsn
  readonly backupEndPoint: Lsn
  readonly backupEndRequired: boolean
  readonly wal_level: number
  readonly wal_log_hints: boolean
  readonly MaxConnections: number
  readonly max_worker_processes: number
  readonly max_wal_senders: number
  readonly max_prepared_xacts: number
  readonly max_locks_per_xact: number
  readonly track_commit_timestamp: boolean
  readonly maxAlign: number
  readonly floatFormat: number
  readonly blcksz: number
  readonly relseg_size: number
  readonly xlog_blcksz: number
  readonly xlog_seg_size: number
  readonly nameDataLen: number
  readonly indexMaxKeys: number
  readonly toast_max_chunk_size: number
  readonly loblksize: number
  readonly float8ByVal: boolean
  readonly data_checksum_version: number
  /** 18+ only. */
  readonly default_char_signedness?: boolean
  /** Hex, as pg_controldata prints it. */
  readonly mock_authentication_nonce: string
  readonly crc: number
  readonly profile: VersionProfile
}

function invalid(message: string, detail?: string): RewindError {
  return new RewindError(
    'CONTROL_FILE_INVALID',
    message,
    detail === undefined ? { path: 'global/pg_control' } : { path: 'global/pg_control', detail },
  )
}

function segmentSizeError(size: number, profile: VersionProfile): RewindError {
  const unit = size === 1 ? 'byte' : 'bytes'
  if (profile.controlSegmentSizeMessage === 'v11') {
    return invalid(`WAL segment size must be a power of two between 1 MB and 1 GB, but the control file specifies ${size} ${unit}`)
  }
  return invalid(
    `invalid WAL segment size in control file (${size} ${unit})`,
    'The WAL segment size must be a power of two between 1 MB and 1 GB.',
  )
}

/** Checks what digestControlFile checks and returns the profile of the file's major version. */
function checkControlFile(buf: Buffer): VersionProfile {
  if (buf.length !== PG_CONTROL_FILE_SIZE) {
    throw invalid(`unexpected control file size ${buf.length}, expected ${PG_CONTROL_FILE_SIZE}`)
  }
  const catalog = buf.readUInt32LE(CATALOG_VERSION_NO)
  const known = findProfileByCatalogVersion(catalog)
  // Messages follow the file's own major where it is known, else the newest wording.
  const segSize = buf.readUInt32LE(XLOG_SEG_SIZE)
  if (!isValidSegmentSize(segSize)) throw segmentSizeError(segSize, known ?? NEWEST_PROFILE)
  // The CRC offset depends on the layout; for an unknown version, accept any layout we know so that
  // an intact file from another major is reported as such rather than as corrupt.
  const offsets = known !== null ? [known.control.crcOffset] : CONTROL_CRC_OFFSETS
  if (!offsets.some((off) => crc32c(buf.subarray(0, off)) === buf.readUInt32LE(off))) {
    throw invalid('unexpected control file CRC')
  }
  const version = buf.readUInt32LE(PG_CONTROL_VERSION)
  if (known === null || known.pgControlVersion !== version) {
    throw new RewindError(
      'INCOMPATIBLE_VERSION',
      `unsupported pg_control version ${version} with catalog version ${catalog}; ${SUPPORTED_TEXT}`,
      { path: 'global/pg_control' },
    )
  }
  return known
}

/**
 * Decodes global/pg_control. Throws CONTROL_FILE_INVALID (size, segment size, CRC) or
 * INCOMPATIBLE_VERSION (a major not in SUPPORTED_MAJORS) with pg_rewind's messages.
 */
export function decodeControlFile(buf: Buffer): ControlFile {
  const profile = checkControlFile(buf)
  const layout = profile.control
  const signedness = layout.defaultCharSignednessOffset
  const base: ControlFile = {
    system_identifier: buf.readBigUInt64LE(SYSTEM_IDENTIFIER),
    pg_control_version: buf.readUInt32LE(PG_CONTROL_VERSION),
    catalog_version_no: buf.readUInt32LE(CATALOG_VERSION_NO),
    state: buf.readUInt32LE(STATE),
    time: Number(buf.readBigInt64LE(TIME)),
    checkPoint: buf.readBigUInt64LE(CHECKPOINT),
    checkPointCopy: decodeCheckPointAt(buf, CHECKPOINT_COPY, profile),
    unloggedLSN: buf.readBigUInt64LE(UNLOGGED_LSN),
    minRecoveryPoint: buf.readBigUInt64LE(MIN_RECOVERY_POINT),
    minRecoveryPointTLI: buf.readUInt32LE(MIN_RECOVERY_POINT_TLI),
    backupStartPoint: buf.readBigUInt64LE(BACKUP_START_POINT),
    backupEndPoint: buf.readBigUInt64LE(BACKUP_END_POINT),
    backupEndRequired: buf[BACKUP_END_REQUIRED] !== 0,
    wal_level: buf.readInt32LE(WAL_LEVEL),
    wal_log_hints: buf[WAL_LOG_HINTS] !== 0,
    MaxConnections: buf.readInt32LE(MAX_CONNECTIONS),
    max_worker_processes: buf.readInt32LE(MAX_WORKER_PROCESSES),
    max_wal_senders: buf.readInt32LE(MAX_WAL_SENDERS),
    max_prepared_xacts: buf.readInt32LE(MAX_PREPARED_XACTS),
    max_locks_per_xact: buf.readInt32LE(MAX_LOCKS_PER_XACT),
    track_commit_timestamp: buf[TRACK_COMMIT_TIMESTAMP] !== 0,
    maxAlign: buf.readUInt32LE(MAX_ALIGN),
    floatFormat: buf.readDoubleLE(FLOAT_FORMAT),
    blcksz: buf.readUInt32LE(BLCKSZ),
    relseg_size: buf.readUInt32LE(RELSEG_SIZE),
    xlog_blcksz: buf.readUInt32LE(XLOG_BLCKSZ),
    xlog_seg_size: buf.readUInt32LE(XLOG_SEG_SIZE),
    nameDataLen: buf.readUInt32LE(NAME_DATA_LEN),
    indexMaxKeys: buf.readUInt32LE(INDEX_MAX_KEYS),
    toast_max_chunk_size: buf.readUInt32LE(TOAST_MAX_CHUNK_SIZE),
    loblksize: buf.readUInt32LE(LOBLKSIZE),
    float8ByVal: buf[FLOAT8_BY_VAL] !== 0,
    data_checksum_version: buf.readUInt32LE(DATA_CHECKSUM_VERSION),
    mock_authentication_nonce: buf.toString('hex', layout.mockAuthNonceOffset, layout.mockAuthNonceOffset + MOCK_AUTH_NONCE_LEN),
    crc: buf.readUInt32LE(layout.crcOffset),
    profile,
  }
  if (signedness === null) return base
  return { ...base, default_char_signedness: buf[signedness] !== 0 }
}

export interface ControlFileChanges {
  readonly state?: number
  readonly minRecoveryPoint?: Lsn
  readonly minRecoveryPointTLI?: number
}

/**
 * A new 8192-byte pg_control image: `original` (which must pass decodeControlFile) with `changes`
 * applied and a fresh CRC. Like update_controlfile, only the struct is kept and the rest is zero,
 * so a file the server wrote round-trips byte for byte when nothing changes.
 */
export function updateControlFile(original: Buffer, changes: ControlFileChanges): Buffer {
  const { profile } = decodeControlFile(original)
  const out = Buffer.alloc(PG_CONTROL_FILE_SIZE)
  original.copy(out, 0, 0, SIZE_OF_CONTROL_FILE_DATA)
  if (changes.state !== undefined) out.writeUInt32LE(changes.state, STATE)
  if (changes.minRecoveryPoint !== undefined) out.writeBigUInt64LE(changes.minRecoveryPoint, MIN_RECOVERY_POINT)
  if (changes.minRecoveryPointTLI !== undefined) out.writeUInt32LE(changes.minRecoveryPointTLI, MIN_RECOVERY_POINT_TLI)
  const crcOffset = profile.control.crcOffset
  out.writeUInt32LE(crc32c(out.subarray(0, crcOffset)), crcOffset)
  return out
}
