// WAL segments from a pg_wal directory: file choice by timeline (pg_rewind's SimpleXLogPageRead
// rule on the fixtures' real history), the restore hook, the opened-file report, and the reader on
// top of it.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { segmentFileName, segmentStart } from '../../src/pg/lsn.js'
import { parseTimelineHistory } from '../../src/pg/timeline.js'
import { WalReader } from '../../src/pg/wal/reader.js'
import { timelineChooser, WalDirectory } from '../../src/rewind/wal-source.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

const f = loadFixture(fixtureMajors().at(-1)!)
const segSize = f.json.segSize
let dir: string
let archive: string

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wr-walsource-'))
  archive = fs.mkdtempSync(path.join(os.tmpdir(), 'wr-archive-'))
  for (const [segno, bytes] of f.segments) fs.writeFileSync(path.join(dir, segmentFileName(3, segno, segSize)), bytes)
})
after(() => {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.rmSync(archive, { recursive: true, force: true })
})

describe('WalDirectory', () => {
  it('reads the file of the chosen timeline, reports each file opened, and feeds the reader', async () => {
    const opened: string[] = []
    const src = new WalDirectory({ dir, segSize, timelineOf: () => 3, onSegmentOpened: (n) => opened.push(n) })
    const first = BigInt(f.json.wal.firstSegno)
    assert.equal(src.segmentName(first), segmentFileName(3, first, segSize))
    assert.ok((await src.read(first, 8192, 100)).equals(f.segments.get(first)!.subarray(8192, 8292)))
    const buf = Buffer.alloc(200)
    assert.equal(await src.readInto(first, segSize - 100, buf, 200), 100)
    assert.ok(buf.subarray(0, 100).equals(f.segments.get(first)!.subarray(segSize - 100)))
    const reader = new WalReader({ profile: f.profile, segSize, systemIdentifier: BigInt(f.json.systemIdentifier), source: src })
    const start = await reader.findNextRecord(segmentStart(first, segSize))
    let n = 0
    const end = await reader.forEachRecord(start!, () => {
      n++
    })
    assert.equal(end?.reason, 'zero-length')
    assert.ok(n > 500)
    await src.close()
    assert.deepEqual(
      opened,
      f.json.wal.segments.map((s) => s.replace('.gz', '')),
    )
  })

  it('names a missing file in WAL_MISSING, after asking the restore hook', async () => {
    const asked: [string, string][] = []
    const src = new WalDirectory({
      dir,
      segSize,
      timelineOf: () => 1,
      restore: async (name, dest) => {
        asked.push([name, dest])
        return false
      },
    })
    const name = segmentFileName(1, 9n, segSize)
    await assert.rejects(
      src.read(9n, 0, 8192),
      (err: unknown) =>
        err instanceof RewindError &&
        err.code === 'WAL_MISSING' &&
        err.message === `could not open file "${path.join(dir, name)}": No such file or directory` &&
        err.info.segment === name,
    )
    assert.deepEqual(asked, [[name, path.join(dir, name)]])
    await src.close()
  })

  it('uses what the restore hook fetched, and refuses a file of the wrong size', async () => {
    const first = BigInt(f.json.wal.firstSegno)
    const name = segmentFileName(7, first, segSize)
    fs.writeFileSync(path.join(archive, name), f.segments.get(first)!)
    const restore = async (n: string, dest: string) => {
      if (!fs.existsSync(path.join(archive, n))) return false
      fs.copyFileSync(path.join(archive, n), dest)
      return true
    }
    const src = new WalDirectory({ dir, segSize, timelineOf: () => 7, restore })
    assert.ok((await src.read(first, 0, 40)).equals(f.segments.get(first)!.subarray(0, 40)))
    assert.ok(fs.existsSync(path.join(dir, name)))
    await src.close()
    const shortName = segmentFileName(7, first + 1n, segSize)
    fs.writeFileSync(path.join(archive, shortName), Buffer.alloc(1000))
    const src2 = new WalDirectory({ dir, segSize, timelineOf: () => 7, restore })
    await assert.rejects(
      src2.read(first + 1n, 0, 40),
      (err: unknown) =>
        err instanceof RewindError &&
        err.code === 'RESTORE_COMMAND' &&
        err.message === `unexpected file size for "${path.join(dir, shortName)}": 1000 instead of ${segSize}`,
    )
    await src2.close()
  })
})

describe('timelineChooser', () => {
  it('reads a segment from the timeline whose history entry covers its end', () => {
    const history = parseTimelineHistory(f.text('00000003.history'), 3)
    const [s1, s2] = [history[0]!.end!, history[1]!.end!]
    const seg = (lsn: bigint) => lsn / BigInt(segSize)
    const choose = timelineChooser(history, segSize)
    assert.equal(choose(seg(s1) - 1n), 1)
    assert.equal(choose(seg(s1)), 2) // holds the switch: the child's copy has both
    assert.equal(choose(seg(s2) - 1n), 2)
    assert.equal(choose(seg(s2)), 3)
    assert.equal(choose(seg(s2) + 5n), 3)
    // Walking back, as the search for the last checkpoint does.
    assert.equal(choose(seg(s1) - 1n), 1)
    const fromEnd = timelineChooser(history, segSize, history.length - 1)
    assert.equal(fromEnd(seg(s2)), 3)
    assert.equal(fromEnd(0n), 1)
    assert.equal(timelineChooser([{ tli: 1, begin: 0n, end: null }], segSize)(123n), 1)
  })
})
