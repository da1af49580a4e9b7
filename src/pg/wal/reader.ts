// Reads WAL records from a run of segments the way xlogreader does: page headers validated as pages
// are entered, records gathered across pages and segments, xl_prev links and CRCs checked, and the
// first failure reported as an end of WAL with the server's message (stale recycled pages, zeroed
// tails and torn records all end WAL there). Segments are read in page-aligned windows into reused
// buffers, synchronously when the source can; records are decoded where they lie, also across
// pages, without an await between them. Missing segments are the source's WAL_MISSING error.

import { crc32cRange, wordsOf } from '../crc32c.js'
import { maxAlign, segmentFileName, type Lsn } from '../lsn.js'
import type { VersionProfile } from '../versions.js'
import {
  checkPageHeader, firstRecordInPage, headerSizeForInfo, pageInfo, pageRemLen, pageTli, XLOG_BLCKSZ, XLP_FIRST_IS_CONTRECORD,
  type PageExpectation,
} from './page.js'
import {
  decodeRecordAt, decodeRecordSplit, isValidRmgrId, NEED_MORE, prevLinkIs, RecordHeader, recordCrcMatches, SIZE_OF_XLOG_RECORD,
  DecodedRecord, type BufferOwner, type WalRecord,
} from './record.js'
import { WindowScan } from './window-scan.js'
import { copyBytes } from './bytes.js'

export interface WalSegmentSource {
  /** Bytes [offset, offset+length) of segment `segno`; fewer at EOF. Throws RewindError
   *  WAL_MISSING naming the file if absent (which timeline's file is the source's business). */
  read(segno: bigint, offset: number, length: number): Promise<Buffer>
  /** Like read, into `buf` (reused by the reader); resolves to the number of bytes read. */
  readInto?(segno: bigint, offset: number, buf: Buffer, length: number): Promise<number>
  /**
   * readInto without waiting, if the source can (a file already there); -1 when it cannot, and the
   * reader then calls readInto. With it, the reader decodes without an await per window.
   */
  readIntoSync?(segno: bigint, offset: number, buf: Buffer, length: number): number
  /** True if segment `segno` can be read without fetching it (no restore): reading ahead may go there. */
  hasSegment?(segno: bigint): boolean
  /** The file name of segment `segno`, for messages; without it the timeline of the pages read is used. */
  segmentName?(segno: bigint): string
}

export type EndOfWalReason =
  | 'zero-length' // xl_tot_len is 0: the zeroed tail of a segment
  | 'bad-magic'
  | 'bad-pageaddr' // typically a recycled segment's old page
  | 'bad-page-header' // info bits, long header fields, timeline sequence
  | 'bad-record-header' // length, resource manager, offset
  | 'bad-crc'
  | 'bad-prev-link'
  | 'bad-contrecord' // a continuation page that does not continue the record
  | 'bad-record' // a record whose CRC holds but whose block headers do not add up
  | 'truncated-segment' // the segment file is shorter than a page that is needed

export interface EndOfWal {
  /** Where reading stopped: the start of the record that could not be read (xlogreader's EndRecPtr). */
  readonly lsn: Lsn
  readonly reason: EndOfWalReason
  /** The server's message for it, naming the LSN and, for page problems, the segment. */
  readonly message: string
}

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

/** A read buffer holding one window of one segment; reused once it is the least recently used. */
class Slot implements BufferOwner {
  gen = 0
  seg = -1
  start = -1
  len = 0
  used = 0
  pending: Promise<void> | null = null
  error: unknown = null
  /** Whether reading ahead from this window was considered (false while a read-ahead fills it). */
  primed = true
  words: Uint32Array | null
  constructor(public buf: Buffer) {
    this.words = wordsOf(buf)
  }
}

const B = XLOG_BLCKSZ
/** XLogRecordMaxSize (16+); earlier servers could not allocate more either. */
const MAX_RECORD_SIZE = 1020 * 1024 * 1024
const RM_XLOG_ID = 0
/** The current window, the one before (records reach back), the segment's first page, one read ahead. */
const SLOTS = 4
/** After this many bytes read synchronously, forEachRecord lets the event loop run. */
const YIELD_BYTES = 8 * 1024 * 1024
/**
 * Records that cross pages are gathered into a ring of reused arenas, if at most ARENA_RECORD_MAX
 * long: fresh memory for every record costs more in page faults and GC than the copy itself.
 */
const ARENA_SIZE = 1024 * 1024
const ARENAS = 4
const ARENA_RECORD_MAX = 64 * 1024

class Arena implements BufferOwner {
  gen = 0
  used = 0
  readonly buf = Buffer.allocUnsafe(ARENA_SIZE)
  readonly words = wordsOf(this.buf)
}

class WalEnd implements EndOfWal {
  constructor(readonly lsn: Lsn, readonly reason: EndOfWalReason, readonly message: string) {}
}

function hex(n: number): string {
  return n.toString(16).toUpperCase()
}

export class WalReader {
  readonly profile: VersionProfile
  readonly segSize: number
  readonly blockSize: number
  private readonly source: WalSegmentSource
  private readonly windowSize: number
  private readonly perId: number
  private readonly pagesPerSeg: number
  private readonly expect: PageExpectation
  private readonly switchInfo: number
  private readonly reuseBuffers: boolean
  private slots: Slot[] = []
  private clock = 0
  private inflight: Promise<void> | null = null
  private lastDemandSeg = -1
  private lastDemandStart = -1
  // The pieces of a record across pages (crossNow), reused from record to record.
  private readonly fragBuf: Buffer[] = []
  private readonly fragWords: (Uint32Array | null)[] = []
  private readonly fragOwner: (BufferOwner | null)[] = []
  private readonly fragGen: number[] = []
  private readonly fragPos: number[] = []
  private readonly fragLen: number[] = []
  private arenas: Arena[] = []
  private syncBytes = 0
  private arena: Arena | null = null
  // xlogreader's read state: the segment and page last read successfully (for the first-page check
  // on entering a segment and to skip re-validating the same page), and the TLI sequence check.
  private lastSeg = -1
  private lastPageIdx = -1
  private latestPageIdx = -1
  private latestPageTli = 0
  // Set by every successful read: where the next record starts and where this one started.
  private endSeg = 0
  private endOff = 0
  private recHi = 0
  private recLo = 0
  // The page fast() read its last record from (valid while the window keeps its generation).
  private pageSlot: Slot | null = null
  private pageGen = 0
  private pageSeg = -1
  private pageOff = -1
  // forEachRecord's reused record (reuseRecord), or null for a new object per record.
  private reused: DecodedRecord | null = null
  private spareRecord: DecodedRecord | null = null
  /** The records of a window checked and decoded in one native call; null without the addon. */
  private readonly scan: WindowScan | null

  constructor(opts: WalReaderOptions) {
    this.profile = opts.profile
    this.segSize = opts.segSize
    this.blockSize = opts.blockSize ?? 8192
    this.source = opts.source
    // A power of two, so that windows tile a segment exactly.
    const wanted = Math.max(B, 2 ** Math.floor(Math.log2(opts.windowSize ?? 128 * 1024)))
    this.windowSize = Math.min(wanted, this.segSize)
    this.perId = 0x100000000 / this.segSize
    this.pagesPerSeg = this.segSize / B
    const sysid = opts.systemIdentifier
    this.expect = {
      profile: opts.profile,
      segSize: opts.segSize,
      blockSize: this.blockSize,
      sysidHi: sysid === undefined ? null : Number(sysid >> 32n),
      sysidLo: sysid === undefined ? 0 : Number(sysid & 0xffffffffn),
    }
    this.switchInfo = opts.profile.codes.XLOG_SWITCH
    this.reuseBuffers = opts.source.readInto !== undefined
    this.scan = WindowScan.available && opts.nativeScan !== false ? new WindowScan(opts.profile, this.blockSize) : null
  }

  /** The record starting at `lsn` (if lsn is on a page boundary, after the page header). */
  async readRecord(lsn: Lsn): Promise<{ record: WalRecord } | { end: EndOfWal }> {
    const seg = Number(lsn / BigInt(this.segSize))
    const off = Number(lsn % BigInt(this.segSize))
    const r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
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
    const segSize = this.segSize
    const segsPerHi = 0x100000000 / segSize
    let seg = Number(start / BigInt(segSize))
    let off = Number(start % BigInt(segSize))
    this.reused = this.spareRecord ??= new DecodedRecord()
    try {
      for (;;) {
        const r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
        if (r instanceof WalEnd) return { end: r, lsn: BigInt(seg) * BigInt(segSize) + BigInt(off) }
        if (!visit(r)) return null
        if (!r.prevIsBefore()) return { badPrev: r.lsn }
        const lo = r.prevLo
        seg = r.prevHi * segsPerHi + Math.floor(lo / segSize)
        off = lo % segSize
      }
    } finally {
      this.reused = null
    }
  }

  /**
   * Records from `start` (a record start) to the end of valid WAL, checking xl_prev links. With
   * `until`, the last record given is the first whose endLsn reaches it (pg_rewind reads while
   * EndRecPtr < endpoint), and the result is null instead of the end of WAL.
   */
  async *records(start: Lsn, opts: ReadOptions = {}): AsyncGenerator<WalRecord, EndOfWal | null> {
    const seg = Number(start / BigInt(this.segSize))
    const off = Number(start % BigInt(this.segSize))
    const [untilHi, untilLo] = this.split(opts.until)
    let r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
    while (!(r instanceof WalEnd)) {
      const { endSeg, endOff, recHi, recLo } = this
      yield r
      if (this.reached(endSeg, endOff, untilHi, untilLo)) return null
      r = this.fast(endSeg, endOff, false, recHi, recLo) ?? await this.slow(endSeg, endOff, false, recHi, recLo)
    }
    return r
  }

  /**
   * Like records(), with a callback instead of an async iterator: records that fit in the windows
   * read are delivered without an await in between. `visit` may return false to stop. The result
   * is null when `visit` or `until` stopped the reading, else the end of WAL.
   */
  async forEachRecord(start: Lsn, visit: (record: WalRecord) => boolean | void, opts: ForEachOptions = {}): Promise<EndOfWal | null> {
    const seg = Number(start / BigInt(this.segSize))
    const off = Number(start % BigInt(this.segSize))
    const [untilHi, untilLo] = this.split(opts.until)
    if (opts.reuseRecord === true) this.reused = this.spareRecord ??= new DecodedRecord()
    try {
      let r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
      while (!(r instanceof WalEnd)) {
        const { endSeg, endOff, recHi, recLo } = this
        if (visit(r) === false || this.reached(endSeg, endOff, untilHi, untilLo)) return null
        if (this.restOfPage(visit, untilHi, untilLo, endSeg, endOff, recHi, recLo)) return null
        if (this.syncBytes >= YIELD_BYTES) await this.yieldNow()
        r = this.fast(this.endSeg, this.endOff, false, this.recHi, this.recLo) ??
          await this.slow(this.endSeg, this.endOff, false, this.recHi, this.recLo)
      }
      return r
    } finally {
      this.reused = null
    }
  }

  /** Lets the event loop run (other I/O of the program) after a stretch of synchronous reads. */
  private async yieldNow(): Promise<void> {
    this.syncBytes = 0
    await new Promise((resolve) => setImmediate(resolve))
  }

  /** An LSN as two 32-bit halves; no `until` is +∞. */
  private split(lsn: Lsn | undefined): [number, number] {
    if (lsn === undefined) return [Infinity, 0]
    return [Number(lsn >> 32n), Number(lsn & 0xffffffffn)]
  }

  /** Whether the position reaches hi/lo, compared in numbers (no BigInt per record). */
  private reached(seg: number, off: number, hi: number, lo: number): boolean {
    const h = this.hiOf(seg)
    return h > hi || (h === hi && this.loOf(seg, off) >= lo)
  }

  /**
   * XLogFindNextRecord: the first record that starts at or after `lsn`, which may be anywhere (for
   * example a segment start whose first page continues a record). null if there is none.
   */
  async findNextRecord(lsn: Lsn): Promise<Lsn | null> {
    let seg = Number(lsn / BigInt(this.segSize))
    let off = Number(lsn % BigInt(this.segSize))
    let pageOff = off - (off % B)
    // Skip what continues a record from earlier pages, page after page if need be.
    for (;;) {
      const pg = await this.page(seg, pageOff, seg, off)
      if (pg instanceof WalEnd) return null
      const first = firstRecordInPage(pg.buf, pageOff - pg.start)
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
    await this.forEachRecord(BigInt(seg) * BigInt(this.segSize) + BigInt(off), (rec) => {
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
    if (this.inflight !== null) await this.inflight
    for (const slot of this.slots) slot.gen += 1
    for (const arena of this.arenas) arena.gen += 1
    this.slots = []
    this.arenas = []
    this.arena = null
    this.lastSeg = -1
    this.lastPageIdx = -1
  }

  // --- positions -------------------------------------------------------------------------------

  // The high and low halves of a segment's start, cached: division and modulo per record showed up
  // in the profile.
  private cacheSeg = -1
  private cacheHi = 0
  private cacheLoBase = 0

  private hiOf(seg: number): number {
    if (seg !== this.cacheSeg) this.cacheSegment(seg)
    return this.cacheHi
  }

  private loOf(seg: number, off: number): number {
    if (seg !== this.cacheSeg) this.cacheSegment(seg)
    return this.cacheLoBase + off
  }

  private cacheSegment(seg: number): void {
    this.cacheSeg = seg
    this.cacheHi = Math.floor(seg / this.perId)
    this.cacheLoBase = (seg % this.perId) * this.segSize
  }

  private lsnText(seg: number, off: number): string {
    return `${hex(this.hiOf(seg))}/${hex(this.loOf(seg, off))}`
  }

  private readonly nameOf = (seg: number): string => this.segmentName(seg)

  private segmentName(seg: number): string {
    return this.source.segmentName?.(BigInt(seg)) ?? segmentFileName(this.latestPageTli || 1, BigInt(seg), this.segSize)
  }

  /** An end of WAL at the requested position; like xlogreader, forget the read state. */
  private end(seg: number, off: number, reason: EndOfWalReason, message: string): WalEnd {
    this.lastSeg = -1
    this.lastPageIdx = -1
    return new WalEnd(BigInt(seg) * BigInt(this.segSize) + BigInt(off), reason, message)
  }

  // --- pages -----------------------------------------------------------------------------------

  private windowStart(pageOff: number): number {
    return pageOff - (pageOff % this.windowSize)
  }

  /** The ready window holding the page, without waiting. */
  private cached(seg: number, pageOff: number): Slot | null {
    const start = this.windowStart(pageOff)
    for (const slot of this.slots) {
      if (slot.seg === seg && slot.start === start && slot.pending === null) {
        slot.used = ++this.clock
        // First use of a window read ahead: time to read the one after it.
        if (!slot.primed) this.readAhead(slot)
        return slot
      }
    }
    return null
  }

  /** cached(), else a synchronous read if the source offers one; null if it has to wait. */
  private cachedOrSync(seg: number, pageOff: number): Slot | null {
    const hit = this.cached(seg, pageOff)
    if (hit !== null || this.source.readIntoSync === undefined || this.inflight !== null) return hit
    const slot = this.victim(null)
    const start = this.windowStart(pageOff)
    slot.gen += 1
    slot.seg = seg
    slot.start = start
    slot.used = ++this.clock
    const n = this.source.readIntoSync(BigInt(seg), start, slot.buf, Math.min(this.windowSize, this.segSize - start))
    if (n < 0) {
      slot.seg = -1
      slot.len = 0
      return null
    }
    slot.len = n
    this.syncBytes += n
    return slot
  }

  /** The window holding the page, read (or waited for) if need be. */
  private async window(seg: number, pageOff: number): Promise<Slot> {
    const start = this.windowStart(pageOff)
    let found: Slot | null = null
    for (const slot of this.slots) if (slot.seg === seg && slot.start === start) found = slot
    if (found !== null && found.pending !== null) await found.pending
    if (found !== null && found.error !== null) {
      const err = found.error
      found.error = null
      found.seg = -1
      throw err
    }
    if (found === null) {
      // One read at a time: the source may keep a single file open.
      if (this.inflight !== null) await this.inflight
      found = this.victim(null)
      await this.fill(found, seg, start)
    }
    found.used = ++this.clock
    this.readAhead(found)
    return found
  }

  private victim(keep: Slot | null): Slot {
    if (this.slots.length < SLOTS) {
      const slot = new Slot(this.reuseBuffers ? Buffer.allocUnsafe(this.windowSize) : Buffer.alloc(0))
      this.slots.push(slot)
      return slot
    }
    let best: Slot | null = null
    for (const slot of this.slots) {
      if (slot !== keep && slot.pending === null && (best === null || slot.used < best.used)) best = slot
    }
    return best!
  }

  private async fill(slot: Slot, seg: number, start: number): Promise<void> {
    slot.gen += 1
    slot.seg = seg
    slot.start = start
    slot.len = 0
    slot.used = ++this.clock
    const length = Math.min(this.windowSize, this.segSize - start)
    try {
      if (this.source.readInto !== undefined) {
        slot.len = await this.source.readInto(BigInt(seg), start, slot.buf, length)
      } else {
        slot.buf = await this.source.read(BigInt(seg), start, length)
        slot.words = wordsOf(slot.buf)
        slot.len = slot.buf.length
      }
    } catch (err) {
      slot.seg = -1
      throw err
    }
  }

  /**
   * Reading forward, fetch the next window while this one is decoded. Into the next segment only if
   * the source has it at hand (no restore_command nobody asked for); never when reading backwards.
   */
  private readAhead(current: Slot): void {
    const { seg, start } = current
    current.primed = true
    const W = this.windowSize
    const sequential = (seg === this.lastDemandSeg && start === this.lastDemandStart + W) ||
      (seg === this.lastDemandSeg + 1 && start === 0 && this.lastDemandStart === this.segSize - W)
    this.lastDemandSeg = seg
    this.lastDemandStart = start
    // A source that reads synchronously needs no read-ahead.
    if (this.source.readIntoSync !== undefined) return
    if (!sequential || this.inflight !== null || current.len < Math.min(W, this.segSize - start)) return
    let nextSeg = seg
    let next = start + W
    if (next >= this.segSize) {
      if (this.source.hasSegment?.(BigInt(seg + 1)) !== true) return
      nextSeg = seg + 1
      next = 0
    }
    if (this.slots.some((s) => s.seg === nextSeg && s.start === next)) return
    const slot = this.victim(current)
    const done = this.fill(slot, nextSeg, next).catch((err: unknown) => { slot.error = err })
    slot.primed = false
    slot.pending = done
    this.inflight = done
    void done.then(() => {
      slot.pending = null
      this.inflight = null
    })
  }

  /** XLogReaderValidatePageHeader, including the timeline sequence check. */
  private validatePage(buf: Buffer, pos: number, seg: number, pageOff: number, reqSeg: number, reqOff: number): WalEnd | null {
    const pageIdx = seg * this.pagesPerSeg + pageOff / B
    const hi = this.hiOf(seg)
    const lo = this.loOf(seg, pageOff)
    const problem = checkPageHeader(buf, pos, seg, pageOff, hi, lo, this.expect, this.nameOf)
    if (problem !== null) return this.end(reqSeg, reqOff, problem.reason, problem.message)
    const tli = pageTli(buf, pos)
    // Child timelines have higher TLIs, so they never go down along a consistent WAL sequence.
    if (pageIdx > this.latestPageIdx && tli < this.latestPageTli) {
      return this.end(reqSeg, reqOff, 'bad-page-header',
        `out-of-sequence timeline ID ${tli} (after ${this.latestPageTli}) in WAL segment ${this.segmentName(seg)}, ` +
        `LSN ${hex(hi)}/${hex(lo)}, offset ${pageOff}`)
    }
    this.latestPageIdx = pageIdx
    this.latestPageTli = tli
    this.lastPageIdx = pageIdx
    return null
  }

  // The page functions answer with the window holding the page (at pageOff - window.start), so
  // that going from page to page allocates nothing.

  /** A whole page from the window cache or the source, or the end of WAL if the file is short. */
  private async rawPage(seg: number, pageOff: number, reqSeg: number, reqOff: number): Promise<Slot | WalEnd> {
    const w = this.cached(seg, pageOff) ?? await this.window(seg, pageOff)
    const pos = pageOff - w.start
    if (pos + B > w.len) {
      return this.end(reqSeg, reqOff, 'truncated-segment',
        `could not read file "${this.segmentName(seg)}": read ${Math.max(0, w.len - pos)} of ${B}`)
    }
    return w
  }

  /** The buffer owner of a window, for records decoded in it: null when its buffer is never reused. */
  private ownerOf(w: Slot): BufferOwner | null {
    return this.reuseBuffers ? w : null
  }

  /** page() without waiting: null unless the page is cached and no segment is being entered. */
  private pageNow(seg: number, pageOff: number, reqSeg: number, reqOff: number): Slot | WalEnd | null {
    if (seg !== this.lastSeg && pageOff !== 0) return null
    const w = this.cachedOrSync(seg, pageOff)
    if (w === null) return null
    const pos = pageOff - w.start
    if (pos + B > w.len) return null
    if (seg * this.pagesPerSeg + pageOff / B !== this.lastPageIdx) {
      const bad = this.validatePage(w.buf, pos, seg, pageOff, reqSeg, reqOff)
      if (bad !== null) return bad
    }
    this.lastSeg = seg
    return w
  }

  /** ReadPageInternal: entering a segment away from its start validates its first page too. */
  private async page(seg: number, pageOff: number, reqSeg: number, reqOff: number): Promise<Slot | WalEnd> {
    if (seg !== this.lastSeg && pageOff !== 0) {
      const first = await this.rawPage(seg, 0, reqSeg, reqOff)
      if (first instanceof WalEnd) return first
      const bad = this.validatePage(first.buf, 0 - first.start, seg, 0, reqSeg, reqOff)
      if (bad !== null) return bad
    }
    const p = await this.rawPage(seg, pageOff, reqSeg, reqOff)
    if (p instanceof WalEnd) return p
    if (seg * this.pagesPerSeg + pageOff / B !== this.lastPageIdx) {
      const bad = this.validatePage(p.buf, pageOff - p.start, seg, pageOff, reqSeg, reqOff)
      if (bad !== null) return bad
    }
    this.lastSeg = seg
    return p
  }

  /** An arena with `len` bytes free: the current one, or the next of the ring, emptied. */
  private arenaFor(len: number): Arena {
    if (this.arena !== null && this.arena.used + len <= ARENA_SIZE) return this.arena
    let next: Arena
    if (this.arenas.length < ARENAS) {
      next = new Arena()
      this.arenas.push(next)
    } else {
      next = this.arenas[(this.arenas.indexOf(this.arena!) + 1) % ARENAS]!
      next.gen += 1
      next.used = 0
    }
    this.arena = next
    return next
  }

  // --- records ---------------------------------------------------------------------------------

  /** ValidXLogRecordHeader: length, resource manager, and the prev-link (exact, or merely backwards). */
  private checkHeader(buf: Buffer, words: Uint32Array | null, start: number, totLen: number, rand: boolean, prevHi: number, prevLo: number,
    recSeg: number, recOff: number, reqSeg: number, reqOff: number): WalEnd | null {
    if (totLen < SIZE_OF_XLOG_RECORD) {
      return this.end(reqSeg, reqOff, totLen === 0 ? 'zero-length' : 'bad-record-header',
        `invalid record length at ${this.lsnText(recSeg, recOff)}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${totLen}`)
    }
    if (totLen > MAX_RECORD_SIZE) {
      return this.end(reqSeg, reqOff, 'bad-record-header', `record length ${totLen} at ${this.lsnText(recSeg, recOff)} too long`)
    }
    const rmid = RecordHeader.rmid(buf, start)
    if (!isValidRmgrId(rmid, this.profile)) {
      return this.end(reqSeg, reqOff, 'bad-record-header', `invalid resource manager ID ${rmid} at ${this.lsnText(recSeg, recOff)}`)
    }
    const pHi = RecordHeader.prevHi(buf, start, words)
    const pLo = RecordHeader.prevLo(buf, start, words)
    const recHi = this.hiOf(recSeg)
    const recLo = this.loOf(recSeg, recOff)
    // Read at random we can only check that the link points backwards; read in sequence it must
    // name the previous record exactly, which catches a stale record on a torn page.
    const ok = rand ? pHi < recHi || (pHi === recHi && pLo < recLo) : pHi === prevHi && pLo === prevLo
    if (!ok) {
      return this.end(reqSeg, reqOff, 'bad-prev-link',
        `record with incorrect prev-link ${hex(pHi)}/${hex(pLo)} at ${this.lsnText(recSeg, recOff)}`)
    }
    return null
  }

  /** A page that continues a record must say so, with exactly the bytes still missing. */
  private checkContinuation(buf: Buffer, pos: number, info: number, totLen: number, got: number, recSeg: number, recOff: number,
    reqSeg: number, reqOff: number): WalEnd | null {
    if ((info & XLP_FIRST_IS_CONTRECORD) === 0) {
      return this.end(reqSeg, reqOff, 'bad-contrecord', `there is no contrecord flag at ${this.lsnText(recSeg, recOff)}`)
    }
    const remLen = pageRemLen(buf, pos)
    if (remLen === 0 || totLen !== remLen + got) {
      return this.end(reqSeg, reqOff, 'bad-contrecord',
        `invalid contrecord length ${remLen} (expected ${totLen - got}) at ${this.lsnText(recSeg, recOff)}`)
    }
    return null
  }

  /** CRC verdict, decode, and the position of the next record. `nextOff` may be segSize. */
  private finish(crcOk: boolean, buf: Buffer, words: Uint32Array | null, owner: BufferOwner | null, start: number, totLen: number,
    recSeg: number, recOff: number, nextSeg: number, nextOff: number, reqSeg: number, reqOff: number): DecodedRecord | WalEnd {
    if (!crcOk) {
      return this.end(reqSeg, reqOff, 'bad-crc', `incorrect resource manager data checksum in record at ${this.lsnText(recSeg, recOff)}`)
    }
    const recHi = this.hiOf(recSeg)
    const recLo = this.loOf(recSeg, recOff)
    const rec = decodeRecordAt(this.reused ?? new DecodedRecord(), buf, words, owner, start, totLen, this.profile, this.blockSize, recHi, recLo)
    if (typeof rec === 'string') return this.end(reqSeg, reqOff, 'bad-record', rec)
    return this.advance(rec, recHi, recLo, nextSeg, nextOff)
  }

  private isSwitch(rec: DecodedRecord): boolean {
    return rec.xl_rmid === RM_XLOG_ID && (rec.xl_info & 0xf0) === this.switchInfo
  }

  /** Sets where the record ends and the next one starts. */
  private advance(rec: DecodedRecord, recHi: number, recLo: number, nextSeg: number, nextOff: number): DecodedRecord {
    // XLOG_SWITCH: the rest of the segment is unused; the next record is in the next segment.
    if (this.isSwitch(rec) && nextOff !== 0) {
      nextSeg += 1
      nextOff = 0
    }
    if (nextOff >= this.segSize) {
      nextSeg += 1
      nextOff -= this.segSize
    }
    rec.setEnd(this.hiOf(nextSeg), this.loOf(nextSeg, nextOff))
    this.endSeg = nextSeg
    this.endOff = nextOff
    this.recHi = recHi
    this.recLo = recLo
    return rec
  }

  /**
   * The common case without an await: the page is in a cached window, already in the current
   * segment, and the whole record is on it. null sends the caller to slow(), which handles the rest.
   */
  private fast(seg: number, off: number, rand: boolean, prevHi: number, prevLo: number): DecodedRecord | WalEnd | null {
    const inPage = off % B
    const pageOff = off - inPage
    let w = this.pageSlot
    // Most records are on the page of the one before: no page lookup, no validation again.
    if (w === null || seg !== this.pageSeg || pageOff !== this.pageOff || w.gen !== this.pageGen || seg !== this.lastSeg) {
      const found = this.pageNow(seg, pageOff, seg, off)
      if (found === null || found instanceof WalEnd) return found
      w = found
      this.pageSlot = found
      this.pageGen = found.gen
      this.pageSeg = seg
      this.pageOff = pageOff
    }
    const pos = pageOff - w.start
    const buf = w.buf
    const info = pageInfo(buf, pos)
    const hdr = headerSizeForInfo(info)
    let recInPage = inPage
    if (recInPage === 0) recInPage = hdr
    else if (recInPage < hdr) return null
    if (recInPage > B - SIZE_OF_XLOG_RECORD) return null
    if ((info & XLP_FIRST_IS_CONTRECORD) !== 0 && recInPage === hdr) return null
    const start = pos + recInPage
    const totLen = RecordHeader.totLen(buf, start, w.words)
    const recOff = pageOff + recInPage
    const bad = this.checkHeader(buf, w.words, start, totLen, rand, prevHi, prevLo, seg, recOff, seg, off)
    if (bad !== null) return bad
    const owner = this.reuseBuffers ? w : null
    if (totLen > B - recInPage) return this.crossNow(buf, w.words, owner, start, B - recInPage, totLen, seg, pageOff, recOff, off)
    const row = this.scan !== null ? this.scan.find(w, buf, w.len, start) : -1
    if (row >= 0 && this.scan!.decoded(row)) return this.scanned(row, w, start, totLen, seg, recOff)
    const crcOk = row >= 0 ? this.scan!.crcOk(row) : recordCrcMatches(buf, start, totLen, w.words)
    return this.finish(crcOk, buf, w.words, owner, start, totLen, seg, recOff, seg, recOff + maxAlign(totLen), seg, off)
  }

  /** The record of row `row` of the window scan, at `start` of `w` (recOff of segment seg), and the position after it. */
  private scanned(row: number, w: Slot, start: number, totLen: number, seg: number, recOff: number): DecodedRecord {
    const recHi = this.hiOf(seg)
    const recLo = this.loOf(seg, recOff)
    return this.advance(this.fromScan(row, w, start, totLen, recHi, recLo), recHi, recLo, seg, recOff + maxAlign(totLen))
  }

  /** The record of row `row` of the window scan, at `start` of `w`, whose LSN is hi/lo. */
  private fromScan(row: number, w: Slot, start: number, totLen: number, hi: number, lo: number): DecodedRecord {
    const rec = this.reused ?? new DecodedRecord()
    this.scan!.fill(rec, row)
    rec.setHeader(w.buf, w.words, start, hi, lo, w.buf, this.ownerOf(w), start + totLen - rec.main_data_len)
    return rec
  }

  /**
   * forEachRecord's inner loop: the records after the one just read (which ended at seg/off, and
   * started at prevHi/prevLo) while they lie on the same page and the window scan checked and
   * decoded them. The first record not taken here (across a page, XLOG_SWITCH's segment end, or
   * anything the scan did not accept) is left to fast() and slow(), which check it from the start
   * and name any problem. Leaves the reader's position after the last record given. True when
   * `visit` or `until` stopped.
   */
  private restOfPage(visit: (record: WalRecord) => boolean | void, untilHi: number, untilLo: number, seg: number, off: number,
    prevHi: number, prevLo: number): boolean {
    const w = this.pageSlot
    const scan = this.scan
    if (w === null || scan === null || w.words === null || w.gen !== this.pageGen || seg !== this.pageSeg || seg !== this.lastSeg) return false
    const { buf, words, gen } = w
    const pageOff = this.pageOff
    const first = pageOff + headerSizeForInfo(pageInfo(buf, pageOff - w.start))
    const last = pageOff + B - SIZE_OF_XLOG_RECORD
    const hi = this.hiOf(seg)
    const loBase = this.loOf(seg, 0)
    let stopped = false
    while (off >= first && off <= last) {
      const start = off - w.start
      const row = scan.find(w, buf, w.len, start)
      if (row < 0 || !scan.decoded(row)) break
      if (!prevLinkIs(words, start, prevHi, prevLo)) break
      const lo = loBase + off
      const totLen = RecordHeader.totLen(buf, start, words)
      const next = off + maxAlign(totLen)
      const rec = this.fromScan(row, w, start, totLen, hi, lo)
      if (next >= this.segSize || this.isSwitch(rec)) {
        // The next record is in the next segment: advance() knows where, the general path goes on.
        this.advance(rec, hi, lo, seg, next)
        const { endSeg, endOff } = this
        stopped = visit(rec) === false || this.reached(endSeg, endOff, untilHi, untilLo)
        seg = endSeg
        off = endOff
        prevHi = hi
        prevLo = lo
        break
      }
      rec.setEnd(hi, loBase + next)
      // reached(), with the page's LSN halves at hand: calling it here measured 1–2% slower.
      if (visit(rec) === false || hi > untilHi || (hi === untilHi && loBase + next >= untilLo)) {
        this.endSeg = seg
        this.endOff = next
        this.recHi = hi
        this.recLo = lo
        return true
      }
      prevHi = hi
      prevLo = lo
      off = next
      // A visitor that used this reader meanwhile: back to the general path.
      if (w.gen !== gen || this.pageSlot !== w || this.lastSeg !== seg) break
    }
    if (!stopped) {
      this.endSeg = seg
      this.endOff = off
      this.recHi = prevHi
      this.recLo = prevLo
    }
    return stopped
  }

  /** The CRC check of a record wholly on a page of window `w`: from the window scan if it has it. */
  private crcMatches(w: Slot, start: number, totLen: number): boolean {
    const row = this.scan !== null ? this.scan.find(w, w.buf, w.len, start) : -1
    return row >= 0 ? this.scan!.crcOk(row) : recordCrcMatches(w.buf, start, totLen, w.words)
  }

  /**
   * A record across pages that are all in cached windows, read where it lies: the CRC runs over
   * the pieces and the headers are decoded on the first page, so only main data that itself
   * crosses a page is copied. null sends the caller to slow() (a window to read, a new segment to
   * enter, headers past the first page, an overwritten contrecord).
   */
  private crossNow(buf: Buffer, words: Uint32Array | null, owner: BufferOwner | null, start: number, firstLen: number,
    totLen: number, seg: number, pageOff: number, recOff: number, reqOff: number): DecodedRecord | WalEnd | null {
    const { fragBuf, fragWords, fragOwner, fragGen, fragPos, fragLen } = this
    fragBuf[0] = buf
    fragWords[0] = words
    fragOwner[0] = owner
    fragGen[0] = owner?.gen ?? 0
    fragPos[0] = start
    fragLen[0] = firstLen
    let n = 1
    let got = firstLen
    let pSeg = seg
    let pOff = pageOff
    let remLen = 0
    let contHdr = 0
    while (got < totLen) {
      pOff += B
      if (pOff === this.segSize) {
        pSeg += 1
        pOff = 0
      }
      const np = this.pageNow(pSeg, pOff, seg, reqOff)
      if (np === null) return null
      if (np instanceof WalEnd) return np
      const npos = pOff - np.start
      const info = pageInfo(np.buf, npos)
      if ((info & this.profile.xlpFirstIsOverwriteContrecord) !== 0) return null
      const bad = this.checkContinuation(np.buf, npos, info, totLen, got, seg, recOff, seg, reqOff)
      if (bad !== null) return bad
      remLen = pageRemLen(np.buf, npos)
      contHdr = headerSizeForInfo(info)
      const len = Math.min(B - contHdr, remLen)
      const npOwner = this.ownerOf(np)
      fragBuf[n] = np.buf
      fragWords[n] = np.words
      fragOwner[n] = npOwner
      fragGen[n] = npOwner?.gen ?? 0
      fragPos[n] = npos + contHdr
      fragLen[n] = len
      n++
      got += len
    }
    // A window read for a later page may have reused the buffer of an earlier one: then gather.
    for (let i = 0; i < n; i++) if (fragOwner[i] !== null && fragOwner[i]!.gen !== fragGen[i]) return null
    if (!this.crossCrcMatches(buf, words, owner, start, n)) {
      return this.end(seg, reqOff, 'bad-crc', `incorrect resource manager data checksum in record at ${this.lsnText(seg, recOff)}`)
    }
    const recHi = this.hiOf(seg)
    const recLo = this.loOf(seg, recOff)
    const rec = decodeRecordSplit(this.reused ?? new DecodedRecord(), buf, words, start, firstLen, totLen, this.profile, this.blockSize, recHi, recLo, (mainLen) => this.mainData(n, totLen, mainLen))
    if (rec === NEED_MORE) return null
    if (typeof rec === 'string') return this.end(seg, reqOff, 'bad-record', rec)
    return this.advance(rec, recHi, recLo, pSeg, pOff + contHdr + maxAlign(remLen))
  }

  /** The CRC check of a record in the `n` pieces of crossNow: from the window scan if all are in one window. */
  private crossCrcMatches(buf: Buffer, words: Uint32Array | null, owner: BufferOwner | null, start: number, n: number): boolean {
    const { fragBuf, fragWords, fragPos, fragLen } = this
    if (this.scan !== null && owner instanceof Slot) {
      let oneWindow = true
      for (let i = 1; i < n; i++) if (fragBuf[i] !== buf) oneWindow = false
      if (oneWindow) {
        const row = this.scan.find(owner, buf, owner.len, start)
        if (row >= 0) return this.scan.crcOk(row)
      }
    }
    // The body [24, tot_len) piece by piece, then the header (all on the first page).
    let crc = 0
    let v = 0
    for (let i = 0; i < n; i++) {
      const from = Math.max(v, SIZE_OF_XLOG_RECORD)
      const to = v + fragLen[i]!
      if (to > from) {
        const at = fragPos[i]! + (from - v)
        crc = crc32cRange(fragBuf[i]!, at, fragPos[i]! + fragLen[i]!, crc, (at & 3) === 0 ? fragWords[i]! : null)
      }
      v = to
    }
    crc = crc32cRange(buf, start, start + 20, crc, (start & 3) === 0 ? words : null)
    return crc === RecordHeader.crc(buf, start)
  }

  /** Where the last `mainLen` bytes of the `n` pieces are: in one piece, or copied out of several. */
  private mainData(n: number, totLen: number, mainLen: number): { buf: Buffer; owner: BufferOwner | null; off: number } {
    const { fragBuf, fragOwner, fragPos, fragLen } = this
    const mainStart = totLen - mainLen
    let v = totLen
    for (let i = n - 1; i >= 0; i--) {
      v -= fragLen[i]!
      if (mainStart >= v) {
        if (i === n - 1 || mainStart + mainLen <= v + fragLen[i]!) return { buf: fragBuf[i]!, owner: fragOwner[i]!, off: fragPos[i]! + (mainStart - v) }
        break
      }
    }
    const arena = mainLen <= ARENA_RECORD_MAX ? this.arenaFor(mainLen) : null
    const out = arena !== null ? arena.buf : Buffer.allocUnsafe(mainLen)
    const base = arena !== null ? arena.used : 0
    let w = 0
    v = 0
    for (let i = 0; i < n && w < mainLen; i++) {
      const len = fragLen[i]!
      if (v + len > mainStart) {
        const from = Math.max(mainStart - v, 0)
        copyBytes(fragBuf[i]!, fragPos[i]! + from, fragPos[i]! + len, out, base + w)
        w += len - from
      }
      v += len
    }
    if (arena !== null) arena.used = base + maxAlign(mainLen)
    return { buf: out, owner: arena, off: base }
  }

  /** XLogDecodeNextRecord in full: page loading, header spill, multi-page gathering, overwritten contrecords. */
  private async slow(reqSeg: number, reqOff: number, rand: boolean, prevHi: number, prevLo: number): Promise<DecodedRecord | WalEnd> {
    let seg = reqSeg
    let off = reqOff
    for (;;) {
      const inPage = off % B
      const pageOff = off - inPage
      const pg = this.pageNow(seg, pageOff, reqSeg, reqOff) ?? await this.page(seg, pageOff, reqSeg, reqOff)
      if (pg instanceof WalEnd) return pg
      const pos = pageOff - pg.start
      const info = pageInfo(pg.buf, pos)
      const hdr = headerSizeForInfo(info)
      let recInPage = inPage
      if (recInPage === 0) {
        recInPage = hdr
      } else if (recInPage < hdr) {
        return this.end(reqSeg, reqOff, 'bad-record-header',
          `invalid record offset at ${this.lsnText(seg, off)}: expected at least ${hdr}, got ${recInPage}`)
      }
      const recOff = pageOff + recInPage
      if ((info & XLP_FIRST_IS_CONTRECORD) !== 0 && recInPage === hdr) {
        return this.end(reqSeg, reqOff, 'bad-contrecord', `contrecord is requested by ${this.lsnText(seg, recOff)}`)
      }
      const start = pos + recInPage
      const totLen = RecordHeader.totLen(pg.buf, start)
      let gotHeader = false
      if (recInPage <= B - SIZE_OF_XLOG_RECORD) {
        const bad = this.checkHeader(pg.buf, pg.words, start, totLen, rand, prevHi, prevLo, seg, recOff, reqSeg, reqOff)
        if (bad !== null) return bad
        gotHeader = true
      } else if (totLen < SIZE_OF_XLOG_RECORD) {
        return this.end(reqSeg, reqOff, totLen === 0 ? 'zero-length' : 'bad-record-header',
          `invalid record length at ${this.lsnText(seg, recOff)}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${totLen}`)
      }
      const firstLen = B - recInPage
      if (totLen <= firstLen) {
        return this.finish(this.crcMatches(pg, start, totLen), pg.buf, pg.words, this.ownerOf(pg), start, totLen, seg, recOff, seg,
          recOff + maxAlign(totLen), reqSeg, reqOff)
      }

      // Gather the record across pages. Most records go into a shared arena (one allocation per
      // megabyte, not per record); a big one gets a buffer that grows with what the pages really
      // hold, so a garbage xl_tot_len cannot make us allocate more than the WAL that backs it up.
      let asm: Buffer
      let base: number
      let cap: number
      const arena = totLen <= ARENA_RECORD_MAX ? this.arenaFor(totLen) : null
      if (arena !== null) {
        asm = arena.buf
        base = arena.used
        cap = totLen
      } else {
        cap = 16 * B
        asm = Buffer.allocUnsafe(cap)
        base = 0
      }
      copyBytes(pg.buf, start, start + firstLen, asm, base)
      let got = firstLen
      let pSeg = seg
      let pOff = pageOff
      let remLen = 0
      let contHdr = 0
      let overwritten = false
      do {
        pOff += B
        if (pOff === this.segSize) {
          pSeg += 1
          pOff = 0
        }
        const np = this.pageNow(pSeg, pOff, reqSeg, reqOff) ?? await this.page(pSeg, pOff, reqSeg, reqOff)
        if (np instanceof WalEnd) return np
        const npos = pOff - np.start
        const nInfo = pageInfo(np.buf, npos)
        // The rest of this record was never written: recovery replaced it with what follows on
        // this page. Start over here, still expecting the same previous record.
        if ((nInfo & this.profile.xlpFirstIsOverwriteContrecord) !== 0) {
          overwritten = true
          break
        }
        const bad = this.checkContinuation(np.buf, npos, nInfo, totLen, got, seg, recOff, reqSeg, reqOff)
        if (bad !== null) return bad
        remLen = pageRemLen(np.buf, npos)
        contHdr = headerSizeForInfo(nInfo)
        const len = Math.min(B - contHdr, remLen)
        if (got + len > cap) {
          cap = Math.min(totLen, Math.max(cap * 2, got + len))
          const bigger = Buffer.allocUnsafe(cap)
          asm.copy(bigger, 0, 0, got)
          asm = bigger
        }
        copyBytes(np.buf, npos + contHdr, npos + contHdr + len, asm, base + got)
        got += len
        if (!gotHeader) {
          const bad = this.checkHeader(asm, arena !== null ? arena.words : null, base, totLen, rand, prevHi, prevLo, seg, recOff, reqSeg, reqOff)
          if (bad !== null) return bad
          gotHeader = true
        }
      } while (got < totLen)
      if (overwritten) {
        seg = pSeg
        off = pOff
        continue
      }
      const asmWords = arena !== null ? arena.words : wordsOf(asm)
      const done = this.finish(recordCrcMatches(asm, base, totLen, asmWords), asm, asmWords, arena, base, totLen, seg, recOff, pSeg,
        pOff + contHdr + maxAlign(remLen), reqSeg, reqOff)
      // Only a record that was read keeps its arena space.
      if (arena !== null && !(done instanceof WalEnd)) arena.used = base + maxAlign(totLen)
      return done
    }
  }
}
