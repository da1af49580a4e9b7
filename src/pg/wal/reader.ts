// Reads WAL records from a run of segments the way xlogreader does: page headers validated as pages
// are entered, records gathered across pages and segments, xl_prev links and CRCs checked, and the
// first failure reported as an end of WAL with the server's message. The parts, each in a module
// of its own: windows.ts reads segments in windows, pages.ts validates pages, next-record.ts finds
// where a record starts and hands it to one-page.ts or across-pages.ts, which check and decode it
// (with the native window scan, window-scan.ts, when the addon is there). Records in the windows
// read come without an await between them.

import type { Lsn } from '../lsn.js'
import type { VersionProfile } from '../versions.js'
import { AcrossPagesRecords } from './across-pages.js'
import { ArenaRing } from './arena.js'
import { ReadCursor } from './cursor.js'
import { WalEnd, type EndOfWal } from './end-of-wal.js'
import { WalGeometry } from './geometry.js'
import { NextRecord } from './next-record.js'
import { OnePageRecords } from './one-page.js'
import { firstRecordInPage, XLOG_BLCKSZ as B } from './page.js'
import { PageReader } from './pages.js'
import { DecodedRecord, type WalRecord } from './record.js'
import { RecordChecks } from './record-site.js'
import { WindowScan } from './window-scan.js'
import { WindowCache, type Window, type WalSegmentSource } from './windows.js'

export type { EndOfWal, EndOfWalReason } from './end-of-wal.js'
export type { WalSegmentSource } from './windows.js'

export interface ReadOptions {
  /** Stop after the first record whose endLsn is at or past this LSN. */
  readonly until?: Lsn
}

export interface ForEachOptions extends ReadOptions {
  /**
   * Give every record in the same object, refilled (blocks included), as xlogreader reuses its
   * decode buffer: a record is then valid only during its visit, so keep fields, not the object.
   * Reading is faster without an object per record and block.
   */
  readonly reuseRecord?: boolean
}

export interface WalReaderOptions {
  readonly profile: VersionProfile
  readonly segSize: number
  /** BLCKSZ (data pages), for block image holes. Default 8192. */
  readonly blockSize?: number
  /** pg_control's system_identifier; long page headers must carry it. */
  readonly systemIdentifier?: bigint
  readonly source: WalSegmentSource
  /**
   * Bytes per read, rounded down to a power of two (at most one segment). Default 128 KiB: small
   * enough that a window is still in the CPU cache when it is decoded and that the buffers cost few
   * page faults; reads are cheap when the source reads synchronously.
   */
  readonly windowSize?: number
  /**
   * Check and decode the records of a window in one native call (default: when the native addon
   * was built). Off, every record is checked and decoded in JavaScript, one by one.
   */
  readonly nativeScan?: boolean
}

/** After this many bytes read synchronously, forEachRecord lets the event loop run. */
const YIELD_BYTES = 8 * 1024 * 1024
const STOPPED = Symbol('stopped')
const YIELD = Symbol('yield')

export class WalReader {
  readonly profile: VersionProfile
  readonly segSize: number
  readonly blockSize: number
  private readonly geo: WalGeometry
  private readonly windows: WindowCache
  private readonly pages: PageReader
  private readonly arenas = new ArenaRing()
  private readonly acrossPages: AcrossPagesRecords
  private readonly next: NextRecord
  private readonly switchInfo: number
  /** forEachRecord's and walkBack's reused record. */
  private spareRecord: DecodedRecord | null = null

  constructor(opts: WalReaderOptions) {
    this.profile = opts.profile
    this.segSize = opts.segSize
    this.blockSize = opts.blockSize ?? 8192
    this.switchInfo = opts.profile.codes.XLOG_SWITCH
    this.geo = new WalGeometry(opts.segSize, B)
    this.windows = new WindowCache(opts.source, opts.segSize, B, opts.windowSize ?? 128 * 1024)
    const sysid = opts.systemIdentifier
    this.pages = new PageReader(
      this.windows,
      this.geo,
      {
        profile: opts.profile,
        segSize: opts.segSize,
        blockSize: this.blockSize,
        sysidHi: sysid === undefined ? null : Number(sysid >> 32n),
        sysidLo: sysid === undefined ? 0 : Number(sysid & 0xffffffffn),
      },
      opts.source,
    )
    const scan = WindowScan.available && opts.nativeScan !== false ? new WindowScan(opts.profile, this.blockSize) : null
    const checks = new RecordChecks(opts.profile, this.geo)
    const rules = { profile: opts.profile, blockSize: this.blockSize }
    this.acrossPages = new AcrossPagesRecords(this.pages, checks, rules, scan, this.arenas)
    this.next = new NextRecord(this.pages, this.geo, new OnePageRecords(checks, rules, scan), this.acrossPages)
  }

  /** The record starting at `lsn` (if lsn is on a page boundary, after the page header). */
  async readRecord(lsn: Lsn): Promise<{ record: WalRecord } | { end: EndOfWal }> {
    const c = this.cursor(null).jumpTo(lsn)
    const r = this.next.read(c) ?? (await this.readWaiting(c))
    return r instanceof WalEnd ? { end: r } : { record: r }
  }

  /**
   * Reads the record at `start` and walks back along xl_prev while `visit` returns true. The
   * result: null when visit stopped, the record whose xl_prev does not point before it, or the
   * end of WAL where a record could not be read. One record object is reused, and records in the
   * windows read are taken without an await in between: a walk back costs about what reading the
   * same WAL forwards does.
   */
  async walkBack(start: Lsn, visit: (record: WalRecord) => boolean): Promise<{ end: EndOfWal; lsn: Lsn } | { badPrev: Lsn } | null> {
    const c = this.cursor((this.spareRecord ??= new DecodedRecord())).jumpTo(start)
    for (;;) {
      const r = this.next.read(c) ?? (await this.readWaiting(c))
      if (r instanceof WalEnd) return { end: r, lsn: r.lsn }
      if (!visit(r)) return null
      if (!r.prevIsBefore()) return { badPrev: r.lsn }
      c.jumpBackFrom(r)
    }
  }

  /**
   * Records from `start` (a record start) to the end of valid WAL, checking xl_prev links. With
   * `until`, the last record given is the first whose endLsn reaches it (pg_rewind reads while
   * EndRecPtr < endpoint), and the result is null instead of the end of WAL.
   */
  async *records(start: Lsn, opts: ReadOptions = {}): AsyncGenerator<WalRecord, EndOfWal | null> {
    const c = this.cursor(null).jumpTo(start).stopAt(opts.until)
    for (;;) {
      const r = this.next.read(c) ?? (await this.readWaiting(c))
      if (r instanceof WalEnd) return r
      yield r
      if (c.reachedUntil()) return null
    }
  }

  /**
   * Like records(), with a callback instead of an async iterator: records that fit in the windows
   * read are delivered without an await in between. `visit` may return false to stop. The result
   * is null when `visit` or `until` stopped the reading, else the end of WAL.
   */
  async forEachRecord(start: Lsn, visit: (record: WalRecord) => boolean | void, opts: ForEachOptions = {}): Promise<EndOfWal | null> {
    const c = this.cursor(opts.reuseRecord === true ? (this.spareRecord ??= new DecodedRecord()) : null)
      .jumpTo(start)
      .stopAt(opts.until)
    for (;;) {
      const r = this.visitReady(c, visit)
      if (r === STOPPED) return null
      if (r instanceof WalEnd) return r
      if (r === YIELD) {
        await this.yieldNow()
        continue
      }
      const rec = await this.readWaiting(c)
      if (rec instanceof WalEnd) return rec
      if (visit(rec) === false || c.reachedUntil()) return null
    }
  }

  /**
   * forEachRecord's records that come without waiting: STOPPED when `visit` or the cursor's stop
   * stopped them, the end of WAL, YIELD after a stretch of synchronous reads, or null when a window
   * has to be read.
   */
  private visitReady(c: ReadCursor, visit: (record: WalRecord) => boolean | void): WalEnd | typeof STOPPED | typeof YIELD | null {
    for (;;) {
      const r = this.next.read(c)
      if (r === null || r instanceof WalEnd) return r
      if (visit(r) === false || c.reachedUntil()) return STOPPED
      if (this.windows.syncBytes >= YIELD_BYTES) return YIELD
    }
  }

  /**
   * XLogFindNextRecord: the first record that starts at or after `lsn`, which may be anywhere (for
   * example a segment start whose first page continues a record). null if there is none.
   */
  async findNextRecord(lsn: Lsn): Promise<Lsn | null> {
    const c = this.cursor(null).jumpTo(lsn)
    let seg = c.seg
    let pageOff = c.off - (c.off % B)
    let off = c.off
    // Skip what continues a record from earlier pages, page after page if need be.
    for (;;) {
      const page = await this.page(seg, pageOff, c)
      if (page instanceof WalEnd) return null
      const first = firstRecordInPage(page.buf, pageOff - page.start)
      if (first < B) {
        off = pageOff + first
        break
      }
      pageOff += B
      if (pageOff === this.segSize) {
        seg += 1
        pageOff = 0
      }
    }
    let found: Lsn | null = null
    await this.forEachRecord(this.geo.lsn(seg, off), (rec) => {
      if (rec.lsn < lsn) return true
      found = rec.lsn
      return false
    })
    return found
  }

  /**
   * Lets go of the reader's buffers. Records read before keep their header fields and blocks; their
   * main data is gone (using it throws). The reader may still be used afterwards, with new buffers.
   */
  async close(): Promise<void> {
    this.windows.release()
    this.arenas.release()
    this.acrossPages.drop()
    this.pages.forget()
  }

  private cursor(reuse: DecodedRecord | null): ReadCursor {
    return new ReadCursor(this.geo, this.switchInfo, reuse)
  }

  /** next.read() after the windows it waits for are read. */
  private async readWaiting(c: ReadCursor): Promise<DecodedRecord | WalEnd> {
    for (;;) {
      await this.next.load()
      const r = this.next.read(c)
      if (r !== null) return r
    }
  }

  /** A valid page, its window read if need be. */
  private async page(seg: number, pageOff: number, c: ReadCursor): Promise<Window | WalEnd> {
    for (;;) {
      const page = this.pages.get(seg, pageOff, c)
      if (page !== null) {
        if (page instanceof WalEnd) this.pages.forget()
        return page
      }
      await this.pages.load()
    }
  }

  /** Lets the event loop run (other I/O of the program) after a stretch of synchronous reads. */
  private async yieldNow(): Promise<void> {
    this.windows.syncBytes = 0
    await new Promise((resolve) => setImmediate(resolve))
  }
}
