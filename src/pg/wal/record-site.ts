// The record being read: where it was asked for (the cursor), where it lies (a window's page), its
// length; and ValidXLogRecordHeader's checks of it, shared by the record on one page and the
// record across pages.

import type { VersionProfile } from '../versions.js'
import type { ReadCursor } from './cursor.js'
import type { WalEnd } from './end-of-wal.js'
import { hex, type WalGeometry } from './geometry.js'
import { isValidRmgrId, RecordHeader, SIZE_OF_XLOG_RECORD, type BufferOwner, type RecordBytes } from './record.js'
import type { Window } from './windows.js'

/** XLogRecordMaxSize (16+); earlier servers could not allocate more either. */
const MAX_RECORD_SIZE = 1020 * 1024 * 1024

/** Filled for each record by the reader (one object, refilled: nothing is allocated per record). */
export class RecordSite implements RecordBytes {
  cursor!: ReadCursor
  /** The window of the record's first page, and what RecordBytes needs of it. */
  window!: Window
  buf: Buffer = Buffer.alloc(0)
  words: Uint32Array | null = null
  owner: BufferOwner | null = null
  /** The record's segment, its first page's offset there, and its own. */
  seg = 0
  pageOff = 0
  recOff = 0
  /** The record's offset in the window's buffer. */
  start = 0
  totLen = 0
  /** Bytes of the record on its first page (all of them for a record on one page). */
  available = 0
  lsnHi = 0
  lsnLo = 0

  copyFrom(other: RecordSite): void {
    this.cursor = other.cursor
    this.inWindow(other.window, other.start)
    this.seg = other.seg
    this.pageOff = other.pageOff
    this.recOff = other.recOff
    this.totLen = other.totLen
    this.available = other.available
    this.lsnHi = other.lsnHi
    this.lsnLo = other.lsnLo
  }

  /** The record at `recOff` of the same page, read for cursor `c`. */
  moveOnPage(c: ReadCursor, recOff: number): void {
    this.cursor = c
    this.lsnLo += recOff - this.recOff
    this.inWindow(this.window, this.start + (recOff - this.recOff))
    this.recOff = recOff
  }

  /** A record at `start` of window `w`. */
  inWindow(w: Window, start: number): void {
    this.window = w
    this.buf = w.buf
    // Records start MAXALIGNed; an LSN asked for at random may not.
    this.words = (start & 3) === 0 ? w.words : null
    this.owner = w.owner
    this.start = start
  }
}

/** ValidXLogRecordHeader, and the messages the record paths end WAL with. */
export class RecordChecks {
  constructor(
    private readonly profile: VersionProfile,
    private readonly geo: WalGeometry,
  ) {}

  /**
   * The length, resource manager and prev link of the header at `start` of `bytes` (the window, or
   * the bytes gathered when the header crosses a page) of the record `site`: null when valid.
   */
  header(bytes: { readonly buf: Buffer; readonly words: Uint32Array | null }, start: number, site: RecordSite): WalEnd | null {
    const { buf, words } = bytes
    const c = site.cursor
    const totLen = RecordHeader.totLen(buf, words, start)
    if (totLen < SIZE_OF_XLOG_RECORD) return this.tooShort(site, totLen)
    if (totLen > MAX_RECORD_SIZE) return c.end('bad-record-header', `record length ${totLen} at ${this.where(site)} too long`)
    const rmid = RecordHeader.rmid(buf, start)
    if (!isValidRmgrId(rmid, this.profile)) return c.end('bad-record-header', `invalid resource manager ID ${rmid} at ${this.where(site)}`)
    if (!c.acceptsPrevLinkOf(site)) {
      const prevHi = RecordHeader.prevHi(buf, words, start)
      const prevLo = RecordHeader.prevLo(buf, words, start)
      return c.end('bad-prev-link', `record with incorrect prev-link ${hex(prevHi)}/${hex(prevLo)} at ${this.where(site)}`)
    }
    return null
  }

  tooShort(site: RecordSite, totLen: number): WalEnd {
    return site.cursor.end(
      totLen === 0 ? 'zero-length' : 'bad-record-header',
      `invalid record length at ${this.where(site)}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${totLen}`,
    )
  }

  badCrc(site: RecordSite): WalEnd {
    return site.cursor.end('bad-crc', `incorrect resource manager data checksum in record at ${this.where(site)}`)
  }

  /** The record's LSN as the server's messages print it. */
  where(site: RecordSite): string {
    return this.geo.text(site.seg, site.recOff)
  }
}
