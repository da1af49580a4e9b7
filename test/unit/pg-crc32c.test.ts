// CRC-32C: the standard check value, chaining, the JavaScript short-range path against the
// native one for every length and alignment around the switch-over, and the native batch of groups.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { crc32c, crc32cRange, wordsOf } from '../../src/pg/crc32c.js'
import { crc32cGroups, walCrcMethod } from '../../src/pg/crc32c-groups.js'

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

describe('crc32cGroups (native batch)', () => {
  it('is built here (npm install compiles it; without it WAL of small records is read at half speed)', () => {
    assert.ok(crc32cGroups !== null, `native/crc32c-groups.c was not built: ${walCrcMethod}`)
  })

  it('gives each group the CRC of its ranges one after the other, in and out of the three-at-once path', () => {
    const groups = crc32cGroups!
    let seed = 777
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) >>> 0) % n
    const buf = Buffer.alloc(65536)
    for (let i = 0; i < buf.length; i++) buf[i] = rand(256)
    for (let round = 0; round < 200; round++) {
      const ranges: number[] = []
      const ends: number[] = []
      const want: number[] = []
      for (let g = 0, count = 1 + rand(40); g < count; g++) {
        // Mostly two ranges (a record on one page: body, then header), sometimes none or several.
        const n = rand(5) === 0 ? rand(6) : 2
        let crc = 0
        for (let k = 0; k < n; k++) {
          const start = rand(buf.length)
          const end = Math.min(buf.length, start + (rand(3) === 0 ? rand(9000) : rand(300)))
          ranges.push(start, end)
          crc = crc32cRange(buf, start, end, crc)
        }
        ends.push(ranges.length / 2)
        want.push(crc | 0)
      }
      const out = new Int32Array(want.length)
      assert.equal(groups(buf, Int32Array.from(ranges), Int32Array.from(ends), want.length, out), want.length)
      assert.deepEqual([...out], want, `round ${round}`)
    }
  })

  it('stops at the first group with a range outside the buffer', () => {
    const buf = Buffer.from('123456789')
    const out = new Int32Array(3)
    const n = crc32cGroups!(buf, Int32Array.from([0, 9, 0, 10, 0, 9]), Int32Array.from([1, 2, 3]), 3, out)
    assert.equal(n, 1)
    assert.equal(out[0]! >>> 0, 0xe3069283)
    assert.equal(crc32cGroups!(buf, Int32Array.from([5, 4]), Int32Array.from([1]), 1, out), 0)
    assert.throws(() => crc32cGroups!(buf, new Int32Array(2), new Int32Array(1) as never, 'x' as never, out), TypeError)
  })
})
