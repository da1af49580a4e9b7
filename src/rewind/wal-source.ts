// WAL segments from a pg_wal directory, for the WAL reader: which timeline's file holds a segment
// is decided by the caller (pg_rewind follows the target's history, see timelineChooser), a missing
// file may be fetched by a restore hook (restore_command), and every file opened is reported so the
// caller can keep the segments it read. The only file here that touches the file system.

import fs from 'node:fs'
import path from 'node:path'
import { RewindError } from '../errors.js'
import { segmentFileName, segmentStart } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { WalReader, type WalSegmentSource } from '../pg/wal/reader.js'
import type { ControlFile } from '../pg/control.js'

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

/**
 * Reads are synchronous (pread, as pg_rewind does) whenever the file is there: WAL comes from the
 * page cache in a fraction of the time a thread-pool round trip takes, and the reader yields to
 * the event loop every few megabytes. Only a missing file takes the asynchronous path, for the
 * restore hook.
 */
export class WalDirectory implements WalSegmentSource {
  private readonly opts: WalDirectoryOptions
  private fd: number | null = null
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
    const done = this.readIntoSync(segno, offset, buf, length)
    if (done >= 0) return done
    await this.restoreOrFail(this.segmentName(segno))
    return this.readIntoSync(segno, offset, buf, length)
  }

  /** Like readInto without waiting; -1 if the file is not there (readInto then tries the restore hook). */
  readIntoSync(segno: bigint, offset: number, buf: Buffer, length: number): number {
    const name = this.segmentName(segno)
    if (this.openName !== name && !this.open(name)) return -1
    let done = 0
    while (done < length) {
      const n = fs.readSync(this.fd!, buf, done, length - done, offset + done)
      if (n === 0) break
      done += n
    }
    return done
  }

  async close(): Promise<void> {
    this.closeSync()
  }

  private closeSync(): void {
    const fd = this.fd
    this.fd = null
    this.openName = null
    if (fd !== null) fs.closeSync(fd)
  }

  /** Opens the segment file; false if it does not exist. */
  private open(name: string): boolean {
    const file = path.join(this.opts.dir, name)
    let fd: number
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw new RewindError('FILE_IO', `could not open file "${file}": ${(err as Error).message}`, { path: file }, { cause: err })
    }
    this.closeSync()
    this.fd = fd
    this.openName = name
    this.opts.onSegmentOpened?.(name)
    return true
  }

  private async restoreOrFail(name: string): Promise<void> {
    const file = path.join(this.opts.dir, name)
    if (this.opts.restore !== undefined && (await this.opts.restore(name, file))) {
      let size: number | null = null
      try {
        size = fs.statSync(file).size
      } catch {
        // Not there after all: reported below as missing.
      }
      if (size !== null) {
        if (size !== this.opts.segSize) {
          throw new RewindError('RESTORE_COMMAND', `unexpected file size for "${file}": ${size} instead of ${this.opts.segSize}`, {
            path: file,
            segment: name,
          })
        }
        if (this.open(name)) return
      }
    }
    throw new RewindError('WAL_MISSING', `could not open file "${file}": No such file or directory`, { path: file, segment: name })
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

/**
 * The WAL of a data directory, read along its timeline `history`: the reader and the directory
 * behind it (close it when done). `options` adds the restore and open hooks of WalDirectory.
 */
export function openDataDirWal(
  dataDir: string,
  control: ControlFile,
  history: readonly TimelineEntry[],
  options: Pick<WalDirectoryOptions, 'restore' | 'onSegmentOpened'> = {},
): { reader: WalReader; dir: WalDirectory; timelineOf: (segno: bigint) => number } {
  const segSize = control.xlog_seg_size
  const timelineOf = timelineChooser(history, segSize)
  const dir = new WalDirectory({ dir: path.join(dataDir, 'pg_wal'), segSize, timelineOf, ...options })
  const reader = new WalReader({
    profile: control.profile,
    segSize,
    blockSize: control.blcksz,
    systemIdentifier: control.system_identifier,
    source: dir,
  })
  return { reader, dir, timelineOf }
}
