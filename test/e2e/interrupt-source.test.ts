// A rewind from a running source server that loses the source in the middle of the copy: its
// backends terminated (pg_terminate_backend) at random points of a whole-file copy and of a
// changed-block fetch, or the source server stopped. Each time walrewind must fail at once with a
// clear error (exit 7, "run the same command again"), leave a directory PostgreSQL refuses to
// start (pg_control off its path, and the walrewind_rewind_interrupted marker in
// postgresql.auto.conf, also when the source's configuration files are copied over the target's
// with --copy-config-files), and the same command run again must resume and give a target that
// follows the source as a standby with the same data (fingerprints and amcheck). Random pass
// numbers come from a seed the test prints (WALREWIND_TEST_SEED replays them). On the newest
// major under test.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { Kit, majorsUnderTest, type Node, type RunResult } from '../kit/index.js'
import { assertRewindOk, column, REWIND_USER, startAsStandbyAndCompare } from './rewind-harness.js'
import {
  assertCannotStart,
  assertFinished,
  assertHalfRewound,
  assertInterrupted,
  bigTablePair,
  jsonOf,
  readTrace,
  runPaused,
  seededRandom,
  spreadPicks,
  testSeed,
  traceOrder,
} from './pause-harness.js'

const major = majorsUnderTest().at(-1)!
/** Rows of the table the source creates after the fork: about 40 MB, copied whole in 1 MiB chunks. */
const BIG_ROWS = 140_000

describe(`interrupted rewinds from a source server (PostgreSQL ${major})`, () => {
  let kit: Kit
  let target: Node
  let source: Node
  let faultDir: string
  let args: string[]
  let passes: Map<string, number>
  const seed = testSeed()
  const random = seededRandom(seed)

  before(async () => {
    kit = await Kit.create(`interrupt-source-${major}`)
    const pair = await bigTablePair(kit, major, BIG_ROWS)
    target = pair.primary
    source = pair.standby
    await target.stop('fast')
    const bigBytes = Number(await source.queryValue("SELECT pg_relation_size('big')"))
    assert.ok(bigBytes > 35 * 1024 * 1024, `the big table has only ${bigBytes} bytes`)
    await kit.saveState('target', [target])
    faultDir = await kit.makeDir('faults')
    args = [
      '--debug',
      '--json',
      `--target-pgdata=${target.dataDir}`,
      `--source-server=${source.connectionString({ user: REWIND_USER })}`,
      '--write-recovery-conf',
      '--no-sync',
      `--postgres-bindir=${target.binDir}`,
      '--source-timeout=10',
    ]
  })

  after(async () => {
    await kit?.cleanup()
  })

  /** Runs walrewind keeping the target's own postgresql.conf, as the harness's runRewind does. */
  async function withTargetConf<T extends RunResult>(run: () => Promise<T>): Promise<T> {
    const conf = path.join(target.dataDir, 'postgresql.conf')
    const saved = await fs.readFile(conf)
    try {
      return await run()
    } finally {
      await fs.writeFile(conf, saved)
    }
  }

  /** Back to the diverged target, stopped; the source keeps running. */
  async function freshTarget(): Promise<void> {
    await target.stop('fast')
    await kit.restoreState('target')
    if (!(await source.isRunning())) await source.start()
  }

  /** Sessions walrewind has open on the source (its fallback_application_name). */
  async function walrewindSessions(): Promise<Array<{ pid: number; usename: string }>> {
    return source.query<{ pid: number; usename: string }>(
      "SELECT pid, usename FROM pg_stat_activity WHERE application_name = 'walrewind' AND pid <> pg_backend_pid()",
    )
  }

  /** The second run of the same command: resumes, completes, and the target follows the source with its data. */
  async function rerunAndVerify(t: TestContext, runArgs: string[], context: string): Promise<void> {
    const started = Date.now()
    const again = await withTargetConf(() => kit.runWalrewind(runArgs))
    t.diagnostic(`${context}: rerun took ${Date.now() - started} ms`)
    assertRewindOk({ ...again, args: runArgs })
    assert.match(again.stderr, /resuming/, `${context}: the rerun must resume the interrupted rewind:\n${again.stderr}`)
    assert.equal(jsonOf(again)['outcome'], 'rewound')
    assertFinished(target.dataDir, context)
    await startAsStandbyAndCompare(target, source, 'remote')
    assert.deepEqual(await column(target, "SELECT count(*) FROM shared WHERE d = 'in the old primary'"), ['0'])
    assert.deepEqual(await column(target, 'SELECT count(*) FROM big'), [String(BIG_ROWS)])
  }

  /** Pauses at point:nth, terminates walrewind's backends on the source, resumes: exit 7, then the rerun completes. */
  async function terminatedAt(
    t: TestContext,
    point: string,
    nth: number,
    problems: string[],
    opts: { checkStart?: boolean; extraArgs?: string[] } = {},
  ): Promise<void> {
    const runArgs = [...args, ...(opts.extraArgs ?? [])]
    const context = `backends terminated at ${point}:${nth}${opts.extraArgs?.length ? ` with ${opts.extraArgs.join(' ')}` : ''} (seed ${seed})`
    await freshTarget()
    const run = await withTargetConf(() =>
      runPaused(kit, runArgs, point, nth, faultDir, async () => {
        const sessions = await walrewindSessions()
        assert.ok(sessions.length > 0, `${context}: no session with application_name 'walrewind' on the source`)
        assert.ok(
          sessions.every((s) => s.usename === REWIND_USER),
          `${context}: ${JSON.stringify(sessions)}`,
        )
        await source.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'walrewind'")
        await source.waitUntil(async () => (await walrewindSessions()).length === 0, 10_000, "the end of walrewind's terminated backends")
      }),
    )
    t.diagnostic(`${context}: exit ${run.code} ${run.millisAfterResume} ms after the pause ended`)
    const error = assertInterrupted(run, new RegExp(`source server 127\\.0\\.0\\.1:${source.port}`), context)
    t.diagnostic(`${context}: ${String(error['code'])}: ${String(error['message'])}`)
    assert.match(String(error['code']), /^SOURCE_(QUERY|CONNECTION)$/, `${context}: ${JSON.stringify(error)}`)
    assert.ok(run.millisAfterResume < 30_000, `${context}: walrewind took ${run.millisAfterResume} ms to notice the lost source`)
    problems.push(...assertHalfRewound(target.dataDir, context))
    if (opts.checkStart) await assertCannotStart(target, context)
    await rerunAndVerify(t, runArgs, context)
  }

  /** Pauses at point:nth, stops the source server, resumes: exit 7; the source is started again and the rerun completes. */
  async function sourceStoppedAt(
    t: TestContext,
    point: string,
    nth: number,
    mode: 'fast' | 'immediate',
    problems: string[],
  ): Promise<void> {
    const context = `source stopped (${mode}) at ${point}:${nth} (seed ${seed})`
    await freshTarget()
    const run = await withTargetConf(() => runPaused(kit, args, point, nth, faultDir, () => source.stop(mode)))
    t.diagnostic(`${context}: exit ${run.code} ${run.millisAfterResume} ms after the pause ended`)
    const error = assertInterrupted(
      run,
      new RegExp(`source server 127\\.0\\.0\\.1:${source.port}|connection to server at "127\\.0\\.0\\.1", port ${source.port}`),
      context,
    )
    t.diagnostic(`${context}: ${String(error['code'])}: ${String(error['message'])}`)
    assert.match(String(error['code']), /^SOURCE_(QUERY|CONNECTION)$/, `${context}: ${JSON.stringify(error)}`)
    assert.ok(run.millisAfterResume < 30_000, `${context}: walrewind took ${run.millisAfterResume} ms to notice the stopped source`)
    problems.push(...assertHalfRewound(target.dataDir, context))
    await source.start()
    await rerunAndVerify(t, args, context)
  }

  it('a clean run: the fault points it passes (and the baseline rewind is right)', async (t) => {
    const trace = path.join(faultDir, 'trace')
    const started = Date.now()
    const run = await withTargetConf(() => kit.runWalrewind(args, { env: { WALREWIND_FAULT_TRACE: trace } }))
    t.diagnostic(`clean run took ${Date.now() - started} ms`)
    assertRewindOk({ ...run, args })
    assertFinished(target.dataDir, 'clean run')
    passes = readTrace(trace)
    t.diagnostic(`in order: ${traceOrder(trace)}`)
    t.diagnostic(`fault points passed: ${JSON.stringify(Object.fromEntries(passes))}; seed ${seed} (WALREWIND_TEST_SEED)`)
    assert.ok(
      (passes.get('chunk-copy') ?? 0) >= 30,
      `a 40 MB table copied in 1 MiB chunks passes chunk-copy at least 30 times: ${JSON.stringify(Object.fromEntries(passes))}`,
    )
    assert.ok((passes.get('chunk-blocks') ?? 0) >= 1, `changed blocks must be fetched: ${JSON.stringify(Object.fromEntries(passes))}`)
    await startAsStandbyAndCompare(target, source, 'remote')
  })

  it('source backends terminated during whole-file copies, at 3 random chunks: exit 7, the rerun resumes', async (t) => {
    assert.ok(passes, 'the clean run did not count the fault points')
    const picks = spreadPicks(passes.get('chunk-copy')!, 3, random)
    t.diagnostic(`chunk-copy passes chosen: ${picks.join(', ')} of ${passes.get('chunk-copy')}`)
    const problems: string[] = []
    for (const [i, nth] of picks.entries()) await terminatedAt(t, 'chunk-copy', nth, problems, { checkStart: i === 0 })
    assert.deepEqual(problems, [])
  })

  it('source backends terminated during a changed-block fetch: exit 7, the rerun resumes', async (t) => {
    assert.ok(passes, 'the clean run did not count the fault points')
    const [nth] = spreadPicks(passes.get('chunk-blocks')!, 1, random)
    t.diagnostic(`chunk-blocks pass chosen: ${nth} of ${passes.get('chunk-blocks')}`)
    const problems: string[] = []
    await terminatedAt(t, 'chunk-blocks', nth!, problems)
    assert.deepEqual(problems, [])
  })

  it("with --copy-config-files (pg_rewind's copy of postgresql.auto.conf), backends terminated during a copy: the marker stays, the rerun resumes", async (t) => {
    assert.ok(passes, 'the clean run did not count the fault points')
    // The source's configuration files are truncated, then copied with the rest of the group: pause
    // in its first half, so that the fetch (not a later step) is what fails.
    const [nth] = spreadPicks(Math.floor(passes.get('chunk-copy')! / 2), 1, random)
    const problems: string[] = []
    await terminatedAt(t, 'chunk-copy', nth!, problems, { checkStart: true, extraArgs: ['--copy-config-files'] })
    assert.deepEqual(problems, [])
  })

  // A source restarted since the clean run has its latest checkpoint at its end: its WAL before
  // that is not copied, so later runs pass chunk-copy fewer times than counted. The first 30
  // passes are the big table's (files are copied in path order, base/ before pg_wal/).
  const stablePasses = (): number => Math.min(passes.get('chunk-copy')!, 30)

  it('source server stopped (fast) during a whole-file copy: exit 7, the rerun resumes once it is back', async (t) => {
    assert.ok(passes, 'the clean run did not count the fault points')
    const [nth] = spreadPicks(stablePasses(), 1, random)
    const problems: string[] = []
    await sourceStoppedAt(t, 'chunk-copy', nth!, 'fast', problems)
    assert.deepEqual(problems, [])
  })

  it('source server crashed (immediate) during a whole-file copy: exit 7, the rerun resumes once it is back', async (t) => {
    assert.ok(passes, 'the clean run did not count the fault points')
    const [nth] = spreadPicks(stablePasses(), 1, random)
    const problems: string[] = []
    await sourceStoppedAt(t, 'chunk-copy', nth!, 'immediate', problems)
    assert.deepEqual(problems, [])
  })
})
