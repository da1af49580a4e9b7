// Where a read is: the LSN asked for, and the record before it, whose LSN the next record's
// xl_prev must name. Every call of the reader's API has its own cursor, so a visitor that reads
// with the same reader meanwhile does not move the one it is visited from.

import { WalEnd, type EndOfWalReason } from './end-of-wal.js'
import type { WalGeometry } from './geometry.js'
import type { Lsn } from '../lsn.js'
import { DecodedRecord, RecordHeader, type RecordBytes } from './record.js'
import { RM } from './rmgr.js'

const RM_XLOG = RM.XLOG

export class ReadCursor {
  /** The LSN asked for, as segment and offset: an end of WAL is reported there. */
  seg = 0
  off = 0
  /** The same as an LSN's halves. */
  hi = 0
  lo = 0
  /** Where the record's bytes start: the same, unless recovery overwrote a record there (see across-pages.ts). */
  readSeg = 0
  readOff = 0
  /** Read at random, no record before: xl_prev need only point backwards. */
  random = true
  prevHi = 0
  prevLo = 0
  // Where reading is to stop (+∞: never), as an LSN's halves.
  private untilHi = Infinity
  private untilLo = 0

  /**
   * `reuse`: the record object every record is read into (as xlogreader reuses its decode buffer),
   * or null for a new one each. `switchInfo`: the major's XLOG_SWITCH, after which the next record
   * is in the next segment.
   */
  constructor(
    private readonly geo: WalGeometry,
    private readonly switchInfo: number,
    private readonly reuse: DecodedRecord | null,
  ) {}

  /** Moves to `lsn`, read at random. */
  jumpTo(lsn: Lsn): this {
    this.moveTo(this.geo.segOf(lsn), this.geo.offOf(lsn))
    this.random = true
    return this
  }

  /** Moves to the record xl_prev of `rec` names, read at random. */
  jumpBackFrom(rec: DecodedRecord): void {
    this.moveTo(this.geo.segOfHalves(rec.prevHi, rec.prevLo), rec.prevLo % this.geo.segSize)
    this.random = true
  }

  /** The record object to decode into. */
  record(): DecodedRecord {
    return this.reuse ?? new DecodedRecord()
  }

  /**
   * Goes past `rec`, whose bytes end at offset `off` of segment `seg` (MAXALIGNed; may be segSize):
   * sets its endLsn (xlogreader's EndRecPtr) and moves to the record after it, which must name it.
   */
  pass(rec: DecodedRecord, seg: number, off: number): DecodedRecord {
    // At the segment's end, or after XLOG_SWITCH (the rest of the segment is unused), the next
    // record is at the start of the next segment.
    if ((off === this.geo.segSize || (rec.xl_rmid === RM_XLOG && (rec.xl_info & 0xf0) === this.switchInfo)) && off !== 0) {
      seg += 1
      off = 0
    }
    this.moveTo(seg, off)
    rec.setEnd(this.hi, this.lo)
    this.random = false
    this.prevHi = rec.lsnHi
    this.prevLo = rec.lsnLo
    return rec
  }

  /** Whether the xl_prev of record `at` lets it come here (ValidXLogRecordHeader's prev-link check). */
  acceptsPrevLinkOf(at: RecordBytes): boolean {
    // Read in sequence the link must name the previous record exactly, which catches a stale
    // record on a torn page; read at random we can only check that it points backwards.
    if (this.random) return this.linksBack(at)
    return (
      RecordHeader.prevLo(at.buf, at.words, at.start) === this.prevLo && RecordHeader.prevHi(at.buf, at.words, at.start) === this.prevHi
    )
  }

  private linksBack(at: RecordBytes): boolean {
    const prevLo = RecordHeader.prevLo(at.buf, at.words, at.start)
    const prevHi = RecordHeader.prevHi(at.buf, at.words, at.start)
    return prevHi < at.lsnHi || (prevHi === at.lsnHi && prevLo < at.lsnLo)
  }

  /** Sets where reading is to stop: at or past `lsn` (see reachedUntil). */
  stopAt(lsn: Lsn | undefined): this {
    if (lsn !== undefined) {
      this.untilHi = Number(lsn >> 32n)
      this.untilLo = Number(lsn & 0xffffffffn)
    }
    return this
  }

  /** Whether the cursor is at or past where reading is to stop. */
  reachedUntil(): boolean {
    return this.hi > this.untilHi || (this.hi === this.untilHi && this.lo >= this.untilLo)
  }

  /** The end of WAL at the LSN asked for. */
  end(reason: EndOfWalReason, message: string): WalEnd {
    return new WalEnd(this.geo.lsn(this.seg, this.off), reason, message)
  }

  private moveTo(seg: number, off: number): void {
    this.seg = this.readSeg = seg
    this.off = this.readOff = off
    this.hi = this.geo.hi(seg)
    this.lo = this.geo.lo(seg, off)
  }
}
