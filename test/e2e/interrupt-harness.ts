// Crash-safety of a rewind on real clusters, shared by test/e2e/interrupt-kill.test.ts and the soak
// script test/soak/interrupt-soak.ts: a diverged pair whose rewind does every kind of action,
// walrewind killed (SIGKILL, by its own fault injection: src/rewind/fault.ts) at a named point of
// its write path, the half-rewound target refused by PostgreSQL without being changed, the same
// command run again to finish the job, and the rewound node started as a standby of the source
// holding the source's data.

import assert from 'node:assert/strict'
import { constants as osConstants } from 'node:os'
import fs from 'node:fs/promises'
import path from 'node:path'
import { FAULT_POINTS, type FaultPoint } from '../../src/rewind/fault.js'
import type { Fingerprint, Kit, Major, Node, RunResult } from '../kit/index.js'
import { forkedPair, REWIND_USER, snapshotDirectory, sql, startAsStandbyAndCompare } from './rewind-harness.js'

export { FAULT_POINTS, type FaultPoint }

/** local: --source-pgdata of the stopped source; server: --source-server of the running one, with -R. */
export type SourceKind = 'local' | 'server'

/** The exit status the kit's runner reports for a child killed by SIGKILL (it has no signal field). */
export const SIGKILL_STATUS = 128 + osConstants.signals.SIGKILL

const JOURNAL = 'walrewind.resume'
const PROGRESS = 'walrewind.progress'
const MARKER = 'walrewind_rewind_interrupted'
/** A directory only the source has (the plan creates it) and a file in it. */
const EXTRA_DIR = 'walrewind_interrupt_extra'
/** The target's saved stopped state (kit.saveState label). */
const STATE = 'interrupt-target'

/** The points a clean rewind of this scenario must pass, by source kind. */
export function expectedPoints(kind: SourceKind): FaultPoint[] {
  return FAULT_POINTS.filter((point) => {
    // wal-catchup: the WAL a running source wrote during the copy (runWalrewind has it write).
    if (point === 'chunk-copy' || point === 'standby-settings-written' || point === 'wal-catchup') return kind === 'server'
    if (point === 'file-copied') return kind === 'local'
    return true
  })
}

export interface InterruptPair {
  readonly kit: Kit
  readonly major: Major
  /** The old primary: rewound again and again from its saved stopped state. */
  readonly target: Node
  /** The promoted standby; stopped after the build. */
  readonly source: Node
  /** The new table made on the source after the promotion: its main fork, relative to the data dir. */
  readonly bigFile: string
  readonly bigBytes: number
  /** The stopped source's data, once seen (it does not change between local-source runs). */
  localSourceFingerprint?: Fingerprint
}

export interface PairOptions {
  /**
   * Size of the source-only table (default 34 MB): over the 32 MiB a query of a server source
   * fetches, so the file comes in two batches, on two connections at once.
   */
  bigMb?: number
  /** Rows of the table whose blocks both sides change (default 10000, about 2.5 MB). */
  sharedRows?: number
  /** initdb --wal-segsize (default PostgreSQL's 16). */
  walSegmentSizeMb?: number
  log?: (message: string) => void
}

/**
 * A primary and a promoted standby whose rewind of the old primary (target) against the standby
 * (source) does every action:
 * - copy: the new source-only table (34 MB; a server source fetches it in 1 MiB chunks, 32 MiB a query), and
 *   the old relfilenode of a table the target rewrote with VACUUM FULL;
 * - changed blocks: updates on both sides of a table both have;
 * - copy-tail: a table the source grew, and one the target shrank (DELETE + VACUUM);
 * - truncate: a table the target grew;
 * - remove: the target's new relfilenode of the VACUUM FULL table, a table only the target made,
 *   and the file of a table the source dropped;
 * - create: a directory only the source has.
 * Both nodes are left stopped (fast), and the target's state saved.
 */
export async function buildInterruptPair(kit: Kit, major: Major, opts: PairOptions = {}): Promise<InterruptPair> {
  const log = opts.log ?? (() => {})
  const bigMb = opts.bigMb ?? 34
  const sharedRows = opts.sharedRows ?? 10000
  // About 1 kB per row, 8 rows per 8 kB page.
  const bigRows = Math.round(((bigMb * 1024 * 1024) / 8192) * 8)
  let bigFile = ''
  log(`PostgreSQL ${major}: building the pair`)
  const { primary, standby } = await forkedPair(kit, major, {
    init: { walLogHints: true, ...(opts.walSegmentSizeMb ? { walSegmentSizeMb: opts.walSegmentSizeMb } : {}) },
    beforeStandby: async (p) => {
      await sql(p, `ALTER ROLE ${REWIND_USER} WITH REPLICATION`)
      await sql(p, 'CREATE EXTENSION IF NOT EXISTS amcheck')
      await sql(p, 'CREATE EXTENSION IF NOT EXISTS amcheck', 'template1')
      await sql(
        p,
        `CREATE TABLE shared (id int PRIMARY KEY, pad text);
        INSERT INTO shared SELECT g, repeat('a', 200) FROM generate_series(1, ${sharedRows}) g`,
      )
      await sql(p, `CREATE TABLE vf (a int, b text); INSERT INTO vf SELECT g, md5(g::text) FROM generate_series(1, 5000) g`)
      await sql(p, `CREATE TABLE grow_s (a int, b text); INSERT INTO grow_s SELECT g, md5(g::text) FROM generate_series(1, 1000) g`)
      await sql(p, `CREATE TABLE shrink_t (a int, b text); INSERT INTO shrink_t SELECT g, md5(g::text) FROM generate_series(1, 4000) g`)
      await sql(p, `CREATE TABLE grow_t (a int, b text); INSERT INTO grow_t SELECT g, md5(g::text) FROM generate_series(1, 1000) g`)
      await sql(p, `CREATE TABLE drop_s (a int); INSERT INTO drop_s SELECT generate_series(1, 1000)`)
      await sql(p, 'CREATE TABLE live (id bigserial PRIMARY KEY, note text)')
      await sql(p, 'VACUUM')
    },
    afterPromotion: async (p, s) => {
      // The old primary (target) goes on writing on timeline 1.
      await sql(p, "UPDATE shared SET pad = repeat('t', 200) WHERE id % 7 = 0")
      await sql(p, 'VACUUM FULL vf')
      await sql(p, 'DELETE FROM shrink_t WHERE a > 500')
      await sql(p, 'VACUUM shrink_t')
      await sql(p, "INSERT INTO grow_t SELECT g, 'target' FROM generate_series(1, 8000) g")
      await sql(p, 'CREATE TABLE only_t (a int); INSERT INTO only_t SELECT generate_series(1, 1000)')
      await sql(p, "INSERT INTO live (note) VALUES ('target after the fork')")
      // The new primary (source) on timeline 2.
      await sql(
        s,
        `CREATE TABLE big_new (id int, pad text);
        INSERT INTO big_new SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, ${bigRows}) g`,
      )
      bigFile = String((await s.query<{ f: string }>("SELECT pg_relation_filepath('big_new') AS f"))[0]!.f)
      await sql(s, "UPDATE shared SET pad = repeat('s', 200) WHERE id % 100 = 0")
      await sql(s, "INSERT INTO grow_s SELECT g, 'source' FROM generate_series(1, 8000) g")
      await sql(s, 'DROP TABLE drop_s')
      await sql(s, "INSERT INTO live (note) SELECT 'source after the fork ' || g FROM generate_series(1, 100) g")
      const extra = path.join(s.dataDir, EXTRA_DIR)
      const made = await kit.run('sh', [
        '-c',
        `mkdir -m 700 "${extra}" && echo only on the source > "${extra}/file" && chmod 600 "${extra}/file"`,
      ])
      assert.equal(made.code, 0, made.stderr)
    },
  })
  await primary.stop('fast')
  await standby.stop('fast')
  const bigBytes = (await fs.stat(path.join(standby.dataDir, bigFile))).size
  log(`big_new: ${bigFile}, ${(bigBytes / 1048576).toFixed(1)} MB`)
  await kit.saveState(STATE, [primary])
  return { kit, major, target: primary, source: standby, bigFile, bigBytes }
}

/** The walrewind command line of a kind: without --no-sync, so the sync points are passed too. */
export function rewindArgs(pair: InterruptPair, kind: SourceKind): string[] {
  const args = [`--target-pgdata=${pair.target.dataDir}`, `--postgres-bindir=${pair.target.binDir}`]
  if (kind === 'local') args.push(`--source-pgdata=${pair.source.dataDir}`)
  else args.push(`--source-server=${pair.source.connectionString({ user: REWIND_USER })}`, '--write-recovery-conf')
  return args
}

/** Rows a second in ten-row commits, for about two minutes at most (a rewind takes seconds). */
const SOURCE_WRITER = `DO $$
BEGIN
  FOR i IN 1..6000 LOOP
    INSERT INTO live (note) SELECT 'source during a rewind ' || g FROM generate_series(1, 10) g;
    COMMIT;
    PERFORM pg_sleep(0.02);
  END LOOP;
END $$`

/**
 * Runs walrewind; for a server source with a session inserting rows on the source meanwhile (a
 * source in use goes on writing WAL during the copy, which the rewind then catches up with). The
 * loop runs in the server, not in this process: a lane beside this one that blocks the event
 * loop (a state copy did, for seconds) left a loop here idle for a whole rewind, and the WAL end
 * at the finish was the one planned.
 */
async function runWalrewind(pair: InterruptPair, kind: SourceKind, env: Record<string, string> = {}): Promise<RunResult> {
  // Groups of 100 entries: the plan's 250 or so make three, each synced while the next copies, so
  // the group points have a middle pass to kill at (smaller groups cost every run more syncs).
  const run = () => pair.kit.runWalrewind(rewindArgs(pair, kind), { env: { WALREWIND_FAULT_GROUP_ENTRIES: '100', ...env } })
  if (kind === 'local') return run()
  const session = await pair.source.connect()
  const pid = (await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
  let stopping = false
  const writer = session.query(SOURCE_WRITER).then(
    () => null,
    (err: unknown) => (stopping && (err as { code?: string }).code === '57014' ? null : err),
  )
  let result: Awaited<ReturnType<typeof run>>
  let failure: unknown = null
  try {
    result = await run()
  } finally {
    stopping = true
    await pair.source.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {})
    failure = await writer
    await session.end().catch(() => {})
  }
  if (failure) throw new Error(`the writer on the source failed: ${(failure as Error).message}`, { cause: failure })
  return result
}

/** Brings the nodes to where a run of `kind` starts: target stopped, source stopped (local) or running (server). */
export async function settle(pair: InterruptPair, kind: SourceKind): Promise<void> {
  await pair.target.stop('immediate')
  if (kind === 'local') {
    await pair.source.stop('fast')
  } else {
    // A server-source run writes to the source: its data is no longer the one seen.
    pair.localSourceFingerprint = undefined
    if (!(await pair.source.isRunning())) await pair.source.start()
  }
}

/** Puts the target's saved stopped state back; returns its postgresql.conf, to be kept across runs. */
async function restoreTarget(pair: InterruptPair): Promise<Buffer> {
  await pair.kit.restoreState(STATE)
  return fs.readFile(confPath(pair))
}

function confPath(pair: InterruptPair): string {
  return path.join(pair.target.dataDir, 'postgresql.conf')
}

/**
 * Writes the target's own postgresql.conf back: the copy brings the source's (its port and paths),
 * as runRewind in the harness does after every run. Owned by the servers' OS user.
 */
async function putConfBack(pair: InterruptPair, saved: Buffer): Promise<void> {
  const file = confPath(pair)
  await fs.writeFile(file, saved)
  const user = pair.kit.osUser
  if (user) await fs.chown(file, user.uid, user.gid)
}

function describeRun(what: string, run: RunResult): string {
  const tail = (text: string) => text.trimEnd().split('\n').slice(-30).join('\n')
  return `${what}: exit ${run.code}\n--- stderr\n${tail(run.stderr)}\n--- stdout\n${tail(run.stdout)}`
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  )
}

/** After a finished rewind: no journal, no progress log, no marker, a pg_control. */
async function assertFinished(pair: InterruptPair, what: string): Promise<void> {
  const dir = pair.target.dataDir
  assert.equal(await exists(path.join(dir, JOURNAL)), false, `${what}: ${JOURNAL} is left in the target`)
  assert.equal(await exists(path.join(dir, PROGRESS)), false, `${what}: ${PROGRESS} is left in the target`)
  assert.equal(await exists(path.join(dir, 'global', 'pg_control')), true, `${what}: the target has no global/pg_control`)
  const autoConf = await fs.readFile(path.join(dir, 'postgresql.auto.conf'), 'utf8').catch(() => '')
  assert.doesNotMatch(autoConf, new RegExp(`^${MARKER}`, 'm'), `${what}: the ${MARKER} line is left in postgresql.auto.conf`)
}

/**
 * The proof: the target starts as a standby of the source, replays what the source has and holds
 * the same data with sound btree indexes; both stopped afterwards (a server source runs on).
 * startAsStandbyAndCompare for the clean run; for the kill points the same steps, faster: the
 * fingerprints and the index check run side by side, and a stopped source's fingerprint (which
 * nothing but these checks can change, and they only read) is taken once per kind.
 */
async function verify(pair: InterruptPair, kind: SourceKind, opts: { first?: boolean } = {}): Promise<void> {
  const { target, source } = pair
  if (opts.first) {
    await startAsStandbyAndCompare(target, source, kind === 'local' ? 'local' : 'remote')
  } else {
    if (kind === 'server') {
      // -R wrote standby.signal and primary_conninfo for the rewind role (REPLICATION since the build).
      assert.equal(await exists(path.join(target.dataDir, 'standby.signal')), true, '-R did not write standby.signal')
    } else {
      await target.followAs(source)
    }
    // Side by side: the standby retries its connection until the source is up.
    await Promise.all([source.isRunning().then((up) => (up ? undefined : source.start())), target.start()])
    if (kind === 'server') {
      // WAL the rewind cannot have copied: it must come by streaming, through -R's primary_conninfo.
      await source.query("INSERT INTO live (note) VALUES ('source after the rewind')")
    }
    await target.waitForReplay(await source.currentLsn())
    const cached = kind === 'local' ? pair.localSourceFingerprint : undefined
    const [mine, theirs] = await Promise.all([target.fingerprint(), cached ?? source.fingerprint(), target.checkIndexes()])
    assert.deepEqual(mine, theirs, 'target and source data differ after the rewind')
  }
  if (kind === 'local' && pair.localSourceFingerprint === undefined) pair.localSourceFingerprint = await source.fingerprint()
  await Promise.all([target.stop('fast'), kind === 'local' ? source.stop('fast') : undefined])
}

export interface TraceResult {
  /** Every point passed, in order (a line of WALREWIND_FAULT_TRACE each). */
  readonly trace: FaultPoint[]
  readonly counts: Map<FaultPoint, number>
  readonly millis: number
}

/** A clean rewind with WALREWIND_FAULT_TRACE, checked like every other one; which points it passes, how often. */
export async function traceRun(pair: InterruptPair, kind: SourceKind): Promise<TraceResult> {
  await settle(pair, kind)
  const conf = await restoreTarget(pair)
  const traceFile = path.join(pair.kit.homeDir, `trace-${kind}-${Date.now()}`)
  const started = Date.now()
  let run: RunResult
  try {
    run = await runWalrewind(pair, kind, { WALREWIND_FAULT_TRACE: traceFile })
  } finally {
    await putConfBack(pair, conf)
  }
  const millis = Date.now() - started
  assert.equal(run.code, 0, describeRun('the clean rewind (with a fault trace)', run))
  assert.doesNotMatch(run.stderr, /resuming/, 'a clean rewind must not resume anything')
  const text = await fs.readFile(traceFile, 'utf8').catch(() => '')
  await fs.rm(traceFile, { force: true })
  const trace = text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      assert.ok((FAULT_POINTS as readonly string[]).includes(line), `unknown point "${line}" in the fault trace`)
      return line as FaultPoint
    })
  const counts = new Map<FaultPoint, number>()
  for (const point of trace) counts.set(point, (counts.get(point) ?? 0) + 1)
  await assertFinished(pair, 'the clean rewind')
  await verify(pair, kind, { first: true })
  return { trace, counts, millis }
}

export interface KillResult {
  readonly point: FaultPoint
  readonly pass: number
  /** allowUnreached: walrewind finished without passing the point that often. */
  readonly unreached?: boolean
  /** For chunk-copy: how many MiB of the source-only table were in the target when killed. */
  readonly bigMibWritten?: number
  readonly bigMibTotal?: number
  /** restore: the target's saved state put back; check: the start refused, the directory compared. */
  readonly millis: { restore: number; kill: number; check: number; rerun: number; verify: number; total: number }
}

/**
 * One kill point: the target's saved state; walrewind killed at the `pass`-th pass of `point`;
 * PostgreSQL refuses to start the half-rewound target and leaves it as it is (except after the
 * final rename: that directory is a finished rewind); the same command again finishes the job
 * ("resuming"; after the final rename "no rewind required"); the node follows the source and
 * holds its data. Leaves the nodes as settle() does. Throws (an assertion) on any deviation.
 */
export async function killAndResume(
  pair: InterruptPair,
  kind: SourceKind,
  point: FaultPoint,
  pass: number,
  opts: { allowUnreached?: boolean } = {},
): Promise<KillResult> {
  const { target, source } = pair
  const t0 = Date.now()
  await settle(pair, kind)
  const conf = await restoreTarget(pair)
  const tRestored = Date.now()
  const control = await fs.readFile(path.join(target.dataDir, 'global', 'pg_control'))
  const where = `${point}:${pass} (PostgreSQL ${pair.major}, ${kind} source)`

  let killed: RunResult
  try {
    killed = await runWalrewind(pair, kind, { WALREWIND_FAULT: `${point}:${pass}` })
  } finally {
    await putConfBack(pair, conf)
  }
  const t1 = Date.now()
  if (killed.code === 0 && opts.allowUnreached) {
    // This run passed the point fewer times than the traced one (a running source's WAL varies):
    // a whole rewind, checked as one.
    await assertFinished(pair, `${where}: not reached, a whole rewind`)
    await verify(pair, kind)
    const t4 = Date.now()
    return {
      point,
      pass,
      unreached: true,
      millis: { restore: tRestored - t0, kill: t1 - tRestored, check: 0, rerun: 0, verify: t4 - t1, total: t4 - t0 },
    }
  }
  assert.equal(
    killed.code,
    SIGKILL_STATUS,
    describeRun(`${where}: walrewind was to be killed by SIGKILL (status ${SIGKILL_STATUS})`, killed),
  )

  let big: { written: number; total: number } | undefined
  if (point === 'chunk-copy') big = await mibWritten(path.join(target.dataDir, pair.bigFile), pair.bigBytes)

  const dataDir = target.dataDir
  // The journal is there from its point to its removal; the marker (the first write) comes before it.
  const index = FAULT_POINTS.indexOf(point)
  const journalThere = index >= FAULT_POINTS.indexOf('journal-written') && index < FAULT_POINTS.indexOf('journal-removed')
  assert.equal(
    await exists(path.join(dataDir, JOURNAL)),
    journalThere,
    `${where}: ${JOURNAL} ${journalThere ? 'is not' : 'is still'} in the killed target`,
  )
  if (point === 'marker-written') {
    // Only the marker was written: the target's own pg_control is still in place.
    assert.deepEqual(
      await fs.readFile(path.join(dataDir, 'global', 'pg_control')),
      control,
      `${where}: the target's pg_control changed before the journal was written`,
    )
    const autoConf = await fs.readFile(path.join(dataDir, 'postgresql.auto.conf'), 'utf8')
    assert.match(autoConf, new RegExp(`^${MARKER}`, 'm'), `${where}: the marker is the first write`)
  }
  if (point !== 'control-renamed') await assertStartRefused(pair, where)
  const t2 = Date.now()

  if (kind === 'server') {
    // The source goes on living between the crash and the rerun.
    await source.query("INSERT INTO live (note) SELECT 'source between kill and rerun ' || g FROM generate_series(1, 20) g")
  }
  let rerun: RunResult
  try {
    rerun = await runWalrewind(pair, kind)
  } finally {
    await putConfBack(pair, conf)
  }
  const t3 = Date.now()
  assert.equal(rerun.code, 0, describeRun(`${where}: the rerun of the same command`, rerun))
  if (point === 'control-renamed') {
    assert.doesNotMatch(rerun.stderr, /resuming/, `${where}: the rewind was finished, the rerun must not resume\n${rerun.stderr}`)
    assert.match(rerun.stderr, /no rewind required/, `${where}: the rerun of a finished rewind\n${rerun.stderr}`)
  } else if (point === 'marker-written') {
    // No journal yet: a new rewind, which first takes the leftover marker away.
    assert.match(
      rerun.stderr,
      /removing the walrewind_rewind_interrupted line/,
      `${where}: the rerun must clear the marker\n${rerun.stderr}`,
    )
  } else if (point === 'journal-removed') {
    // Nothing left to resume but the rename of the new pg_control, waiting beside its place.
    assert.match(
      rerun.stderr,
      /the interrupted rewind was complete but for putting its new control file in place/,
      `${where}: the rerun must finish the interrupted rewind\n${rerun.stderr}`,
    )
  } else {
    assert.match(rerun.stderr, /resuming/, `${where}: the rerun must resume the interrupted rewind\n${rerun.stderr}`)
  }
  await assertFinished(pair, `${where}: after the rerun`)
  await verify(pair, kind)
  const t4 = Date.now()
  return {
    point,
    pass,
    ...(big ? { bigMibWritten: big.written, bigMibTotal: big.total } : {}),
    millis: { restore: tRestored - t0, kill: t1 - tRestored, check: t2 - t1, rerun: t3 - t2, verify: t4 - t3, total: t4 - t0 },
  }
}

/**
 * pg_ctl start on the killed target must fail, leave the data directory byte for byte as it was,
 * and leave nothing running; the reason is the missing pg_control or the interrupted-rewind line.
 */
async function assertStartRefused(pair: InterruptPair, where: string): Promise<void> {
  const { kit, target } = pair
  const before = await snapshotDirectory(kit, target.dataDir)
  const logBefore = (await fs.stat(target.logFile).catch(() => null))?.size ?? 0
  const start = await target.pgCtl(['start', '-w', '-t', '30', '-l', target.logFile], 60_000)
  const running = await target.isRunning()
  if (start.code === 0 || running) {
    // It must not go on running (and writing) whatever the assertion says.
    await target.stop('immediate').catch(() => {})
  }
  const log = (await fs.readFile(target.logFile)).subarray(logBefore).toString('utf8')
  assert.ok(
    start.code !== 0 && !running,
    `${where}: PostgreSQL started the half-rewound target (pg_ctl exit ${start.code})\n${start.stdout}${start.stderr}\n--- log\n${log}`,
  )
  const after = await snapshotDirectory(kit, target.dataDir)
  assert.equal(after, before, `${where}: the failed start changed the target data directory\n--- log\n${log}`)
  const noControl = !(await exists(path.join(target.dataDir, 'global', 'pg_control')))
  assert.ok(
    noControl || log.includes(MARKER),
    `${where}: the target has a global/pg_control and the log does not name ${MARKER}\n--- log\n${log}`,
  )
}

/** How many whole MiB of a file that is being copied are there already (not a hole, not past its end). */
async function mibWritten(file: string, total: number): Promise<{ written: number; total: number }> {
  const MIB = 1048576
  const chunks = Math.ceil(total / MIB)
  let data: Buffer
  try {
    data = await fs.readFile(file)
  } catch {
    return { written: 0, total: chunks }
  }
  let written = 0
  for (let i = 0; i < chunks; i++) {
    const part = data.subarray(i * MIB, Math.min((i + 1) * MIB, total))
    if (part.length > 0 && part.some((byte) => byte !== 0)) written++
  }
  return { written, total: chunks }
}

/** The nodes back to stopped after a failed run, so the next one can restore the target. */
export async function recover(pair: InterruptPair): Promise<void> {
  await pair.target.stop('immediate').catch(() => {})
  await pair.source.stop('fast').catch(() => {})
}

/** "point:pass" for a trace position: the point passed there and how many times it had been passed. */
export function passAt(trace: readonly FaultPoint[], index: number): { point: FaultPoint; pass: number } {
  const point = trace[index]!
  let pass = 0
  for (let i = 0; i <= index; i++) if (trace[i] === point) pass++
  return { point, pass }
}

/**
 * A journal the target outlived: walrewind killed right after writing its journal (before it took
 * pg_control away); someone removes the marker line by hand and runs the old primary, which
 * writes. The same command then drops the stale journal ("ignoring walrewind.resume"), rewinds
 * afresh, and the node follows the source with its data.
 */
export async function staleJournal(pair: InterruptPair, kind: SourceKind): Promise<void> {
  const { target } = pair
  const where = `stale journal (PostgreSQL ${pair.major}, ${kind} source)`
  await settle(pair, kind)
  const conf = await restoreTarget(pair)
  let killed: RunResult
  try {
    killed = await runWalrewind(pair, kind, { WALREWIND_FAULT: 'journal-written:1' })
  } finally {
    await putConfBack(pair, conf)
  }
  assert.equal(killed.code, SIGKILL_STATUS, describeRun(`${where}: walrewind was to be killed at journal-written`, killed))
  const autoConfFile = path.join(target.dataDir, 'postgresql.auto.conf')
  const autoConf = await fs.readFile(autoConfFile, 'utf8')
  await pair.kit.run('sh', [
    '-c',
    `grep -v '^${MARKER}' "${autoConfFile}" > "${autoConfFile}.new"; mv "${autoConfFile}.new" "${autoConfFile}"`,
  ])
  assert.notEqual(await fs.readFile(autoConfFile, 'utf8'), autoConf, `${where}: the marker line was not there to remove`)
  await target.start()
  await target.query('CREATE TABLE outlived (a int); INSERT INTO outlived VALUES (1)')
  await target.stop('fast')
  let rerun: RunResult
  try {
    rerun = await runWalrewind(pair, kind)
  } finally {
    await putConfBack(pair, conf)
  }
  assert.equal(rerun.code, 0, describeRun(`${where}: the rerun`, rerun))
  assert.match(rerun.stderr, /ignoring walrewind\.resume/, `${where}\n${rerun.stderr}`)
  await assertFinished(pair, `${where}: after the rerun`)
  await verify(pair, kind)
}
