// The journal of an interrupted rewind: what it keeps (and gives back exactly), the progress log
// with a torn last line, what a rerun decides from the target's pg_control, the grouping of the
// plan into units of progress, the free-space and permission checks, and the order in which
// finish writes (through the fault-injection trace, so a change of order fails here).

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { DBState, decodeControlFile } from '../../src/pg/control.js'
import { groupEntries } from '../../src/rewind/apply.js'
import { decodeJournal, encodeJournal, formatProgressLine, journalState, parseProgress, type Journal } from '../../src/rewind/journal.js'
import type { Plan, PlanEntry } from '../../src/rewind/plan.js'
import { checkFreeSpace, growthOf } from '../../src/rewind/preflight.js'
import type { ChunkSink, FileEntry, Source, SourceWalEnd } from '../../src/source/source.js'
import { FIXTURE_DIR } from '../fixtures/load.js'

const control15 = fs.readFileSync(path.join(FIXTURE_DIR, 'pg15', 'pg_control'))
const control18 = fs.readFileSync(path.join(FIXTURE_DIR, 'pg18', 'pg_control'))

function entry(p: string, action: PlanEntry['action'], bytes: number, sizes: { source?: number; target?: number } = {}): PlanEntry {
  return {
    path: p,
    isRelFile: p.startsWith('base/'),
    action,
    blocks: action === 'none' ? [[0, 1]] : [],
    bytes,
    source: sizes.source === undefined ? null : { type: 'file', size: sizes.source },
    target: sizes.target === undefined ? null : { type: 'file', size: sizes.target },
  }
}

function planOf(entries: PlanEntry[]): Plan {
  return {
    formatVersion: 1,
    source: '/source',
    target: '/target',
    divergence: { lsn: '0/3000100', tli: 1 },
    checkpoint: { lsn: '0/3000060', redo: '0/3000028', tli: 1 },
    entries,
    totals: {
      fetchBytes: entries.reduce((n, e) => n + e.bytes, 0),
      blockCount: 0,
      sourceBytes: 0,
      actions: { create: 0, copy: 0, 'copy-tail': 0, none: 0, truncate: 0, remove: 0 },
    },
    sourceWalMissing: [],
  }
}

function journalOf(plan: Plan): Journal {
  return {
    startedAt: '2026-12-02T04:00:00.000Z',
    targetControl: control15,
    sourceControl: control15,
    targetHistory: [
      { tli: 1, begin: 0n, end: 0x3000100n },
      { tli: 2, begin: 0x3000100n, end: null },
    ],
    divergence: { lsn: 0x3000100n, tli: 1 },
    checkpoint: { lsn: 0x100060n, redo: 0x100028n, tli: 1 },
    planWalEnd: 0x5000000n,
    plan,
  }
}

describe('journal', () => {
  test('encodes and decodes everything a resumed run needs, exactly', () => {
    const plan = planOf([
      entry('base/5/16384', 'copy', 8192, { source: 8192 }),
      entry('base/5/16385', 'none', 8192, { source: 16384, target: 16384 }),
    ])
    const journal = journalOf(plan)
    const back = decodeJournal(encodeJournal(journal))
    assert.deepEqual(back.plan, plan)
    assert.ok(back.targetControl.equals(control15))
    assert.ok(back.sourceControl.equals(control15))
    assert.deepEqual(back.targetHistory, journal.targetHistory)
    assert.deepEqual(back.divergence, journal.divergence)
    assert.deepEqual(back.checkpoint, journal.checkpoint)
    assert.equal(back.planWalEnd, journal.planWalEnd)
  })

  test('a journal that cannot be read back is refused with JOURNAL_INVALID, never guessed at', () => {
    const good = JSON.parse(encodeJournal(journalOf(planOf([])))) as Record<string, unknown>
    const bad = [
      'not json',
      '{"formatVersion":1}',
      JSON.stringify({ ...good, formatVersion: 3 }),
      JSON.stringify({ ...good, targetControl: Buffer.alloc(100).toString('base64') }),
      JSON.stringify({ ...good, plan: {} }),
      JSON.stringify({ ...good, divergence: { lsn: 'x/y', tli: 1 } }),
    ]
    for (const text of bad) {
      assert.throws(
        () => decodeJournal(text, '/t/walrewind.resume'),
        (err: unknown) => err instanceof RewindError && err.code === 'JOURNAL_INVALID' && err.message.includes('/t/walrewind.resume'),
        text.slice(0, 40),
      )
    }
  })

  test('progress: the entries of complete lines; a torn last line and foreign words do not count', () => {
    const text = 'control-removed\n' + formatProgressLine([0, 1, 2]) + formatProgressLine([5]) + 'done 7 8'
    const progress = parseProgress(text, 10)
    assert.deepEqual(
      [...progress.done].sort((a, b) => a - b),
      [0, 1, 2, 5],
    )
    assert.equal(progress.controlRemoved, true)
    assert.deepEqual([...parseProgress('done 3 99 -1 1.5 03\n', 10).done], [3])
    assert.equal(parseProgress('done 3\ncontrol-remov', 10).controlRemoved, false)
    assert.equal(parseProgress('', 10).done.size, 0)
  })

  test("a rerun resumes when pg_control is off its path or still the target's own, drops a journal the target outlived, refuses any other", () => {
    const journal = journalOf(planOf([]))
    const before = { done: new Set<number>(), controlRemoved: false }
    const after = { done: new Set<number>(), controlRemoved: true }
    assert.equal(journalState(journal, null, after), 'in-progress')
    assert.equal(journalState(journal, null, before), 'in-progress')
    assert.equal(journalState(journal, Buffer.from(control15), before), 'not-started')
    assert.equal(journalState(journal, Buffer.from(control15), after), 'not-started')
    // Started after the journal, before pg_control was taken away: nothing of the rewind was written.
    assert.equal(journalState(journal, control18, before), 'stale')
    // A pg_control put back after the rewind began writing.
    assert.equal(journalState(journal, control18, after), 'conflict')
  })

  test('groups follow the plan order, leave out entries done, and end at a size or a count', () => {
    const big = 200 * 1024 * 1024
    const plan = planOf([entry('a', 'copy', big), entry('b', 'copy', big), entry('c', 'copy', 10), entry('d', 'remove', 0)])
    assert.deepEqual(groupEntries(plan, new Set()), [
      [0, 1],
      [2, 3],
    ])
    assert.deepEqual(groupEntries(plan, new Set([1])), [[0, 2, 3]])
    assert.deepEqual(groupEntries(plan, new Set([0, 1, 2, 3])), [])
    // A test's small groups (WALREWIND_FAULT_GROUP_ENTRIES).
    assert.deepEqual(groupEntries(plan, new Set(), 1), [[0], [1], [2], [3]])
    const many = planOf(Array.from({ length: 5000 }, (_, i) => entry(`f${i}`, 'remove', 0)))
    assert.deepEqual(
      groupEntries(many, new Set()).map((g) => g.length),
      [4096, 904],
    )
  })
})

describe('preflight', () => {
  test('growth: a copy grows by what the source has more, a copy-tail by its tail, the rest not at all', () => {
    assert.equal(growthOf(entry('a', 'copy', 100, { source: 100 })), 100)
    assert.equal(growthOf(entry('a', 'copy', 100, { source: 100, target: 300 })), 0)
    assert.equal(growthOf(entry('a', 'copy-tail', 100, { source: 300, target: 200 })), 100)
    assert.equal(growthOf(entry('a', 'none', 8192, { source: 300, target: 300 })), 0)
    assert.equal(growthOf(entry('a', 'truncate', 0, { source: 100, target: 300 })), 0)
  })

  test('a plan that does not fit the file system is refused with TARGET_NO_SPACE', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-preflight-'))
    try {
      const stats = fs.statfsSync(dir)
      const free = Number(stats.bavail) * Number(stats.bsize)
      await checkFreeSpace(dir, planOf([entry('base/1/1', 'copy', 1024, { source: 1024 })]), null, 0)
      await assert.rejects(
        checkFreeSpace(dir, planOf([entry('base/1/1', 'copy', free, { source: free })]), null, 0),
        (err: unknown) => err instanceof RewindError && err.code === 'TARGET_NO_SPACE' && /not enough free space/.test(err.message),
      )
      // Entries done already do not count.
      await checkFreeSpace(dir, planOf([entry('base/1/1', 'copy', free, { source: free })]), new Set(), 0)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

/** A source with nothing to fetch: finish reads its pg_control and WAL end only. */
function quietSource(controlBytes: Buffer, end: SourceWalEnd): Source {
  return {
    kind: 'local',
    running: false,
    overNetwork: false,
    description: '/source',
    listFiles: async (): Promise<FileEntry[]> => [],
    listWalFiles: async (): Promise<FileEntry[]> => [],
    readFile: async () => controlBytes,
    readFileIfExists: async () => controlBytes,
    queueRange: () => {},
    queueFile: () => {},
    flush: async (_sink: ChunkSink) => {},
    walEnd: async () => end,
    recoveryConninfo: () => null,
    close: async () => {},
  }
}

describe('finish', () => {
  test('writes in the crash-safe order: label, marker off, sync, new pg_control beside, journal off, rename', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-finish-'))
    const trace = path.join(dir, '..', `${path.basename(dir)}.trace`)
    process.env['WALREWIND_FAULT_TRACE'] = trace
    try {
      // Imported only now: the fault points read the environment when they are loaded.
      const { finishRewind, NEW_CONTROL_FILE } = await import('../../src/rewind/finish.js')
      const { TargetDir } = await import('../../src/rewind/target-dir.js')
      const { addInterruptedMarker } = await import('../../src/rewind/interrupted-marker.js')
      fs.mkdirSync(path.join(dir, 'global'))
      fs.writeFileSync(path.join(dir, 'postgresql.auto.conf'), "work_mem = '8MB'\n")
      const journal = journalOf(planOf([]))
      fs.writeFileSync(path.join(dir, 'walrewind.resume'), encodeJournal(journal))
      fs.writeFileSync(path.join(dir, 'walrewind.progress'), formatProgressLine([]))
      const target = new TargetDir(dir, { dirMode: 0o700, fileMode: 0o600 })
      await addInterruptedMarker(target)
      assert.match(fs.readFileSync(path.join(dir, 'postgresql.auto.conf'), 'utf8'), /^walrewind_rewind_interrupted = /m)
      const end = { lsn: 0x5000028n, tli: 2 }
      await finishRewind({
        source: quietSource(control15, end),
        target,
        journal,
        segSize: 16 * 1024 * 1024,
        sync: true,
        syncMethod: 'fsync',
        primaryConninfo: null,
        sourceHistory: [{ tli: 1, begin: 0n, end: null }],
        emit: () => {},
      })

      const points = fs
        .readFileSync(trace, 'utf8')
        .trim()
        .split('\n')
        .filter((p, i, all) => p !== 'sync-file' || all[i - 1] !== 'sync-file')
      assert.deepEqual(points, [
        'backup-label-written',
        'marker-removed',
        'sync-file',
        'control-tmp-written',
        'journal-removed',
        'control-renamed',
      ])
      const written = decodeControlFile(fs.readFileSync(path.join(dir, 'global/pg_control')))
      assert.equal(written.state, DBState.IN_ARCHIVE_RECOVERY)
      assert.equal(written.minRecoveryPoint, end.lsn)
      assert.equal(written.minRecoveryPointTLI, end.tli)
      assert.equal(fs.existsSync(path.join(dir, NEW_CONTROL_FILE)), false)
      assert.equal(fs.existsSync(path.join(dir, 'walrewind.resume')), false)
      assert.equal(fs.existsSync(path.join(dir, 'walrewind.progress')), false)
      assert.match(fs.readFileSync(path.join(dir, 'backup_label'), 'utf8'), /^START WAL LOCATION: 0\/100028 /)
      assert.equal(fs.readFileSync(path.join(dir, 'postgresql.auto.conf'), 'utf8'), "work_mem = '8MB'\n")
    } finally {
      delete process.env['WALREWIND_FAULT_TRACE']
      fs.rmSync(dir, { recursive: true, force: true })
      fs.rmSync(trace, { force: true })
    }
  })

  test('a local source whose pg_control changed since the copy began is refused', async () => {
    const { finishRewind } = await import('../../src/rewind/finish.js')
    const { TargetDir } = await import('../../src/rewind/target-dir.js')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-finish-'))
    try {
      const target = new TargetDir(dir, { dirMode: 0o700, fileMode: 0o600 })
      await assert.rejects(
        finishRewind({
          source: quietSource(control18, { lsn: 1n, tli: 1 }),
          target,
          journal: journalOf(planOf([])),
          segSize: 16 * 1024 * 1024,
          sync: false,
          syncMethod: 'fsync',
          primaryConninfo: null,
          sourceHistory: [{ tli: 1, begin: 0n, end: null }],
          emit: () => {},
        }),
        (err: unknown) => err instanceof RewindError && err.code === 'SOURCE_CHANGED',
      )
      assert.deepEqual(fs.readdirSync(dir), [])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
