// WAL segments from a pg_wal directory, for the WAL reader: which timeline's file holds a segment
// is decided by the caller (pg_rewind follows the target's history, see timelineChooser), a missing
// file may be fetched by a restore hook (restore_command), and every file opened is reported so the
// caller can keep the segments it read. The only file here that touches the file system.

import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { RewindError } from '../errors.js'
import { segmentFileName, segmentStart } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import type { WalSegmentSource } from '../pg/wal/reader.js'

export interface WalDirectoryOptions {
  /** The pg_wal directory (or any directory of segment files). */
  readonly dir: string
  readonly segSize: number
  /** The timeline whose file holds segment `segno`. */
  readonly timelineOf: (segno: bigint) => number
  /** Called when the file is missing: fetch `fileName` into `destPath`, true on success. */
  readonly restore?: (fileName: string, destPath: string) => Promise<boolean>
  /** Called with each segment file name as it is opened. */
  readonly onSegmentOpened?: (fileName: string) => void
}

export class WalDirectory implements WalSegmentSource {
  private readonly opts: WalDirectoryOptions
  private handle: fs.FileHandle | null = null
  private openName: string | null = null

  constructor(opts: WalDirectoryOptions) {
    this.opts = opts
  }

  segmentName(segno: bigint): string {
    return segmentFileName(this.opts.timelineOf(segno), segno, this.opts.segSize)
  }

  async read(segno: bigint, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length)
    const done = await this.readInto(segno, offset, buf, length)
    return done === length ? buf : buf.subarray(0, done)
  }

  async readInto(segno: bigint, offset: number, buf: Buffer, length: number): Promise<number> {
    const handle = await this.open(this.segmentName(segno))
    let done = 0
    while (done < length) {
      const { bytesRead } = await handle.read(buf, done, length - done, offset + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done
  }

  async close(): Promise<void> {
    const h = this.handle
    this.handle = null
    this.openName = null
    await h?.close()
  }

  private async open(name: string): Promise<fs.FileHandle> {
    if (this.handle !== null && this.openName === name) return this.handle
    await this.close()
    const file = path.join(this.opts.dir, name)
    let handle = await openIfExists(file)
    if (handle === null && this.opts.restore !== undefined && await this.opts.restore(name, file)) {
      handle = await openIfExists(file)
      if (handle !== null) {
        const { size } = await handle.stat()
        if (size !== this.opts.segSize) {
          await handle.close()
          throw new RewindError('RESTORE_COMMAND', `unexpected file size for "${file}": ${size} instead of ${this.opts.segSize}`,
            { path: file, segment: name })
        }
      }
    }
    if (handle === null) {
      throw new RewindError('WAL_MISSING', `could not open file "${file}": No such file or directory`, { path: file, segment: name })
    }
    this.handle = handle
    this.openName = name
    this.opts.onSegmentOpened?.(name)
    return handle
  }
}

async function openIfExists(file: string): Promise<fs.FileHandle | null> {
  try {
    return await fs.open(file, fsConstants.O_RDONLY)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new RewindError('FILE_IO', `could not open file "${file}": ${(err as Error).message}`, { path: file }, { cause: err })
  }
}

/**
 * pg_rewind's SimpleXLogPageRead rule: a segment is read from the timeline of the history entry
 * that covers its end, since a timeline's first segment also holds the parent's WAL before the
 * switch. Like pg_rewind it remembers its position, starting from `startIndex` (the common
 * ancestor's index for a scan, the last entry for reading the target's last checkpoint).
 */
export function timelineChooser(history: readonly TimelineEntry[], segSize: number, startIndex = 0): (segno: bigint) => number {
  if (history.length === 0) throw new RewindError('INTERNAL', 'empty timeline history')
  let index = Math.min(Math.max(startIndex, 0), history.length - 1)
  return (segno) => {
    const segEnd = segmentStart(segno + 1n, segSize)
    while (index < history.length - 1 && history[index]!.end !== null && history[index]!.end! < segEnd) index++
    while (index > 0 && history[index]!.begin >= segEnd) index--
    return history[index]!.tli
  }
}
