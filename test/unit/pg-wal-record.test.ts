// Record decoding: the PG 15 record decoded byte by byte in formats.md §2.6 (real bytes), then
// hand-built records for every inconsistency DecodeXLogRecord rejects, each with a valid CRC so
// that the structure check is what fails.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { crc32c } from '../../src/pg/crc32c.js'
import { parseLsn } from '../../src/pg/lsn.js'
import { PG13, PG15, profileForMajor, type VersionProfile } from '../../src/pg/versions.js'
import { decodeRecord, recordCrcMatches } from '../../src/pg/wal/record.js'

const HOT_UPDATE = Buffer.from(
  [
    '4b 00 00 00 e1 02 00 00 f8 a1 00 05 00 00 00 00',
    '40 0a 00 00 aa 17 f5 43 00 20 0f 00 7f 06 00 00',
    '05 00 00 00 00 40 00 00 00 00 00 00 ff 0e 04 00',
    '02 80 02 28 18 00 0f 6e 6f 63 6f 6d 70 e1 02 00',
    '00 64 00 00 20 00 00 00 00 79 00',
  ]
    .join(' ')
    .replace(/ /g, ''),
  'hex',
)

/** A record with `body` after the header and a valid CRC. */
function rec(body: number[] | Buffer, o: { rmid?: number; info?: number; xid?: number; prev?: bigint } = {}): Buffer {
  const b = Buffer.alloc(24 + body.length)
  b.writeUInt32LE(b.length, 0)
  b.writeUInt32LE(o.xid ?? 0, 4)
  b.writeBigUInt64LE(o.prev ?? 0x1000028n, 8)
  b[16] = o.info ?? 0
  b[17] = o.rmid ?? 10
  Buffer.from(body).copy(b, 24)
  b.writeUInt32LE(crc32c(b.subarray(0, 20), crc32c(b.subarray(24))), 20)
  return b
}

const u16 = (n: number): number[] => [n & 0xff, n >> 8]
const u32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24]
const rel = [...u32(1663), ...u32(5), ...u32(16384)]
const LSN = parseLsn('0/1000100')

function fails(bytes: Buffer, message: string, profile: VersionProfile = PG15): void {
  assert.throws(
    () => decodeRecord(bytes, LSN, profile),
    (err: unknown) => err instanceof RewindError && err.code === 'WAL_INVALID' && err.message === message && err.info.lsn === '0/1000100',
    message,
  )
}

describe('decodeRecord', () => {
  it('decodes the HOT_UPDATE of formats.md byte for byte', () => {
    assert.equal(HOT_UPDATE.length, 75)
    const r = decodeRecord(HOT_UPDATE, parseLsn('0/0500A230'), PG15)
    assert.equal(r.xl_tot_len, 75)
    assert.equal(r.xl_xid, 737)
    assert.equal(r.xl_prev, parseLsn('0/0500A1F8'))
    assert.equal(r.xl_info, 0x40)
    assert.equal(r.xl_rmid, 10)
    assert.equal(r.xl_crc, 0x43f517aa)
    assert.equal(r.endLsn, parseLsn('0/0500A280'))
    assert.equal(r.blocks.length, 1)
    assert.deepEqual(
      { ...r.blocks[0] },
      {
        block_id: 0,
        fork_flags: 0x20,
        forkNumber: 0,
        spcOid: 1663,
        dbOid: 5,
        relNumber: 16384,
        blockNumber: 0,
        hasImage: false,
        applyImage: false,
        hasData: true,
        willInit: false,
        data_length: 15,
        image: undefined,
      },
    )
    assert.equal(r.main_data_len, 14)
    assert.equal(r.mainData.toString('hex'), 'e102000064000020000000007900')
    assert.equal(r.fpiLength, 0)
    assert.equal(r.origin, undefined)
  })

  it('decodes images with and without holes and compression, per major', () => {
    // PG 15 FPI_FOR_HINT header from formats.md: bimg_len 868, hole at 52, info HAS_HOLE|APPLY.
    const img = Buffer.alloc(868, 7)
    const fpi = rec([0, 0x10, ...u16(0), ...u16(868), ...u16(52), 0x03, ...u32(1664), ...u32(0), ...u32(1262), ...u32(0), ...img], {
      rmid: 0,
      info: 0xa0,
    })
    const r = decodeRecord(fpi, LSN, PG15)
    assert.deepEqual(
      { ...r.blocks[0]!.image },
      { bimg_len: 868, hole_offset: 52, hole_length: 8192 - 868, bimg_info: 3, compression: 'none' },
    )
    assert.equal(r.blocks[0]!.applyImage, true)
    assert.equal(r.fpiLength, 868)
    assert.equal(r.main_data_len, 0)
    assert.equal(r.mainData.length, 0)
    // The same bits mean something else before 15: 0x02 was "compressed", 0x04 "apply".
    const old = rec([0, 0x10, ...u16(0), ...u16(100), ...u16(52), 0x07, ...u16(300), ...rel, ...u32(9), ...Buffer.alloc(100)])
    assert.deepEqual(
      { ...decodeRecord(old, LSN, PG13).blocks[0]!.image },
      { bimg_len: 100, hole_offset: 52, hole_length: 300, bimg_info: 7, compression: 'pglz' },
    )
    assert.equal(decodeRecord(old, LSN, PG13).blocks[0]!.applyImage, true)
    for (const [info, compression] of [
      [0x0b, 'lz4'],
      [0x13, 'zstd'],
      [0x07, 'pglz'],
    ] as const) {
      const r15 = decodeRecord(
        rec([0, 0x10, ...u16(0), ...u16(100), ...u16(52), info, ...u16(300), ...rel, ...u32(9), ...Buffer.alloc(100)]),
        LSN,
        PG15,
      )
      assert.equal(r15.blocks[0]!.image!.compression, compression)
      assert.equal(r15.blocks[0]!.applyImage, true)
    }
    // An image taken only for wal_consistency_checking is not applied.
    const check = decodeRecord(
      rec([0, 0x10, ...u16(0), ...u16(8192), ...u16(0), 0x00, ...rel, ...u32(9), ...Buffer.alloc(8192)]),
      LSN,
      PG15,
    )
    assert.equal(check.blocks[0]!.applyImage, false)
    assert.equal(check.blocks[0]!.image!.hole_length, 0)
  })

  it('reads sparse block ids, SAME_REL, origin, top-level xid (14+) and long main data', () => {
    const main = Buffer.alloc(300, 1)
    const bytes = rec([
      253,
      ...u16(7),
      252,
      ...u32(4242),
      2,
      0x20,
      ...u16(3),
      ...rel,
      ...u32(10),
      5,
      0x20 | 0x80 | 0x01,
      ...u16(2),
      ...u32(11),
      7,
      0x40 | 0x02,
      ...u16(0),
      ...[...u32(1664), ...u32(0), ...u32(1262)],
      ...u32(0),
      254,
      ...u32(300),
      1,
      2,
      3,
      4,
      5,
      ...main,
    ])
    const r = decodeRecord(bytes, LSN, profileForMajor(14))
    assert.equal(r.origin, 7)
    assert.equal(r.toplevelXid, 4242)
    assert.deepEqual(
      r.blocks.map((b) => [b.block_id, b.forkNumber, b.relNumber, b.blockNumber, b.willInit, b.data_length]),
      [
        [2, 0, 16384, 10, false, 3],
        [5, 1, 16384, 11, false, 2],
        [7, 2, 1262, 0, true, 0],
      ],
    )
    assert.ok(r.mainData.equals(main))
    fails(bytes, 'invalid block_id 252 at 0/1000100', PG13)
  })

  it('refuses every inconsistency DecodeXLogRecord refuses', () => {
    fails(rec([1, 0x20, ...u16(1), ...rel, ...u32(0), 0, 0x20, ...u16(1), ...rel, ...u32(0), 9, 9]), 'out-of-order block_id 0 at 0/1000100')
    fails(rec([0, 0x20, ...u16(0), ...rel, ...u32(0)]), 'BKPBLOCK_HAS_DATA set, but no data included at 0/1000100')
    fails(rec([0, 0x00, ...u16(4), ...rel, ...u32(0), 1, 2, 3, 4]), 'BKPBLOCK_HAS_DATA not set, but data length is 4 at 0/1000100')
    fails(
      rec([0, 0x10, ...u16(0), ...u16(100), ...u16(0), 0x03, ...rel, ...u32(0), ...Buffer.alloc(100)]),
      'BKPIMAGE_HAS_HOLE set, but hole offset 0 length 8092 block image length 100 at 0/1000100',
    )
    fails(
      rec([0, 0x10, ...u16(0), ...u16(8192), ...u16(40), 0x02, ...rel, ...u32(0), ...Buffer.alloc(8192)]),
      'BKPIMAGE_HAS_HOLE not set, but hole offset 40 length 0 at 0/1000100',
    )
    fails(
      rec([0, 0x10, ...u16(0), ...u16(8192), ...u16(0), 0x06, ...rel, ...u32(0), ...Buffer.alloc(8192)]),
      'BKPIMAGE_COMPRESSED set, but block image length 8192 at 0/1000100',
    )
    // An uncompressed image without a hole has hole_length BLCKSZ - bimg_len, so a short one fails
    // the hole check before the "neither ... set" one (as in xlogreader.c).
    fails(
      rec([0, 0x10, ...u16(0), ...u16(100), ...u16(0), 0x02, ...rel, ...u32(0), ...Buffer.alloc(100)]),
      'BKPIMAGE_HAS_HOLE not set, but hole offset 0 length 8092 at 0/1000100',
    )
    fails(rec([0, 0x80, ...u16(0), ...u32(0)]), 'BKPBLOCK_SAME_REL set but no previous rel at 0/1000100')
    fails(rec([40, 0, 0, 0]), 'invalid block_id 40 at 0/1000100')
    fails(rec([0, 0x20, ...u16(9), ...rel, ...u32(0), 1, 2]), 'record with invalid length at 0/1000100')
    fails(rec([255, 5, 1, 2]), 'record with invalid length at 0/1000100')
    fails(rec([254, ...u32(0xffffffff), 1]), 'record with invalid length at 0/1000100')
    fails(rec([0, 0x20, ...u16(1), 1, 2]), 'record with invalid length at 0/1000100')
  })

  it('checks length, resource manager and CRC first', () => {
    const good = rec([255, 1, 9])
    fails(good.subarray(0, 20), 'invalid record length at 0/1000100: expected at least 24, got 20')
    fails(Buffer.concat([good, Buffer.alloc(1)]), 'record length 27 at 0/1000100 does not match the 28 bytes given')
    const flipped = Buffer.from(good)
    flipped[26]! ^= 1
    assert.equal(recordCrcMatches(flipped, 0, flipped.length), false)
    fails(flipped, 'incorrect resource manager data checksum in record at 0/1000100')
    fails(rec([255, 0], { rmid: 22 }), 'invalid resource manager ID 22 at 0/1000100')
    fails(rec([255, 0], { rmid: 128 }), 'invalid resource manager ID 128 at 0/1000100', profileForMajor(14))
    assert.equal(decodeRecord(rec([255, 0], { rmid: 128 }), LSN, PG15).xl_rmid, 128)
  })
})
