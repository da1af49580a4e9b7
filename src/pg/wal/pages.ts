// WAL pages as xlogreader's ReadPageInternal hands them out: a page's header is validated
// (XLogReaderValidatePageHeader) when the page is entered, a segment entered away from its start
// has its first page validated too, and the timeline IDs of the pages read never go down.

import { segmentFileName } from '../lsn.js'
import type { ReadCursor } from './cursor.js'
import { WalEnd } from './end-of-wal.js'
import { hex, type WalGeometry } from './geometry.js'
import { checkPageHeader, pageTli, XLOG_BLCKSZ as B, type PageExpectation } from './page.js'
import type { WalSegmentSource, Window, WindowCache } from './windows.js'

export class PageReader {
  readonly segSize: number
  // xlogreader's read state: the segment and page last read (a segment is entered once; a page is
  // validated once), and the last page's timeline for the sequence check.
  private lastSeg = -1
  private lastPageIdx = -1
  private latestPageIdx = -1
  private latestPageTli = 0
  // The page get() gave last, while its window keeps its generation: most records are on the page
  // of the one before.
  private page: Window | null = null
  private pageGen = 0
  private pageSeg = -1
  private pageOff = -1
  // What get() needed when it answered null, for load().
  private wantedSeg = -1
  private wantedPageOff = -1
  private readonly nameOf = (seg: number): string => this.segmentName(seg)

  constructor(
    private readonly windows: WindowCache,
    private readonly geo: WalGeometry,
    private readonly expect: PageExpectation,
    private readonly source: WalSegmentSource,
  ) {
    this.segSize = geo.segSize
  }

  /**
   * The window holding the valid page at `pageOff` of segment `seg`; the end of WAL at the cursor
   * when a page is invalid or the file too short; null when a window has to be read first (load()).
   */
  get(seg: number, pageOff: number, c: ReadCursor): Window | WalEnd | null {
    const memo = this.page
    if (memo !== null && this.holds(memo, seg, pageOff)) return memo
    return this.enter(seg, pageOff, c)
  }

  /** get() of a page other than the last one. */
  private enter(seg: number, pageOff: number, c: ReadCursor): Window | WalEnd | null {
    if (seg !== this.lastSeg && pageOff !== 0) {
      const first = this.validPage(seg, 0, c)
      if (first === null || first instanceof WalEnd) return first
    }
    const w = this.validPage(seg, pageOff, c)
    if (w === null || w instanceof WalEnd) return w
    this.lastSeg = seg
    this.page = w
    this.pageGen = w.gen
    this.pageSeg = seg
    this.pageOff = pageOff
    return w
  }

  /** Whether get() would give window `w` for the page at `pageOff` of segment `seg` as it is, without a look. */
  holds(w: Window, seg: number, pageOff: number): boolean {
    return w === this.page && pageOff === this.pageOff && seg === this.pageSeg && w.gen === this.pageGen && seg === this.lastSeg
  }

  /** Reads the window get() last answered null for. */
  async load(): Promise<void> {
    await this.windows.load(this.wantedSeg, this.wantedPageOff)
  }

  /** Forgets the read state, as xlogreader does at an end of WAL: the next page read is validated again. */
  forget(): void {
    this.lastSeg = -1
    this.lastPageIdx = -1
    this.page = null
  }

  /** The file name of segment `seg`, for messages. */
  segmentName(seg: number): string {
    return this.source.segmentName?.(BigInt(seg)) ?? segmentFileName(this.latestPageTli || 1, BigInt(seg), this.geo.segSize)
  }

  private validPage(seg: number, pageOff: number, c: ReadCursor): Window | WalEnd | null {
    const w = this.windows.get(seg, pageOff)
    if (w === null) {
      this.wantedSeg = seg
      this.wantedPageOff = pageOff
      return null
    }
    const pos = pageOff - w.start
    if (pos + B > w.len) {
      return c.end('truncated-segment', `could not read file "${this.segmentName(seg)}": read ${Math.max(0, w.len - pos)} of ${B}`)
    }
    const pageIdx = seg * this.geo.pagesPerSeg + pageOff / B
    if (pageIdx === this.lastPageIdx) return w
    const hi = this.geo.hi(seg)
    const lo = this.geo.lo(seg, pageOff)
    const problem = checkPageHeader(w.buf, pos, seg, pageOff, hi, lo, this.expect, this.nameOf)
    if (problem !== null) return c.end(problem.reason, problem.message)
    const tli = pageTli(w.buf, pos)
    // Child timelines have higher TLIs, so they never go down along a consistent WAL sequence.
    if (pageIdx > this.latestPageIdx && tli < this.latestPageTli) {
      return c.end(
        'bad-page-header',
        `out-of-sequence timeline ID ${tli} (after ${this.latestPageTli}) in WAL segment ` +
          `${this.segmentName(seg)}, LSN ${hex(hi)}/${hex(lo)}, offset ${pageOff}`,
      )
    }
    this.latestPageIdx = pageIdx
    this.latestPageTli = tli
    this.lastPageIdx = pageIdx
    return w
  }
}
