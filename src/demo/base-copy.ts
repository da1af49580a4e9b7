// Base copies for new standbys, without pg_basebackup (the embedded PostgreSQL packages have only
// initdb, pg_ctl and postgres): the low-level backup API around a file copy of a running node, or
// a plain copy of a stopped one. Used by `walrewind demo` and the test kit (test/kit/standby.ts). Tablespaces get their own directory
// per node (a standby on the same host must not share the primary's), like pg_basebackup's
// --tablespace-mapping.

import fs from 'node:fs'
import path from 'node:path'
import type { Client } from 'pg'
import { giveToUser, makeUserDir, writeUserFile, type OsUser } from './files.js'

/** The node copied: a primary or a standby. */
export interface CopySource {
  readonly name: string
  readonly major: number
  readonly dataDir: string
  isRunning(): boolean | Promise<boolean>
  /** A new session as a superuser. */
  connect(): Promise<Client>
}

export interface CopyTarget {
  dataDir: string
  /** Where this node's tablespaces go, one subdirectory per tablespace oid. */
  tablespaceDir: string
  user: OsUser | null
}

// Whose contents a base backup leaves out (basebackup.c excludeDirContents); the directories
// themselves are kept. pg_wal is handled on its own.
const EMPTIED_DIRS = new Set(['pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans'])

// Files of the upstream that must not reach the copy (basebackup.c excludeFiles, plus the
// recovery signals the kit writes itself).
const SKIPPED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'tablespace_map.old',
  'current_logfiles',
  'current_logfiles.tmp',
  'postgresql.auto.conf.tmp',
  'standby.signal',
  'recovery.signal',
])

const PARALLEL_COPIES = 8

/**
 * Online copy of a running `upstream` (a primary or a standby) between backup start and stop,
 * keeping one session open as the non-exclusive API requires; writes backup_label and, when the
 * node has tablespaces, tablespace_map pointing at the copies.
 */
export async function copyRunning(upstream: CopySource, target: CopyTarget, label: string): Promise<void> {
  const session = await upstream.connect()
  try {
    await session.query(upstream.major >= 15 ? 'select pg_backup_start($1, true)' : 'select pg_start_backup($1, true, false)', [label])
    const mapping = await copyDataDir(upstream.dataDir, target, true)
    const stop = await stopBackup(session, upstream.major)
    writeUserFile(path.join(target.dataDir, 'backup_label'), stop.labelfile, target.user)
    if (stop.spcmapfile) {
      const lines = [...mapping].map(([oid, dir]) => `${oid} ${dir}\n`).join('')
      writeUserFile(path.join(target.dataDir, 'tablespace_map'), lines, target.user)
    }
  } finally {
    await session.end().catch(() => {})
  }
}

/** Copy of a stopped node, WAL included (the shutdown checkpoint is where the copy starts). */
export async function copyStopped(upstream: CopySource, target: CopyTarget): Promise<void> {
  if (await upstream.isRunning()) throw new Error(`createStandby(${upstream.name}, {fromStopped: true}): ${upstream.name} is running`)
  await copyDataDir(upstream.dataDir, target, false)
}

async function stopBackup(session: Client, major: number): Promise<{ labelfile: string; spcmapfile: string | null }> {
  // wait_for_archive = false: the standby streams, and a test's failing archive_command must not hang here.
  const sql =
    major >= 15
      ? 'select labelfile, spcmapfile from pg_backup_stop(false)'
      : 'select labelfile, spcmapfile from pg_stop_backup(false, false)'
  const { rows } = await session.query<{ labelfile: string; spcmapfile: string | null }>(sql)
  if (!rows[0]) throw new Error('backup stop returned no row')
  return rows[0]
}

/**
 * Copies a data directory with modes kept and ownership given to the target user. `online`: files
 * may vanish while copying (ENOENT is ignored) and the excluded contents are left out. Returns
 * tablespace oid -> new location.
 */
async function copyDataDir(source: string, target: CopyTarget, online: boolean): Promise<Map<string, string>> {
  const mapping = new Map<string, string>()
  const rootMode = fs.statSync(source).mode & 0o7777
  makeUserDir(target.dataDir, target.user, rootMode)
  for (const entry of fs.readdirSync(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name)
    const to = path.join(target.dataDir, entry.name)
    if (entry.name === 'pg_tblspc') {
      await copyTablespaces(from, to, target, online, mapping)
    } else if (entry.name === 'pg_wal') {
      // A moved pg_wal (symlink) becomes a plain directory of the copy. A stopped node's WAL is
      // needed (its last checkpoint); a running one's is streamed instead.
      await copyTree(from, to, target.user, { online, filesToo: !online })
    } else if (EMPTIED_DIRS.has(entry.name)) {
      // Replication slots stay with their node, as pg_basebackup leaves them.
      makeUserDir(to, target.user, fs.statSync(from).mode & 0o7777)
    } else if (SKIPPED_FILES.has(entry.name)) {
      continue
    } else {
      await copyEntry(from, to, target.user, online)
    }
  }
  return mapping
}

async function copyTablespaces(from: string, to: string, target: CopyTarget, online: boolean, mapping: Map<string, string>): Promise<void> {
  makeUserDir(to, target.user, fs.statSync(from).mode & 0o7777)
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const link = path.join(from, entry.name)
    if (!entry.isSymbolicLink()) {
      // In-place tablespaces (allow_in_place_tablespaces) are plain directories of the data dir.
      await copyEntry(link, path.join(to, entry.name), target.user, online)
      continue
    }
    if (!fs.existsSync(target.tablespaceDir)) makeUserDir(target.tablespaceDir, target.user)
    const location = path.join(target.tablespaceDir, entry.name)
    await copyTree(fs.realpathSync(link), location, target.user, { online, filesToo: true })
    fs.symlinkSync(location, path.join(to, entry.name))
    giveToUser(path.join(to, entry.name), target.user)
    mapping.set(entry.name, location)
  }
}

/** Copies a directory tree (following a top-level symlink); `filesToo: false` copies only directories. */
async function copyTree(from: string, to: string, user: OsUser | null, opts: { online: boolean; filesToo: boolean }): Promise<void> {
  const stat = await statOrNull(from, opts.online, fs.promises.stat)
  if (!stat) return
  makeUserDir(to, user, stat.mode & 0o7777)
  const entries = await readdirOrEmpty(from, opts.online)
  await inBatches(entries, async (entry) => {
    const child = path.join(from, entry.name)
    if (entry.isDirectory()) await copyTree(child, path.join(to, entry.name), user, opts)
    else if (opts.filesToo) await copyEntry(child, path.join(to, entry.name), user, opts.online)
  })
}

async function copyEntry(from: string, to: string, user: OsUser | null, online: boolean): Promise<void> {
  const stat = await statOrNull(from, online, fs.promises.lstat)
  if (!stat) return
  const name = path.basename(from)
  if (stat.isDirectory()) {
    makeUserDir(to, user, stat.mode & 0o7777)
    // Temporary files of running queries, and relcache init files rebuilt at startup.
    if (online && name.startsWith('pgsql_tmp')) return
    const entries = await readdirOrEmpty(from, online)
    await inBatches(entries, (entry) => copyEntry(path.join(from, entry.name), path.join(to, entry.name), user, online))
  } else if (stat.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(from), to)
    giveToUser(to, user)
  } else if (stat.isFile()) {
    if (online && (name.startsWith('pg_internal.init') || name.startsWith('pgsql_tmp'))) return
    try {
      await fs.promises.copyFile(from, to)
    } catch (err) {
      if (online && (err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    fs.chmodSync(to, stat.mode & 0o7777)
    giveToUser(to, user)
  }
}

async function statOrNull(file: string, online: boolean, stat: (f: string) => Promise<fs.Stats>): Promise<fs.Stats | null> {
  try {
    return await stat(file)
  } catch (err) {
    if (online && (err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

async function readdirOrEmpty(dir: string, online: boolean): Promise<fs.Dirent[]> {
  try {
    return await fs.promises.readdir(dir, { withFileTypes: true })
  } catch (err) {
    if (online && (err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

async function inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL_COPIES) {
    await Promise.all(items.slice(i, i + PARALLEL_COPIES).map(work))
  }
}
