// Checks of the target made after planning and before the first write, so that a rewind that
// cannot finish is refused with the target untouched: enough free space on each file system the
// plan writes to (the data directory, a pg_wal elsewhere, each tablespace), and write permission
// on everything the plan writes or removes.

import fs from 'node:fs/promises'
import fsSync, { constants as fsConstants } from 'node:fs'
import path from 'node:path'
import { RewindError } from '../errors.js'
import { followedLinkOf, isTablespaceLink } from '../source/path-policy.js'
import { errText, isNotFound } from '../source/walk.js'
import type { Plan, PlanEntry } from './plan.js'

/** Room kept free beyond what the plan writes: the journal, small files, file system overhead. */
export const SPACE_MARGIN_BYTES = 16 * 1024 * 1024
export const SPACE_MARGIN_FRACTION = 0.02

/**
 * Bytes by which an entry can make its file grow, at worst, while it runs, from `before` bytes
 * (the size the plan saw; for a resumed run, the size now: an interrupted copy already took room).
 */
export function growthOf(entry: PlanEntry, before = entry.target?.type === 'file' ? entry.target.size : 0): number {
  if (entry.action === 'copy' || entry.action === 'copy-tail') return Math.max(0, (entry.source?.size ?? 0) - before)
  return 0
}

async function sizeNow(abs: string): Promise<number> {
  try {
    const st = await fs.lstat(abs)
    return st.isFile() ? st.size : 0
  } catch (err) {
    if (isNotFound(err)) return 0
    throw new RewindError('TARGET_DIR', `could not stat "${abs}": ${errText(err)}`, { path: abs }, { cause: err })
  }
}

/**
 * The directory on the target whose file system holds `rel`: pg_wal and tablespaces can be
 * elsewhere (links), everything else is in the data directory. A tablespace the plan creates
 * lands at the location the source names.
 */
export function storageDirOf(targetDir: string, rel: string, newTablespaces: ReadonlyMap<string, string>): string {
  const link = followedLinkOf(rel)
  if (link === null) return targetDir
  return newTablespaces.get(link) ?? path.join(targetDir, link)
}

/** The nearest existing directory at or above `dir`, followed through links. */
async function existingAncestor(dir: string): Promise<string> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      const st = await fs.stat(at)
      if (st.isDirectory()) return at
    } catch (err) {
      if (!isNotFound(err)) throw new RewindError('TARGET_DIR', `could not stat "${at}": ${errText(err)}`, { path: at }, { cause: err })
    }
    if (path.dirname(at) === at) return at
  }
}

interface FileSystemNeed {
  dir: string
  bytes: number
}

/**
 * Free space per file system against what the plan writes there; throws TARGET_NO_SPACE.
 * `pending`: for a resumed run, the entries not done yet (their files' sizes are read now).
 */
export async function checkFreeSpace(
  targetDir: string,
  plan: Plan,
  pending: ReadonlySet<number> | null,
  extraBytes: number,
): Promise<void> {
  const newTablespaces = new Map<string, string>()
  for (const entry of plan.entries) {
    if (entry.action === 'create' && entry.source?.type === 'symlink' && isTablespaceLink(entry.path)) {
      newTablespaces.set(entry.path, entry.source.linkTarget ?? '')
    }
  }
  const byDevice = new Map<number, FileSystemNeed>()
  const deviceOf = new Map<string, number>()
  const add = async (dir: string, bytes: number) => {
    let dev = deviceOf.get(dir)
    if (dev === undefined) {
      const existing = await existingAncestor(dir)
      dev = (await fs.stat(existing)).dev
      deviceOf.set(dir, dev)
      if (!byDevice.has(dev)) byDevice.set(dev, { dir: existing, bytes: 0 })
    }
    byDevice.get(dev)!.bytes += bytes
  }
  await add(targetDir, extraBytes)
  for (const [index, entry] of plan.entries.entries()) {
    if (pending !== null && !pending.has(index)) continue
    if (entry.action !== 'copy' && entry.action !== 'copy-tail') continue
    const growth = pending === null ? growthOf(entry) : growthOf(entry, await sizeNow(path.join(targetDir, entry.path)))
    if (growth > 0) await add(storageDirOf(targetDir, entry.path, newTablespaces), growth)
  }
  for (const { dir, bytes } of byDevice.values()) {
    const needed = bytes + SPACE_MARGIN_BYTES + Math.ceil(bytes * SPACE_MARGIN_FRACTION)
    const stats = await fs.statfs(dir)
    const available = Number(stats.bavail) * Number(stats.bsize)
    if (available < needed) {
      throw new RewindError(
        'TARGET_NO_SPACE',
        `not enough free space on the file system of "${dir}" for the rewind: ` +
          `${mb(needed)} MB needed (${mb(bytes)} MB to write plus a margin), ${mb(available)} MB available`,
        {
          path: dir,
          hint: 'Free space there (or grow the file system) and run the same command again.',
        },
      )
    }
  }
}

function mb(bytes: number): number {
  return Math.ceil(bytes / (1024 * 1024))
}

/** Every file the plan writes or removes, and every directory it changes, must be writable. */
export async function checkWritable(targetDir: string, plan: Plan, pending: ReadonlySet<number> | null): Promise<void> {
  const checks = new Map<string, string>()
  const need = (abs: string, why: string) => {
    if (!checks.has(abs)) checks.set(abs, why)
  }
  need(targetDir, 'the journal and backup_label are written there')
  need(path.join(targetDir, 'global'), 'pg_control is replaced there')
  for (const [index, entry] of plan.entries.entries()) {
    if (pending !== null && !pending.has(index)) continue
    const abs = path.join(targetDir, entry.path)
    const parent = path.dirname(abs)
    switch (entry.action) {
      case 'create':
        need(parent, `"${entry.path}" is created`)
        break
      case 'remove':
        need(parent, `"${entry.path}" is removed`)
        break
      case 'copy':
        need(entry.target ? abs : parent, `"${entry.path}" is copied`)
        break
      default:
        need(abs, `"${entry.path}" is written`)
    }
  }
  // Synchronous: tens of thousands of checks cost microseconds each, a thread-pool round trip each otherwise.
  for (const [abs, why] of checks) {
    // What does not exist yet is made in its nearest existing directory.
    const checked = nearestExisting(abs)
    try {
      fsSync.accessSync(checked, fsConstants.W_OK)
    } catch (err) {
      throw new RewindError('TARGET_NOT_WRITABLE', `cannot write "${checked}" in the target: ${errText(err)}`, {
        path: checked,
        detail: `The rewind needs write access there: ${why}.`,
        hint: 'Run walrewind as the owner of the data directory (the user PostgreSQL runs as).',
      })
    }
  }
}

function nearestExisting(abs: string): string {
  for (let at = abs; ; at = path.dirname(at)) {
    try {
      fsSync.lstatSync(at)
      return at
    } catch (err) {
      if (!isNotFound(err) || path.dirname(at) === at) return at
    }
  }
}
