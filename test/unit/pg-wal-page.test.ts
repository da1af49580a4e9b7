// WAL page headers of real segments, and the checks of XLogReaderValidatePageHeader one by one.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { profileForMajor } from '../../src/pg/versions.js'
import {
  checkPageHeader,
  decodePageHeader,
  defaultSegmentNamer,
  pageHeaderSize,
  SIZE_OF_XLOG_LONG_PHD,
  SIZE_OF_XLOG_SHORT_PHD,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
  type PageExpectation,
} from '../../src/pg/wal/page.js'
import { fixtureMajors, loadFixture } from '../fixtures/load.js'

for (const major of fixtureMajors()) {
  const f = loadFixture(major)
  const profile = profileForMajor(major)
  const segno = BigInt(f.json.wal.firstSegno)
  const seg = f.segments.get(segno)!
  const segStart = segno * BigInt(f.json.segSize)
  const sysid = BigInt(f.json.systemIdentifier)
  const expect: PageExpectation = {
    profile,
    segSize: f.json.segSize,
    blockSize: 8192,
    sysidHi: Number(sysid >> 32n),
    sysidLo: Number(sysid & 0xffffffffn),
  }
  const name = defaultSegmentNamer(3, f.json.segSize)
  const check = (buf: Buffer, pageOff: number) =>
    checkPageHeader(buf, pageOff, Number(segno), pageOff, 0, Number(segStart) + pageOff, expect, name)

  describe(`WAL pages of PostgreSQL ${major}`, () => {
    it('decode: the long header of a segment start, short ones after', () => {
      const first = decodePageHeader(seg)
      assert.equal(first.xlp_magic, profile.walPageMagic)
      assert.equal(first.xlp_info & XLP_LONG_HEADER, XLP_LONG_HEADER)
      assert.equal(first.xlp_pageaddr, segStart)
      assert.equal(first.xlp_tli, 2)
      assert.deepEqual(first.long, { xlp_sysid: sysid, xlp_seg_size: f.json.segSize, xlp_xlog_blcksz: 8192 })
      assert.equal(pageHeaderSize(seg, 0), SIZE_OF_XLOG_LONG_PHD)
      const second = decodePageHeader(seg, 8192)
      assert.equal(second.long, undefined)
      assert.equal(second.xlp_pageaddr, segStart + 8192n)
      assert.equal(second.xlp_tli, 3)
      assert.equal(pageHeaderSize(seg, 8192), SIZE_OF_XLOG_SHORT_PHD)
      // Some page continues a record, with the remaining length in its header.
      let found = false
      for (let off = 8192; off < seg.length && !found; off += 8192) {
        const h = decodePageHeader(seg, off)
        if (h.xlp_pageaddr !== segStart + BigInt(off)) break
        if (h.xlp_info & XLP_FIRST_IS_CONTRECORD) found = h.xlp_rem_len > 0
      }
      assert.ok(found)
      assert.equal(check(seg, 0), null)
      assert.equal(check(seg, 8192), null)
    })

    it("check: magic, info bits, long header fields and page address, with the server's messages", () => {
      const where = (off: number) =>
        `in WAL segment ${name(Number(segno))}, LSN 0/${(Number(segStart) + off).toString(16).toUpperCase()}, offset ${off}`
      const edit = (off: number, fn: (b: Buffer) => void) => {
        const b = Buffer.from(seg.subarray(0, 16384))
        fn(b)
        return check(b, off)
      }
      assert.deepEqual(
        edit(8192, (b) => b.writeUInt16LE(0xd0ff, 8192)),
        { reason: 'bad-magic', message: `invalid magic number D0FF ${where(8192)}` },
      )
      assert.deepEqual(
        edit(8192, (b) => b.writeUInt16LE(0x0015, 8194)),
        { reason: 'bad-page-header', message: `invalid info bits 0015 ${where(8192)}` },
      )
      assert.deepEqual(
        edit(0, (b) => b.writeUInt16LE(0x0004, 2)),
        { reason: 'bad-page-header', message: `invalid info bits 0004 ${where(0)}` },
      )
      assert.deepEqual(
        edit(0, (b) => b.writeBigUInt64LE(7n, 24)),
        {
          reason: 'bad-page-header',
          message: `WAL file is from different database system: WAL file database system identifier is 7, pg_control database system identifier is ${sysid}`,
        },
      )
      assert.deepEqual(
        edit(0, (b) => b.writeUInt32LE(2 * 1024 * 1024, 32)),
        { reason: 'bad-page-header', message: 'WAL file is from different database system: incorrect segment size in page header' },
      )
      assert.deepEqual(
        edit(0, (b) => b.writeUInt32LE(4096, 36)),
        { reason: 'bad-page-header', message: 'WAL file is from different database system: incorrect XLOG_BLCKSZ in page header' },
      )
      assert.deepEqual(
        edit(8192, (b) => b.writeBigUInt64LE(0x2208000n, 8200)),
        { reason: 'bad-pageaddr', message: `unexpected pageaddr 0/2208000 ${where(8192)}` },
      )
      // Without a system identifier to compare with, any is accepted.
      const b = Buffer.from(seg.subarray(0, 8192))
      b.writeBigUInt64LE(7n, 24)
      assert.equal(checkPageHeader(b, 0, Number(segno), 0, 0, Number(segStart), { ...expect, sysidHi: null }, name), null)
    })
  })
}
