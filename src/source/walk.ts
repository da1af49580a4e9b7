// Lists a data directory the way pg_rewind does: regular files with sizes, directories, and
// symlinks with their targets; a symlink is followed only where PostgreSQL puts one (pg_wal and
// pg_tblspc/<oid>, path-policy.ts), so a stray link elsewhere is recorded but never walked into.
//
// The walk is synchronous: listing both sides of a cluster of 81,056 files took 0.7 s this way,
// 5.2 s with an asynchronous lstat each (a thread-pool round trip per file).

import fs from 'node:fs'
import path from 'node:path'
import { RewindError } from '../errors.js'
import { isFollowedSymlink } from './path-policy.js'
import type { FileEntry } from './source.js'

/** Every entry under `root`, paths relative and '/'-separated, parents before children. */
export async function listDataDirectory(root: string): Promise<FileEntry[]> {
  const entries: FileEntry[] = []
  walk(root, '', entries)
  return entries
}

function walk(root: string, relDir: string, out: FileEntry[]): void {
  const absDir = relDir === '' ? root : path.join(root, relDir)
  let names: string[]
  try {
    names = fs.readdirSync(absDir)
  } catch (err) {
    if (isNotFound(err) && relDir !== '') return
    throw new RewindError('FILE_IO', `could not open directory "${absDir}": ${errText(err)}`, { path: absDir }, { cause: err })
  }
  names.sort()
  const subdirs: string[] = []
  for (const name of names) {
    const rel = relDir === '' ? name : `${relDir}/${name}`
    const abs = path.join(absDir, name)
    let st
    try {
      st = fs.lstatSync(abs)
    } catch (err) {
      if (isNotFound(err)) continue // removed while we looked: as pg_rewind, not an error
      throw new RewindError('FILE_IO', `could not stat file "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
    }
    if (st.isFile()) {
      out.push({ path: rel, type: 'file', size: st.size })
    } else if (st.isDirectory()) {
      out.push({ path: rel, type: 'directory', size: 0 })
      subdirs.push(rel)
    } else if (st.isSymbolicLink()) {
      let linkTarget: string
      try {
        linkTarget = fs.readlinkSync(abs)
      } catch (err) {
        if (isNotFound(err)) continue
        throw new RewindError('FILE_IO', `could not read symbolic link "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
      }
      out.push({ path: rel, type: 'symlink', size: 0, linkTarget })
      if (isFollowedSymlink(rel)) subdirs.push(rel)
    }
    // sockets, fifos and devices have no place in a data directory and are skipped, as pg_rewind does
  }
  for (const sub of subdirs) walk(root, sub, out)
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
}

export function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined
  if (e?.code === 'ENOENT') return 'No such file or directory'
  if (e?.code === 'EACCES') return 'Permission denied'
  if (e?.code === 'ENOTDIR') return 'Not a directory'
  if (e?.code === 'ENOSPC') return 'No space left on device'
  return e?.message ?? String(err)
}
