// The reader's read windows: page-aligned runs of one segment in reused buffers, read from the
// WalSegmentSource (synchronously when it can, as pg_rewind reads), the least recently used one
// refilled when another is needed. Missing segments are the source's WAL_MISSING error.

import { wordsOf } from '../crc32c.js'
import type { BufferOwner } from './record.js'

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
  /** The file name of segment `segno`, for messages; without it the timeline of the pages read is used. */
  segmentName?(segno: bigint): string
}

/** A window of segment `seg` from offset `start`; `gen` changes whenever it is refilled. */
export class Window implements BufferOwner {
  gen = 0
  seg = -1
  start = -1
  len = 0
  used = 0
  words: Uint32Array | null
  /** What records decoded here depend on: the window when its buffer is refilled, null when never. */
  readonly owner: BufferOwner | null

  constructor(
    public buf: Buffer,
    refilled: boolean,
  ) {
    this.words = wordsOf(buf)
    this.owner = refilled ? this : null
  }
}

/** The current window, the one before (a record reaches back into it), and a segment's first page. */
const WINDOWS = 3

export class WindowCache {
  /** Bytes per window: a power of two, so that windows tile a segment. */
  readonly size: number
  /** Bytes read synchronously since the reader last let the event loop run. */
  syncBytes = 0
  private windows: Window[] = []
  private clock = 0
  private readonly refills: boolean

  constructor(
    private readonly source: WalSegmentSource,
    private readonly segSize: number,
    pageSize: number,
    wantedSize: number,
  ) {
    this.size = Math.min(Math.max(pageSize, 2 ** Math.floor(Math.log2(wantedSize))), segSize)
    this.refills = source.readInto !== undefined
  }

  /** The window holding the page at `pageOff` of segment `seg` if it is here or can be read without waiting; else null. */
  get(seg: number, pageOff: number): Window | null {
    const start = pageOff - (pageOff % this.size)
    for (const w of this.windows) {
      if (w.seg === seg && w.start === start) {
        w.used = ++this.clock
        return w
      }
    }
    if (this.source.readIntoSync === undefined) return null
    const w = this.refill(seg, start)
    const n = this.source.readIntoSync(BigInt(seg), start, w.buf, this.lengthAt(start))
    if (n < 0) {
      w.seg = -1
      return null
    }
    w.len = n
    this.syncBytes += n
    return w
  }

  /** Reads the window holding the page at `pageOff` of segment `seg`, waiting for the source. */
  async load(seg: number, pageOff: number): Promise<Window> {
    const start = pageOff - (pageOff % this.size)
    const w = this.refill(seg, start)
    const length = this.lengthAt(start)
    try {
      if (this.source.readInto !== undefined) {
        w.len = await this.source.readInto(BigInt(seg), start, w.buf, length)
      } else {
        w.buf = await this.source.read(BigInt(seg), start, length)
        w.words = wordsOf(w.buf)
        w.len = w.buf.length
      }
    } catch (err) {
      w.seg = -1
      throw err
    }
    return w
  }

  /** Lets go of the buffers; records that depend on them can tell (their generation changed). */
  release(): void {
    for (const w of this.windows) w.gen += 1
    this.windows = []
  }

  private lengthAt(start: number): number {
    return Math.min(this.size, this.segSize - start)
  }

  /** The least recently used window (or a new one while there are fewer than WINDOWS), emptied for seg/start. */
  private refill(seg: number, start: number): Window {
    let w: Window
    if (this.windows.length < WINDOWS) {
      w = new Window(this.refills ? Buffer.allocUnsafe(this.size) : Buffer.alloc(0), this.refills)
      this.windows.push(w)
    } else {
      w = this.windows[0]!
      for (const other of this.windows) if (other.used < w.used) w = other
    }
    w.gen += 1
    w.seg = seg
    w.start = start
    w.len = 0
    w.used = ++this.clock
    return w
  }
}
