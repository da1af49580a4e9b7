// A setting as the target's own configuration files in its data directory give it, without a
// server: postgresql.conf, then postgresql.auto.conf (ALTER SYSTEM), the last occurrence winning,
// as PostgreSQL reads them. `include` directives and files outside the data directory (Debian's
// /etc/postgresql) are not followed: the caller must treat "not found" as "unknown".

import fs from 'node:fs/promises'
import path from 'node:path'

const CONF_FILES = ['postgresql.conf', 'postgresql.auto.conf']

/** The value of `name` in the data directory's configuration files, or null if none sets it. */
export async function readDataDirSetting(dataDir: string, name: string): Promise<string | null> {
  let value: string | null = null
  for (const file of CONF_FILES) {
    const text = await fs.readFile(path.join(dataDir, file), 'utf8').catch(() => null)
    if (text === null) continue
    const found = lastSetting(text, name)
    if (found !== null) value = found
  }
  return value
}

/** The last `name = value` (or `name value`) line for `name` (case-insensitive) in a file's text. */
export function lastSetting(text: string, name: string): string | null {
  let value: string | null = null
  const wanted = name.toLowerCase()
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_.$-]*)\s*(?:=\s*|\s+)('(?:[^'\\]|''|\\.)*'|[^\s#']+)/.exec(line)
    if (match === null || match[1]!.toLowerCase() !== wanted) continue
    const raw = match[2]!
    value = raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, '$1') : raw
  }
  return value
}

const MEMORY_UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

/**
 * A memory setting in bytes: an integer with an optional unit (B, kB, MB, GB, TB, case as
 * PostgreSQL spells them), `defaultUnit` without one. Null for anything else.
 */
export function parseMemorySetting(value: string, defaultUnit: keyof typeof MEMORY_UNITS): number | null {
  const match = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(value)
  if (match === null) return null
  const unit = match[2] === '' ? defaultUnit : match[2]!
  const factor = MEMORY_UNITS[unit]
  return factor === undefined ? null : Number(match[1]) * factor
}
