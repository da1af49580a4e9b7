// A stopped data directory as the source. Reads are plain positional reads, many files at a
// time; a whole-file copy must deliver exactly the size listed, since a stopped cluster's files
// do not change (a file that grows or shrinks means something else is writing there).
//
// The reads of a flush are synchronous, each worker into a buffer of its own that a chunk
// borrows until the sink's promise settles: from the page cache that costs microseconds a read,
// where an asynchronous read costs a thread-pool round trip (target-dir.ts writes the same way).

import fs from 'node:fs/promises'
import fsSync from 'node:fs'
import path from 'node:path'
import { blockDigestsOf, DIGEST_ALGORITHM } from '../compare/digest.js'
import { readRange } from '../compare/read.js'
import { RewindError } from '../errors.js'
import type { ControlFile } from '../pg/control.js'
import type { BlockDigestRange, BlockDigests, ChunkSink, FileEntry, Source, SourceWalEnd } from './source.js'
import { errText, isNotFound, listDataDirectory } from './walk.js'

const READ_CHUNK = 4 * 1024 * 1024

interface QueuedFile {
  path: string
  whole: number | null
  ranges: Array<[offset: number, length: number]>
}

export class LocalSource implements Source {
  readonly kind = 'local' as const
  readonly running = false
  readonly overNetwork = false
  readonly description: string
  private queue = new Map<string, QueuedFile>()

  constructor(
    readonly root: string,
    private readonly jobs = 4,
  ) {
    this.description = root
  }

  get localDataDir(): string {
    return this.root
  }

  listFiles(): Promise<FileEntry[]> {
    return listDataDirectory(this.root)
  }

  async listWalFiles(): Promise<FileEntry[]> {
    const dir = path.join(this.root, 'pg_wal')
    let names: string[]
    try {
      names = await fs.readdir(dir)
    } catch (err) {
      throw new RewindError('FILE_IO', `could not open directory "${dir}": ${errText(err)}`, { path: dir }, { cause: err })
    }
    const entries: FileEntry[] = []
    for (const name of names.sort()) {
      const st = await fs.lstat(path.join(dir, name)).catch(() => null)
      if (st?.isFile()) entries.push({ path: `pg_wal/${name}`, type: 'file', size: st.size })
    }
    return entries
  }

  async readFile(rel: string): Promise<Buffer> {
    const data = await this.readFileIfExists(rel)
    if (data === null) {
      const abs = path.join(this.root, rel)
      throw new RewindError('FILE_IO', `could not open file "${abs}" for reading: No such file or directory`, { path: abs })
    }
    return data
  }

  async readFileIfExists(rel: string): Promise<Buffer | null> {
    const abs = path.join(this.root, rel)
    try {
      return await fs.readFile(abs)
    } catch (err) {
      if (isNotFound(err)) return null
      throw new RewindError('FILE_IO', `could not read file "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
    }
  }

  queueRange(rel: string, offset: number, length: number): void {
    this.entryFor(rel).ranges.push([offset, length])
  }

  queueFile(rel: string, expectedSize: number): void {
    this.entryFor(rel).whole = expectedSize
  }

  private entryFor(rel: string): QueuedFile {
    let entry = this.queue.get(rel)
    if (!entry) {
      entry = { path: rel, whole: null, ranges: [] }
      this.queue.set(rel, entry)
    }
    return entry
  }

  async flush(sink: ChunkSink): Promise<void> {
    const queued = [...this.queue.values()]
    this.queue = new Map()
    // One work item per whole file and per read of at most READ_CHUNK bytes, so that a big file
    // with many changed blocks is read by all workers at once.
    const work: Array<(scratch: Buffer) => Promise<void>> = []
    const handles = new Map<string, Promise<fs.FileHandle>>()
    const handleFor = (rel: string) => {
      let h = handles.get(rel)
      if (!h) {
        const abs = path.join(this.root, rel)
        h = fs.open(abs, 'r').catch((err) => {
          throw new RewindError('FILE_IO', `could not open source file "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
        })
        handles.set(rel, h)
      }
      return h
    }
    for (const item of queued) {
      if (item.whole !== null) work.push((scratch) => this.copyWhole(item.path, item.whole!, sink, scratch))
      for (const [offset, length] of item.ranges) {
        for (let done = 0; done < length; done += READ_CHUNK) {
          const at = offset + done
          const len = Math.min(READ_CHUNK, length - done)
          work.push(async (scratch) => this.copyRange(await handleFor(item.path), item.path, at, len, sink, scratch))
        }
      }
    }
    let next = 0
    // Every worker stops before the handles are closed: one failing must not leave the others
    // opening files nobody closes.
    let failed = false
    const guarded = async () => {
      const scratch = Buffer.allocUnsafe(READ_CHUNK)
      try {
        while (!failed && next < work.length) await work[next++]!(scratch)
      } catch (err) {
        failed = true
        throw err
      }
    }
    const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(this.jobs, work.length)) }, guarded))
    for (const h of handles.values())
      await h.then(
        (fh) => fh.close(),
        () => {},
      )
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (rejected !== undefined) throw rejected.reason
  }

  private async copyWhole(rel: string, expected: number, sink: ChunkSink, scratch: Buffer): Promise<void> {
    const abs = path.join(this.root, rel)
    let copied: number
    if (sink.copyWholeFile) {
      copied = await sink.copyWholeFile(rel, abs)
    } else {
      let handle
      try {
        handle = await fs.open(abs, 'r')
      } catch (err) {
        throw new RewindError('FILE_IO', `could not open source file "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
      }
      copied = 0
      try {
        for (;;) {
          const bytesRead = fsSync.readSync(handle.fd, scratch, 0, scratch.length, copied)
          if (bytesRead === 0) break
          await sink.chunk(rel, copied, scratch.subarray(0, bytesRead))
          copied += bytesRead
        }
      } finally {
        await handle.close()
      }
    }
    if (copied !== expected) {
      throw new RewindError(
        'SOURCE_FILE_CHANGED',
        `size of source file "${abs}" changed concurrently: ${expected} bytes expected, ${copied} copied`,
        { path: abs },
      )
    }
  }

  private async copyRange(
    handle: fs.FileHandle,
    rel: string,
    offset: number,
    length: number,
    sink: ChunkSink,
    scratch: Buffer,
  ): Promise<void> {
    const buf = scratch.subarray(0, length)
    let done = 0
    while (done < length) {
      let bytesRead: number
      try {
        bytesRead = fsSync.readSync(handle.fd, buf, done, length - done, offset + done)
      } catch (err) {
        const abs = path.join(this.root, rel)
        throw new RewindError('FILE_IO', `could not read file "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
      }
      if (bytesRead === 0) {
        const abs = path.join(this.root, rel)
        throw new RewindError('FILE_IO', `unexpected EOF while reading file "${abs}"`, { path: abs })
      }
      done += bytesRead
    }
    await sink.chunk(rel, offset, buf)
  }

  /** The digest of each block, read here (the comparison reads a directory source directly instead). */
  async blockDigests(ranges: readonly BlockDigestRange[], blockSize: number): Promise<BlockDigests> {
    const out: Array<Buffer[] | null> = []
    for (const range of ranges) {
      const buf = Buffer.allocUnsafe(range.count * blockSize)
      const got = await readRange(path.join(this.root, range.path), buf, buf.length, range.firstBlock * blockSize)
      out.push(got === null ? null : blockDigestsOf(buf, got, blockSize))
    }
    return { algorithm: DIGEST_ALGORITHM, ranges: out }
  }

  async walEnd(sourceControl: ControlFile): Promise<SourceWalEnd> {
    // A stopped primary's WAL ends with its shutdown checkpoint. A stopped standby's files reflect
    // everything it replayed, up to minRecoveryPoint, which can be past its last restartpoint;
    // pg_rewind takes the checkpoint there too, and the rewound node can then open too early.
    if (sourceControl.minRecoveryPoint > sourceControl.checkPoint) {
      return { lsn: sourceControl.minRecoveryPoint, tli: sourceControl.minRecoveryPointTLI }
    }
    return { lsn: sourceControl.checkPoint, tli: sourceControl.checkPointCopy.ThisTimeLineID }
  }

  recoveryConninfo(): null {
    return null
  }

  async close(): Promise<void> {}
}
