// Interrupting walrewind at a chosen point of its write path, for the interruption tests: runs it
// with WALREWIND_FAULT=POINT:N:pause (src/rewind/fault.ts), waits until it has paused there, lets
// the test break something (the source, the disk), then lets it go on and collects the result.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Kit, Major, Node, RunResult } from '../kit/index.js'
import { forkedPair, sql } from './rewind-harness.js'

export interface PausedRun extends RunResult {
  /** From the removal of the pause file to walrewind's exit. */
  millisAfterResume: number
}

/** The fault points a clean run passes, by name, with how often (WALREWIND_FAULT_TRACE). */
export function readTrace(file: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    counts.set(line, (counts.get(line) ?? 0) + 1)
  }
  return counts
}

/** The fault points of a trace in the order passed, repeats folded: "chunk-copy x12, chunk-blocks x3, ...". */
export function traceOrder(file: string): string {
  const runs: Array<[string, number]> = []
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    const last = runs[runs.length - 1]
    if (last && last[0] === line) last[1]++
    else runs.push([line, 1])
  }
  return runs.map(([point, n]) => (n > 1 ? `${point} x${n}` : point)).join(', ')
}

/**
 * Runs walrewind with `args`, pausing the `nth` time it passes `point`; `whilePaused` runs while it
 * waits, then walrewind goes on. The pause file lives in `pauseDir` (writable by the kit's OS user).
 * Fails if walrewind ends before it pauses; never leaves it paused, even when `whilePaused` throws.
 */
export async function runPaused(
  kit: Kit,
  args: string[],
  point: string,
  nth: number,
  pauseDir: string,
  whilePaused: () => Promise<void>,
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<PausedRun> {
  const pauseFile = path.join(pauseDir, 'walrewind.pause')
  fs.rmSync(pauseFile, { force: true })
  const pending = kit.runWalrewind(args, {
    env: { ...opts.env, WALREWIND_FAULT: `${point}:${nth}:pause`, WALREWIND_FAULT_PAUSE_FILE: pauseFile },
    timeoutMs: opts.timeoutMs ?? 180_000,
  })
  let outcome: { result: RunResult } | { error: unknown } | null = null
  let endedAt = 0
  const settled = pending.then(
    (result) => {
      outcome = { result }
      endedAt = Date.now()
    },
    (error: unknown) => {
      outcome = { error }
      endedAt = Date.now()
    },
  )
  let failure: unknown = null
  try {
    const deadline = Date.now() + 120_000
    while (!fs.existsSync(pauseFile)) {
      if (outcome !== null) {
        const o = outcome as { result: RunResult } | { error: unknown }
        const detail = 'result' in o ? `exit ${o.result.code}\n${o.result.stderr}` : String(o.error)
        throw new Error(`walrewind ended before it paused at ${point}:${nth}: ${detail}`)
      }
      if (Date.now() > deadline) throw new Error(`walrewind did not pause at ${point}:${nth} within 120 s`)
      await sleep(20)
    }
    await whilePaused()
  } catch (err) {
    failure = err
  }
  fs.rmSync(pauseFile, { force: true })
  const resumedAt = Date.now()
  await settled
  if (failure !== null) throw failure
  const o = outcome as unknown as { result: RunResult } | { error: unknown }
  if ('error' in o) throw o.error
  return { ...o.result, millisAfterResume: endedAt - resumedAt }
}

/** Picks `count` distinct numbers in 1..max, one from each of `count` equal slices of the range. */
export function spreadPicks(max: number, count: number, random: () => number): number[] {
  assert.ok(max >= count, `need at least ${count} passes to choose from, have ${max}`)
  const picks: number[] = []
  for (let i = 0; i < count; i++) {
    const lo = Math.floor((i * max) / count) + 1
    const hi = Math.floor(((i + 1) * max) / count)
    picks.push(lo + Math.floor(random() * (hi - lo + 1)))
  }
  return picks
}

/** A small seeded generator (mulberry32), so a failing choice can be replayed with the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** WALREWIND_TEST_SEED, or a fresh seed; the test prints it. */
export function testSeed(): number {
  const raw = process.env['WALREWIND_TEST_SEED']
  if (raw !== undefined && raw !== '') {
    const seed = Number(raw)
    if (!Number.isInteger(seed)) throw new Error(`WALREWIND_TEST_SEED: "${raw}" is not an integer`)
    return seed
  }
  return Math.floor(Math.random() * 2 ** 31)
}

/** The last non-empty line of a text. */
export function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n')
  return lines[lines.length - 1] ?? ''
}

/** The JSON document walrewind --json printed on stdout. */
export function jsonOf(run: RunResult): Record<string, unknown> {
  try {
    return JSON.parse(run.stdout) as Record<string, unknown>
  } catch (err) {
    throw new Error(
      `walrewind --json did not print one JSON document (${(err as Error).message}):\n${run.stdout}\n--- stderr\n${run.stderr}`,
    )
  }
}

/**
 * What every failure after the first write must look like: exit 7, the error's own line, the
 * closing line that the target was modified and the same command must run again, and with --json
 * targetModified and rerun set.
 */
export function assertInterrupted(run: RunResult, what: RegExp, context: string): Record<string, unknown> {
  const where = `${context}\n--- stderr\n${run.stderr}\n--- stdout\n${run.stdout}`
  assert.equal(run.code, 7, `walrewind must exit 7 (target modified) after ${where}`)
  assert.match(run.stderr, what, `the error must say what failed: ${where}`)
  const last = lastLine(run.stderr)
  assert.match(last, /modified/, `stderr must end with the line saying the target was modified: ${where}`)
  assert.match(last, /run the same command again/i, `stderr must end by telling to run the same command again: ${where}`)
  const doc = jsonOf(run)
  assert.equal(doc['ok'], false, where)
  const error = doc['error'] as Record<string, unknown> | undefined
  assert.ok(error, `--json error document missing: ${where}`)
  assert.equal(error['targetModified'], true, `--json error must say targetModified: ${where}`)
  assert.equal(error['rerun'], true, `--json error must say rerun: ${where}`)
  return error
}

/**
 * The state an interrupted rewind leaves: the journal in place and pg_control gone (asserted), and
 * the marker in postgresql.auto.conf that makes PostgreSQL say why it cannot start the half-rewound
 * directory (returned as a problem, so that the test still checks the rerun, and fails at its end).
 */
export function assertHalfRewound(dataDir: string, context: string): string[] {
  assert.ok(fs.existsSync(path.join(dataDir, 'walrewind.resume')), `${context}: walrewind.resume must stay in the target for the rerun`)
  assert.ok(
    !fs.existsSync(path.join(dataDir, 'global', 'pg_control')),
    `${context}: global/pg_control must be gone while the rewind is unfinished`,
  )
  const autoConf = fs.readFileSync(path.join(dataDir, 'postgresql.auto.conf'), 'utf8')
  if (/^walrewind_rewind_interrupted = '.*'$/m.test(autoConf)) return []
  return [
    `${context}: postgresql.auto.conf does not hold the interruption marker walrewind_rewind_interrupted; it holds ${JSON.stringify(autoConf)}`,
  ]
}

/** What a finished rewind leaves: pg_control back, and none of walrewind's own files or marker. */
export function assertFinished(dataDir: string, context: string): void {
  assert.ok(fs.existsSync(path.join(dataDir, 'global', 'pg_control')), `${context}: global/pg_control missing after the rewind`)
  for (const name of ['walrewind.resume', 'walrewind.progress']) {
    assert.ok(!fs.existsSync(path.join(dataDir, name)), `${context}: ${name} left in the target after the rewind completed`)
  }
  const autoConf = fs.readFileSync(path.join(dataDir, 'postgresql.auto.conf'), 'utf8')
  assert.doesNotMatch(
    autoConf,
    /walrewind_rewind_interrupted/,
    `${context}: the interruption marker is still in postgresql.auto.conf:\n${autoConf}`,
  )
}

/** PostgreSQL must refuse to start a half-rewound data directory (if it does start, it is stopped again). */
export async function assertCannotStart(node: Node, context: string): Promise<void> {
  let started = false
  try {
    await node.start({ timeoutMs: 30_000 })
    started = true
  } catch {
    // refused, as it must be
  }
  if (started) {
    await node.stop('immediate')
    assert.fail(`${context}: PostgreSQL started the half-rewound data directory ${node.dataDir}`)
  }
  assert.equal(await node.isRunning(), false, `${context}: a postmaster is running in ${node.dataDir}`)
}

/**
 * The pair of the interruption tests: a shared table changed on both sides after the fork, a table
 * of the old primary's own, and on the new primary a table of `bigRows` rows (about 300 bytes
 * each) that the target must copy whole. Both nodes left running.
 */
export async function bigTablePair(kit: Kit, major: Major, bigRows: number): Promise<{ primary: Node; standby: Node }> {
  return forkedPair(kit, major, {
    beforeStandby: async (p) => {
      await sql(
        p,
        "CREATE TABLE shared (id int PRIMARY KEY, d text); INSERT INTO shared SELECT g, 'before the fork ' || g FROM generate_series(1, 30000) g",
      )
    },
    afterPromotion: async (p, s) => {
      // The old primary (target) changes blocks of a shared table and makes a table of its own.
      await sql(p, "UPDATE shared SET d = 'in the old primary' WHERE id % 40 = 0")
      await sql(p, "CREATE TABLE target_only (d text); INSERT INTO target_only SELECT 'target ' || g FROM generate_series(1, 5000) g")
      // The new primary (source) too, and a big table the target must copy whole.
      await sql(s, "UPDATE shared SET d = 'in the new primary' WHERE id % 70 = 0")
      await sql(
        s,
        `CREATE TABLE big (id int PRIMARY KEY, pad text); INSERT INTO big SELECT g, repeat('s', 250) FROM generate_series(1, ${bigRows}) g`,
      )
    },
  })
}
