// backup_label: the exact text pg_rewind writes into the target (recovery starts at the last common
// checkpoint and ends at minRecoveryPoint, hence "BACKUP FROM: standby"), and a reader with the
// server's rules for the two lines recovery depends on.

import { RewindError } from '../errors.js'
import { formatLsn, parseLsn, segmentFileName, segmentOf, type Lsn } from './lsn.js'

export interface RewindBackupLabel {
  /** Redo LSN of the last common checkpoint. */
  readonly redo: Lsn
  /** Timeline of that checkpoint; names the START WAL LOCATION file. */
  readonly redoTli: number
  /** LSN of the checkpoint record. */
  readonly checkpoint: Lsn
  readonly startTime: Date
  readonly segSize: number
  /** %Z of the START TIME line; default: the local zone's abbreviation. */
  readonly timeZoneName?: string
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0')
}

function localZoneName(at: Date): string {
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(at).find((p) => p.type === 'timeZoneName')
  return part?.value ?? 'UTC'
}

/** strftime("%Y-%m-%d %H:%M:%S %Z") in local time. */
function formatStartTime(at: Date, zone: string): string {
  return (
    `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())} ${zone}`
  )
}

/** The backup_label pg_rewind's createBackupLabel writes, byte for byte. */
export function formatRewindBackupLabel(label: RewindBackupLabel): string {
  const file = segmentFileName(label.redoTli, segmentOf(label.redo, label.segSize), label.segSize)
  const zone = label.timeZoneName ?? localZoneName(label.startTime)
  return (
    `START WAL LOCATION: ${formatLsn(label.redo)} (file ${file})\n` +
    `CHECKPOINT LOCATION: ${formatLsn(label.checkpoint)}\n` +
    'BACKUP METHOD: pg_rewind\n' +
    'BACKUP FROM: standby\n' +
    `START TIME: ${formatStartTime(label.startTime, zone)}\n`
  )
}

export interface BackupLabel {
  readonly startWalLocation: Lsn
  readonly startWalFile: string
  /** TLI digits of the START WAL LOCATION file name, as read_backup_label takes it. */
  readonly startWalFileTli: number
  readonly checkpointLocation: Lsn
  readonly backupMethod: string | undefined
  readonly backupFrom: string | undefined
  readonly startTime: string | undefined
  readonly label: string | undefined
  readonly startTimeline: number | undefined
  readonly incrementalFromLsn: Lsn | undefined
  readonly incrementalFromTli: number | undefined
  /** Every `KEY: value` line, as written. */
  readonly fields: Readonly<Record<string, string>>
}

// read_backup_label's fscanf patterns for the two mandatory lines.
const START_LINE = /^START WAL LOCATION: ([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}) \(file ([0-9A-F]{8})([0-9A-F]{16})\)$/
const CHECKPOINT_LINE = /^CHECKPOINT LOCATION: ([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})$/

function invalidLabel(): RewindError {
  return new RewindError('TARGET_DIR', 'invalid data in file "backup_label"', { path: 'backup_label' })
}

/** Parses a backup_label (server- or pg_rewind-written); throws TARGET_DIR if the first two lines are malformed. */
export function parseBackupLabel(text: string): BackupLabel {
  const lines = text.split('\n')
  const start = START_LINE.exec(lines[0] ?? '')
  const checkpoint = CHECKPOINT_LINE.exec(lines[1] ?? '')
  if (start === null || checkpoint === null || lines.length < 3) throw invalidLabel()
  const fields: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(': ')
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 2)
  }
  const optionalLsn = (key: string): Lsn | undefined => {
    const v = fields[key]
    return v === undefined ? undefined : parseLsn(v, 'TARGET_DIR')
  }
  const optionalNumber = (key: string): number | undefined => {
    const v = fields[key]
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v)) throw invalidLabel()
    return Number(v)
  }
  return {
    startWalLocation: parseLsn(start[1]!, 'TARGET_DIR'),
    startWalFile: start[2]! + start[3]!,
    startWalFileTli: parseInt(start[2]!, 16),
    checkpointLocation: parseLsn(checkpoint[1]!, 'TARGET_DIR'),
    backupMethod: fields['BACKUP METHOD'],
    backupFrom: fields['BACKUP FROM'],
    startTime: fields['START TIME'],
    label: fields['LABEL'],
    startTimeline: optionalNumber('START TIMELINE'),
    incrementalFromLsn: optionalLsn('INCREMENTAL FROM LSN'),
    incrementalFromTli: optionalNumber('INCREMENTAL FROM TLI'),
    fields,
  }
}
