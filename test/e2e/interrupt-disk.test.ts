// A rewind whose target lives on a file system too small for it, or that fills up during the
// copy: the target data directory is a size-limited tmpfs mounted by the test (which therefore
// runs as root, as CI does; not as root it fails, never skips). A plan that does not fit is refused
// before any write (TARGET_NO_SPACE, exit 3, target untouched); so is a target file or directory
// walrewind could not write (TARGET_NOT_WRITABLE). A disk that fills up in the middle of the copy
// fails the run with the file and "No space left on device" (exit 7); once space is freed, the
// same command resumes, and the target follows the source as a standby with the same data.
// Local source (a stopped data directory), on the newest major under test.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it, type TestContext } from 'node:test'
import { Kit, majorsUnderTest, type Node, type RunResult } from '../kit/index.js'
import { assertRewindOk, column, snapshotDirectory, startAsStandbyAndCompare } from './rewind-harness.js'
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
  testSeed,
  traceOrder,
  type PausedRun,
} from './pause-harness.js'

const major = majorsUnderTest().at(-1)!
/** Rows of the table the source creates after the fork: about 60 MB the plan must copy. */
const BIG_ROWS = 210_000
const MB = 1024 * 1024

interface PlanEntry {
  path: string
  isRelFile: boolean
  action: string
  source: { size: number } | null
  target: { size: number } | null
  blocks: Array<[number, number]>
}
interface Plan {
  entries: PlanEntry[]
  totals: { fetchBytes: number }
}

/** Runs a program as root (the test process), throwing with its output if it fails. */
function asRoot(cmd: string, args: string[]): string {
  const result = spawnSync(cmd, args, { encoding: 'utf8' })
  if (result.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.status}): ${result.stderr}${result.error?.message ?? ''}`)
  return result.stdout
}

function isMountPoint(dir: string): boolean {
  return spawnSync('mountpoint', ['-q', dir]).status === 0
}

/** Bytes used and available on the file system of `dir`. */
function usage(dir: string): { used: number; free: number } {
  const s = fs.statfsSync(dir)
  return { used: (s.blocks - s.bfree) * s.bsize, free: s.bavail * s.bsize }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

describe(`a rewind on a target file system that is too small or fills up (PostgreSQL ${major})`, () => {
  let kit: Kit
  let target: Node
  let source: Node
  let pristine: string
  let args: string[]
  let plan: Plan
  let faultDir: string
  const seed = testSeed()
  const random = seededRandom(seed)

  /**
   * A fresh tmpfs at the target's data directory holding the diverged target, with `free` bytes
   * left after it: mounted big, filled with the saved target, then shrunk to used + free.
   */
  function provision(free: number): void {
    unmountTarget()
    fs.mkdirSync(target.dataDir, { recursive: true })
    asRoot('mount', ['-t', 'tmpfs', '-o', 'size=2048m,mode=0755', 'tmpfs', target.dataDir])
    asRoot('cp', ['-a', `${pristine}/.`, `${target.dataDir}/`])
    fs.chmodSync(target.dataDir, 0o700)
    if (kit.osUser) fs.chownSync(target.dataDir, kit.osUser.uid, kit.osUser.gid)
    resizeTarget(usage(target.dataDir).used + free)
  }

  function resizeTarget(bytes: number): void {
    asRoot('mount', ['-o', `remount,size=${Math.ceil(bytes / 4096) * 4}k`, target.dataDir])
  }

  function unmountTarget(): void {
    if (!target || !isMountPoint(target.dataDir)) return
    const result = spawnSync('umount', [target.dataDir], { encoding: 'utf8' })
    // Never leave a mount behind: lazily if something still holds it.
    if (result.status !== 0) asRoot('umount', ['-l', target.dataDir])
  }

  /** Runs walrewind keeping the target's own postgresql.conf, as the harness's runRewind does. */
  async function withTargetConf<T extends RunResult>(run: () => Promise<T>): Promise<T> {
    const conf = path.join(target.dataDir, 'postgresql.conf')
    const saved = fs.readFileSync(conf)
    try {
      return await run()
    } finally {
      fs.writeFileSync(conf, saved)
    }
  }

  /** A refusal before any write: exit 3, the error code, and not one byte or mode of the target changed. */
  async function assertRefused(t: TestContext, code: string, message: RegExp, context: string): Promise<RunResult> {
    const before = await snapshotDirectory(kit, target.dataDir)
    const started = Date.now()
    const run = await kit.runWalrewind(args)
    t.diagnostic(`${context}: exit ${run.code} after ${Date.now() - started} ms`)
    t.diagnostic(
      run.stderr
        .split('\n')
        .filter((l) => /error:|detail:|hint:/.test(l))
        .join('\n'),
    )
    const where = `${context}\n--- stderr\n${run.stderr}\n--- stdout\n${run.stdout}`
    assert.equal(run.code, 3, `walrewind must refuse with exit 3: ${where}`)
    assert.match(run.stderr, message, where)
    assert.match(run.stderr, /target data directory was not modified/, where)
    const error = jsonOf(run)['error'] as Record<string, unknown> | undefined
    assert.equal(error?.['code'], code, where)
    assert.equal(error?.['targetModified'], false, where)
    assert.equal(await snapshotDirectory(kit, target.dataDir), before, `${context}: the refused run changed the target`)
    return run
  }

  before(async () => {
    if (process.getuid?.() !== 0) {
      throw new Error(
        'interrupt-disk must run as root: it mounts a size-limited tmpfs as the target data directory ' +
          '(run the suite as root, as CI does)',
      )
    }
    kit = await Kit.create(`interrupt-disk-${major}`)
    const pair = await bigTablePair(kit, major, BIG_ROWS)
    target = pair.primary
    source = pair.standby
    const bigBytes = Number(await source.queryValue("SELECT pg_relation_size('big')"))
    assert.ok(bigBytes > 55 * MB, `the big table has only ${bigBytes} bytes`)
    await target.stop('fast')
    await source.stop('fast')
    faultDir = await kit.makeDir('faults')
    // One reader: a pause in the copy holds the whole copy, so the disk fills up in its middle.
    args = [
      '--debug',
      '--json',
      `--target-pgdata=${target.dataDir}`,
      `--source-pgdata=${source.dataDir}`,
      '--no-sync',
      `--postgres-bindir=${target.binDir}`,
      '--jobs=1',
    ]
    const dry = await kit.runWalrewind([...args, '--dry-run'])
    assert.equal(dry.code, 0, `dry run failed:\n${dry.stderr}`)
    plan = jsonOf(dry)['plan'] as Plan
    assert.ok(plan.totals.fetchBytes > bigBytes, `the plan fetches only ${plan.totals.fetchBytes} bytes`)
    // The diverged target, kept aside; each case gets a fresh tmpfs with a copy of it.
    pristine = `${target.dataDir}.pristine`
    fs.renameSync(target.dataDir, pristine)
  })

  after(async () => {
    if (!kit) return
    try {
      for (const node of kit.allNodes()) await node.stop('immediate')
    } finally {
      try {
        unmountTarget()
      } finally {
        await kit.cleanup()
      }
    }
  })

  it('a plan that does not fit on the target file system is refused before any write', async (t) => {
    provision(Math.max(4 * MB, Math.floor(plan.totals.fetchBytes / 4)))
    t.diagnostic(`plan fetches ${plan.totals.fetchBytes} bytes; ${usage(target.dataDir).free} bytes free on the tmpfs`)
    await assertRefused(
      t,
      'TARGET_NO_SPACE',
      new RegExp(`not enough free space on the file system of "${escapeRegExp(target.dataDir)}`),
      'tmpfs too small',
    )
  })

  it('a relation file the plan writes that is read-only is refused before any write', async (t) => {
    provision(2 * plan.totals.fetchBytes + 64 * MB)
    const entry = plan.entries.find(
      (e) => e.isRelFile && e.target !== null && e.source !== null && e.blocks.length > 0 && e.path.startsWith('base/'),
    )
    assert.ok(entry, 'the plan changes no block of a relation file in base/')
    fs.chmodSync(path.join(target.dataDir, entry.path), 0o400)
    await assertRefused(
      t,
      'TARGET_NOT_WRITABLE',
      new RegExp(`cannot write "${escapeRegExp(path.join(target.dataDir, entry.path))}"`),
      `read-only ${entry.path}`,
    )
  })

  it('a directory the plan creates a file in that is read-only is refused before any write', async (t) => {
    provision(2 * plan.totals.fetchBytes + 64 * MB)
    const entry = plan.entries.find((e) => e.isRelFile && e.action === 'copy' && e.target === null && e.path.startsWith('base/'))
    assert.ok(entry, 'the plan creates no relation file in base/')
    const dir = path.posix.dirname(entry.path)
    fs.chmodSync(path.join(target.dataDir, dir), 0o500)
    await assertRefused(
      t,
      'TARGET_NOT_WRITABLE',
      new RegExp(`cannot write "${escapeRegExp(path.join(target.dataDir, dir))}"`),
      `read-only directory ${dir}`,
    )
  })

  /** The plan a dry run makes now (the source may have run since the first one). */
  async function currentPlan(): Promise<Plan> {
    const dry = await kit.runWalrewind([...args, '--dry-run'])
    assert.equal(dry.code, 0, `dry run failed:\n${dry.stderr}`)
    return jsonOf(dry)['plan'] as Plan
  }

  /**
   * On a tmpfs with `free` bytes: a clean run tells how many whole-file copies there are (one
   * reader: in plan order), `pick` chooses after which one to pause; there the tmpfs is filled up
   * (dd), then walrewind goes on: exit 7 naming a file and "No space left on device". With the
   * filler gone, the same command resumes and completes, and the target follows the source.
   */
  async function fillUpMidCopy(t: TestContext, free: number, pick: (copies: number, copyPaths: string[]) => number): Promise<void> {
    provision(free)
    const copyPaths = (await currentPlan()).entries.filter((e) => e.action === 'copy').map((e) => e.path)
    const trace = path.join(faultDir, 'trace')
    fs.rmSync(trace, { force: true })
    const clean = await withTargetConf(() => kit.runWalrewind(args, { env: { WALREWIND_FAULT_TRACE: trace } }))
    assertRewindOk({ ...clean, args })
    const passes = readTrace(trace)
    t.diagnostic(`in order: ${traceOrder(trace)}`)
    const copies = passes.get('file-copied') ?? 0
    assert.equal(copies, copyPaths.length, `one whole-file copy for each copy of the plan: ${JSON.stringify(Object.fromEntries(passes))}`)
    const nth = pick(copies, copyPaths)
    const context = `disk filled after file-copied:${nth} of ${copies} (${copyPaths[nth - 1]}), ${Math.round(free / MB)} MB free (seed ${seed})`

    provision(free)
    const filler = path.join(target.dataDir, 'zz_filler')
    // The target's own postgresql.conf goes back once the filler is gone (as runRewind does, after the run).
    const conf = path.join(target.dataDir, 'postgresql.conf')
    const savedConf = fs.readFileSync(conf)
    let run: PausedRun
    try {
      run = await runPaused(kit, args, 'file-copied', nth, faultDir, async () => {
        const dd = spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M'], { encoding: 'utf8' })
        assert.match(dd.stderr, /No space left on device/, `${context}: dd must fill the tmpfs: ${dd.stderr}`)
        assert.ok(usage(target.dataDir).free < 4096, `${context}: ${usage(target.dataDir).free} bytes still free`)
      })
    } finally {
      fs.rmSync(filler, { force: true })
      fs.writeFileSync(conf, savedConf)
    }
    t.diagnostic(`${context}: exit ${run.code} ${run.millisAfterResume} ms after the pause ended`)
    const error = assertInterrupted(run, new RegExp(`error: .*"${escapeRegExp(target.dataDir)}/[^"]+".*No space left on device`), context)
    t.diagnostic(`${context}: ${String(error['code'])}: ${String(error['message'])}`)
    assert.equal(error['code'], 'FILE_IO', `${context}: ${JSON.stringify(error)}`)
    const problems = assertHalfRewound(target.dataDir, context)
    await assertCannotStart(target, context)

    const started = Date.now()
    t.diagnostic(`${context}: ${usage(target.dataDir).free} bytes free for the rerun`)
    const again = await withTargetConf(() => kit.runWalrewind(args))
    t.diagnostic(`${context}: rerun took ${Date.now() - started} ms`)
    assertRewindOk({ ...again, args })
    assert.match(again.stderr, /resuming/, `${context}: the rerun must resume the interrupted rewind:\n${again.stderr}`)
    assertFinished(target.dataDir, context)
    // Room for the WAL the standby receives.
    resizeTarget(usage(target.dataDir).used + 512 * MB)
    await startAsStandbyAndCompare(target, source, 'local')
    assert.deepEqual(await column(target, "SELECT count(*) FROM shared WHERE d = 'in the old primary'"), ['0'])
    assert.deepEqual(await column(target, 'SELECT count(*) FROM big'), [String(BIG_ROWS)])
    assert.deepEqual(problems, [])
    // A stopped source for the next case (a fresh target is rewound against it as it is now).
    await target.stop('fast')
    await source.stop('fast')
  }

  it('the file system fills up in the middle of the copy: exit 7 naming the file, then the rerun resumes', async (t) => {
    // Room for the plan twice over, and the pause somewhere in the middle third of the copies.
    await fillUpMidCopy(t, 2 * plan.totals.fetchBytes + 64 * MB, (copies) => {
      const lo = Math.max(1, Math.floor(copies / 3))
      const hi = Math.max(lo, Math.floor((2 * copies) / 3))
      return lo + Math.floor(random() * (hi - lo + 1))
    })
  })

  it('a file system with just the room the plan needs fills up after the big copy: once freed, the rerun fits and resumes', async (t) => {
    // The room walrewind's own check asks for, as its refusal says.
    provision(4 * MB)
    const refused = await kit.runWalrewind(args)
    const needed = /not enough free space .*: (\d+) MB needed/.exec(refused.stderr)
    assert.ok(refused.code === 3 && needed, `a tmpfs with 4 MB free must be refused, saying how much it needs:\n${refused.stderr}`)
    const free = (Number(needed[1]) + 4) * MB
    t.diagnostic(`walrewind asks for ${needed[1]} MB; the tmpfs gets ${Math.round(free / MB)} MB free`)
    // Pause once the biggest file (the big table) is copied: its room is taken when the disk fills
    // up, and the rerun copies it again over itself, so it needs no more room than the first run.
    await fillUpMidCopy(t, free, (copies, copyPaths) => {
      const sizes = new Map(plan.entries.map((e) => [e.path, e.source?.size ?? 0]))
      const biggest = copyPaths.reduce((best, p, i) => ((sizes.get(p) ?? 0) > (sizes.get(copyPaths[best]!) ?? 0) ? i : best), 0) + 1
      assert.ok(biggest < copies, `the biggest copy (${copyPaths[biggest - 1]}) is the last one: nothing left to copy after it`)
      const hi = Math.max(biggest + 1, Math.floor((biggest + copies) / 2))
      return biggest + 1 + Math.floor(random() * (hi - biggest))
    })
  })
})
