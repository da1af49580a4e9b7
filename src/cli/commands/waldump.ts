// `walrewind waldump`: WAL records of any major 13–18 as pg_waldump lists them (LSN, prev, rmgr,
// record type, rec/tot lengths, xid, block references with full-page image details), or one JSON
// object per line. Record descriptions beyond the type are not decoded. The segment size and the
// major version come from the first page of the WAL read, as pg_waldump finds them.

import fs from 'node:fs/promises'
import path from 'node:path'
import { isRewindError, RewindError } from '../../errors.js'
import { formatLsn, isValidSegmentSize, parseLsn, parseSegmentFileName, segmentOf, segmentStart, type Lsn } from '../../pg/lsn.js'
import { forkName } from '../../pg/relpath.js'
import { profileFromWalMagic, SUPPORTED_RANGE, type VersionProfile } from '../../pg/versions.js'
import { decodePageHeader, XLP_LONG_HEADER } from '../../pg/wal/page.js'
import { WalReader } from '../../pg/wal/reader.js'
import type { BlockRef, WalRecord } from '../../pg/wal/record.js'
import { recordTypeName, rmgrName } from '../../pg/wal/rmgr.js'
import { WalDirectory } from '../../rewind/wal-source.js'
import type { CliIo } from '../io.js'
import { printCommandError } from './controldata.js'

const USAGE = `Usage: walrewind waldump [OPTION]... [SEGMENT_FILE]

Lists the WAL records of a PostgreSQL ${SUPPORTED_RANGE} cluster, like pg_waldump.

Options:
  -p, --path=DIR        directory of the WAL segments (default: the SEGMENT_FILE's, else . or ./pg_wal)
  -s, --start=LSN       first record to read (default: the first record of SEGMENT_FILE)
  -e, --end=LSN         stop before the record that ends after LSN
  -t, --timeline=TLI    timeline of the segment files (default: SEGMENT_FILE's, else 1)
  -n, --limit=N         print at most N records
  -b, --bkp-details     block references one per line with full-page image details
      --json            one JSON object per line: each record, then the end of WAL
      --help            show this help
`

interface Options {
  json: boolean
  bkpDetails: boolean
  dir: string | null
  start: Lsn | null
  end: Lsn | null
  tli: number | null
  limit: number | null
  file: string | null
}

function usageError(message: string, programName: string): RewindError {
  return new RewindError('USAGE', message, { hint: `Try "${programName} waldump --help" for more information.` })
}

function parseArgs(args: string[], programName: string): Options | 'help' {
  const o: Options = { json: false, bkpDetails: false, dir: null, start: null, end: null, tli: null, limit: null, file: null }
  const takes: Record<string, keyof Options> = {
    '-p': 'dir',
    '--path': 'dir',
    '-s': 'start',
    '--start': 'start',
    '-e': 'end',
    '--end': 'end',
    '-t': 'tli',
    '--timeline': 'tli',
    '-n': 'limit',
    '--limit': 'limit',
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--help' || a === '-?') return 'help'
    if (a === '--json') {
      o.json = true
      continue
    }
    if (a === '-b' || a === '--bkp-details') {
      o.bkpDetails = true
      continue
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1
    const name = eq > 0 ? a.slice(0, eq) : a
    const key = takes[name]
    if (key !== undefined) {
      const value = eq > 0 ? a.slice(eq + 1) : args[++i]
      if (value === undefined) throw usageError(`waldump: option ${name} needs a value`, programName)
      switch (key) {
        case 'dir':
          o.dir = value
          break
        case 'start':
          o.start = parseLsn(value)
          break
        case 'end':
          o.end = parseLsn(value)
          break
        case 'tli':
        case 'limit': {
          if (!/^\d+$/.test(value)) throw usageError(`waldump: invalid value "${value}" for option ${name}`, programName)
          o[key] = Number(value)
          break
        }
        default:
          break
      }
      continue
    }
    if (a.startsWith('-')) throw usageError(`waldump: unknown option "${a}"`, programName)
    if (o.file !== null) throw usageError(`waldump: too many command-line arguments (first is "${a}")`, programName)
    o.file = a
  }
  return o
}

/** The segment size and profile a segment file's long header announces. */
async function probeSegment(file: string): Promise<{ segSize: number; profile: VersionProfile }> {
  let head: Buffer
  try {
    const handle = await fs.open(file, 'r')
    try {
      head = Buffer.alloc(40)
      await handle.read(head, 0, 40, 0)
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw new RewindError('FILE_IO', `could not open file "${file}": ${(err as Error).message}`, { path: file }, { cause: err })
  }
  const hdr = decodePageHeader(head)
  const profile = profileFromWalMagic(hdr.xlp_magic)
  const segSize = hdr.long?.xlp_seg_size ?? 0
  if ((hdr.xlp_info & XLP_LONG_HEADER) === 0 || !isValidSegmentSize(segSize)) {
    throw new RewindError('WAL_INVALID', `invalid WAL segment size in file "${file}" (${segSize} bytes)`, { path: file })
  }
  return { segSize, profile }
}

async function findSegmentFile(dirs: string[]): Promise<{ dir: string; file: string }> {
  for (const dir of dirs) {
    let names: string[]
    try {
      names = await fs.readdir(dir)
    } catch {
      continue
    }
    const name = names.filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()[0]
    if (name !== undefined) return { dir, file: path.join(dir, name) }
  }
  throw new RewindError('WAL_MISSING', `could not find any WAL file in ${dirs.map((d) => `"${d}"`).join(' or ')}`)
}

function lsn08(lsn: Lsn): string {
  // pg_waldump pads the low half of the LSNs it prints to 8 digits.
  const text = formatLsn(lsn)
  const [hi, lo] = text.split('/')
  return `${hi}/${lo!.padStart(8, '0')}`
}

function blockText(b: BlockRef, detailed: boolean, blockSize: number): string {
  if (!detailed) {
    const fork = b.forkNumber !== 0 ? ` fork ${forkName(b.forkNumber)}` : ''
    const fpw = b.hasImage ? (b.applyImage ? ' FPW' : ' FPW for WAL verification') : ''
    return `, blkref #${b.block_id}: rel ${b.spcOid}/${b.dbOid}/${b.relNumber}${fork} blk ${b.blockNumber}${fpw}`
  }
  let text = `\tblkref #${b.block_id}: rel ${b.spcOid}/${b.dbOid}/${b.relNumber} fork ${forkName(b.forkNumber)} blk ${b.blockNumber}`
  const img = b.image
  if (img !== undefined) {
    const verification = b.applyImage ? '' : ' for WAL verification'
    text += ` (FPW${verification}); hole: offset: ${img.hole_offset}, length: ${img.hole_length}`
    if (img.compression !== 'none') {
      text += `, compression saved: ${blockSize - img.hole_length - img.bimg_len}, method: ${img.compression}`
    }
  }
  return `${text}\n`
}

function recordText(r: WalRecord, profile: VersionProfile, detailed: boolean, blockSize: number): string {
  const head =
    `rmgr: ${rmgrName(r.xl_rmid).padEnd(11)} len (rec/tot): ${String(r.xl_tot_len - r.fpiLength).padStart(6)}/` +
    `${String(r.xl_tot_len).padStart(6)}, tx: ${String(r.xl_xid).padStart(10)}, lsn: ${lsn08(r.lsn)}, prev ${lsn08(r.xl_prev)}, ` +
    `desc: ${recordTypeName(r.xl_rmid, r.xl_info, profile)}`
  if (!detailed) return `${head}${r.blocks.map((b) => blockText(b, false, blockSize)).join('')}\n`
  return `${head}\n${r.blocks.map((b) => blockText(b, true, blockSize)).join('')}`
}

function recordJson(r: WalRecord, profile: VersionProfile): Record<string, unknown> {
  return {
    type: 'record',
    lsn: formatLsn(r.lsn),
    endLsn: formatLsn(r.endLsn),
    prev: formatLsn(r.xl_prev),
    rmid: r.xl_rmid,
    rmgr: rmgrName(r.xl_rmid),
    recordType: recordTypeName(r.xl_rmid, r.xl_info, profile),
    info: r.xl_info,
    xid: r.xl_xid,
    totLen: r.xl_tot_len,
    recLen: r.xl_tot_len - r.fpiLength,
    fpiLen: r.fpiLength,
    mainDataLen: r.main_data_len,
    ...(r.origin !== undefined ? { origin: r.origin } : {}),
    ...(r.toplevelXid !== undefined ? { toplevelXid: r.toplevelXid } : {}),
    blocks: r.blocks.map((b) => ({
      id: b.block_id,
      spcOid: b.spcOid,
      dbOid: b.dbOid,
      relNumber: b.relNumber,
      fork: b.forkNumber,
      block: b.blockNumber,
      hasData: b.hasData,
      dataLength: b.data_length,
      willInit: b.willInit,
      ...(b.image !== undefined
        ? {
            image: {
              bimgLen: b.image.bimg_len,
              holeOffset: b.image.hole_offset,
              holeLength: b.image.hole_length,
              bimgInfo: b.image.bimg_info,
              compression: b.image.compression,
              apply: b.applyImage,
            },
          }
        : {}),
    })),
  }
}

export async function waldump(args: string[], io: CliIo, programName: string): Promise<number> {
  try {
    const o = parseArgs(args, programName)
    if (o === 'help') {
      io.stdout.write(USAGE)
      return 0
    }
    let dir: string
    let probeFile: string
    let tli = o.tli
    let start = o.start
    if (o.file !== null) {
      dir = o.dir ?? path.dirname(o.file)
      probeFile = o.dir !== null && !o.file.includes('/') ? path.join(o.dir, o.file) : o.file
    } else {
      if (start === null) throw usageError('waldump: no start WAL location given (--start) and no segment file', programName)
      const found = await findSegmentFile(o.dir !== null ? [o.dir] : ['.', 'pg_wal'])
      dir = found.dir
      probeFile = found.file
    }
    const { segSize, profile } = await probeSegment(probeFile)
    if (o.file !== null) {
      const parsed = parseSegmentFileName(path.basename(o.file), segSize)
      if (parsed === null) throw usageError(`waldump: could not parse WAL file name "${path.basename(o.file)}"`, programName)
      tli ??= parsed.tli
      // Without --start, the first record that begins in the file (dump() looks for it).
      if (start === null) start = segmentStart(parsed.segno, segSize)
      else if (segmentOf(start, segSize) !== parsed.segno) {
        throw usageError(`waldump: start WAL location ${formatLsn(start)} is not inside file "${path.basename(o.file)}"`, programName)
      }
    }
    const timeline = tli ?? 1
    const source = new WalDirectory({ dir, segSize, timelineOf: () => timeline })
    const reader = new WalReader({ profile, segSize, source })
    try {
      return await dump(reader, start!, o, profile, io, programName)
    } finally {
      await reader.close()
      await source.close()
    }
  } catch (err) {
    if (isRewindError(err)) return printCommandError(io, programName, err)
    throw err
  }
}

/** Prints the records from the first one at or after `start`; the end of WAL goes to stderr (or a last JSON line). */
async function dump(reader: WalReader, start: Lsn, o: Options, profile: VersionProfile, io: CliIo, programName: string): Promise<number> {
  const firstRecord = await reader.findNextRecord(start)
  if (firstRecord === null) throw new RewindError('WAL_INVALID', `could not find a valid record after ${formatLsn(start)}`)
  let count = 0
  let out = ''
  const flush = (): void => {
    if (out !== '') io.stdout.write(out)
    out = ''
  }
  let stoppedEarly = false
  const end = await reader.forEachRecord(
    firstRecord,
    (r) => {
      if (o.end !== null && r.lsn + BigInt(r.xl_tot_len) > o.end) {
        stoppedEarly = true
        return false
      }
      out += o.json ? `${JSON.stringify(recordJson(r, profile))}\n` : recordText(r, profile, o.bkpDetails, reader.blockSize)
      if (out.length > 1 << 16) flush()
      count++
      if (o.limit !== null && count >= o.limit) {
        stoppedEarly = true
        return false
      }
      return true
    },
    { reuseRecord: true },
  )
  flush()
  if (end === null || stoppedEarly) return 0
  if (o.json) io.stdout.write(`${JSON.stringify({ type: 'end', lsn: formatLsn(end.lsn), reason: end.reason, message: end.message })}\n`)
  else io.stderr.write(`${programName}: end of WAL at ${formatLsn(end.lsn)}: ${end.message}\n`)
  // Like pg_waldump: WAL that ends before the requested end is an error.
  if (o.end !== null && end.lsn < o.end) {
    return printCommandError(
      io,
      programName,
      new RewindError('WAL_INVALID', `error in WAL record at ${formatLsn(end.lsn)}: ${end.message}`),
    )
  }
  return 0
}
