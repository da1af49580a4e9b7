// A rewind killed anywhere on its write path (SIGKILL, as a crash or an OOM kill would) leaves a
// target PostgreSQL refuses to start, without changing it, and that the same walrewind command
// finishes when run again. With a stopped data directory (--source-pgdata) on the first major under
// test and a running server (--source-server, -R) on the last (both kinds on one major when only
// one is tested): one clean run with
// a fault trace lists the points the rewind passes and how often, then at least 20 kill points per
// source kind cover every one of them (and a middle pass of the multi-pass ones, for chunk-copy
// one inside the 34 MB file the source made after the fork), each from the same saved target.
// A point costs several seconds (restore, kill, start refused, rerun, start as a standby and compare;
// more with a server source), so the majors run side by side. If it must be faster, make the
// tables smaller (PairOptions), not the kill points fewer.
//
// The random version, for long runs: test/soak/interrupt-soak.ts.

import assert from 'node:assert/strict'
import { after, before, describe, test, type TestContext } from 'node:test'
import { Kit, majorsUnderTest, type Major } from '../kit/index.js'
import {
  buildInterruptPair,
  expectedPoints,
  FAULT_POINTS,
  killAndResume,
  staleJournal,
  traceRun,
  type FaultPoint,
  type InterruptPair,
  type KillResult,
  type SourceKind,
} from './interrupt-harness.js'

const MIN_POINTS = 20
/** Points whose pass count depends on how much the running source wrote meanwhile: only the first pass is sure to come again. */
const VARIABLE_POINTS = new Set<FaultPoint>(['wal-catchup'])
/** Kill runs spent at most on finding a chunk-copy pass inside the source-only table. */
const CHUNK_PROBES = 5

/**
 * A stopped source on 13 and a running one on 18 where both are tested (else on the smallest and
 * the largest major under test; both kinds on it when there is one). Each kind on both majors
 * doubled the suite's longest file (830 s of a 37-minute run on 2 cores) for little: the write
 * path and its points are the same code on every major, and the control file of each major is
 * rewritten and checked by every other end-to-end test.
 */
function chosenLanes(): Array<{ major: Major; kinds: SourceKind[] }> {
  const all = majorsUnderTest()
  const wanted = all.filter((major) => major === 13 || major === 18)
  const ends = wanted.length > 0 ? wanted : [...new Set([all[0]!, all[all.length - 1]!])]
  if (ends.length === 1) return [{ major: ends[0]!, kinds: ['local', 'server'] }]
  return [
    { major: ends[0]!, kinds: ['local'] },
    { major: ends[1]!, kinds: ['server'] },
  ]
}

/**
 * Pass 1 of every point, and a middle pass of each multi-pass one (the last of two); then quarter
 * passes of the points passed most often until there are `minimum` (counting `extra` runs done
 * elsewhere). chunk-copy gets only pass 1 here: its middle is searched for inside the big file.
 */
function choosePasses(counts: ReadonlyMap<FaultPoint, number>, minimum: number, extra = 0): Array<[FaultPoint, number]> {
  const picks: Array<[FaultPoint, number]> = []
  const has = (point: FaultPoint, pass: number) => picks.some(([p, n]) => p === point && n === pass)
  for (const point of FAULT_POINTS) {
    const n = counts.get(point) ?? 0
    if (n === 0) continue
    picks.push([point, 1])
    if (n < 2 || VARIABLE_POINTS.has(point) || point === 'chunk-copy') continue
    picks.push([point, n === 2 ? 2 : Math.ceil(n / 2)])
  }
  const many = [...counts].filter(([point, n]) => n >= 4 && !VARIABLE_POINTS.has(point)).sort((a, b) => b[1] - a[1])
  for (const fraction of [0.25, 0.75, 0.125, 0.875]) {
    for (const [point, n] of many) {
      if (picks.length + extra >= minimum) break
      const pass = Math.max(1, Math.floor(n * fraction))
      if (!has(point, pass)) picks.push([point, pass])
    }
  }
  const order = (point: FaultPoint) => FAULT_POINTS.indexOf(point)
  return picks.sort((a, b) => order(a[0]) - order(b[0]) || a[1] - b[1])
}

function line(r: KillResult): string {
  const big = r.bigMibWritten === undefined ? '' : `, big_new ${r.bigMibWritten}/${r.bigMibTotal} MiB in the target`
  const ms = r.millis
  return (
    `${r.point}:${r.pass} ok in ${(ms.total / 1000).toFixed(1)} s (restore ${ms.restore} ms, kill ${ms.kill} ms, start refused ${ms.check} ms, ` +
    `rerun ${ms.rerun} ms, verify ${ms.verify} ms${big})`
  )
}

async function killEverywhere(t: TestContext, pair: InterruptPair, kind: SourceKind): Promise<void> {
  const started = Date.now()
  const traced = await traceRun(pair, kind)
  const counts = [...traced.counts].map(([point, n]) => `${point} ${n}`).join(', ')
  t.diagnostic(`clean run in ${traced.millis} ms passed: ${counts}`)
  const missing = expectedPoints(kind).filter((point) => !traced.counts.has(point))
  assert.deepEqual(missing, [], `points a ${kind}-source rewind of this scenario must pass, not in the trace (${counts})`)
  if (kind === 'local') {
    assert.equal(traced.counts.has('chunk-copy'), false, 'a local source copies whole files from file to file, not in chunks')
    assert.equal(traced.counts.has('standby-settings-written'), false, 'no -R, no standby settings')
  } else {
    assert.equal(traced.counts.has('file-copied'), false, 'a server source sends chunks, it copies no file from file to file')
  }

  const chunkPasses = traced.counts.get('chunk-copy') ?? 0
  const picks = choosePasses(traced.counts, MIN_POINTS, chunkPasses > 0 ? 1 : 0)
  t.diagnostic(`kill points: ${picks.map(([p, n]) => `${p}:${n}`).join(' ')}`)
  let runs = 0
  for (const [point, pass] of picks) {
    t.diagnostic(line(await killAndResume(pair, kind, point, pass)))
    runs++
  }

  if (chunkPasses > 0) {
    // A pass that lands inside the source-only table, by bisection over the passes: the table is
    // one of several files copied in chunks, and where it comes among them is up to the planner
    // and the order the connections' batches arrive in. It has come after the 270-odd small files
    // (free space and visibility maps) and among the WAL segments, about three quarters in.
    let lo = 1
    let hi = chunkPasses
    let pass = Math.round(chunkPasses * 0.75)
    const seen: string[] = []
    let inside: KillResult | null = null
    for (let probe = 0; probe < CHUNK_PROBES && inside === null; probe++) {
      const result = await killAndResume(pair, kind, 'chunk-copy', pass)
      runs++
      t.diagnostic(line(result))
      const written = result.bigMibWritten ?? 0
      const total = result.bigMibTotal ?? 0
      seen.push(`pass ${pass}: ${written}/${total} MiB`)
      if (written > 0 && written < total) inside = result
      else if (written === 0) lo = pass
      else hi = pass
      const next = Math.floor((lo + hi) / 2)
      if (next === pass) break
      pass = next
    }
    assert.ok(
      inside !== null,
      `no chunk-copy pass found that kills walrewind inside the source-only table ` + `(${chunkPasses} passes; ${seen.join(', ')})`,
    )
  }
  assert.ok(runs >= MIN_POINTS, `only ${runs} kill points`)
  t.diagnostic(`${kind} source: ${runs} kill points, ${((Date.now() - started) / 1000).toFixed(0)} s`)
}

// The majors side by side: each has its own clusters, and a kill point spends most of its time
// waiting (server starts, fsync, polling), not computing.
const lanes = chosenLanes()
describe('walrewind killed on its write path, then run again', { concurrency: lanes.length }, () => {
  for (const { major, kinds } of lanes) {
    // One source kind after the other: they share the pair (and node:test would pass the
    // parent's concurrency on).
    describe(`PostgreSQL ${major}`, { concurrency: 1 }, () => {
      let kit: Kit | undefined
      let pair: InterruptPair | undefined
      before(async () => {
        kit = await Kit.create(`interrupt-kill-${major}`)
        pair = await buildInterruptPair(kit, major)
      })
      after(async () => {
        await kit?.cleanup()
      })
      for (const kind of kinds) {
        test(`${kind} source`, (t) => {
          assert.ok(pair, 'the pair was not built')
          return killEverywhere(t, pair, kind)
        })
      }
      test('a journal the target outlived is dropped, and the rewind starts afresh', () => {
        assert.ok(pair, 'the pair was not built')
        return staleJournal(pair, kinds[0]!)
      })
    })
  }
})
