// Reads WAL records from a run of segments the way xlogreader does: page headers validated as pages
// are entered, records gathered across pages and segments, xl_prev links and CRCs checked, and the
// first failure reported as an end of WAL with the server's message (stale recycled pages, zeroed
// tails and torn records all end WAL there). Segments are read in large page-aligned windows; a
// record that fits on its page is decoded synchronously in place, so awaits happen per window, and
// only records that cross a page are copied. Missing segments are the source's WAL_MISSING error.

import { wordsOf } from '../crc32c.js'
import { maxAlign, segmentFileName, type Lsn } from '../lsn.js'
import type { VersionProfile } from '../versions.js'
import {
  checkPageHeader, pageInfo, pageRemLen, pageTli, SIZE_OF_XLOG_LONG_PHD, SIZE_OF_XLOG_SHORT_PHD, XLOG_BLCKSZ,
  XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER, type PageExpectation,
} from './page.js'
import {
  decodeRecordAt, isValidRmgrId, RecordHeader, recordCrcMatches, SIZE_OF_XLOG_RECORD, type BufferOwner, type DecodedRecord,
  type WalRecord,
} from './record.js'

export interface WalSegmentSource {
  /** Bytes [offset, offset+length) of segment `segno`; fewer at EOF. Throws RewindError
   *  WAL_MISSING naming the file if absent (which timeline's file is the source's business). */
  read(segno: bigint, offset: number, length: number): Promise<Buffer>
  /** Like read, into `buf` (reused by the reader); resolves to the number of bytes read. */
  readInto?(segno: bigint, offset: number, buf: Buffer, length: number): Promise<number>
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

export interface WalReaderOptions {
  readonly profile: VersionProfile
  readonly segSize: number
  /** BLCKSZ (data pages), for block image holes. Default 8192. */
  readonly blockSize?: number
  /** pg_control's system_identifier; long page headers must carry it. */
  readonly systemIdentifier?: bigint
  readonly source: WalSegmentSource
  /** Bytes per read, rounded down to a power of two; default 4 MiB (at most one segment). */
  readonly windowSize?: number
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
  words: Uint32Array | null
  constructor(public buf: Buffer) {
    this.words = wordsOf(buf)
  }
}

interface PageRef {
  readonly buf: Buffer
  readonly words: Uint32Array | null
  readonly owner: BufferOwner | null
  readonly pos: number
}

const B = XLOG_BLCKSZ
/** XLogRecordMaxSize (16+); earlier servers could not allocate more either. */
const MAX_RECORD_SIZE = 1020 * 1024 * 1024
const RM_XLOG_ID = 0
/** The current window, the one before (records reach back), the segment's first page, one read ahead. */
const SLOTS = 4
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
  private arenas: Arena[] = []
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

  constructor(opts: WalReaderOptions) {
    this.profile = opts.profile
    this.segSize = opts.segSize
    this.blockSize = opts.blockSize ?? 8192
    this.source = opts.source
    // A power of two, so that windows tile a segment exactly.
    const wanted = Math.max(B, 2 ** Math.floor(Math.log2(opts.windowSize ?? 4 * 1024 * 1024)))
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
  }

  /** The record starting at `lsn` (if lsn is on a page boundary, after the page header). */
  async readRecord(lsn: Lsn): Promise<{ record: WalRecord } | { end: EndOfWal }> {
    const seg = Number(lsn / BigInt(this.segSize))
    const off = Number(lsn % BigInt(this.segSize))
    const r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
    return r instanceof WalEnd ? { end: r } : { record: r }
  }

  /** Records from `start` (a record start) to the end of valid WAL, checking xl_prev links. */
  async *records(start: Lsn): AsyncGenerator<WalRecord, EndOfWal> {
    const seg = Number(start / BigInt(this.segSize))
    const off = Number(start % BigInt(this.segSize))
    let r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
    while (!(r instanceof WalEnd)) {
      const { endSeg, endOff, recHi, recLo } = this
      yield r
      r = this.fast(endSeg, endOff, false, recHi, recLo) ?? await this.slow(endSeg, endOff, false, recHi, recLo)
    }
    return r
  }

  /**
   * Like records(), with a callback instead of an async iterator: records that fit on their page
   * are delivered without an await in between. `visit` may return false to stop; the result is
   * then null, else the end of WAL.
   */
  async forEachRecord(start: Lsn, visit: (record: WalRecord) => boolean | void): Promise<EndOfWal | null> {
    const seg = Number(start / BigInt(this.segSize))
    const off = Number(start % BigInt(this.segSize))
    let r = this.fast(seg, off, true, 0, 0) ?? await this.slow(seg, off, true, 0, 0)
    while (!(r instanceof WalEnd)) {
      const { endSeg, endOff, recHi, recLo } = this
      if (visit(r) === false) return null
      r = this.fast(endSeg, endOff, false, recHi, recLo) ?? await this.slow(endSeg, endOff, false, recHi, recLo)
    }
    return r
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
      const info = pageInfo(pg.buf, pg.pos)
      const hdr = (info & XLP_LONG_HEADER) !== 0 ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
      const rem = (info & XLP_FIRST_IS_CONTRECORD) !== 0 ? maxAlign(pageRemLen(pg.buf, pg.pos)) : 0
      if (rem < B - hdr) {
        off = pageOff + hdr + rem
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

  // --- positions -------------------------------------------------------------------------------

  private hiOf(seg: number): number {
    return Math.floor(seg / this.perId)
  }

  private loOf(seg: number, off: number): number {
    return (seg % this.perId) * this.segSize + off
  }

  private lsnText(seg: number, off: number): string {
    return `${hex(this.hiOf(seg))}/${hex(this.loOf(seg, off))}`
  }

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
        return slot
      }
    }
    return null
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
   * Reading forward through a segment, fetch its next window while this one is decoded. Never
   * past the segment: the next file may be missing, or need a restore_command nobody asked for.
   */
  private readAhead(current: Slot): void {
    const { seg, start } = current
    const sequential = start === 0 || (seg === this.lastDemandSeg && start === this.lastDemandStart + this.windowSize)
    this.lastDemandSeg = seg
    this.lastDemandStart = start
    const next = start + this.windowSize
    if (!sequential || this.inflight !== null || next >= this.segSize || current.len < this.windowSize) return
    if (this.slots.some((s) => s.seg === seg && s.start === next)) return
    const slot = this.victim(current)
    const done = this.fill(slot, seg, next).catch((err: unknown) => { slot.error = err })
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
    const problem = checkPageHeader(buf, pos, seg, pageOff, hi, lo, this.expect, (s) => this.segmentName(s))
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

  /** A whole page from the window cache or the source, or the end of WAL if the file is short. */
  private async rawPage(seg: number, pageOff: number, reqSeg: number, reqOff: number): Promise<PageRef | WalEnd> {
    const w = this.cached(seg, pageOff) ?? await this.window(seg, pageOff)
    const pos = pageOff - w.start
    if (pos + B > w.len) {
      return this.end(reqSeg, reqOff, 'truncated-segment',
        `could not read file "${this.segmentName(seg)}": read ${Math.max(0, w.len - pos)} of ${B}`)
    }
    return { buf: w.buf, words: w.words, owner: this.reuseBuffers ? w : null, pos }
  }

  /** ReadPageInternal: entering a segment away from its start validates its first page too. */
  private async page(seg: number, pageOff: number, reqSeg: number, reqOff: number): Promise<PageRef | WalEnd> {
    if (seg !== this.lastSeg && pageOff !== 0) {
      const first = await this.rawPage(seg, 0, reqSeg, reqOff)
      if (first instanceof WalEnd) return first
      const bad = this.validatePage(first.buf, first.pos, seg, 0, reqSeg, reqOff)
      if (bad !== null) return bad
    }
    const p = await this.rawPage(seg, pageOff, reqSeg, reqOff)
    if (p instanceof WalEnd) return p
    if (seg * this.pagesPerSeg + pageOff / B !== this.lastPageIdx) {
      const bad = this.validatePage(p.buf, p.pos, seg, pageOff, reqSeg, reqOff)
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
  private checkHeader(buf: Buffer, start: number, totLen: number, rand: boolean, prevHi: number, prevLo: number,
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
    const pHi = RecordHeader.prevHi(buf, start)
    const pLo = RecordHeader.prevLo(buf, start)
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

  /** CRC, decode, and the position of the next record. `nextOff` may be segSize. */
  private finish(buf: Buffer, words: Uint32Array | null, owner: BufferOwner | null, start: number, totLen: number,
    recSeg: number, recOff: number, nextSeg: number, nextOff: number, reqSeg: number, reqOff: number): DecodedRecord | WalEnd {
    if (!recordCrcMatches(buf, start, totLen, words)) {
      return this.end(reqSeg, reqOff, 'bad-crc', `incorrect resource manager data checksum in record at ${this.lsnText(recSeg, recOff)}`)
    }
    const recHi = this.hiOf(recSeg)
    const recLo = this.loOf(recSeg, recOff)
    const rec = decodeRecordAt(buf, owner, start, totLen, this.profile, this.blockSize, recHi, recLo)
    if (typeof rec === 'string') return this.end(reqSeg, reqOff, 'bad-record', rec)
    // XLOG_SWITCH: the rest of the segment is unused; the next record is in the next segment.
    if (rec.xl_rmid === RM_XLOG_ID && (rec.xl_info & 0xf0) === this.switchInfo && nextOff !== 0) {
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
    if (seg !== this.lastSeg && pageOff !== 0) return null
    const w = this.cached(seg, pageOff)
    if (w === null) return null
    const pos = pageOff - w.start
    if (pos + B > w.len) return null
    if (seg * this.pagesPerSeg + pageOff / B !== this.lastPageIdx) {
      const bad = this.validatePage(w.buf, pos, seg, pageOff, seg, off)
      if (bad !== null) return bad
    }
    this.lastSeg = seg
    const buf = w.buf
    const info = pageInfo(buf, pos)
    const hdr = (info & XLP_LONG_HEADER) !== 0 ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
    let recInPage = inPage
    if (recInPage === 0) recInPage = hdr
    else if (recInPage < hdr) return null
    if (recInPage > B - SIZE_OF_XLOG_RECORD) return null
    if ((info & XLP_FIRST_IS_CONTRECORD) !== 0 && recInPage === hdr) return null
    const start = pos + recInPage
    const totLen = RecordHeader.totLen(buf, start)
    const recOff = pageOff + recInPage
    const bad = this.checkHeader(buf, start, totLen, rand, prevHi, prevLo, seg, recOff, seg, off)
    if (bad !== null) return bad
    if (totLen > B - recInPage) return null
    return this.finish(buf, w.words, this.reuseBuffers ? w : null, start, totLen, seg, recOff, seg, recOff + maxAlign(totLen), seg, off)
  }

  /** XLogDecodeNextRecord in full: page loading, header spill, multi-page gathering, overwritten contrecords. */
  private async slow(reqSeg: number, reqOff: number, rand: boolean, prevHi: number, prevLo: number): Promise<DecodedRecord | WalEnd> {
    let seg = reqSeg
    let off = reqOff
    for (;;) {
      const inPage = off % B
      const pageOff = off - inPage
      const pg = await this.page(seg, pageOff, reqSeg, reqOff)
      if (pg instanceof WalEnd) return pg
      const info = pageInfo(pg.buf, pg.pos)
      const hdr = (info & XLP_LONG_HEADER) !== 0 ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
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
      const start = pg.pos + recInPage
      const totLen = RecordHeader.totLen(pg.buf, start)
      let gotHeader = false
      if (recInPage <= B - SIZE_OF_XLOG_RECORD) {
        const bad = this.checkHeader(pg.buf, start, totLen, rand, prevHi, prevLo, seg, recOff, reqSeg, reqOff)
        if (bad !== null) return bad
        gotHeader = true
      } else if (totLen < SIZE_OF_XLOG_RECORD) {
        return this.end(reqSeg, reqOff, totLen === 0 ? 'zero-length' : 'bad-record-header',
          `invalid record length at ${this.lsnText(seg, recOff)}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${totLen}`)
      }
      const firstLen = B - recInPage
      if (totLen <= firstLen) {
        return this.finish(pg.buf, pg.words, pg.owner, start, totLen, seg, recOff, seg, recOff + maxAlign(totLen), reqSeg, reqOff)
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
      pg.buf.copy(asm, base, start, start + firstLen)
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
        const np = await this.page(pSeg, pOff, reqSeg, reqOff)
        if (np instanceof WalEnd) return np
        const nInfo = pageInfo(np.buf, np.pos)
        // The rest of this record was never written: recovery replaced it with what follows on
        // this page. Start over here, still expecting the same previous record.
        if ((nInfo & this.profile.xlpFirstIsOverwriteContrecord) !== 0) {
          overwritten = true
          break
        }
        if ((nInfo & XLP_FIRST_IS_CONTRECORD) === 0) {
          return this.end(reqSeg, reqOff, 'bad-contrecord', `there is no contrecord flag at ${this.lsnText(seg, recOff)}`)
        }
        remLen = pageRemLen(np.buf, np.pos)
        if (remLen === 0 || totLen !== remLen + got) {
          return this.end(reqSeg, reqOff, 'bad-contrecord',
            `invalid contrecord length ${remLen} (expected ${totLen - got}) at ${this.lsnText(seg, recOff)}`)
        }
        contHdr = (nInfo & XLP_LONG_HEADER) !== 0 ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
        const len = Math.min(B - contHdr, remLen)
        if (got + len > cap) {
          cap = Math.min(totLen, Math.max(cap * 2, got + len))
          const bigger = Buffer.allocUnsafe(cap)
          asm.copy(bigger, 0, 0, got)
          asm = bigger
        }
        np.buf.copy(asm, base + got, np.pos + contHdr, np.pos + contHdr + len)
        got += len
        if (!gotHeader) {
          const bad = this.checkHeader(asm, base, totLen, rand, prevHi, prevLo, seg, recOff, reqSeg, reqOff)
          if (bad !== null) return bad
          gotHeader = true
        }
      } while (got < totLen)
      if (overwritten) {
        seg = pSeg
        off = pOff
        continue
      }
      const done = this.finish(asm, arena !== null ? arena.words : wordsOf(asm), arena, base, totLen, seg, recOff, pSeg,
        pOff + contHdr + maxAlign(remLen), reqSeg, reqOff)
      // Only a record that was read keeps its arena space.
      if (arena !== null && !(done instanceof WalEnd)) arena.used = base + maxAlign(totLen)
      return done
    }
  }
}
