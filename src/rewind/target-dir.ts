// The only module that writes the target data directory (as file_ops.c is pg_rewind's only
// writer). Every path it is given may come from a hostile source server, so each one is checked
// here, before the write, by the rules of source/path-policy.ts: relative, no '.'/'..' or empty
// parts, and no symlink on the way except the ones PostgreSQL itself places (pg_wal, pg_tblspc/<oid>).

import fs from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { RewindError } from '../errors.js'
import { checkRelativePath, followedLinkOf, isFollowedSymlink, isSafeLinkTarget, isTablespaceLink } from '../source/path-policy.js'
import { errText, isNotFound } from '../source/walk.js'

const MAX_OPEN_FILES = 64

export interface TargetModes {
  readonly dirMode: number
  readonly fileMode: number
}

/** pg_rewind derives modes from the target's PGDATA: group access (0750) keeps 0640 files. */
export function modesFromDataDirMode(mode: number): TargetModes {
  return (mode & 0o070) !== 0 ? { dirMode: 0o750, fileMode: 0o640 } : { dirMode: 0o700, fileMode: 0o600 }
}

export class TargetDir {
  /**
   * Open files by path. The entry is made before the open completes, so that chunks of one file
   * written at once share one descriptor; `users` keeps an entry in use from being closed to make
   * room for another.
   */
  private readonly handles = new Map<string, { handle: Promise<fs.FileHandle>; users: number }>()
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
  private async checkParents(rel: string): Promise<void> {
    const parts = rel.split('/')
    let prefix = ''
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix === '' ? parts[i]! : `${prefix}/${parts[i]}`
      if (this.checkedDirs.has(prefix)) continue
      let st
      try {
        st = await fs.lstat(this.abs(prefix))
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
    await this.checkParents(rel)
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
    await this.checkParents(rel)
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

  /** Creates or empties `rel`, ready for a whole-file copy. */
  async truncateForCopy(rel: string): Promise<void> {
    await this.withHandle(rel, true, async (handle) => {
      try {
        await handle.truncate(0)
      } catch (err) {
        throw ioError('could not truncate file', this.abs(rel), err)
      }
    })
  }

  /** Creates `rel` empty if it does not exist; leaves its contents otherwise. */
  async ensureFile(rel: string): Promise<void> {
    await this.withHandle(rel, true, async () => {})
  }

  async writeAt(rel: string, offset: number, data: Buffer): Promise<void> {
    await this.withHandle(rel, false, (handle) => this.writeAll(handle, rel, offset, data))
  }

  private async writeAll(handle: fs.FileHandle, rel: string, offset: number, data: Buffer): Promise<void> {
    let done = 0
    while (done < data.length) {
      let written: number
      try {
        ;({ bytesWritten: written } = await handle.write(data, done, data.length - done, offset + done))
      } catch (err) {
        throw ioError('could not write file', this.abs(rel), err)
      }
      if (written === 0)
        throw new RewindError('FILE_IO', `could not write file "${this.abs(rel)}": No space left on device`, { path: this.abs(rel) })
      done += written
    }
  }

  /**
   * Copies a whole local file over `rel` in the kernel (copy_file_range where it can), with the
   * target's file mode. Returns the bytes copied. The final component must not be a symlink.
   */
  async copyFileFrom(rel: string, absSource: string): Promise<number> {
    checkRelativePath(rel)
    await this.checkParents(rel)
    await this.closeHandle(rel)
    const abs = this.abs(rel)
    try {
      if ((await fs.lstat(abs)).isSymbolicLink()) {
        throw new RewindError('SOURCE_UNSAFE_PATH', `target file path is unsafe for open: "${rel}" is a symbolic link`, { path: rel })
      }
    } catch (err) {
      if (err instanceof RewindError) throw err
      if (!isNotFound(err)) throw ioError('could not stat file', abs, err)
    }
    try {
      await fs.copyFile(absSource, abs)
      await fs.chmod(abs, this.modes.fileMode)
      this.touched.add(rel)
      return (await fs.stat(abs)).size
    } catch (err) {
      throw ioError('could not copy file to', abs, err)
    }
  }

  async truncate(rel: string, size: number): Promise<void> {
    await this.withHandle(rel, false, async (handle) => {
      try {
        await handle.truncate(size)
      } catch (err) {
        throw new RewindError(
          'FILE_IO',
          `could not truncate file "${this.abs(rel)}" to ${size}: ${errText(err)}`,
          { path: this.abs(rel) },
          { cause: err },
        )
      }
    })
  }

  async remove(rel: string, type: 'file' | 'directory' | 'symlink'): Promise<void> {
    checkRelativePath(rel, type)
    await this.checkParents(rel)
    await this.closeHandle(rel)
    try {
      if (type === 'directory') await fs.rmdir(this.abs(rel))
      else await fs.unlink(this.abs(rel))
    } catch (err) {
      if (!isNotFound(err)) throw ioError(type === 'directory' ? 'could not remove directory' : 'could not remove file', this.abs(rel), err)
    }
    this.touched.delete(rel)
    this.touched.add(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel))
  }

  /** Replaces a small file whole (backup_label, pg_control, standby.signal). */
  async writeFile(rel: string, data: Buffer | string): Promise<void> {
    checkRelativePath(rel)
    await this.checkParents(rel)
    await this.closeHandle(rel)
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
    await this.checkParents(to)
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
    await this.checkParents(rel)
    await this.closeHandle(rel)
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

  /** Runs `use` with the open file `rel` (opened once, kept for the next write). */
  private async withHandle<T>(rel: string, create: boolean, use: (handle: fs.FileHandle) => Promise<T>): Promise<T> {
    let entry = this.handles.get(rel)
    if (entry === undefined) {
      if (this.handles.size >= MAX_OPEN_FILES) {
        for (const [other, e] of this.handles) {
          if (e.users > 0) continue
          void this.closeHandle(other).catch(() => {})
          break
        }
      }
      entry = { handle: this.openFile(rel, create), users: 0 }
      this.handles.set(rel, entry)
      this.touched.add(rel)
    }
    entry.users++
    try {
      return await use(await entry.handle)
    } catch (err) {
      if (
        this.handles.get(rel) === entry &&
        !(await entry.handle.then(
          () => true,
          () => false,
        ))
      )
        this.handles.delete(rel)
      throw err
    } finally {
      entry.users--
    }
  }

  private async openFile(rel: string, create: boolean): Promise<fs.FileHandle> {
    checkRelativePath(rel)
    await this.checkParents(rel)
    // O_NOFOLLOW: the final component must not be a symlink either.
    const flags = fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW | (create ? fsConstants.O_CREAT : 0)
    try {
      return await fs.open(this.abs(rel), flags, this.modes.fileMode)
    } catch (err) {
      throw ioError('could not open target file', this.abs(rel), err)
    }
  }

  private async closeHandle(rel: string): Promise<void> {
    const entry = this.handles.get(rel)
    if (!entry) return
    this.handles.delete(rel)
    const handle = await entry.handle.catch(() => null)
    if (handle === null) return
    try {
      await handle.close()
    } catch (err) {
      throw ioError('could not close file', this.abs(rel), err)
    }
  }

  async closeAll(): Promise<void> {
    for (const rel of [...this.handles.keys()]) await this.closeHandle(rel)
  }

  /**
   * Makes what was written since the last sync durable: fsync of every touched file and of their
   * directories, or with 'syncfs' one syncfs per file system (through coreutils `sync -f`).
   */
  async sync(method: 'fsync' | 'syncfs', opts: { jobs?: number; onFile?: () => Promise<void> } = {}): Promise<void> {
    await this.closeAll()
    const jobs = opts.jobs ?? 8
    const touched = [...this.touched]
    this.touched.clear()
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
