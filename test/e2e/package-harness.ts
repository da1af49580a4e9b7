// walrewind as it is installed where rewinds happen: the npm package (packed, installed with no
// compiler and no install scripts) and the single executable (on a PATH without node). These run a
// real rewind with an installed walrewind, as rewind-harness.ts's runRewind does with the checkout's.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { PROJECT_ROOT, type Kit, type Major, type Node, type RunResult } from '../kit/index.js'
import { forkedPair, REWIND_USER, sql } from './rewind-harness.js'

/** Programs a build would need: none may be on the PATH of a "no compiler" install. */
export const BUILD_TOOLS = ['cc', 'gcc', 'g++', 'c++', 'clang', 'make', 'python3', 'python']

/** One major for these tests: 18 when it is under test, else the newest one that is. */
export function packageTestMajor(majors: Major[]): Major {
  return majors.includes(18) ? 18 : majors[majors.length - 1]!
}

/** A directory holding only `node` (a symlink to this node), for a PATH with node and nothing else. */
export function nodeOnlyBin(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
  fs.symlinkSync(process.execPath, path.join(dir, 'node'))
  return dir
}

/** Whether `program` is found on `pathValue` (as the shell would find it). */
export function onPath(program: string, pathValue: string): boolean {
  return pathValue.split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/** npm's own CLI script, to run npm with this node whatever the PATH. */
export function npmCli(): string {
  const candidates = [
    process.env['npm_execpath'],
    path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ]
  const found = candidates.find((file) => file && /npm-cli\.js$/.test(file) && fs.existsSync(file))
  assert.ok(found, `npm's npm-cli.js not found (tried ${candidates.filter(Boolean).join(', ')})`)
  return found
}

/** Runs npm as this (root) process; throws with its output on failure. */
export function npm(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): string {
  const result = spawnSync(process.execPath, [npmCli(), ...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: 300_000,
  })
  assert.equal(result.status, 0, `npm ${args.join(' ')} failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/** Makes everything under `dir` readable by the kit's OS user (the test process is root in CI). */
export function openToAll(dir: string): void {
  const result = spawnSync('chmod', ['-R', 'a+rX', dir], { encoding: 'utf8' })
  assert.equal(result.status, 0, result.stderr)
}

export interface InstalledRun extends RunResult {
  args: string[]
}

/**
 * A primary and its promoted standby, forked, then the old primary (crashed, so it needs crash
 * recovery) rewound by `program` against the standby, as runRewind does: over a connection with
 * -R (`remote`), or from its stopped data directory (`local`). Returns the run and the pair.
 */
export async function rewindWith(
  kit: Kit,
  major: Major,
  program: string,
  mode: 'remote' | 'local',
  env: Record<string, string>,
): Promise<{ run: InstalledRun; target: Node; source: Node }> {
  const { primary, standby } = await forkedPair(kit, major, {
    beforeStandby: async (p) => {
      await sql(p, 'CREATE TABLE t (id int PRIMARY KEY, v text)')
      await sql(p, "INSERT INTO t SELECT g, 'before the fork' FROM generate_series(1, 20000) g")
    },
    afterPromotion: async (p, s) => {
      await sql(p, "UPDATE t SET v = 'old primary, after the fork' WHERE id % 7 = 0")
      await sql(p, "INSERT INTO t SELECT g, 'old primary only' FROM generate_series(20001, 30000) g")
      await sql(s, "UPDATE t SET v = 'new primary' WHERE id % 5 = 0")
      await sql(s, 'CREATE TABLE only_on_new_primary AS SELECT 1 AS x')
    },
  })
  await primary.stop('immediate')
  const args = ['--debug', `--target-pgdata=${primary.dataDir}`, '--no-sync', `--postgres-bindir=${primary.binDir}`]
  if (mode === 'remote') {
    args.push(`--source-server=${standby.connectionString({ user: REWIND_USER })}`, '--write-recovery-conf')
  } else {
    await standby.stop('fast')
    args.push(`--source-pgdata=${standby.dataDir}`)
  }
  // The target keeps its own postgresql.conf (its port and paths), as runRewind does.
  const conf = path.join(primary.dataDir, 'postgresql.conf')
  const saved = fs.readFileSync(conf)
  const result = await kit.run(program, args, { env, timeoutMs: 180_000 })
  fs.writeFileSync(conf, saved)
  return { run: { ...result, args }, target: primary, source: standby }
}

export function assertRewound(run: InstalledRun, program: string): void {
  assert.equal(run.code, 0, `${program} ${run.args.join(' ')} failed (exit ${run.code}):\n${run.stderr}\n${run.stdout}`)
}

/** The line of --debug output that says how WAL records were checked. */
export function scanLine(stderr: string): string {
  return stderr.split('\n').find((line) => line.includes('checked by:')) ?? `(no "checked by:" line in:\n${stderr})`
}

export const CHECKOUT = PROJECT_ROOT
