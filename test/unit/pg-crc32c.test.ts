// CRC-32C: the standard check value, chaining, the JavaScript tables (the fallback without the
// addon, and the path for short ranges with it) and the addon's CRC against a bit-by-bit
// reference for every length and alignment around the switch-over. (The native batch of the WAL
// reader is tested in pg-wal-window-scan.test.ts.)

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { crc32c, crc32cRange, crc32cTables, wordsOf } from '../../src/pg/crc32c.js'
import { nativeCrc32c, walScanMethod } from '../../src/pg/native.js'

/** CRC-32C one bit at a time, as the polynomial defines it. */
function reference(buf: Uint8Array, start: number, end: number, previous: number): number {
  let c = ~previous >>> 0
  for (let i = start; i < end; i++) {
    c ^= buf[i]!
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  }
  return ~c >>> 0
}

describe('crc32c', () => {
  it('gives the CRC-32C check value and chains', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234'))), 0xe3069283)
    assert.equal(crc32cRange(Buffer.from('123456789'), 0, 9), 0xe3069283)
    assert.equal(crc32cRange(Buffer.from('xx123456789'), 2, 11), 0xe3069283)
    assert.equal(crc32c(Buffer.alloc(0)), 0)
  })

  it('computes the same with the tables (bytes or words), the addon and the reference', () => {
    let seed = 12345
    const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0)
    const buf = Buffer.alloc(4096)
    for (let i = 0; i < buf.length; i++) buf[i] = rand() & 0xff
    const words = wordsOf(buf)!
    for (let len = 0; len <= 1100; len += len < 40 ? 1 : 7) {
      for (const start of [0, 1, 3, 4, 8, 100]) {
        const prev = rand()
        const want = reference(buf, start, start + len, prev)
        const what = `len ${len} start ${start}`
        assert.equal(crc32cTables(buf, start, start + len, prev), want, what)
        if (start % 4 === 0) assert.equal(crc32cTables(buf, start, start + len, prev, words), want, `words ${what}`)
        assert.equal(crc32cRange(buf, start, start + len, prev), want, what)
        assert.equal(crc32c(buf.subarray(start, start + len), prev), want, what)
        if (nativeCrc32c !== null) assert.equal(nativeCrc32c(buf, start, start + len, prev), want, `addon ${what}`)
      }
    }
  })

  it("has the addon's CRC when the addon is built, which checks its range", { skip: nativeCrc32c === null ? walScanMethod : false }, () => {
    assert.throws(() => nativeCrc32c!(Buffer.alloc(8), 4, 12, 0), RangeError)
    assert.throws(() => nativeCrc32c!(Buffer.alloc(8), 6, 4, 0), RangeError)
    assert.throws(() => nativeCrc32c!('12345678' as unknown as Uint8Array, 0, 8, 0), TypeError)
  })

  it('offers a word view only at a 4-byte boundary', () => {
    const ab = new ArrayBuffer(64)
    assert.notEqual(wordsOf(new Uint8Array(ab, 8, 20)), null)
    assert.equal(wordsOf(new Uint8Array(ab, 2, 20)), null)
  })
})
