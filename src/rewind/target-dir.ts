// The only module that writes the target data directory (as file_ops.c is pg_rewind's only
// writer). Every path it is given may come from a hostile source server, so each one is checked
// here, before the write, by the rules of source/path-policy.ts: relative, no '.'/'..' or empty
// parts, and no symlink on the way except the ones PostgreSQL itself places (pg_wal, pg_tblspc/<oid>).
//
// The copy's calls (open, write, truncate, copy, remove) are synchronous behind async signatures:
// tens of thousands of small writes into the page cache cost a few microseconds each this way,
// against a thread-pool round trip each when asynchronous (measured: copying at pgbench scale 200
// took 2.0 s asynchronously). Only the fsyncs, slow and worth running side by side, stay asynchronous.

import fs from 'node:fs/promises'
import fsSync, { constants as fsConstants } from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { RewindError } from '../errors.js'
import { checkRelativePath, followedLinkOf, isFollowedSymlink, isSafeLinkTarget, isTablespaceLink } from '../source/path-policy.js'
import { errText, isNotFound } from '../source/walk.js'

const MAX_OPEN_FILES = 64
const COPY_BUFFER = 1024 * 1024

export interface TargetModes {
  readonly dirMode: number
  readonly fileMode: number
}

/** pg_rewind derives modes from the target's PGDATA: group access (0750) keeps 0640 files. */
export function modesFromDataDirMode(mode: number): TargetModes {
  return (mode & 0o070) !== 0 ? { dirMode: 0o750, fileMode: 0o640 } : { dirMode: 0o700, fileMode: 0o600 }
}

export class TargetDir {
  /** Open file descriptors by path, kept for the next write to the same file. A file is touched (synced) once written, not when opened. */
  private readonly handles = new Map<string, number>()
  private copyBuffer: Buffer | null = null
  private compareBuffer: Buffer | null = null
  /** Files readied for a whole copy (truncateForCopy): the byte ranges written into each so far. */
  private readonly pendingCopies = new Map<string, Array<[start: number, end: number]>>()
  private readonly touched = new Set<string>()
  private readonly checkedDirs = new Set<string>([''])

  constructor(
    readonly root: string,
    readonly modes: TargetModes,
  ) {}

  abs(rel: string): string {
    return path.join(this.root, rel)
  }

  /**
   * Checks that writing `rel` stays inside the target: each parent directory must be a real
   * directory, or one of the symlinks PostgreSQL places. A link elsewhere (planted by a hostile
   * listing, or a stray one) would send the write outside the data directory.
   */
  private checkParents(rel: string): void {
    const parts = rel.split('/')
    let prefix = ''
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix === '' ? parts[i]! : `${prefix}/${parts[i]}`
      if (this.checkedDirs.has(prefix)) continue
      let st
      try {
        st = fsSync.lstatSync(this.abs(prefix))
      } catch (err) {
        if (isNotFound(err)) return // created later by the plan, which checks it then
        throw ioError('could not stat file', this.abs(prefix), err)
      }
      if (st.isSymbolicLink() ? !isFollowedSymlink(prefix) : !st.isDirectory()) {
        throw new RewindError(
          'SOURCE_UNSAFE_PATH',
          `target file path is unsafe: "${rel}" passes through "${prefix}", which is not a directory`,
          { path: rel },
        )
      }
      this.checkedDirs.add(prefix)
    }
  }

  async createDirectory(rel: string): Promise<void> {
    checkRelativePath(rel, 'directory')
    this.checkParents(rel)
    try {
      await fs.mkdir(this.abs(rel), { mode: this.modes.dirMode })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('could not create directory', this.abs(rel), err)
    }
    this.touched.add(rel)
  }

  async createSymlink(rel: string, linkTarget: string): Promise<void> {
    checkRelativePath(rel, 'symlink')
    if (isFollowedSymlink(rel) && !isSafeLinkTarget(linkTarget)) {
      throw new RewindError('SOURCE_UNSAFE_PATH', `target symbolic link "${rel}" -> "${linkTarget}" is unsafe`, { path: rel })
    }
    this.checkParents(rel)
    try {
      // A tablespace's location must exist for its files to be written through the link.
      if (isTablespaceLink(rel)) await fs.mkdir(linkTarget, { recursive: true, mode: this.modes.dirMode })
      await fs.symlink(linkTarget, this.abs(rel))
    } catch (err) {
      // Made by an interrupted run of the same plan: the same link is already there.
      const existing = (err as NodeJS.ErrnoException).code === 'EEXIST' ? await fs.readlink(this.abs(rel)).catch(() => null) : null
      if (existing !== linkTarget) throw ioError('could not create symbolic link at', this.abs(rel), err)
    }
    this.touched.add(rel)
  }

  /**
   * Readies `rel` for a whole-file copy that comes in chunks: they overwrite the file in place,
   * and closeAll cuts it where the last one ended and zeroes what none covered below that (a file
   * the source shrank and grew again meanwhile), so that nothing of the target's old contents is
   * left, as if the file had been emptied first. Emptying it first cost more: an ftruncate frees
   * its pages only for the copy to allocate them again, and ext4 flushes a file emptied and
   * rewritten when it is closed (auto_da_alloc): 45 + 24 ms of a remote scale-200 copy's 270
   * small files, 0.2 ms a file on 20,000 tables. copyFileFrom compares and trims the same way.
   */
  async truncateForCopy(rel: string): Promise<void> {
    checkRelativePath(rel)
    this.pendingCopies.set(rel, [])
  }

  /** A readied copy, once its chunks are written: cut at their end, holes below it zeroed. */
  private finishCopy(rel: string): void {
    const written = this.pendingCopies.get(rel)
    if (written === undefined) return
    const fd = this.fdFor(rel, true)
    this.pendingCopies.delete(rel)
    this.touched.add(rel)
    written.sort((a, b) => a[0] - b[0])
    let covered = 0
    for (const [start, end] of written) {
      if (start > covered) this.writeZeros(fd, rel, covered, start - covered)
      covered = Math.max(covered, end)
    }
    try {
      if (fsSync.fstatSync(fd).size !== covered) fsSync.ftruncateSync(fd, covered)
    } catch (err) {
      throw ioError('could not truncate file', this.abs(rel), err)
    }
  }

  private writeZeros(fd: number, rel: string, offset: number, length: number): void {
    const zeros = Buffer.alloc(Math.min(length, COPY_BUFFER))
    for (let done = 0; done < length; done += zeros.length) {
      this.writeFully(fd, rel, offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)))
    }
  }

  /** Creates `rel` empty if it does not exist; leaves its contents otherwise. */
  async ensureFile(rel: string): Promise<void> {
    this.fdFor(rel, true)
    this.touched.add(rel)
  }

  /** Reads `rel` from `offset` into `into`, as much as the file holds; the bytes read. Not for a file readied for a copy. */
  readAt(rel: string, offset: number, into: Buffer): number {
    const fd = this.fdFor(rel, false)
    let done = 0
    while (done < into.length) {
      let n: number
      try {
        n = fsSync.readSync(fd, into, done, into.length - done, offset + done)
      } catch (err) {
        throw ioError('could not read file', this.abs(rel), err)
      }
      if (n === 0) break
      done += n
    }
    return done
  }

  async writeAt(rel: string, offset: number, data: Buffer): Promise<void> {
    const copy = this.pendingCopies.get(rel)
    const fd = this.fdFor(rel, copy !== undefined)
    this.writeFully(fd, rel, offset, data)
    if (copy !== undefined && data.length > 0) copy.push([offset, offset + data.length])
  }

  private writeFully(fd: number, rel: string, offset: number, data: Buffer): void {
    this.touched.add(rel)
    let done = 0
    while (done < data.length) {
      let written: number
      try {
        written = fsSync.writeSync(fd, data, done, data.length - done, offset + done)
      } catch (err) {
        throw ioError('could not write file', this.abs(rel), err)
      }
      if (written === 0)
        throw new RewindError('FILE_IO', `could not write file "${this.abs(rel)}": No space left on device`, { path: this.abs(rel) })
      done += written
    }
  }

  /**
   * Copies a whole local file over `rel`, with the target's file mode; returns the bytes copied.
   * Each megabyte is compared with what the target holds there and written only if it differs,
   * then the file is cut to the source's length: most whole copies are small files (FSM and VM
   * forks, pg_xact) that are still equal, and a write spared is a dirty page the sync need not
   * flush (on 20,000 tables, 3 of the 5 s the copy took). Through this process's memory rather
   * than copy_file_range, which could not skip anything.
   */
  async copyFileFrom(rel: string, absSource: string): Promise<number> {
    const fd = this.fdFor(rel, true)
    this.pendingCopies.delete(rel)
    let from: number
    try {
      from = fsSync.openSync(absSource, 'r')
    } catch (err) {
      throw ioError('could not open source file', absSource, err)
    }
    let copied = 0
    let changed = false
    try {
      this.copyBuffer ??= Buffer.allocUnsafe(COPY_BUFFER)
      this.compareBuffer ??= Buffer.allocUnsafe(COPY_BUFFER)
      const targetSize = fsSync.fstatSync(fd).size
      for (;;) {
        const got = fsSync.readSync(from, this.copyBuffer, 0, COPY_BUFFER, copied)
        if (got === 0) break
        const theirs = this.copyBuffer.subarray(0, got)
        const ours =
          copied + got <= targetSize ? this.compareBuffer.subarray(0, fsSync.readSync(fd, this.compareBuffer, 0, got, copied)) : null
        if (ours === null || !ours.equals(theirs)) {
          this.writeFully(fd, rel, copied, theirs)
          changed = true
        }
        copied += got
      }
      if (targetSize > copied) {
        fsSync.ftruncateSync(fd, copied)
        changed = true
      }
      // An empty file may just have been created: its directory entry needs the sync.
      if (changed || copied === 0) {
        fsSync.fchmodSync(fd, this.modes.fileMode)
        this.touched.add(rel)
      }
    } catch (err) {
      if (err instanceof RewindError) throw err
      throw ioError('could not copy file to', this.abs(rel), err)
    } finally {
      fsSync.closeSync(from)
    }
    return copied
  }

  async truncate(rel: string, size: number): Promise<void> {
    const fd = this.fdFor(rel, false)
    this.touched.add(rel)
    try {
      fsSync.ftruncateSync(fd, size)
    } catch (err) {
      throw new RewindError(
        'FILE_IO',
        `could not truncate file "${this.abs(rel)}" to ${size}: ${errText(err)}`,
        { path: this.abs(rel) },
        { cause: err },
      )
    }
  }

  async remove(rel: string, type: 'file' | 'directory' | 'symlink'): Promise<void> {
    checkRelativePath(rel, type)
    this.checkParents(rel)
    this.pendingCopies.delete(rel)
    this.closeHandle(rel)
    try {
      // Asynchronous: a big file's unlink is page-cache work that apply.ts runs beside the copy.
      if (type === 'directory') await fs.rmdir(this.abs(rel))
      else await fs.unlink(this.abs(rel))
    } catch (err) {
      if (!isNotFound(err)) throw ioError(type === 'directory' ? 'could not remove directory' : 'could not remove file', this.abs(rel), err)
    }
    this.touched.delete(rel)
    this.touchParent(rel)
  }

  /**
   * Renames a file within its directory (a WAL segment recycled under a future name); durable with
   * the directory's sync, as a removal. A file already renamed (a rerun) is nothing.
   */
  async recycle(from: string, to: string): Promise<void> {
    checkRelativePath(from)
    checkRelativePath(to)
    this.checkParents(to)
    this.pendingCopies.delete(from)
    this.closeHandle(from)
    this.closeHandle(to)
    try {
      await fs.rename(this.abs(from), this.abs(to))
    } catch (err) {
      if (!isNotFound(err)) throw ioError('could not rename file', this.abs(from), err)
    }
    this.touched.delete(from)
    this.touchParent(to)
  }

  /** A name added or removed in a directory: the directory is synced with the group. */
  private touchParent(rel: string): void {
    const parent = path.posix.dirname(rel)
    this.touched.add(parent === '.' ? '' : parent)
  }

  /** Replaces a small file whole (backup_label, pg_control, standby.signal). */
  async writeFile(rel: string, data: Buffer | string): Promise<void> {
    checkRelativePath(rel)
    this.checkParents(rel)
    this.closeHandle(rel)
    try {
      await fs.writeFile(this.abs(rel), data, { mode: this.modes.fileMode })
    } catch (err) {
      throw ioError('could not write file', this.abs(rel), err)
    }
    this.touched.add(rel)
  }

  /**
   * Replaces a small file atomically and durably: a temporary file beside it is written and
   * synced, renamed over `rel`, and the directory synced. A crash leaves the old or the new file,
   * never a torn or empty one. `beforeRename` runs once the new contents are durable.
   */
  async replaceFileDurably(rel: string, data: Buffer | string, beforeRename?: () => Promise<void>): Promise<void> {
    const tmp = `${rel}.walrewind-tmp`
    await this.writeFile(tmp, data)
    await fsyncPath(this.abs(tmp))
    await beforeRename?.()
    await this.renameDurably(tmp, rel)
  }

  /** Renames `from` to `to` (same directory) and syncs the directory. */
  async renameDurably(from: string, to: string): Promise<void> {
    checkRelativePath(from)
    checkRelativePath(to)
    this.checkParents(to)
    try {
      await fs.rename(this.abs(from), this.abs(to))
    } catch (err) {
      throw ioError('could not rename file', this.abs(from), err)
    }
    this.touched.delete(from)
    await fsyncPath(path.dirname(this.abs(to)))
  }

  /** Removes a file and makes the removal durable. */
  async removeDurably(rel: string): Promise<void> {
    await this.remove(rel, 'file')
    await fsyncPath(path.dirname(this.abs(rel)))
  }

  /** Appends to a file; `durable` syncs the file (and a new file's directory entry) before returning. */
  async appendFile(rel: string, data: string, opts: { durable?: boolean } = {}): Promise<void> {
    checkRelativePath(rel)
    this.checkParents(rel)
    this.closeHandle(rel)
    let handle
    try {
      handle = await fs.open(
        this.abs(rel),
        fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW,
        this.modes.fileMode,
      )
    } catch (err) {
      throw ioError('could not open file', this.abs(rel), err)
    }
    let created = false
    try {
      created = (await handle.stat()).size === 0
      await handle.writeFile(data)
      if (opts.durable) await handle.sync()
    } catch (err) {
      throw ioError('could not write to file', this.abs(rel), err)
    } finally {
      await handle.close()
    }
    if (opts.durable && created) await fsyncPath(path.dirname(this.abs(rel)))
    if (!opts.durable) this.touched.add(rel)
  }

  /** The open descriptor of `rel`, opened (after the path checks) at its first use. */
  private fdFor(rel: string, create: boolean): number {
    let fd = this.handles.get(rel)
    if (fd !== undefined) return fd
    if (this.handles.size >= MAX_OPEN_FILES) this.closeHandle(this.handles.keys().next().value!)
    checkRelativePath(rel)
    this.checkParents(rel)
    // O_NOFOLLOW: the final component must not be a symlink either. Read too: copyFileFrom compares.
    const flags = fsConstants.O_RDWR | fsConstants.O_NOFOLLOW | (create ? fsConstants.O_CREAT : 0)
    try {
      fd = fsSync.openSync(this.abs(rel), flags, this.modes.fileMode)
    } catch (err) {
      throw ioError('could not open target file', this.abs(rel), err)
    }
    this.handles.set(rel, fd)
    return fd
  }

  private closeHandle(rel: string): void {
    const fd = this.handles.get(rel)
    if (fd === undefined) return
    this.handles.delete(rel)
    try {
      fsSync.closeSync(fd)
    } catch (err) {
      throw ioError('could not close file', this.abs(rel), err)
    }
  }

  /** Closes every open file, all of them even if one fails (its error is thrown after). */
  async closeAll(): Promise<void> {
    let failure: unknown = null
    // Readied copies: cut where their data ended (emptied or created if none came).
    for (const rel of [...this.pendingCopies.keys()]) {
      try {
        this.finishCopy(rel)
      } catch (err) {
        failure ??= err
      }
    }
    for (const rel of [...this.handles.keys()]) {
      try {
        this.closeHandle(rel)
      } catch (err) {
        failure ??= err
      }
    }
    if (failure !== null) throw failure
  }

  /**
   * Makes what was written since the last sync durable: fsync of every touched file and of their
   * directories, or with 'syncfs' one syncfs per file system (through coreutils `sync -f`).
   */
  async sync(method: 'fsync' | 'syncfs', opts: { jobs?: number; onFile?: () => Promise<void> } = {}): Promise<void> {
    await this.closeAll()
    await this.syncPaths(this.takeTouched(), method, opts)
  }

  /** The files written since the last call (or sync), forgotten here: syncPaths makes them durable. */
  takeTouched(): string[] {
    const touched = [...this.touched]
    this.touched.clear()
    return touched
  }

  /**
   * Makes `touched` (from takeTouched) and their directories durable. Writes may go on meanwhile
   * (apply syncs a group while it copies the next one): what they touch is left to a later call.
   */
  async syncPaths(
    touched: readonly string[],
    method: 'fsync' | 'syncfs',
    opts: { jobs?: number; onFile?: () => Promise<void> } = {},
  ): Promise<void> {
    const jobs = opts.jobs ?? 8
    if (method === 'syncfs') {
      const roots = new Set<string>([this.root])
      for (const rel of touched) {
        const link = followedLinkOf(rel)
        if (link !== null) roots.add(this.abs(link) + '/')
      }
      for (const dir of roots) await runSyncfs(dir)
      return
    }
    const files = new Set<string>()
    const dirs = new Set<string>([''])
    for (const rel of touched) {
      files.add(rel)
      let dir = path.posix.dirname(rel)
      while (dir !== '.' && !dirs.has(dir)) {
        dirs.add(dir)
        dir = path.posix.dirname(dir)
      }
    }
    const all = [...files, ...[...dirs].filter((d) => !files.has(d))]
    let next = 0
    const worker = async () => {
      while (next < all.length) {
        await fsyncPath(this.abs(all[next++]!))
        await opts.onFile?.()
      }
    }
    await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, all.length)) }, worker))
  }
}

async function fsyncPath(abs: string): Promise<void> {
  let handle
  try {
    handle = await fs.open(abs, fsConstants.O_RDONLY)
  } catch (err) {
    if (isNotFound(err)) return
    throw ioError('could not open file', abs, err)
  }
  try {
    await handle.sync()
  } catch (err) {
    throw ioError('could not fsync file', abs, err)
  } finally {
    await handle.close()
  }
}

function runSyncfs(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sync', ['-f', dir], { stdio: 'ignore' })
    child.on('error', (err) => reject(ioError('could not synchronize file system for file', dir, err)))
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new RewindError('FILE_IO', `could not synchronize file system for file "${dir}"`, { path: dir })),
    )
  })
}

function ioError(what: string, abs: string, err: unknown): RewindError {
  return new RewindError('FILE_IO', `${what} "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
}
