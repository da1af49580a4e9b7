// Relation file names (common/relpath.c): where the blocks of (tablespace, database, relfilenode,
// fork) live in a data directory, and the reverse test pg_rewind calls isRelDataFile. Only main-fork
// segments count as relation data; other forks, temp relations and everything else are copied whole.

import type { VersionProfile } from './versions.js'

/** ForkNumber (common/relpath.h). */
export const ForkNumber = Object.freeze({ MAIN: 0, FSM: 1, VISIBILITYMAP: 2, INIT: 3 } as const)
export type ForkNumberValue = (typeof ForkNumber)[keyof typeof ForkNumber]

/** forkNames[]: the suffix after '_' in a file name, and the word pg_waldump prints. */
export const FORK_NAMES: readonly string[] = Object.freeze(['main', 'fsm', 'vm', 'init'])

/** GLOBALTABLESPACE_OID and DEFAULTTABLESPACE_OID (catalog/pg_tablespace.dat). */
export const GLOBAL_TABLESPACE_OID = 1664
export const DEFAULT_TABLESPACE_OID = 1663

export interface RelFileLocator {
  readonly spcOid: number
  readonly dbOid: number
  readonly relNumber: number
}

/** The fork's name, or the number for a fork PostgreSQL does not have (hostile WAL). */
export function forkName(forkNumber: number): string {
  return FORK_NAMES[forkNumber] ?? String(forkNumber)
}

/** GetRelationPath + segment suffix: e.g. `base/5/16384_fsm.2`. */
export function relationFilePath(rel: RelFileLocator, forkNumber: number, segno: number, profile: VersionProfile): string {
  const fork = forkNumber === ForkNumber.MAIN ? '' : `_${forkName(forkNumber)}`
  const suffix = segno > 0 ? `.${segno}` : ''
  let dir: string
  if (rel.spcOid === GLOBAL_TABLESPACE_OID) dir = 'global'
  else if (rel.spcOid === DEFAULT_TABLESPACE_OID) dir = `base/${rel.dbOid}`
  else dir = `pg_tblspc/${rel.spcOid}/${profile.tablespaceVersionDirectory}/${rel.dbOid}`
  return `${dir}/${rel.relNumber}${fork}${suffix}`
}

const GLOBAL_FILE = /^global\/(\d+)(?:\.(\d+))?$/
const BASE_FILE = /^base\/(\d+)\/(\d+)(?:\.(\d+))?$/
const TABLESPACE_FILE = /^pg_tblspc\/(\d+)\/([^/]+)\/(\d+)\/(\d+)(?:\.(\d+))?$/

function oid(text: string | undefined): number {
  // Out-of-range numbers fail the regeneration check below, as sscanf's wrapped values do.
  const n = text === undefined ? 0 : Number(text)
  return n <= 0xffffffff ? n : -1
}

/**
 * pg_rewind's isRelDataFile: a main-fork segment under global/, base/<db>/ or
 * pg_tblspc/<spc>/<version dir>/<db>/. The candidate is regenerated and must match exactly, which
 * rejects leading zeros, `.0` suffixes, other forks and other majors' tablespace directories.
 */
export function parseRelationDataFile(
  path: string,
  profile: VersionProfile,
): { spcOid: number; dbOid: number; relNumber: number; segno: number } | null {
  let rel: RelFileLocator
  let segno: number
  let m = GLOBAL_FILE.exec(path)
  if (m !== null) {
    rel = { spcOid: GLOBAL_TABLESPACE_OID, dbOid: 0, relNumber: oid(m[1]) }
    segno = oid(m[2])
  } else if ((m = BASE_FILE.exec(path)) !== null) {
    rel = { spcOid: DEFAULT_TABLESPACE_OID, dbOid: oid(m[1]), relNumber: oid(m[2]) }
    segno = oid(m[3])
  } else if ((m = TABLESPACE_FILE.exec(path)) !== null && m[2] === profile.tablespaceVersionDirectory) {
    rel = { spcOid: oid(m[1]), dbOid: oid(m[3]), relNumber: oid(m[4]) }
    segno = oid(m[5])
  } else {
    return null
  }
  if (rel.spcOid < 0 || rel.dbOid < 0 || rel.relNumber < 0 || segno < 0) return null
  if (relationFilePath(rel, ForkNumber.MAIN, segno, profile) !== path) return null
  return { ...rel, segno }
}
