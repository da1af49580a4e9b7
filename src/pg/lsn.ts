// WAL locations (LSNs) and the segment arithmetic around them: text form, segment numbers, file
// names. An LSN is a bigint because a busy cluster can pass 2^53 bytes of WAL; offsets within a
// segment stay numbers. File names follow xlog_internal.h: the low 8 digits wrap at 2^32 / segSize.

import { RewindError, type RewindCode } from '../errors.js'

export type Lsn = bigint

export const INVALID_LSN: Lsn = 0n

const MIN_SEGMENT_SIZE = 1024 * 1024
const MAX_SEGMENT_SIZE = 1024 * 1024 * 1024
const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/
const SEGMENT_NAME = /^[0-9A-F]{24}$/

/**
 * Parses `X/X` (13–18) or `X/%08X` (19dev). Junk throws a RewindError with `code` (USAGE unless the
 * caller says where the text came from, e.g. TIMELINE_HISTORY_INVALID).
 */
export function parseLsn(text: string, code: RewindCode = 'USAGE'): Lsn {
  const m = LSN_TEXT.exec(text)
  if (m === null) throw new RewindError(code, `could not parse WAL location "${text}"`)
  return (BigInt(parseInt(m[1]!, 16)) << 32n) | BigInt(parseInt(m[2]!, 16))
}

/** `%X/%X`, upper-case, as every server from 13 to 18 prints it. */
export function formatLsn(lsn: Lsn): string {
  const hi = Number(lsn >> 32n)
  const lo = Number(lsn & 0xffffffffn)
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`
}

/** Power of two from 1 MiB to 1 GiB (IsValidWalSegSize). */
export function isValidSegmentSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_SEGMENT_SIZE && n <= MAX_SEGMENT_SIZE && (n & (n - 1)) === 0
}

/** XLByteToSeg: the segment holding byte `lsn`. */
export function segmentOf(lsn: Lsn, segSize: number): bigint {
  return lsn / BigInt(segSize)
}

/** XLogSegNoOffsetToRecPtr with offset 0. */
export function segmentStart(segno: bigint, segSize: number): Lsn {
  return segno * BigInt(segSize)
}

/** XLogSegmentOffset. */
export function offsetInSegment(lsn: Lsn, segSize: number): number {
  return Number(lsn % BigInt(segSize))
}

function hex8(n: number | bigint): string {
  return n.toString(16).toUpperCase().padStart(8, '0')
}

/** XLogFileName: `TTTTTTTTXXXXXXXXYYYYYYYY`. */
export function segmentFileName(tli: number, segno: bigint, segSize: number): string {
  const perId = 0x100000000n / BigInt(segSize)
  return hex8(tli) + hex8(segno / perId) + hex8(segno % perId)
}

/** The inverse of segmentFileName; null for anything that is not a segment name at this size. */
export function parseSegmentFileName(name: string, segSize: number): { tli: number; segno: bigint } | null {
  if (!SEGMENT_NAME.test(name)) return null
  const perId = 0x100000000n / BigInt(segSize)
  const tli = parseInt(name.slice(0, 8), 16)
  const log = BigInt(parseInt(name.slice(8, 16), 16))
  const seg = BigInt(parseInt(name.slice(16, 24), 16))
  // The server never writes a low part at or above 2^32 / segSize; such a name is not its file.
  if (seg >= perId) return null
  return { tli, segno: log * perId + seg }
}

/** TLHistoryFileName: `%08X.history`. */
export function historyFileName(tli: number): string {
  return `${hex8(tli)}.history`
}

/** MAXALIGN (8 bytes on every platform PostgreSQL 13–18 runs on here). */
export function maxAlign(n: bigint): bigint
export function maxAlign(n: number): number
export function maxAlign(n: bigint | number): bigint | number {
  if (typeof n === 'bigint') return (n + 7n) & ~7n
  return n + ((8 - (n % 8)) % 8)
}
