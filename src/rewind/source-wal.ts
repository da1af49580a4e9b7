// The source's WAL as the WAL reader wants it. A source on this machine is read in place; any
// other is fetched through the source's own fetch queue, a chunk at a time (memory stays at one
// chunk however much WAL is read).

import path from 'node:path'
import { RewindError } from '../errors.js'
import type { ControlFile } from '../pg/control.js'
import { segmentFileName } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { WalReader, type WalSegmentSource } from '../pg/wal/reader.js'
import type { Source } from '../source/source.js'
import { timelineChooser, WalDirectory } from './wal-source.js'

// Reads go forward from the fork, often only a little way, sometimes hundreds of megabytes. The
// first chunk is small; each one that continues the one before is twice as large, up to 8 MB: a
// long read becomes fewer, larger queries the server streams, where a round trip per 2 MB left it
// idle while the reader worked (463 MB took 2.4 s so). Not larger: each chunk is held twice over
// while it arrives (up to a 16 MB segment measured 35 MB more peak RSS).
const FIRST_CHUNK = 2 * 1024 * 1024
const MAX_CHUNK = 8 * 1024 * 1024
const PAGE = 8192

/** A reader of the source's WAL along its timeline `history`; close it when done. */
export function openSourceWal(
  source: Source,
  control: ControlFile,
  history: readonly TimelineEntry[],
): { reader: WalReader; close: () => Promise<void> } {
  const { segments, close } = sourceWalSegments(source, control.xlog_seg_size, history)
  const reader = new WalReader({
    profile: control.profile,
    segSize: control.xlog_seg_size,
    blockSize: control.blcksz,
    systemIdentifier: control.system_identifier,
    source: segments,
  })
  return {
    reader,
    close: async () => {
      await reader.close()
      await close()
    },
  }
}

/**
 * Segments fetched from a source by chunks; the last chunk fetched is kept for the reads that
 * follow, in one buffer reused from fetch to fetch: a fresh 8 MB buffer a fetch cost more in page
 * faults than the copy out of it (this machine: about 2 ms a megabyte, a third of the time the
 * source's WAL took to read over the loopback). The reader gets copies (readInto, into its own
 * reused windows).
 */
class FetchedWalSegments implements WalSegmentSource {
  /** `asked`: the bytes requested; `length` is less where the file ended. */
  private cached: { segno: bigint; start: number; asked: number; length: number } | null = null
  private store: Buffer = Buffer.alloc(0)
  private chunk = FIRST_CHUNK

  constructor(
    private readonly source: Source,
    private readonly segSize: number,
    private readonly timelineOf: (segno: bigint) => number,
  ) {}

  segmentName(segno: bigint): string {
    return segmentFileName(this.timelineOf(segno), segno, this.segSize)
  }

  async read(segno: bigint, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length)
    return buf.subarray(0, await this.readInto(segno, offset, buf, length))
  }

  async readInto(segno: bigint, offset: number, buf: Buffer, length: number): Promise<number> {
    let cached = this.cached
    if (cached === null || cached.segno !== segno || offset < cached.start || offset + length > cached.start + cached.asked) {
      const continues =
        cached !== null &&
        (cached.segno === segno
          ? offset >= cached.start && offset <= cached.start + cached.asked
          : cached.segno + 1n === segno && cached.start + cached.asked >= this.segSize && offset < FIRST_CHUNK)
      this.chunk = continues ? Math.min(2 * this.chunk, MAX_CHUNK) : FIRST_CHUNK
      const start = offset - (offset % PAGE)
      const asked = Math.max(Math.min(this.chunk, this.segSize - start), offset + length - start)
      this.cached = null
      cached = { segno, start, asked, length: await this.fetch(segno, start, asked) }
      this.cached = cached
    }
    const from = offset - cached.start
    return this.store.copy(buf, 0, from, Math.max(from, Math.min(from + length, cached.length)))
  }

  /** Fetches into the store; returns the bytes the source had. */
  private async fetch(segno: bigint, offset: number, length: number): Promise<number> {
    const name = this.segmentName(segno)
    const path = `pg_wal/${name}`
    if (this.store.length < length) this.store = Buffer.allocUnsafe(Math.max(length, MAX_CHUNK))
    const store = this.store // chunks of one range arrive in order and cover it from its start
    let got = 0
    let missing = false
    this.source.queueRange(path, offset, length)
    await this.source.flush({
      chunk: async (_path, at, data) => {
        data.copy(store, at - offset)
        got = Math.max(got, at - offset + data.length)
      },
      missing: async () => {
        missing = true
      },
    })
    if (missing) {
      throw new RewindError(
        'WAL_MISSING',
        `could not open file "${path}" of source ${this.source.description}: No such file or directory`,
        { path, segment: name },
      )
    }
    return got
  }
}

/** The source's WAL segment files, without a reader: in place for a source on this machine, fetched otherwise. */
export function sourceWalSegments(
  source: Source,
  segSize: number,
  history: readonly TimelineEntry[],
): { segments: WalSegmentSource; close: () => Promise<void> } {
  const timelineOf = timelineChooser(history, segSize)
  if (source.localDataDir !== undefined) {
    const dir = new WalDirectory({ dir: path.join(source.localDataDir, 'pg_wal'), segSize, timelineOf })
    return { segments: dir, close: () => dir.close() }
  }
  return { segments: new FetchedWalSegments(source, segSize, timelineOf), close: async () => {} }
}

/**
 * The target's WAL, where a segment it no longer has (removed or recycled after the fork, and not
 * restorable) is read from the source instead: wholly before the fork, both nodes wrote the same
 * WAL, under the same file names. Nothing is taken from the source until `forkSegment` is set.
 */
export class TargetWalWithSourceFallback implements WalSegmentSource {
  /** Segments before this one may come from the source. */
  forkSegment: bigint | null = null
  private readonly taken = new Set<bigint>()

  constructor(
    private readonly target: WalDirectory,
    private readonly fromSource: WalSegmentSource,
    private readonly onTaken: (fileName: string) => void,
  ) {}

  segmentName(segno: bigint): string {
    return this.target.segmentName(segno)
  }

  readIntoSync(segno: bigint, offset: number, buf: Buffer, length: number): number {
    if (this.taken.has(segno)) return -1
    return this.target.readIntoSync(segno, offset, buf, length)
  }

  async read(segno: bigint, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length)
    const done = await this.readInto(segno, offset, buf, length)
    return done === length ? buf : buf.subarray(0, done)
  }

  async readInto(segno: bigint, offset: number, buf: Buffer, length: number): Promise<number> {
    if (!this.taken.has(segno)) {
      try {
        return await this.target.readInto(segno, offset, buf, length)
      } catch (err) {
        if (!(err instanceof RewindError) || err.code !== 'WAL_MISSING' || this.forkSegment === null || segno >= this.forkSegment) throw err
        this.taken.add(segno)
        this.onTaken(this.target.segmentName(segno))
      }
    }
    const data = await this.fromSource.read(segno, offset, length)
    data.copy(buf, 0, 0, Math.min(length, data.length))
    return Math.min(length, data.length)
  }
}
