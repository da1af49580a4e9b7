// The target's own `postgres` binary, for what only the server can do: finish crash recovery in
// single-user mode, and tell the effective restore_command (-C). It must be of the target's major
// version. It is looked for as pg_rewind's find_other_exec() looks for it, next to the program
// itself: in the directory of the path walrewind was invoked by (a symlink such as
// /usr/lib/postgresql/15/bin/pg_rewind -> walrewind), then in that of the path with its symlinks
// resolved; then in --postgres-bindir, $PG_BINDIR and the PATH. The caller is told which was used.

import { spawn } from 'node:child_process'
import fsSync from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { RewindError } from '../errors.js'

export interface PostgresBinary {
  readonly path: string
  readonly version: string
  readonly foundVia: string
}

/** Runs `file args`, returning exit code and output; never throws for a non-zero exit. */
export function runProgram(
  file: string,
  args: string[],
  opts: { input?: 'ignore' } = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [opts.input ?? 'ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fs.constants.X_OK)
    return (await fs.stat(file)).isFile()
  } catch {
    return false
  }
}

export interface FindPostgresOptions {
  /** --postgres-bindir; null when not given. */
  readonly bindir?: string | null
  /**
   * The path the running program was invoked by (process.argv[1] of the CLI: absolute, symlinks
   * not resolved; a bare name is looked up on the PATH); null for a library caller, which has no
   * executable of its own.
   */
  readonly programPath?: string | null
  /** Name for messages (pg_rewind or walrewind). */
  readonly programName?: string
}

interface Candidate {
  readonly dir: string
  readonly via: string
  readonly explicit: boolean
}

/** Where to look, in order, without duplicates (the first mention of a directory wins). */
export function postgresCandidates(
  opts: FindPostgresOptions,
  env: NodeJS.ProcessEnv,
  realpath: (p: string) => string | null = realpathOrNull,
): Candidate[] {
  const list: Candidate[] = []
  const add = (dir: string, via: string, explicit: boolean) => {
    const resolved = path.resolve(dir)
    if (!list.some((c) => c.dir === resolved)) list.push({ dir: resolved, via, explicit })
  }
  // A bare name (no slash) is the one found on the PATH, as find_my_exec() reads it.
  const given = opts.programPath ?? null
  const program = given !== null && given !== '' && !given.includes('/') ? onPath(given, env) : given
  if (program) {
    add(path.dirname(path.resolve(program)), 'the directory of the program', false)
    const real = realpath(program)
    if (real !== null) add(path.dirname(real), 'the directory of the program with symlinks resolved', false)
  }
  if (opts.bindir) add(opts.bindir, '--postgres-bindir', true)
  if (env['PG_BINDIR']) add(env['PG_BINDIR'], 'PG_BINDIR', true)
  for (const dir of (env['PATH'] ?? '').split(':')) if (dir) add(dir, 'PATH', false)
  return list
}

/** The first executable file called `name` in a directory of $PATH, or null. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env['PATH'] ?? '').split(':')) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      fsSync.accessSync(file, fsSync.constants.X_OK)
      if (fsSync.statSync(file).isFile()) return file
    } catch {
      // not here
    }
  }
  return null
}

function realpathOrNull(file: string): string | null {
  try {
    return fsSync.realpathSync(file)
  } catch {
    return null
  }
}

/**
 * Finds a postgres of `major`; throws POSTGRES_NOT_FOUND listing what was tried. One of another
 * major next to the program is passed over (walrewind serves every major; pg_rewind, which serves
 * one, would refuse), one in a directory named by --postgres-bindir or $PG_BINDIR is refused.
 */
export async function findPostgres(major: number, opts: FindPostgresOptions, env: NodeJS.ProcessEnv): Promise<PostgresBinary> {
  const tried: string[] = []
  for (const { dir, via, explicit } of postgresCandidates(opts, env)) {
    const file = path.join(dir, 'postgres')
    if (!(await isExecutable(file))) continue
    const { stdout } = await runProgram(file, ['-V']).catch(() => ({ stdout: '' }))
    const version = /\(PostgreSQL\) (\d+)(\.\d+)?/.exec(stdout)
    tried.push(`${file} (${version ? version[1] + (version[2] ?? '') : 'unknown version'})`)
    if (version && Number(version[1]) === major) return { path: file, version: version[1]! + (version[2] ?? ''), foundVia: via }
    // An explicit directory with the wrong version is a mistake worth stopping for.
    if (explicit) {
      throw new RewindError(
        'POSTGRES_NOT_FOUND',
        `program "postgres" found in ${via} ("${file}") is version ${version?.[1] ?? 'unknown'}, but the target cluster is PostgreSQL ${major}`,
        { path: file },
      )
    }
  }
  const prog = opts.programName ?? 'walrewind'
  const beside = opts.programPath ? ` in the same directory as "${opts.programPath}",` : ''
  throw new RewindError(
    'POSTGRES_NOT_FOUND',
    `program "postgres" of PostgreSQL ${major} is needed by ${prog} but was not found${beside} in --postgres-bindir, $PG_BINDIR or the PATH`,
    {
      hint: `Install walrewind next to the target's postgres (e.g. as pg_rewind in its bin directory), or name that directory with --postgres-bindir or PG_BINDIR.${tried.length ? ` Tried: ${tried.join(', ')}.` : ''}`,
    },
  )
}

function configArgs(configFile: string | null): string[] {
  return configFile ? ['-c', `config_file=${configFile}`] : []
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/** Single-user mode, which replays WAL to a consistent state and shuts down cleanly. */
export async function runCrashRecovery(postgres: PostgresBinary, dataDir: string, configFile: string | null): Promise<void> {
  const args = ['--single', '-F', '-D', dataDir, ...configArgs(configFile), 'template1']
  const result = await runProgram(postgres.path, args)
  if (result.code !== 0) {
    const command = [postgres.path, ...args].map(shellQuote).join(' ') + ' < /dev/null'
    throw new RewindError('CRASH_RECOVERY_FAILED', 'postgres single-user mode in target cluster failed', {
      detail: `Command was: ${command}${result.stderr.trim() ? `\n${result.stderr.trim()}` : ''}`,
      path: dataDir,
    })
  }
}

/** The restore_command the target's configuration sets, as the server itself reads it. */
export async function readRestoreCommand(postgres: PostgresBinary, dataDir: string, configFile: string | null): Promise<string> {
  const result = await runProgram(postgres.path, ['-D', dataDir, ...configArgs(configFile), '-C', 'restore_command'])
  if (result.code !== 0) {
    throw new RewindError('RESTORE_COMMAND', 'could not read "restore_command" from target cluster', {
      detail: result.stderr.trim(),
      path: dataDir,
    })
  }
  const value = result.stdout.replace(/\n$/, '')
  if (value === '') throw new RewindError('RESTORE_COMMAND', '"restore_command" is not set in the target cluster', { path: dataDir })
  return value
}
