// The CRCs of the WAL records of a read window, computed ahead in one native call (see
// ../crc32c-groups.ts for why). The reader asks for the record it is at; on a miss, the records of
// the window from there on are found by walking it as the reader will (records on one page one
// after the other, records across pages through the continuation pages' headers) and their CRCs
// computed together. Nothing from the walk is trusted: a CRC is used only for a record at exactly
// that offset of the same buffer contents, and the reader makes all of its own checks.

import { maxAlign } from '../lsn.js'
import { crc32cGroups } from '../crc32c-groups.js'
import { firstRecordInPage, headerSizeForInfo, pageInfo, XLOG_BLCKSZ, XLP_FIRST_IS_CONTRECORD } from './page.js'
import { RecordHeader, SIZE_OF_XLOG_RECORD } from './record.js'

const B = XLOG_BLCKSZ
/** Records per batch (a 128 KiB window of the smallest records holds 5461). */
const MAX_RECORDS = 4096
const MAX_RANGES = 3 * MAX_RECORDS

/** A window buffer whose generation changes when it is refilled (the reader's Slot). */
export interface WindowOwner {
  readonly gen: number
}

export const CRC_UNKNOWN = -1
export const CRC_BAD = 0
export const CRC_GOOD = 1

export class CrcAhead {
  /** Whether batches are possible (the native addon is there). */
  static readonly available = crc32cGroups !== null

  private owner: WindowOwner | null = null
  private gen = 0
  private buf: Buffer | null = null
  private count = 0
  private next = 0
  private readonly starts = new Int32Array(MAX_RECORDS)
  private readonly ends = new Int32Array(MAX_RECORDS)
  private readonly values = new Int32Array(MAX_RECORDS)
  private readonly ranges = new Int32Array(2 * MAX_RANGES)

  /** @param overwriteFlag the profile's XLP_FIRST_IS_OVERWRITE_CONTRECORD (0 before 15). */
  constructor(private readonly overwriteFlag: number) {}

  /**
   * Whether the CRC of the record at `start` of the window (`len` bytes of `buf`, owned by `owner`)
   * is `expected`: CRC_GOOD, CRC_BAD, or CRC_UNKNOWN when the walk could not reach the record
   * (then the caller computes it).
   */
  check(owner: WindowOwner, buf: Buffer, len: number, start: number, expected: number): number {
    let i = this.next
    if (this.owner !== owner || this.gen !== owner.gen || this.buf !== buf || i >= this.count || this.starts[i] !== start) {
      this.fill(buf, len, start)
      this.owner = owner
      this.gen = owner.gen
      this.buf = buf
      i = 0
      if (this.count === 0 || this.starts[0] !== start) return CRC_UNKNOWN
    }
    this.next = i + 1
    return this.values[i] === (expected | 0) ? CRC_GOOD : CRC_BAD
  }

  /** Walks the window from the record at `start` and computes the CRCs of the records found. */
  private fill(buf: Buffer, len: number, start: number): void {
    const { starts, ends, ranges } = this
    let n = 0
    let r = 0
    let p = start
    while (n < MAX_RECORDS && r + 2 * Math.floor(len / B) + 4 <= MAX_RANGES && p + SIZE_OF_XLOG_RECORD <= len) {
      const inPage = p % B
      if (inPage === 0 || inPage > B - SIZE_OF_XLOG_RECORD) {
        // At a page start, or a header that goes on past its page (the reader gathers those).
        p = firstRecordFrom(buf, len, p - inPage + (inPage === 0 ? 0 : B))
        if (p < 0) break
        continue
      }
      const totLen = RecordHeader.totLen(buf, p)
      if (totLen < SIZE_OF_XLOG_RECORD) break
      const at = p
      const first = r
      if (inPage + totLen <= B) {
        ranges[2 * r] = p + SIZE_OF_XLOG_RECORD
        ranges[2 * r + 1] = p + totLen
        r++
        p += maxAlign(totLen)
      } else {
        // Across pages: the body piece by piece, as long as all of it is in this window.
        ranges[2 * r] = p + SIZE_OF_XLOG_RECORD
        ranges[2 * r + 1] = p - inPage + B
        r++
        let got = B - inPage
        let page = p - inPage
        let after = -1
        while (got < totLen) {
          page += B
          if (page + B > len) break
          const info = pageInfo(buf, page)
          if ((info & XLP_FIRST_IS_CONTRECORD) === 0 || (info & this.overwriteFlag) !== 0) break
          const hdr = headerSizeForInfo(info)
          const piece = Math.min(B - hdr, totLen - got)
          ranges[2 * r] = page + hdr
          ranges[2 * r + 1] = page + hdr + piece
          r++
          got += piece
          if (got === totLen) after = page + hdr + maxAlign(piece)
        }
        if (after < 0) {
          r = first
          break
        }
        p = after
      }
      ranges[2 * r] = at
      ranges[2 * r + 1] = at + RecordHeader.crcCoveredLength
      r++
      starts[n] = at
      ends[n++] = r
    }
    this.next = 0
    this.count = n === 0 ? 0 : crc32cGroups!(buf, ranges, ends, n, this.values)
  }
}

/**
 * Where the first record starting on the page at `page` (a window offset) or after it is, going by
 * the page headers alone (past the part of each page that continues an earlier record); -1 if that
 * is beyond the `len` bytes of the window.
 */
function firstRecordFrom(buf: Buffer, len: number, page: number): number {
  for (; page + B <= len; page += B) {
    const first = firstRecordInPage(buf, page)
    if (first < B) return page + first
  }
  return -1
}
