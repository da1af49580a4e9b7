// Which paths and symlinks a data directory may hold: the one place that says so, for the walk of
// a directory, the planner (a source's listing, hostile or not) and the writer of the target.
//
// - A path is relative, '/'-separated, with no empty, '.' or '..' component, no NUL and no
//   backslash.
// - PostgreSQL makes two kinds of symlink, and only those are followed: pg_wal, and a tablespace
//   link pg_tblspc/<oid> (an OID: digits only). Any other link is recorded, never walked into,
//   and nothing may be listed or written below it.
// - A followed link points to an absolute location with no NUL in it.

import { RewindError } from '../errors.js'
import type { FileEntry } from './source.js'

const TABLESPACE_LINK = /^pg_tblspc\/[0-9]+$/

/** True when `rel` is a path a data directory can hold (see above). */
export function isSafeRelativePath(rel: string): boolean {
  return (
    rel !== '' &&
    !rel.startsWith('/') &&
    !rel.includes('\0') &&
    !rel.includes('\\') &&
    rel.split('/').every((part) => part !== '' && part !== '.' && part !== '..')
  )
}

/** Refuses a path a data directory cannot hold (SOURCE_UNSAFE_PATH); returns it unchanged when it is safe. */
export function checkRelativePath(rel: string, what = 'file'): string {
  if (!isSafeRelativePath(rel)) {
    throw new RewindError('SOURCE_UNSAFE_PATH', `target ${what} path is unsafe: "${rel}"`, { path: rel })
  }
  return rel
}

/** True for a tablespace link, pg_tblspc/<oid>. */
export function isTablespaceLink(rel: string): boolean {
  return TABLESPACE_LINK.test(rel)
}

/** True for the symlinks PostgreSQL makes and that are followed: pg_wal and tablespace links. */
export function isFollowedSymlink(rel: string): boolean {
  return rel === 'pg_wal' || isTablespaceLink(rel)
}

/** True for what a followed link may point to: an absolute location, no NUL. */
export function isSafeLinkTarget(linkTarget: string): boolean {
  return linkTarget.startsWith('/') && !linkTarget.includes('\0')
}

/**
 * The followed link `rel` is or lies below ('pg_wal' or 'pg_tblspc/<oid>'), or null: the place
 * whose file system holds `rel` when it is not the data directory's.
 */
export function followedLinkOf(rel: string): string | null {
  if (rel === 'pg_wal' || rel.startsWith('pg_wal/')) return 'pg_wal'
  const parts = rel.split('/')
  const link = parts.length >= 2 ? `${parts[0]}/${parts[1]}` : ''
  return isTablespaceLink(link) ? link : null
}

/**
 * The first entry on the way down to `rel` in `listing` that is neither a directory nor a
 * followed link (a file, or a link that is not followed), or undefined: nothing may lie below one.
 */
export function blockingAncestor(rel: string, listing: ReadonlyMap<string, FileEntry>): FileEntry | undefined {
  for (let slash = rel.indexOf('/'); slash > 0; slash = rel.indexOf('/', slash + 1)) {
    const parent = listing.get(rel.slice(0, slash))
    if (parent !== undefined && parent.type !== 'directory' && !(parent.type === 'symlink' && isFollowedSymlink(parent.path))) {
      return parent
    }
  }
  return undefined
}

/**
 * A hostile server can list a symlink anywhere, pointing anywhere, and then files "inside" it:
 * everything written below it would land outside the target. Only the links PostgreSQL itself
 * makes are followed, and only with an absolute target; a server may not list others at all (a
 * directory source may hold a stray one, recorded but never followed). Nothing may be listed below
 * a file or a link that is not followed. Paths themselves are checked with checkRelativePath.
 */
export function checkSourceSymlinks(sources: ReadonlyMap<string, FileEntry>, kind: 'local' | 'server'): void {
  for (const entry of sources.values()) {
    if (entry.type === 'symlink') {
      const followed = isFollowedSymlink(entry.path)
      const target = entry.linkTarget ?? ''
      if ((followed || kind === 'server') && (!followed || !isSafeLinkTarget(target))) {
        throw new RewindError('SOURCE_UNSAFE_PATH', `source symbolic link "${entry.path}" -> "${target}" is unsafe`, {
          path: entry.path,
          detail: 'Only pg_wal and tablespace links (pg_tblspc/OID) with an absolute target are accepted from the source.',
        })
      }
    }
    const parent = blockingAncestor(entry.path, sources)
    if (parent !== undefined) {
      throw new RewindError(
        'SOURCE_UNSAFE_PATH',
        `source file path is unsafe: "${entry.path}" lies below "${parent.path}", which is not a directory`,
        { path: entry.path },
      )
    }
  }
}
