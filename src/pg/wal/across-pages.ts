// A record across pages (XLogDecodeNextRecord's gathering): its pieces followed from page to
// page, each page checked to continue it with exactly the bytes still missing. Read where it lies
// when its pages are at hand: the CRC runs over the pieces, the headers are decoded on the first
// page, and only main data that itself crosses a page is copied. Otherwise (a window to wait for,
// one refilled meanwhile, headers past the first page) it is gathered into an arena, or memory of
// its own when big, and the gathering survives the wait for a window.

import { crc32cRange, wordsOf } from '../crc32c.js'
import { maxAlign } from '../lsn.js'
import { ARENA_RECORD_MAX, type Arena, type ArenaRing } from './arena.js'
import { copyBytes } from './bytes.js'
import type { ReadCursor } from './cursor.js'
import { WalEnd } from './end-of-wal.js'
import { headerSizeForInfo, pageInfo, pageRemLen, XLOG_BLCKSZ as B, XLP_FIRST_IS_CONTRECORD } from './page.js'
import type { PageReader } from './pages.js'
import {
  decodeRecordAt,
  NEED_MORE,
  RecordHeader,
  recordCrcMatches,
  SIZE_OF_XLOG_RECORD,
  type DecodedRecord,
  type DecodeRules,
} from './record.js'
import { RecordSite, type RecordChecks } from './record-site.js'
import type { WindowScan } from './window-scan.js'
import type { Window } from './windows.js'

/**
 * The answer when the rest of the record was never written: recovery replaced it with what follows
 * on a later page (XLP_FIRST_IS_OVERWRITE_CONTRECORD), where the cursor's readSeg/readOff now are.
 */
export const OVERWRITTEN: unique symbol = Symbol('overwritten contrecord')

export type AcrossPagesResult = DecodedRecord | WalEnd | typeof OVERWRITTEN | null

/** Following a record's pieces: the page reached and the piece found there. */
class Walk {
  site!: RecordSite
  seg = 0
  pageOff = 0
  /** The last piece: in `window` at `pos`, after a page header of `hdr` bytes. */
  window!: Window
  pos = 0
  hdr = 0
}

/** A record being gathered: its site, whose bytes are the memory gathered into. */
class Gathering {
  readonly site = new RecordSite()
  readonly walk = new Walk()
  headerChecked = false
  arena: Arena | null = null
  cap = 0
  got = 0
  lastPiece = 0

  /** Gathering the record of `site` into an arena if it is not too long, else into memory of its own. */
  begin(site: RecordSite, arenas: ArenaRing): void {
    const totLen = site.totLen
    const s = this.site
    s.copyFrom(site)
    s.available = totLen
    this.arena = totLen <= ARENA_RECORD_MAX ? arenas.take(totLen) : null
    if (this.arena !== null) {
      s.buf = this.arena.buf
      s.words = this.arena.words
      s.start = this.arena.used
      this.cap = totLen
    } else {
      this.cap = Math.min(totLen, 16 * B)
      s.buf = Buffer.allocUnsafe(this.cap)
      s.words = wordsOf(s.buf)
      s.start = 0
    }
    s.owner = this.arena
    this.got = 0
  }

  append(from: Buffer, at: number, len: number): void {
    const s = this.site
    if (this.got + len > this.cap) {
      // Memory of its own grows with what the pages really hold: a garbage xl_tot_len cannot make
      // the reader allocate more than the WAL that backs it up.
      this.cap = Math.min(s.totLen, Math.max(this.cap * 2, this.got + len))
      const bigger = Buffer.allocUnsafe(this.cap)
      s.buf.copy(bigger, 0, 0, this.got)
      s.buf = bigger
      s.words = wordsOf(bigger)
    }
    copyBytes(from, at, at + len, s.buf, s.start + this.got)
    this.got += len
    this.lastPiece = len
  }
}

export class AcrossPagesRecords {
  private readonly overwriteFlag: number
  // The pieces of a record read where it lies, reused from record to record.
  private readonly pieceWindow: Window[] = []
  private readonly pieceGen: number[] = []
  private readonly piecePos: number[] = []
  private readonly pieceLen: number[] = []
  private readonly walk = new Walk()
  private readonly gathering = new Gathering()
  /** The cursor whose gathering waits for a window. */
  private waiting: ReadCursor | null = null

  constructor(
    private readonly pages: PageReader,
    private readonly checks: RecordChecks,
    private readonly rules: DecodeRules,
    private readonly scan: WindowScan | null,
    private readonly arenas: ArenaRing,
  ) {
    this.overwriteFlag = rules.profile.xlpFirstIsOverwriteContrecord
  }

  /** The record of `site`, which goes past its first page; null when a window has to be read first (then resume()). */
  read(site: RecordSite): AcrossPagesResult {
    if (site.available < SIZE_OF_XLOG_RECORD) {
      if (site.totLen < SIZE_OF_XLOG_RECORD) return this.checks.tooShort(site, site.totLen)
      return this.gather(site, false)
    }
    const bad = this.checks.header(site, site.start, site)
    if (bad !== null) return bad
    return this.inPlace(site) ?? this.gather(site, true)
  }

  /** Whether a gathering for cursor `c` waits for a window: then resume() goes on with it. */
  waitsFor(c: ReadCursor): boolean {
    return this.waiting === c
  }

  resume(): AcrossPagesResult {
    return this.gatherOn()
  }

  /** Forgets a gathering (the reader's buffers are let go). */
  drop(): void {
    this.waiting = null
  }

  /** The record read where it lies; null to gather it instead. */
  private inPlace(site: RecordSite): DecodedRecord | WalEnd | typeof OVERWRITTEN | null {
    const { pieceWindow, pieceGen, piecePos, pieceLen, walk } = this
    const c = site.cursor
    pieceWindow[0] = site.window
    pieceGen[0] = site.window.gen
    piecePos[0] = site.start
    pieceLen[0] = site.available
    let n = 1
    let got = site.available
    walk.site = site
    walk.seg = site.seg
    walk.pageOff = site.pageOff
    while (got < site.totLen) {
      const piece = this.nextPiece(walk, got)
      if (typeof piece !== 'number') return piece
      pieceWindow[n] = walk.window
      pieceGen[n] = walk.window.gen
      piecePos[n] = walk.pos
      pieceLen[n] = piece
      n++
      got += piece
    }
    // A window read for a later page may have refilled the one of an earlier piece.
    for (let i = 0; i < n; i++) if (pieceWindow[i]!.gen !== pieceGen[i]) return null
    if (!this.piecesCrcMatch(site, n)) return this.checks.badCrc(site)
    const rec = decodeRecordAt(c.record(), site, this.rules)
    if (rec === NEED_MORE) return null
    if (typeof rec === 'string') return c.end('bad-record', rec)
    this.placeMainData(rec, site.totLen, n)
    return c.pass(rec, walk.seg, walk.pageOff + walk.hdr + maxAlign(pieceLen[n - 1]!))
  }

  /**
   * Steps `walk` to the record's next page and checks that the page continues it, `got` bytes
   * read: the length of its piece there (at walk.pos of walk.window), the end of WAL, OVERWRITTEN,
   * or null when the page's window has to be read first (the same step is taken again after).
   */
  private nextPiece(walk: Walk, got: number): number | WalEnd | typeof OVERWRITTEN | null {
    const { site } = walk
    const c = site.cursor
    let seg = walk.seg
    let pageOff = walk.pageOff + B
    if (pageOff === this.pages.segSize) {
      seg += 1
      pageOff = 0
    }
    const page = this.pages.get(seg, pageOff, c)
    if (page === null || page instanceof WalEnd) return page
    walk.seg = seg
    walk.pageOff = pageOff
    const pos = pageOff - page.start
    const info = pageInfo(page.buf, pos)
    if ((info & this.overwriteFlag) !== 0) {
      c.readSeg = seg
      c.readOff = pageOff
      return OVERWRITTEN
    }
    if ((info & XLP_FIRST_IS_CONTRECORD) === 0) return c.end('bad-contrecord', `there is no contrecord flag at ${this.checks.where(site)}`)
    const remLen = pageRemLen(page.buf, pos)
    if (remLen === 0 || site.totLen !== remLen + got) {
      return c.end('bad-contrecord', `invalid contrecord length ${remLen} (expected ${site.totLen - got}) at ${this.checks.where(site)}`)
    }
    walk.window = page
    walk.hdr = headerSizeForInfo(info)
    walk.pos = pos + walk.hdr
    return Math.min(B - walk.hdr, remLen)
  }

  /** The CRC of the record in `n` pieces: the window scan's verdict when all are in one window, else computed. */
  private piecesCrcMatch(site: RecordSite, n: number): boolean {
    const { pieceWindow, piecePos, pieceLen } = this
    const first = site.window
    let oneWindow = true
    for (let i = 1; i < n; i++) if (pieceWindow[i] !== first) oneWindow = false
    if (this.scan !== null && oneWindow) {
      const row = this.scan.find(first, site.start)
      if (row >= 0) return this.scan.crcOk(row)
    }
    // The body [24, tot_len) piece by piece, then the header (all on the first page).
    let crc = 0
    let v = 0
    for (let i = 0; i < n; i++) {
      const from = Math.max(v, SIZE_OF_XLOG_RECORD)
      const to = v + pieceLen[i]!
      if (to > from) {
        const w = pieceWindow[i]!
        const at = piecePos[i]! + (from - v)
        crc = crc32cRange(w.buf, at, piecePos[i]! + pieceLen[i]!, crc, (at & 3) === 0 ? w.words : null)
      }
      v = to
    }
    crc = crc32cRange(site.buf, site.start, site.start + RecordHeader.crcCoveredLength, crc, (site.start & 3) === 0 ? site.words : null)
    return crc === RecordHeader.crc(site.buf, site.words, site.start)
  }

  /** The main data of the record in `n` pieces: a view of the piece that holds all of it, else copied out of several. */
  private placeMainData(rec: DecodedRecord, totLen: number, n: number): void {
    const { pieceWindow, piecePos, pieceLen } = this
    const mainLen = rec.main_data_len
    const mainStart = totLen - mainLen
    let v = totLen
    for (let i = n - 1; i >= 0; i--) {
      v -= pieceLen[i]!
      if (mainStart >= v) {
        if (mainStart + mainLen <= v + pieceLen[i]!) {
          rec.setMainData(pieceWindow[i]!.buf, pieceWindow[i]!.owner, piecePos[i]! + (mainStart - v))
          return
        }
        break
      }
    }
    const arena = mainLen <= ARENA_RECORD_MAX ? this.arenas.take(mainLen) : null
    const out = arena !== null ? arena.buf : Buffer.allocUnsafe(mainLen)
    const base = arena !== null ? arena.used : 0
    let w = 0
    v = 0
    for (let i = 0; i < n && w < mainLen; i++) {
      const len = pieceLen[i]!
      if (v + len > mainStart) {
        const from = Math.max(mainStart - v, 0)
        copyBytes(pieceWindow[i]!.buf, piecePos[i]! + from, piecePos[i]! + len, out, base + w)
        w += len - from
      }
      v += len
    }
    if (arena !== null) arena.used = base + maxAlign(mainLen)
    rec.setMainData(out, arena, base)
  }

  /** Starts gathering the record of `site` from its first page; `headerChecked` when its header was on that page and checked. */
  private gather(site: RecordSite, headerChecked: boolean): AcrossPagesResult {
    const g = this.gathering
    g.begin(site, this.arenas)
    g.headerChecked = headerChecked
    g.walk.site = g.site
    g.walk.seg = site.seg
    g.walk.pageOff = site.pageOff
    return this.gatherOn()
  }

  private gatherOn(): AcrossPagesResult {
    const g = this.gathering
    const { site, walk } = g
    const c = site.cursor
    this.waiting = null
    if (g.got === 0) {
      const page = this.pages.get(site.seg, site.pageOff, c)
      if (page === null) return this.wait(c)
      if (page instanceof WalEnd) return page
      const inPage = site.recOff - site.pageOff
      g.append(page.buf, site.pageOff - page.start + inPage, B - inPage)
    }
    while (g.got < site.totLen) {
      const piece = this.nextPiece(walk, g.got)
      if (piece === null) return this.wait(c)
      if (typeof piece !== 'number') return piece
      g.append(walk.window.buf, walk.pos, piece)
      if (!g.headerChecked) {
        const bad = this.checks.header(site, site.start, site)
        if (bad !== null) return bad
        g.headerChecked = true
      }
    }
    if (!recordCrcMatches(site.buf, site.start, site.totLen, site.words)) return this.checks.badCrc(site)
    const rec = decodeRecordAt(c.record(), site, this.rules)
    if (typeof rec === 'string') return c.end('bad-record', rec)
    // Only a record that was read keeps its arena space.
    if (g.arena !== null) g.arena.used = site.start + maxAlign(site.totLen)
    return c.pass(rec, walk.seg, walk.pageOff + walk.hdr + maxAlign(g.lastPiece))
  }

  /** Gathering for cursor `c` goes on (resume()) once the window asked for is read. */
  private wait(c: ReadCursor): null {
    this.waiting = c
    return null
  }
}
