// What an operator (or an HA manager) sees when it starts a half-rewound directory. The directory
// cannot start anyway, since its pg_control is kept in the journal until the rewind ends; this
// line makes PostgreSQL say why, in its own log, before it even looks for pg_control:
//
//   LOG:  unrecognized configuration parameter "walrewind_rewind_interrupted" in file ".../postgresql.auto.conf" line 3
//   FATAL:  configuration file ".../postgresql.auto.conf" contains errors
//
// postgresql.auto.conf is read from the data directory whatever config_file says, and an unknown
// parameter name (without a dot) is an error at server start on every major.

import fs from 'node:fs/promises'
import { isNotFound } from '../source/walk.js'
import type { TargetDir } from './target-dir.js'

export const AUTO_CONF = 'postgresql.auto.conf'
export const MARKER_PARAMETER = 'walrewind_rewind_interrupted'
const MARKER_LINE = `${MARKER_PARAMETER} = 'a rewind of this data directory by walrewind was interrupted: run the same walrewind command again to finish it'\n`

async function readAutoConf(target: TargetDir): Promise<string | null> {
  try {
    return await fs.readFile(target.abs(AUTO_CONF), 'utf8')
  } catch (err) {
    if (isNotFound(err)) return null
    throw err
  }
}

function withoutMarker(text: string): string {
  return text
    .split(/(?<=\n)/)
    .filter((line) => !line.startsWith(`${MARKER_PARAMETER} =`))
    .join('')
}

/** Whether the marker line is there. */
export async function hasInterruptedMarker(target: TargetDir): Promise<boolean> {
  const text = await readAutoConf(target)
  return text !== null && text.split('\n').some((line) => line.startsWith(`${MARKER_PARAMETER} =`))
}

/** Adds the marker line (once), durably. */
export async function addInterruptedMarker(target: TargetDir): Promise<void> {
  const text = (await readAutoConf(target)) ?? ''
  if (text.split('\n').some((line) => line.startsWith(`${MARKER_PARAMETER} =`))) return
  const sep = text === '' || text.endsWith('\n') ? '' : '\n'
  await target.replaceFileDurably(AUTO_CONF, text + sep + MARKER_LINE)
}

/** Removes the marker line if it is there; the rest of the file stays as it is. */
export async function removeInterruptedMarker(target: TargetDir): Promise<void> {
  const text = await readAutoConf(target)
  if (text === null) return
  const cleaned = withoutMarker(text)
  if (cleaned !== text) await target.replaceFileDurably(AUTO_CONF, cleaned)
}
