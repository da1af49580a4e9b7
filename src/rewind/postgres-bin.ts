// The target's own `postgres` binary, for what only the server can do: finish crash recovery in
// single-user mode, and tell the effective restore_command (-C). It must be of the target's major
// version; it is looked for in --postgres-bindir, then $PG_BINDIR, then the PATH, and the caller
// is told which one was used.

import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { RewindError } from '../errors.js'

export interface PostgresBinary { readonly path: string; readonly version: string; readonly foundVia: string }

/** Runs `file args`, returning exit code and output; never throws for a non-zero exit. */
export function runProgram(file: string, args: string[], opts: { input?: 'ignore' } = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [opts.input ?? 'ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
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

/** Finds a postgres of `major`; throws POSTGRES_NOT_FOUND listing what was tried. */
export async function findPostgres(major: number, bindirOption: string | null, env: NodeJS.ProcessEnv): Promise<PostgresBinary> {
  const candidates: Array<{ dir: string; via: string }> = []
  if (bindirOption) candidates.push({ dir: bindirOption, via: '--postgres-bindir' })
  if (env['PG_BINDIR']) candidates.push({ dir: env['PG_BINDIR'], via: 'PG_BINDIR' })
  for (const dir of (env['PATH'] ?? '').split(':')) if (dir) candidates.push({ dir, via: 'PATH' })
  const tried: string[] = []
  for (const { dir, via } of candidates) {
    const file = path.join(dir, 'postgres')
    if (!(await isExecutable(file))) continue
    const { stdout } = await runProgram(file, ['-V']).catch(() => ({ stdout: '' }))
    const version = /\(PostgreSQL\) (\d+)(\.\d+)?/.exec(stdout)
    tried.push(`${file} (${version ? version[1] + (version[2] ?? '') : 'unknown version'})`)
    if (version && Number(version[1]) === major) return { path: file, version: version[1]! + (version[2] ?? ''), foundVia: via }
    // An explicit directory with the wrong version is a mistake worth stopping for.
    if (via !== 'PATH') {
      throw new RewindError('POSTGRES_NOT_FOUND', `program "postgres" found in ${via} ("${file}") is version ${version?.[1] ?? 'unknown'}, but the target cluster is PostgreSQL ${major}`,
        { path: file })
    }
  }
  throw new RewindError('POSTGRES_NOT_FOUND', `program "postgres" of PostgreSQL ${major} is needed but was not found`,
    { hint: `Use --postgres-bindir or PG_BINDIR to name the directory of the target's postgres.${tried.length ? ` Tried: ${tried.join(', ')}.` : ''}` })
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
    throw new RewindError('CRASH_RECOVERY_FAILED', 'postgres single-user mode in target cluster failed',
      { detail: `Command was: ${command}${result.stderr.trim() ? `\n${result.stderr.trim()}` : ''}`, path: dataDir })
  }
}

/** The restore_command the target's configuration sets, as the server itself reads it. */
export async function readRestoreCommand(postgres: PostgresBinary, dataDir: string, configFile: string | null): Promise<string> {
  const result = await runProgram(postgres.path, ['-D', dataDir, ...configArgs(configFile), '-C', 'restore_command'])
  if (result.code !== 0) {
    throw new RewindError('RESTORE_COMMAND', 'could not read "restore_command" from target cluster', { detail: result.stderr.trim(), path: dataDir })
  }
  const value = result.stdout.replace(/\n$/, '')
  if (value === '') throw new RewindError('RESTORE_COMMAND', '"restore_command" is not set in the target cluster', { path: dataDir })
  return value
}
