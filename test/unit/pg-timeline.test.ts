// Timeline history files: the real ones of every major (blank line between entries included),
// the server's parsing rules and pg_rewind's messages, and pg_rewind's common-ancestor rule.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { parseLsn } from '../../src/pg/lsn.js'
import { findCommonAncestor, parseTimelineHistory, timelineForLsn, timelineOneHistory, type TimelineEntry } from '../../src/pg/timeline.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

const history = (text: string, tli: number): TimelineEntry[] => parseTimelineHistory(text, tli)
const invalid = (message: string, detail: string) => (err: unknown) =>
  err instanceof RewindError && err.code === 'TIMELINE_HISTORY_INVALID' && err.message === message && err.info.detail === detail

describe('parseTimelineHistory', () => {
  for (const major of fixtureMajors()) {
    it(`reads PostgreSQL ${major}'s files`, () => {
      const f = loadFixture(major)
      const two = history(f.text('00000002.history'), 2)
      const three = history(f.text('00000003.history'), 3)
      assert.equal(two.length, 2)
      assert.equal(three.length, 3)
      assert.deepEqual(three.slice(0, 1), two.slice(0, 1))
      assert.deepEqual(
        three.map((e) => e.tli),
        [1, 2, 3],
      )
      assert.equal(three[0]!.begin, 0n)
      assert.equal(three[1]!.begin, three[0]!.end)
      assert.equal(three[2]!.begin, three[1]!.end)
      assert.equal(three[2]!.end, null)
      assert.equal(three[1]!.end, parseLsn(f.json.wal.anchors.switchpoint))
      // The file of timeline N is the parent's plus one line, after a blank line.
      assert.match(f.text('00000003.history'), /^1\t\S+\tno recovery target specified\n\n2\t\S+\tno recovery target specified\n$/)
    })
  }

  it('skips blank lines, leading blanks and comments, and ignores text after the LSN', () => {
    const text = '# made by hand\n\n   \n  1\t0/3000000\tbecause\n#2\t0/4000000\n2 0/5000000 trailing words\n'
    assert.deepEqual(history(text, 4), [
      { tli: 1, begin: 0n, end: 0x3000000n },
      { tli: 2, begin: 0x3000000n, end: 0x5000000n },
      { tli: 4, begin: 0x5000000n, end: null },
    ])
    assert.deepEqual(history('1\t0/03000000\tpadded as 19dev writes it\n', 2)[0], { tli: 1, begin: 0n, end: 0x3000000n })
    assert.deepEqual(history('', 5), [{ tli: 5, begin: 0n, end: null }])
  })

  it("refuses what the server refuses, with pg_rewind's messages", () => {
    assert.throws(() => history('x\t0/1\n', 2), invalid('syntax error in history file: x\t0/1', 'Expected a numeric timeline ID.'))
    assert.throws(() => history('1\n', 2), invalid('syntax error in history file: 1', 'Expected a write-ahead log switchpoint location.'))
    assert.throws(
      () => history('1\tzz\n', 2),
      invalid('syntax error in history file: 1\tzz', 'Expected a write-ahead log switchpoint location.'),
    )
    assert.throws(
      () => history('2\t0/1\n1\t0/2\n', 3),
      invalid('invalid data in history file: 1\t0/2', 'Timeline IDs must be in increasing sequence.'),
    )
    assert.throws(
      () => history('1\t0/1\n1\t0/2\n', 3),
      invalid('invalid data in history file: 1\t0/2', 'Timeline IDs must be in increasing sequence.'),
    )
    assert.throws(
      () => history('1\t0/1\n2\t0/2\n', 2),
      invalid('invalid data in history file', "Timeline IDs must be less than child timeline's ID."),
    )
    assert.throws(
      () => history('1\t0/1\n', 2 - 1),
      (err: unknown) => err instanceof RewindError && err.info.path === 'pg_wal/00000001.history',
    )
  })
})

describe('findCommonAncestor', () => {
  const h123 = history('1\t0/3000000\tx\n2\t0/5000000\tx\n', 3)
  const h12 = history('1\t0/3000000\tx\n', 2)

  it('sees one history continuing the other (same timeline)', () => {
    assert.deepEqual(findCommonAncestor(timelineOneHistory(), timelineOneHistory()), { index: 0, tli: 1, lsn: null })
    assert.deepEqual(findCommonAncestor(h12, h12), { index: 1, tli: 2, lsn: null })
  })

  it('takes the earlier end, whichever side is longer', () => {
    assert.deepEqual(findCommonAncestor(h123, h12), { index: 1, tli: 2, lsn: 0x5000000n })
    assert.deepEqual(findCommonAncestor(h12, h123), { index: 1, tli: 2, lsn: 0x5000000n })
    assert.deepEqual(findCommonAncestor(timelineOneHistory(), h12), { index: 0, tli: 1, lsn: 0x3000000n })
  })

  it('stops at a different TLI or a different begin', () => {
    const h13 = history('1\t0/3800000\tx\n', 3)
    assert.deepEqual(findCommonAncestor(h12, h13), { index: 0, tli: 1, lsn: 0x3000000n })
    // Two nodes promoted to the same number from different points.
    const other2 = history('1\t0/4000000\tx\n', 2)
    assert.deepEqual(findCommonAncestor(h12, other2), { index: 0, tli: 1, lsn: 0x3000000n })
  })

  it('finds nothing when even the first entries differ', () => {
    assert.equal(findCommonAncestor(history('', 2), timelineOneHistory()), null)
  })
})

describe('timelineForLsn', () => {
  it('gives a switchpoint to the child timeline', () => {
    const h = history('1\t0/3000000\tx\n2\t0/5000000\tx\n', 3)
    assert.equal(timelineForLsn(h, 0n), 1)
    assert.equal(timelineForLsn(h, 0x2ffffffn), 1)
    assert.equal(timelineForLsn(h, 0x3000000n), 2)
    assert.equal(timelineForLsn(h, 0x5000000n), 3)
    assert.equal(timelineForLsn(h, 0xffffffffffffn), 3)
  })
})
