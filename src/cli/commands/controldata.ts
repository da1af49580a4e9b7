// `walrewind controldata [--json] DATADIR`: what pg_controldata shows, with its field labels, for
// any major 13–18 (pg_controldata itself only reads its own major's layout). The file must pass
// the checks a rewind applies: a bad size or CRC is an error here, not pg_controldata's warning.

import fs from 'node:fs/promises'
import path from 'node:path'
import { isRewindError, RewindError, exitStatusOf } from '../../errors.js'
import { dbStateName, decodeControlFile, walLevelName, type ControlFile } from '../../pg/control.js'
import { formatLsn, segmentFileName, segmentOf } from '../../pg/lsn.js'
import { SUPPORTED_RANGE } from '../../pg/versions.js'
import type { CliIo } from '../io.js'

const USAGE = `Usage: walrewind controldata [--json] DATADIR

Shows the control information of a PostgreSQL ${SUPPORTED_RANGE} data directory (global/pg_control) with the
labels pg_controldata uses. DATADIR defaults to $PGDATA.

Options:
  --json    one JSON object with the fields under their C names (LSNs as X/X)
  --help    show this help
`

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** strftime("%c") in the C locale, local time: `Mon Nov 23 18:01:38 2026`. */
export function formatCTime(seconds: number): string {
  const d = new Date(seconds * 1000)
  const two = (n: number): string => String(n).padStart(2, '0')
  return (
    `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`
  )
}

/** FullTransactionId as pg_controldata prints it: epoch:xid. */
export function formatFullXid(fxid: bigint): string {
  return `${fxid >> 32n}:${fxid & 0xffffffffn}`
}

const onOff = (b: boolean): string => (b ? 'on' : 'off')

/** The lines pg_controldata prints for this file, label column included. */
export function formatControlData(cf: ControlFile): string {
  const cp = cf.checkPointCopy
  const redoFile = segmentFileName(cp.ThisTimeLineID, segmentOf(cp.redo, cf.xlog_seg_size), cf.xlog_seg_size)
  const rows: [string, string | number][] = [
    ['pg_control version number', cf.pg_control_version],
    ['Catalog version number', cf.catalog_version_no],
    ['Database system identifier', cf.system_identifier.toString()],
    ['Database cluster state', dbStateName(cf.state)],
    ['pg_control last modified', formatCTime(cf.time)],
    ['Latest checkpoint location', formatLsn(cf.checkPoint)],
    ["Latest checkpoint's REDO location", formatLsn(cp.redo)],
    ["Latest checkpoint's REDO WAL file", redoFile],
    ["Latest checkpoint's TimeLineID", cp.ThisTimeLineID],
    ["Latest checkpoint's PrevTimeLineID", cp.PrevTimeLineID],
    ["Latest checkpoint's full_page_writes", onOff(cp.fullPageWrites)],
    ["Latest checkpoint's NextXID", formatFullXid(cp.nextXid)],
    ["Latest checkpoint's NextOID", cp.nextOid],
    ["Latest checkpoint's NextMultiXactId", cp.nextMulti],
    ["Latest checkpoint's NextMultiOffset", cp.nextMultiOffset],
    ["Latest checkpoint's oldestXID", cp.oldestXid],
    ["Latest checkpoint's oldestXID's DB", cp.oldestXidDB],
    ["Latest checkpoint's oldestActiveXID", cp.oldestActiveXid],
    ["Latest checkpoint's oldestMultiXid", cp.oldestMulti],
    ["Latest checkpoint's oldestMulti's DB", cp.oldestMultiDB],
    ["Latest checkpoint's oldestCommitTsXid", cp.oldestCommitTsXid],
    ["Latest checkpoint's newestCommitTsXid", cp.newestCommitTsXid],
    ['Time of latest checkpoint', formatCTime(cp.time)],
    ['Fake LSN counter for unlogged rels', formatLsn(cf.unloggedLSN)],
    ['Minimum recovery ending location', formatLsn(cf.minRecoveryPoint)],
    ["Min recovery ending loc's timeline", cf.minRecoveryPointTLI],
    ['Backup start location', formatLsn(cf.backupStartPoint)],
    ['Backup end location', formatLsn(cf.backupEndPoint)],
    ['End-of-backup record required', cf.backupEndRequired ? 'yes' : 'no'],
    ['wal_level setting', walLevelName(cf.wal_level)],
    ['wal_log_hints setting', onOff(cf.wal_log_hints)],
    ['max_connections setting', cf.MaxConnections],
    ['max_worker_processes setting', cf.max_worker_processes],
    ['max_wal_senders setting', cf.max_wal_senders],
    ['max_prepared_xacts setting', cf.max_prepared_xacts],
    ['max_locks_per_xact setting', cf.max_locks_per_xact],
    ['track_commit_timestamp setting', onOff(cf.track_commit_timestamp)],
    ['Maximum data alignment', cf.maxAlign],
    ['Database block size', cf.blcksz],
    ['Blocks per segment of large relation', cf.relseg_size],
    ['WAL block size', cf.xlog_blcksz],
    ['Bytes per WAL segment', cf.xlog_seg_size],
    ['Maximum length of identifiers', cf.nameDataLen],
    ['Maximum columns in an index', cf.indexMaxKeys],
    ['Maximum size of a TOAST chunk', cf.toast_max_chunk_size],
    ['Size of a large-object chunk', cf.loblksize],
    ['Date/time type storage', '64-bit integers'],
    ['Float8 argument passing', cf.float8ByVal ? 'by value' : 'by reference'],
    ['Data page checksum version', cf.data_checksum_version],
  ]
  if (cf.default_char_signedness !== undefined) {
    rows.push(['Default char data signedness', cf.default_char_signedness ? 'signed' : 'unsigned'])
  }
  rows.push(['Mock authentication nonce', cf.mock_authentication_nonce])
  // pg_controldata pads every label to 38 columns; the two longest labels touch their value.
  return rows.map(([label, value]) => `${`${label}:`.padEnd(38)}${value}\n`).join('')
}

/** The control file as JSON-ready data: C field names, LSNs as X/X, 64-bit numbers as strings. */
export function controlFileJson(cf: ControlFile): Record<string, unknown> {
  const cp = cf.checkPointCopy
  const { profile, checkPointCopy: _cp, ...fields } = cf
  const out: Record<string, unknown> = { major: profile.major }
  for (const [key, value] of Object.entries(fields)) out[key] = value
  Object.assign(out, {
    system_identifier: cf.system_identifier.toString(),
    stateName: dbStateName(cf.state),
    checkPoint: formatLsn(cf.checkPoint),
    checkPointCopy: {
      ...cp,
      redo: formatLsn(cp.redo),
      redoWalFile: segmentFileName(cp.ThisTimeLineID, segmentOf(cp.redo, cf.xlog_seg_size), cf.xlog_seg_size),
      nextXid: formatFullXid(cp.nextXid),
    },
    unloggedLSN: formatLsn(cf.unloggedLSN),
    minRecoveryPoint: formatLsn(cf.minRecoveryPoint),
    backupStartPoint: formatLsn(cf.backupStartPoint),
    backupEndPoint: formatLsn(cf.backupEndPoint),
  })
  return out
}

/** A command's error as pg_rewind prints one (error, detail, hint lines); returns the exit status. */
export function printCommandError(io: CliIo, programName: string, err: RewindError): number {
  let text = `${programName}: error: ${err.message}\n`
  if (err.info.detail) text += `${programName}: detail: ${err.info.detail}\n`
  if (err.info.hint) text += `${programName}: hint: ${err.info.hint}\n`
  io.stderr.write(text)
  return exitStatusOf(err)
}

export async function controldata(args: string[], io: CliIo, programName: string): Promise<number> {
  let json = false
  let dataDir: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--help' || a === '-?') {
      io.stdout.write(USAGE)
      return 0
    }
    if (a === '--json') json = true
    else if (a === '-D' || a === '--pgdata') dataDir = args[++i]
    else if (a.startsWith('--pgdata=')) dataDir = a.slice('--pgdata='.length)
    else if (a.startsWith('-') && a !== '-')
      return printCommandError(
        io,
        programName,
        new RewindError('USAGE', `controldata: unknown option "${a}"`, {
          hint: `Try "${programName} controldata --help" for more information.`,
        }),
      )
    else if (dataDir === undefined) dataDir = a
    else
      return printCommandError(io, programName, new RewindError('USAGE', `controldata: too many command-line arguments (first is "${a}")`))
  }
  dataDir ??= io.env['PGDATA']
  if (dataDir === undefined || dataDir === '') {
    return printCommandError(
      io,
      programName,
      new RewindError('USAGE', 'controldata: no data directory specified', {
        hint: `Try "${programName} controldata --help" for more information.`,
      }),
    )
  }
  const file = path.join(dataDir, 'global', 'pg_control')
  try {
    let bytes: Buffer
    try {
      bytes = await fs.readFile(file)
    } catch (err) {
      throw new RewindError(
        'FILE_IO',
        `could not open file "${file}" for reading: ${(err as Error).message}`,
        { path: file },
        { cause: err },
      )
    }
    const cf = decodeControlFile(bytes)
    io.stdout.write(json ? `${JSON.stringify(controlFileJson(cf))}\n` : formatControlData(cf))
    return 0
  } catch (err) {
    if (isRewindError(err)) return printCommandError(io, programName, err)
    throw err
  }
}
