// XLogDecodeNextRecord's start: the page the record begins on, where on it, and its length; then
// the record goes to the path for a record on one page or to the one for a record across pages.

import type { AcrossPagesRecords } from './across-pages.js'
import { OVERWRITTEN, type AcrossPagesResult } from './across-pages.js'
import type { ReadCursor } from './cursor.js'
import { WalEnd } from './end-of-wal.js'
import type { WalGeometry } from './geometry.js'
import type { OnePageRecords } from './one-page.js'
import { headerSizeForInfo, pageInfo, SIZE_OF_XLOG_LONG_PHD, XLOG_BLCKSZ as B, XLP_FIRST_IS_CONTRECORD } from './page.js'
import type { PageReader } from './pages.js'
import { RecordHeader, type DecodedRecord } from './record.js'
import { RecordSite } from './record-site.js'

export class NextRecord {
  private readonly site = new RecordSite()

  constructor(
    private readonly pages: PageReader,
    private readonly geo: WalGeometry,
    private readonly onePage: OnePageRecords,
    private readonly acrossPages: AcrossPagesRecords,
  ) {}

  /**
   * The record at cursor `c`, which then moves past it; or the end of WAL there. null when a window
   * has to be read first (load()), after which the same call goes on.
   */
  read(c: ReadCursor): DecodedRecord | WalEnd | null {
    let r = this.acrossPages.waitsFor(c) ? this.acrossPages.resume() : this.readAt(c)
    // The record was replaced by one on a later page: read that one, at the cursor's readSeg/readOff.
    while (r === OVERWRITTEN) r = this.readAt(c)
    if (r instanceof WalEnd) this.pages.forget()
    return r
  }

  /** Reads the window the last read() answered null for. */
  load(): Promise<void> {
    return this.pages.load()
  }

  private readAt(c: ReadCursor): AcrossPagesResult {
    const site = this.site
    const inPage = c.readOff - site.pageOff
    // Most records follow another on the same page, past any page header: that page is at hand.
    if (inPage > SIZE_OF_XLOG_LONG_PHD && inPage < B && c.readSeg === site.seg && this.pages.holds(site.window, site.seg, site.pageOff)) {
      site.moveOnPage(c, c.readOff)
    } else {
      const outcome = this.placeOnItsPage(c)
      if (outcome !== undefined) return outcome
    }
    site.totLen = RecordHeader.totLen(site.buf, site.words, site.start)
    const onPage = B - (site.recOff - site.pageOff)
    if (site.totLen <= onPage) {
      site.available = site.totLen
      return this.onePage.read(site)
    }
    site.available = onPage
    return this.acrossPages.read(site)
  }

  /** Places the site at the record at cursor `c`: its page looked up and checked; undefined when done. */
  private placeOnItsPage(c: ReadCursor): WalEnd | null | undefined {
    const seg = c.readSeg
    const off = c.readOff
    const inPage = off % B
    const pageOff = off - inPage
    const w = this.pages.get(seg, pageOff, c)
    if (w === null || w instanceof WalEnd) return w
    const pos = pageOff - w.start
    const info = pageInfo(w.buf, pos)
    const hdr = headerSizeForInfo(info)
    const recInPage = inPage === 0 ? hdr : inPage
    if (recInPage < hdr || (recInPage === hdr && (info & XLP_FIRST_IS_CONTRECORD) !== 0)) return this.notARecordStart(c, hdr)
    const site = this.site
    site.cursor = c
    site.inWindow(w, pos + recInPage)
    site.seg = seg
    site.pageOff = pageOff
    site.recOff = pageOff + recInPage
    site.lsnHi = this.geo.hi(seg)
    site.lsnLo = this.geo.lo(seg, site.recOff)
    return undefined
  }

  /** The end of WAL at cursor `c`, which points into a page's header (of `hdr` bytes) or into what continues a record. */
  private notARecordStart(c: ReadCursor, hdr: number): WalEnd {
    const inPage = c.readOff % B
    if (inPage !== 0 && inPage < hdr) {
      return c.end(
        'bad-record-header',
        `invalid record offset at ${this.geo.text(c.readSeg, c.readOff)}: expected at least ${hdr}, got ${inPage}`,
      )
    }
    return c.end('bad-contrecord', `contrecord is requested by ${this.geo.text(c.readSeg, c.readOff - inPage + hdr)}`)
  }
}
