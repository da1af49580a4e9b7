// WAL page headers (XLogPageHeaderData / XLogLongPageHeaderData, access/xlog_internal.h) and the
// checks xlogreader's XLogReaderValidatePageHeader applies. The validator works on plain numbers at
// an offset of a larger buffer so the reader can check every page without allocating.

import { maxAlign, segmentFileName, type Lsn } from '../lsn.js'
import type { VersionProfile } from '../versions.js'
import { u16, u32 } from './bytes.js'

export const XLOG_BLCKSZ = 8192
/** MAXALIGN(sizeof(XLogPageHeaderData)). */
export const SIZE_OF_XLOG_SHORT_PHD = 24
/** MAXALIGN(sizeof(XLogLongPageHeaderData)). */
export const SIZE_OF_XLOG_LONG_PHD = 40

// xlp_info bits; XLP_FIRST_IS_OVERWRITE_CONTRECORD and XLP_ALL_FLAGS are in the version profile.
export const XLP_FIRST_IS_CONTRECORD = 0x0001
export const XLP_LONG_HEADER = 0x0002
export const XLP_BKP_REMOVABLE = 0x0004

// XLogPageHeaderData, access/xlog_internal.h
const XLP_MAGIC = 0 /* uint16 */,
  XLP_INFO = 2 /* uint16 */,
  XLP_TLI = 4 /* uint32 */
const XLP_PAGEADDR = 8 /* XLogRecPtr */,
  XLP_REM_LEN = 16 /* uint32 */
// XLogLongPageHeaderData
const XLP_SYSID = 24 /* uint64 */,
  XLP_SEG_SIZE = 32 /* uint32 */,
  XLP_XLOG_BLCKSZ = 36 /* uint32 */

export interface PageHeader {
  readonly xlp_magic: number
  readonly xlp_info: number
  readonly xlp_tli: number
  readonly xlp_pageaddr: Lsn
  readonly xlp_rem_len: number
  /** Present when XLP_LONG_HEADER is set. */
  readonly long?: { readonly xlp_sysid: bigint; readonly xlp_seg_size: number; readonly xlp_xlog_blcksz: number }
}

/** Decodes the page header at `offset` (24 bytes, 40 with XLP_LONG_HEADER). */
export function decodePageHeader(buf: Buffer, offset = 0): PageHeader {
  const info = buf.readUInt16LE(offset + XLP_INFO)
  const short = {
    xlp_magic: buf.readUInt16LE(offset + XLP_MAGIC),
    xlp_info: info,
    xlp_tli: buf.readUInt32LE(offset + XLP_TLI),
    xlp_pageaddr: buf.readBigUInt64LE(offset + XLP_PAGEADDR),
    xlp_rem_len: buf.readUInt32LE(offset + XLP_REM_LEN),
  }
  if ((info & XLP_LONG_HEADER) === 0) return short
  return {
    ...short,
    long: {
      xlp_sysid: buf.readBigUInt64LE(offset + XLP_SYSID),
      xlp_seg_size: buf.readUInt32LE(offset + XLP_SEG_SIZE),
      xlp_xlog_blcksz: buf.readUInt32LE(offset + XLP_XLOG_BLCKSZ),
    },
  }
}

/** XLogPageHeaderSize: 40 with XLP_LONG_HEADER, else 24. */
export function pageHeaderSize(buf: Buffer, offset = 0): number {
  return headerSizeForInfo(u16(buf, offset + XLP_INFO))
}

/** XLogPageHeaderSize from xlp_info already read (the reader has it at hand). */
export function headerSizeForInfo(info: number): number {
  return info & XLP_LONG_HEADER ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
}

export type PageProblem = 'bad-magic' | 'bad-pageaddr' | 'bad-page-header'

/** What a page is checked against. */
export interface PageExpectation {
  readonly profile: VersionProfile
  readonly segSize: number
  readonly blockSize: number
  /** pg_control's system_identifier as two 32-bit halves, or null to skip the check. */
  readonly sysidHi: number | null
  readonly sysidLo: number
}

/** Names a segment in messages: the source knows which timeline's file it opened. */
export type SegmentNamer = (segno: number) => string

export function defaultSegmentNamer(tli: number, segSize: number): SegmentNamer {
  return (segno) => segmentFileName(tli, BigInt(segno), segSize)
}

function hex(n: number): string {
  return n.toString(16).toUpperCase()
}

function pageLsnText(pageHi: number, pageLo: number): string {
  return `${hex(pageHi)}/${hex(pageLo)}`
}

function whereText(segno: number, pageOff: number, pageHi: number, pageLo: number, nameOf: SegmentNamer): string {
  return `in WAL segment ${nameOf(segno)}, LSN ${pageLsnText(pageHi, pageLo)}, offset ${pageOff}`
}

/**
 * XLogReaderValidatePageHeader without the timeline sequence check (the reader keeps that state):
 * null if the page at `pos` of `buf` is a valid header for address pageHi/pageLo, which is at
 * `pageOff` of segment `segno`; otherwise the reason and the server's message.
 */
export function checkPageHeader(
  buf: Buffer,
  pos: number,
  segno: number,
  pageOff: number,
  pageHi: number,
  pageLo: number,
  expect: PageExpectation,
  nameOf: SegmentNamer,
): { reason: PageProblem; message: string } | null {
  const magic = u16(buf, pos + XLP_MAGIC)
  if (magic !== expect.profile.walPageMagic) {
    return {
      reason: 'bad-magic',
      message: `invalid magic number ${hex(magic).padStart(4, '0')} ${whereText(segno, pageOff, pageHi, pageLo, nameOf)}`,
    }
  }
  const info = u16(buf, pos + XLP_INFO)
  if ((info & ~expect.profile.xlpAllFlags) !== 0) {
    return {
      reason: 'bad-page-header',
      message: `invalid info bits ${hex(info).padStart(4, '0')} ${whereText(segno, pageOff, pageHi, pageLo, nameOf)}`,
    }
  }
  if ((info & XLP_LONG_HEADER) !== 0) {
    if (expect.sysidHi !== null && (u32(buf, pos + XLP_SYSID + 4) !== expect.sysidHi || u32(buf, pos + XLP_SYSID) !== expect.sysidLo)) {
      const found = buf.readBigUInt64LE(pos + XLP_SYSID)
      const wanted = (BigInt(expect.sysidHi) << 32n) | BigInt(expect.sysidLo)
      return {
        reason: 'bad-page-header',
        message: `WAL file is from different database system: WAL file database system identifier is ${found}, pg_control database system identifier is ${wanted}`,
      }
    }
    if (u32(buf, pos + XLP_SEG_SIZE) !== expect.segSize) {
      return { reason: 'bad-page-header', message: 'WAL file is from different database system: incorrect segment size in page header' }
    }
    if (u32(buf, pos + XLP_XLOG_BLCKSZ) !== XLOG_BLCKSZ) {
      return { reason: 'bad-page-header', message: 'WAL file is from different database system: incorrect XLOG_BLCKSZ in page header' }
    }
  } else if (pageOff === 0) {
    // The first page of a segment must carry the long header.
    return {
      reason: 'bad-page-header',
      message: `invalid info bits ${hex(info).padStart(4, '0')} ${whereText(segno, pageOff, pageHi, pageLo, nameOf)}`,
    }
  }
  // A recycled segment still holds old pages; their address is what gives them away.
  const addrLo = u32(buf, pos + XLP_PAGEADDR)
  const addrHi = u32(buf, pos + XLP_PAGEADDR + 4)
  if (addrLo !== pageLo || addrHi !== pageHi) {
    return {
      reason: 'bad-pageaddr',
      message: `unexpected pageaddr ${pageLsnText(addrHi, addrLo)} ${whereText(segno, pageOff, pageHi, pageLo, nameOf)}`,
    }
  }
  return null
}

/** xlp_info of the page at `pos`. */
export function pageInfo(buf: Buffer, pos: number): number {
  return u16(buf, pos + XLP_INFO)
}

/**
 * Where the first record that starts on the page at `pos` would be, as an offset in the page: past
 * the header and the (MAXALIGNed) part that continues an earlier record. XLOG_BLCKSZ or more when
 * that continuation fills the page.
 */
export function firstRecordInPage(buf: Buffer, pos: number): number {
  const info = pageInfo(buf, pos)
  return headerSizeForInfo(info) + ((info & XLP_FIRST_IS_CONTRECORD) !== 0 ? maxAlign(pageRemLen(buf, pos)) : 0)
}

/** xlp_tli of the page at `pos`. */
export function pageTli(buf: Buffer, pos: number): number {
  return u32(buf, pos + XLP_TLI)
}

/** xlp_rem_len of the page at `pos`. */
export function pageRemLen(buf: Buffer, pos: number): number {
  return u32(buf, pos + XLP_REM_LEN)
}
