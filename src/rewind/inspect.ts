// First stage: read both control files and PG_VERSION, pick the format profile, and check every
// precondition pg_rewind checks (and a few it does not) before anything is written.

import fs from 'node:fs/promises'
import path from 'node:path'
import { RewindError } from '../errors.js'
import { decodeControlFile, DBState, type ControlFile } from '../pg/control.js'
import { profileFromPgVersionFile, type VersionProfile } from '../pg/versions.js'
import { errText } from '../source/walk.js'

export interface TargetInfo {
  readonly dir: string
  readonly dirMode: number
  readonly control: ControlFile
  readonly profile: VersionProfile
}

/** Whether a control file says the cluster was shut down cleanly. */
export function isCleanlyShutDown(control: ControlFile): boolean {
  return control.state === DBState.SHUTDOWNED || control.state === DBState.SHUTDOWNED_IN_RECOVERY
}

export async function readTargetDirMode(dir: string): Promise<number> {
  try {
    const st = await fs.stat(dir)
    if (!st.isDirectory()) throw new RewindError('TARGET_DIR', `"${dir}" is not a directory`, { path: dir })
    return st.mode & 0o777
  } catch (err) {
    if (err instanceof RewindError) throw err
    throw new RewindError('TARGET_DIR', `could not read permissions of directory "${dir}": ${errText(err)}`, { path: dir }, { cause: err })
  }
}

export async function readTargetControl(dir: string): Promise<ControlFile> {
  const file = path.join(dir, 'global', 'pg_control')
  let buf: Buffer
  try {
    buf = await fs.readFile(file)
  } catch (err) {
    throw new RewindError('TARGET_DIR', `could not open file "${file}" for reading: ${errText(err)}`, { path: file }, { cause: err })
  }
  return decodeControlFile(buf)
}

export async function readTargetProfile(dir: string): Promise<VersionProfile> {
  const file = path.join(dir, 'PG_VERSION')
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    throw new RewindError('TARGET_DIR', `could not open file "${file}" for reading: ${errText(err)}`, { path: file }, { cause: err })
  }
  return profileFromPgVersionFile(text)
}

/** A postmaster.pid naming a live process: the target is running, whatever pg_control says. */
export async function runningPostmasterPid(dir: string): Promise<number | null> {
  let text: string
  try {
    text = await fs.readFile(path.join(dir, 'postmaster.pid'), 'utf8')
  } catch {
    return null
  }
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10)
  if (!Number.isInteger(pid) || pid <= 0) return null
  try {
    process.kill(pid, 0)
    return pid
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null
  }
}

/**
 * pg_rewind's sanityChecks() that do not depend on shutdown states, in its order and words, plus
 * the sizes it leaves to luck. They can run before crash recovery touches the target.
 */
export function checkSameCluster(target: ControlFile, targetProfile: VersionProfile, source: ControlFile): void {
  if (target.system_identifier !== source.system_identifier) {
    throw new RewindError('DIFFERENT_SYSTEMS', 'source and target clusters are from different systems', {
      detail: `The target's system identifier is ${target.system_identifier}, the source's ${source.system_identifier}.`,
    })
  }
  if (
    target.catalog_version_no !== source.catalog_version_no ||
    target.pg_control_version !== source.pg_control_version ||
    target.profile.major !== targetProfile.major
  ) {
    throw new RewindError('INCOMPATIBLE_VERSION', 'clusters are not compatible with this version of pg_rewind', {
      detail: `The target is PostgreSQL ${target.profile.major} (catalog version ${target.catalog_version_no}), the source PostgreSQL ${source.profile.major} (catalog version ${source.catalog_version_no}).`,
    })
  }
  if (
    target.blcksz !== source.blcksz ||
    target.xlog_seg_size !== source.xlog_seg_size ||
    target.relseg_size !== source.relseg_size ||
    target.xlog_blcksz !== source.xlog_blcksz
  ) {
    throw new RewindError('INCOMPATIBLE_VERSION', 'source and target clusters have different block or WAL segment sizes', {
      detail: `block size ${target.blcksz}/${source.blcksz}, WAL segment size ${target.xlog_seg_size}/${source.xlog_seg_size}`,
    })
  }
}

/** pg_rewind's refusal of a target whose WAL leaves hint-bit changes out (--compare=wal). */
export function checkHintBitsInWal(target: ControlFile): void {
  if (target.data_checksum_version === 0 && !target.wal_log_hints) {
    throw new RewindError('NO_CHECKSUMS_OR_HINTS', 'target server needs to use either data checksums or "wal_log_hints = on"')
  }
}

/** The rest of sanityChecks(): both sides stopped cleanly (a server source runs, of course). */
export function checkShutdownStates(target: ControlFile, source: ControlFile, sourceRunning: boolean): void {
  if (!isCleanlyShutDown(target)) {
    throw new RewindError('TARGET_NOT_SHUT_DOWN', 'target server must be shut down cleanly')
  }
  if (!sourceRunning && !isCleanlyShutDown(source)) {
    throw new RewindError('SOURCE_NOT_SHUT_DOWN', 'source data directory must be shut down cleanly')
  }
}
