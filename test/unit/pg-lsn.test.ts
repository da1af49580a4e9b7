// LSN text, segment arithmetic and file names, with the examples checked on real clusters in
// reference/formats.md §2.1 (16 MiB, 64 MiB and 1 MiB segments).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import {
  formatLsn,
  historyFileName,
  INVALID_LSN,
  isValidSegmentSize,
  maxAlign,
  offsetInSegment,
  parseLsn,
  parseSegmentFileName,
  segmentFileName,
  segmentOf,
  segmentStart,
} from '../../src/pg/lsn.js'

const MB = 1024 * 1024

describe('parseLsn / formatLsn', () => {
  it('round-trips %X/%X and reads 19dev zero padding', () => {
    assert.equal(parseLsn('0/3014F18'), 0x3014f18n)
    assert.equal(parseLsn('0/03014F18'), 0x3014f18n)
    assert.equal(parseLsn('1A/ff'), (0x1an << 32n) | 0xffn)
    assert.equal(formatLsn(0x3014f18n), '0/3014F18')
    assert.equal(formatLsn((0xabcdefn << 32n) | 0x10n), 'ABCDEF/10')
    assert.equal(formatLsn(INVALID_LSN), '0/0')
    assert.equal(formatLsn(0xffffffffffffffffn), 'FFFFFFFF/FFFFFFFF')
  })

  it('refuses junk with a USAGE error unless told another code', () => {
    for (const junk of ['', '0', '0/', '/1', 'x/1', '0/1/2', '123456789/0', ' 0/1', '0/1 ', '-1/0']) {
      assert.throws(
        () => parseLsn(junk),
        (err: unknown) => err instanceof RewindError && err.code === 'USAGE' && err.message.includes(`"${junk}"`),
      )
    }
    assert.throws(() => parseLsn('nope', 'TIMELINE_HISTORY_INVALID'), { code: 'TIMELINE_HISTORY_INVALID' })
  })
})

describe('segments', () => {
  it('names files with the low part wrapping at 2^32 / segSize', () => {
    assert.equal(segmentFileName(1, 5n, 16 * MB), '000000010000000000000005')
    assert.equal(segmentFileName(1, 0xffn, 16 * MB), '0000000100000000000000FF')
    assert.equal(segmentFileName(1, 0x100n, 16 * MB), '000000010000000100000000')
    // 64 MiB: the last file of "log" 0 is ...3F and 1/1 is in 000000010000000100000000.
    assert.equal(segmentFileName(1, 0x3fn, 64 * MB), '00000001000000000000003F')
    assert.equal(segmentFileName(1, segmentOf(parseLsn('1/1'), 64 * MB), 64 * MB), '000000010000000100000000')
    assert.equal(segmentFileName(1, segmentOf(parseLsn('0/4500790'), 64 * MB), 64 * MB), '000000010000000000000001')
    // 1 MiB: the last low part is 00000FFF.
    assert.equal(segmentFileName(2, 0xfffn, MB), '000000020000000000000FFF')
    assert.equal(segmentFileName(2, 0x1000n, MB), '000000020000000100000000')
  })

  it('parses names back and rejects what the server would never write', () => {
    assert.deepEqual(parseSegmentFileName('000000030000000100000002', 16 * MB), { tli: 3, segno: 0x102n })
    assert.deepEqual(parseSegmentFileName('000000030000000100000002', MB), { tli: 3, segno: 0x1002n })
    assert.equal(parseSegmentFileName('000000010000000000000100', 16 * MB), null)
    assert.equal(parseSegmentFileName('00000001000000000000000a', 16 * MB), null)
    assert.equal(parseSegmentFileName('00000001000000000000000A.partial', 16 * MB), null)
    assert.equal(parseSegmentFileName('00000002.history', 16 * MB), null)
    for (const segno of [0n, 1n, 0xffn, 0x100n, 0x123456n]) {
      assert.deepEqual(parseSegmentFileName(segmentFileName(7, segno, 16 * MB), 16 * MB), { tli: 7, segno })
    }
  })

  it('does the arithmetic in bigint past 2^53 bytes', () => {
    const lsn = (0x12345678n << 32n) | 0x9abcdef0n
    assert.equal(segmentOf(lsn, 16 * MB), lsn >> 24n)
    assert.equal(segmentStart(segmentOf(lsn, 16 * MB), 16 * MB), lsn & ~0xffffffn)
    assert.equal(offsetInSegment(lsn, 16 * MB), 0xbcdef0)
    assert.equal(offsetInSegment(lsn, MB), 0x0cdef0)
  })

  it('knows the valid segment sizes', () => {
    for (let n = MB; n <= 1024 * MB; n *= 2) assert.equal(isValidSegmentSize(n), true)
    for (const n of [0, MB / 2, 3 * MB, 2048 * MB, 16 * MB + 1, -16 * MB, 1.5]) assert.equal(isValidSegmentSize(n), false)
  })

  it('names history files and MAXALIGNs', () => {
    assert.equal(historyFileName(2), '00000002.history')
    assert.equal(historyFileName(0x1a), '0000001A.history')
    assert.equal(maxAlign(0x500a27bn), 0x500a280n)
    assert.equal(maxAlign(16), 16)
    assert.equal(maxAlign(17), 24)
    assert.equal(maxAlign(0), 0)
  })
})
