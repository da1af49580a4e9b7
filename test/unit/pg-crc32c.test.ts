// CRC-32C: the standard check value, chaining, and the JavaScript short-range path against the
// native one for every length and alignment around the switch-over. (The native batch of the WAL
// reader is tested in pg-wal-window-scan.test.ts.)

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { crc32c, crc32cRange, wordsOf } from '../../src/pg/crc32c.js'

describe('crc32c', () => {
  it('gives the CRC-32C check value and chains', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234'))), 0xe3069283)
    assert.equal(crc32cRange(Buffer.from('123456789'), 0, 9), 0xe3069283)
    assert.equal(crc32cRange(Buffer.from('xx123456789'), 2, 11), 0xe3069283)
    assert.equal(crc32c(Buffer.alloc(0)), 0)
  })

  it('computes the same in JavaScript (bytes or words) as natively', () => {
    let seed = 12345
    const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0)
    const buf = Buffer.alloc(4096)
    for (let i = 0; i < buf.length; i++) buf[i] = rand() & 0xff
    const words = wordsOf(buf)!
    for (let len = 0; len <= 700; len += len < 40 ? 1 : 7) {
      for (const start of [0, 1, 3, 4, 8, 100]) {
        const prev = rand()
        const want = crc32c(buf.subarray(start, start + len), prev)
        assert.equal(crc32cRange(buf, start, start + len, prev), want, `len ${len} start ${start}`)
        if (start % 4 === 0) assert.equal(crc32cRange(buf, start, start + len, prev, words), want, `words len ${len} start ${start}`)
      }
    }
  })

  it('offers a word view only at a 4-byte boundary', () => {
    const ab = new ArrayBuffer(64)
    assert.notEqual(wordsOf(new Uint8Array(ab, 8, 20)), null)
    assert.equal(wordsOf(new Uint8Array(ab, 2, 20)), null)
  })
})
