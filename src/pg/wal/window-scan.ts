// The records of a read window checked and decoded in one native call (native/wal-scan.c; see
// ../native.ts for why). The reader asks for the record it is at; on a miss, the window is scanned
// from there: the records one after the other on a page, from page to page by the page headers,
// across pages through the continuation headers, each with its CRC verdict and, when it lies on one
// page, its block references. Nothing from the scan is trusted blindly: a row is used only for a
// record at exactly that offset of the same window contents, after the reader's own position,
// page and prev-link checks, and whatever the scan could not check or decode the reader does itself.

import type { VersionProfile } from '../versions.js'
import { scanLayout, scanWalWindow, type ScanLayout } from '../native.js'
import { firstRecordInPage, XLOG_BLCKSZ } from './page.js'
import type { DecodedRecord } from './record.js'

/**
 * The layouts of native/wal-scan.h this adapter reads the scan's params and rows by, under the
 * names they have there. The addon exports its own (scanLayout): they must agree (checked below).
 */
export const SCAN_LAYOUT = Object.freeze({
  SCAN_OVERWRITE_FLAG: 0,
  SCAN_BIMG_HAS_HOLE: 1,
  SCAN_BIMG_APPLY: 2,
  SCAN_BIMG_COMPRESSED: 3,
  SCAN_TOPLEVEL_XID: 4,
  SCAN_MAX_BUILTIN_RMGR: 5,
  SCAN_CUSTOM_RMGRS: 6,
  SCAN_BLOCK_SIZE: 7,
  SCAN_PARAMS: 8,
  REC_START: 0,
  REC_FLAGS: 1,
  REC_BLOCKS: 2,
  REC_FIRST_BLOCK: 3,
  REC_MAIN_LEN: 4,
  REC_FPI_LEN: 5,
  REC_ORIGIN: 6,
  REC_TOPLEVEL_XID: 7,
  REC_STRIDE: 8,
  REC_CRC_OK: 1,
  REC_DECODED: 2,
  REC_HAS_ORIGIN: 4,
  REC_HAS_TOPLEVEL_XID: 8,
  BLK_ID: 0,
  BLK_FORK_FLAGS: 1,
  BLK_DATA_LEN: 2,
  BLK_SPC: 3,
  BLK_DB: 4,
  BLK_REL: 5,
  BLK_NUMBER: 6,
  BLK_BIMG_LEN: 7,
  BLK_HOLE_OFFSET: 8,
  BLK_HOLE_LEN: 9,
  BLK_BIMG_INFO: 10,
  BLK_STRIDE: 11,
})

const {
  SCAN_OVERWRITE_FLAG,
  SCAN_BIMG_HAS_HOLE,
  SCAN_BIMG_APPLY,
  SCAN_BIMG_COMPRESSED,
  SCAN_TOPLEVEL_XID,
  SCAN_MAX_BUILTIN_RMGR,
  SCAN_CUSTOM_RMGRS,
  SCAN_BLOCK_SIZE,
  SCAN_PARAMS,
  REC_START,
  REC_FLAGS,
  REC_BLOCKS,
  REC_FIRST_BLOCK,
  REC_MAIN_LEN,
  REC_FPI_LEN,
  REC_ORIGIN,
  REC_TOPLEVEL_XID,
  REC_STRIDE,
  REC_CRC_OK,
  REC_DECODED,
  REC_HAS_ORIGIN,
  REC_HAS_TOPLEVEL_XID,
  BLK_ID,
  BLK_FORK_FLAGS,
  BLK_DATA_LEN,
  BLK_SPC,
  BLK_DB,
  BLK_REL,
  BLK_NUMBER,
  BLK_BIMG_LEN,
  BLK_HOLE_OFFSET,
  BLK_HOLE_LEN,
  BLK_BIMG_INFO,
  BLK_STRIDE,
} = SCAN_LAYOUT

/** Where `native` (the addon's scanLayout) differs from SCAN_LAYOUT, one line per name; empty when they agree. */
export function layoutDifferences(native: ScanLayout): string[] {
  const ours: ScanLayout = SCAN_LAYOUT
  const names = new Set([...Object.keys(ours), ...Object.keys(native)])
  return [...names]
    .filter((name) => native[name] !== ours[name])
    .map((name) => `${name}: ${native[name] ?? 'missing'} in the addon, ${ours[name] ?? 'missing'} in window-scan.ts`)
}

if (scanLayout !== null) {
  const differences = layoutDifferences(scanLayout)
  if (differences.length > 0) {
    throw new Error(
      `the native addon's WAL scan layout (native/wal-scan.h) differs from src/pg/wal/window-scan.ts:\n  ` +
        `${differences.join('\n  ')}\nupdate SCAN_LAYOUT there, and rebuild the addon (npm run build:native, node scripts/prebuild.js)`,
    )
  }
}

const BKPBLOCK_HAS_IMAGE = 0x10

/** Records per scan (a 128 KiB window of the smallest records holds 5461; the rest is a second scan). */
const MAX_RECORDS = 4096
const MAX_BLOCKS = 2 * MAX_RECORDS

/** The scan's params[] (native/wal-scan.h): what differs between majors. */
export function scanParams(profile: VersionProfile, blockSize: number): Int32Array {
  const { bimg } = profile
  const params = new Int32Array(SCAN_PARAMS)
  params[SCAN_OVERWRITE_FLAG] = profile.xlpFirstIsOverwriteContrecord
  params[SCAN_BIMG_HAS_HOLE] = bimg.HAS_HOLE
  params[SCAN_BIMG_APPLY] = bimg.APPLY
  params[SCAN_BIMG_COMPRESSED] = bimg.COMPRESS_PGLZ | bimg.COMPRESS_LZ4 | bimg.COMPRESS_ZSTD
  params[SCAN_TOPLEVEL_XID] = profile.hasToplevelXidBlock ? 1 : 0
  params[SCAN_MAX_BUILTIN_RMGR] = profile.maxBuiltinRmgrId
  params[SCAN_CUSTOM_RMGRS] = profile.customRmgrs ? 1 : 0
  params[SCAN_BLOCK_SIZE] = blockSize
  return params
}

/** `len` bytes of a segment in `buf`, whose generation changes when it is refilled (the reader's Window). */
export interface ScanWindow {
  readonly gen: number
  readonly buf: Buffer
  readonly len: number
}

export class WindowScan {
  /** Whether scans are possible (the native addon is there). */
  static readonly available = scanWalWindow !== null

  private window: ScanWindow | null = null
  private gen = 0
  private buf: Buffer | null = null
  private count = 0
  private next = 0
  private readonly recs = new Int32Array(MAX_RECORDS * REC_STRIDE)
  private readonly blocks = new Int32Array(MAX_BLOCKS * BLK_STRIDE)
  private readonly params: Int32Array

  constructor(
    private readonly profile: VersionProfile,
    blockSize: number,
  ) {
    this.params = scanParams(profile, blockSize)
  }

  /**
   * The row of the record at `start` of `window`, scanning the window from there unless the last
   * scan has it next (or just gave it); -1 if the scan cannot reach a record there (the caller
   * then checks it alone).
   */
  find(window: ScanWindow, start: number): number {
    const i = this.next
    if (
      i < this.count &&
      this.recs[i * REC_STRIDE + REC_START] === start &&
      this.window === window &&
      this.gen === window.gen &&
      this.buf === window.buf
    ) {
      this.next = i + 1
      return i
    }
    return this.findAgain(window, start)
  }

  /**
   * find() off the sequence: the row just given again (a record the reader's general path takes
   * over), any other row of the last scan (a reader walking back over records it scanned), or a
   * new scan. A walk backwards along xl_prev (the search for the last common checkpoint) would
   * rescan the window for every record; instead the new scan starts at the first record of the
   * page of `start` and ends with that page, so each record of a window is scanned about once,
   * whichever way the reader goes.
   */
  private findAgain(window: ScanWindow, start: number): number {
    const { buf, len } = window
    const i = this.next
    const same = this.window === window && this.gen === window.gen && this.buf === buf
    if (same && i > 0 && i <= this.count && this.recs[(i - 1) * REC_STRIDE + REC_START] === start) return i - 1
    // The record before the one just given: the next step of a walk back.
    if (same && i > 1 && i <= this.count && this.recs[(i - 2) * REC_STRIDE + REC_START] === start) {
      this.next = i - 1
      return i - 2
    }
    if (same) {
      const row = this.rowOf(start)
      if (row >= 0) {
        this.next = row + 1
        return row
      }
    }
    let from = start
    let until = len
    const lastStart = this.count > 0 ? this.recs[REC_START]! : -1
    if (same && start < lastStart) {
      const page = start - (start % XLOG_BLCKSZ)
      const first = page + firstRecordInPage(buf, page)
      if (first <= start) from = first
      until = Math.min(len, page + XLOG_BLCKSZ)
    }
    this.window = window
    this.gen = window.gen
    this.buf = buf
    this.count = scanWalWindow!(buf, until, from, this.params, this.recs, this.blocks)
    const row = this.rowOf(start)
    this.next = row + 1
    return row
  }

  /** The row of the record at `start` in the last scan (rows are in ascending order), or -1. */
  private rowOf(start: number): number {
    const recs = this.recs
    let lo = 0
    let hi = this.count - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const at = recs[mid * REC_STRIDE + REC_START]!
      if (at === start) return mid
      if (at < start) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }

  /** Whether the CRC of the record of row `i` holds. */
  crcOk(i: number): boolean {
    return (this.recs[i * REC_STRIDE + REC_FLAGS]! & REC_CRC_OK) !== 0
  }

  /**
   * Whether row `i` was decoded: the record lies on one page, its length and resource manager are
   * valid, its CRC holds and its block headers add up (everything but its position and prev link).
   */
  decoded(i: number): boolean {
    return (this.recs[i * REC_STRIDE + REC_FLAGS]! & REC_DECODED) !== 0
  }

  /** What DecodeXLogRecord finds after the header, from decoded row `i`, into `rec`. */
  fill(rec: DecodedRecord, i: number): void {
    const { recs, blocks } = this
    const { bimg } = this.profile
    const r = i * REC_STRIDE
    const flags = recs[r + REC_FLAGS]!
    const n = recs[r + REC_BLOCKS]!
    let b = recs[r + REC_FIRST_BLOCK]! * BLK_STRIDE
    for (let k = 0; k < n; k++, b += BLK_STRIDE) {
      const ref = rec.blockSlot(k)
      const forkFlags = blocks[b + BLK_FORK_FLAGS]!
      let image
      if ((forkFlags & BKPBLOCK_HAS_IMAGE) !== 0) {
        image = ref.imageSlot()
        image.set(blocks[b + BLK_BIMG_LEN]!, blocks[b + BLK_HOLE_OFFSET]!, blocks[b + BLK_HOLE_LEN]!, blocks[b + BLK_BIMG_INFO]!, bimg)
      }
      ref.set(
        blocks[b + BLK_ID]!,
        forkFlags,
        blocks[b + BLK_SPC]! >>> 0,
        blocks[b + BLK_DB]! >>> 0,
        blocks[b + BLK_REL]! >>> 0,
        blocks[b + BLK_NUMBER]! >>> 0,
        blocks[b + BLK_DATA_LEN]!,
        image,
        bimg,
      )
    }
    rec.setBody(
      n,
      (flags & REC_HAS_ORIGIN) !== 0 ? recs[r + REC_ORIGIN]! : undefined,
      (flags & REC_HAS_TOPLEVEL_XID) !== 0 ? recs[r + REC_TOPLEVEL_XID]! >>> 0 : undefined,
      recs[r + REC_MAIN_LEN]!,
      recs[r + REC_FPI_LEN]!,
    )
  }
}
