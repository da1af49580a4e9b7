// The native window scan (native/wal-scan.c through src/pg/wal/window-scan.ts) against the
// JavaScript reader's own rules: CRC verdicts over windows of records laid out as WAL (on one page,
// across pages, thousands per window), and the block-header decoder over random records whose CRC
// holds, valid or breaking one of DecodeXLogRecord's rules. The reader tests read every fixture with
// and without the scan, and the fuzz test corrupted WAL; this is where each rule is aimed at.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { crc32c } from '../../src/pg/crc32c.js'
import { scanLayout, scanWalWindow, walScanMethod } from '../../src/pg/native.js'
import { PG13, PG14, PG15, PG18, type VersionProfile } from '../../src/pg/versions.js'
import { DecodedRecord, decodeRecord, recordCrcMatches } from '../../src/pg/wal/record.js'
import { layoutDifferences, SCAN_LAYOUT, WindowScan } from '../../src/pg/wal/window-scan.js'

const B = 8192

/** mulberry32, seeded. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

/** A record of `totLen` bytes: header (rmid 10, a prev link) and `body`, with its CRC set. */
function record(body: Buffer, rmid = 10): Buffer {
  const rec = Buffer.alloc(24 + body.length)
  rec.writeUInt32LE(rec.length, 0)
  rec.writeUInt32LE(1234, 4)
  rec.writeUInt32LE(0x1000, 8)
  rec[16] = 0x10
  rec[17] = rmid
  body.copy(rec, 24)
  rec.writeUInt32LE(crc32c(rec.subarray(0, 20), crc32c(rec.subarray(24))), 20)
  return rec
}

/**
 * Lays records out as WAL pages from the start of a segment: page headers (long on the first page),
 * records MAXALIGNed, a record that goes past its page continued after the next page's header with
 * XLP_FIRST_IS_CONTRECORD and xlp_rem_len. Returns the window and where each record starts.
 */
function layOut(records: Buffer[], size: number): { buf: Buffer; starts: number[] } {
  const buf = Buffer.alloc(size)
  const starts: number[] = []
  let pos = 0
  const pageHeader = (page: number, remLen: number): number => {
    const hdr = page === 0 ? 40 : 24
    buf.writeUInt16LE(0xd110, page)
    buf.writeUInt16LE((page === 0 ? 2 : 0) | (remLen > 0 ? 1 : 0), page + 2)
    buf.writeUInt32LE(1, page + 4)
    buf.writeUInt32LE(page, page + 8)
    buf.writeUInt32LE(remLen, page + 16)
    return hdr
  }
  for (const rec of records) {
    if (pos % B === 0) pos += pageHeader(pos, 0)
    // Keep headers on one page (the scan leaves a split header to the reader).
    if (B - (pos % B) < 24) pos = pos - (pos % B) + B + pageHeader(pos - (pos % B) + B, 0)
    if (pos + rec.length + B > size) break
    starts.push(pos)
    let done = 0
    while (done < rec.length) {
      if (pos % B === 0) pos += pageHeader(pos, rec.length - done)
      const n = Math.min(rec.length - done, B - (pos % B))
      rec.copy(buf, pos, done, done + n)
      pos += n
      done += n
    }
    pos += (8 - (pos % 8)) % 8
  }
  return { buf, starts }
}

/** The record at `start` of a laid-out window, gathered without page headers. */
function gather(buf: Buffer, start: number): Buffer {
  const totLen = buf.readUInt32LE(start)
  const out = Buffer.alloc(totLen)
  let pos = start
  let done = 0
  while (done < totLen) {
    if (pos % B === 0) pos += pos === 0 ? 40 : 24
    const n = Math.min(totLen - done, B - (pos % B))
    buf.copy(out, done, pos, pos + n)
    pos += n
    done += n
  }
  return out
}

interface BlockSpec {
  id: number
  forkFlags: number
  dataLength: number
  image?: { bimgLen: number; holeOffset: number; bimgInfo: number; holeLength?: number }
  rel?: [number, number, number]
  blockNumber: number
}

/** A record body as XLogRecordAssemble lays it out: block headers, origin, top-level xid, main data header, payloads. */
function body(
  blocks: BlockSpec[],
  main: number,
  opts: { origin?: number; toplevelXid?: number; longMain?: boolean; payload?: number },
): Buffer {
  const parts: Buffer[] = []
  let payload = main
  for (const b of blocks) {
    const h = Buffer.alloc(4)
    h[0] = b.id
    h[1] = b.forkFlags
    h.writeUInt16LE(b.dataLength, 2)
    parts.push(h)
    payload += b.dataLength
    if (b.image !== undefined) {
      const i = Buffer.alloc(b.image.holeLength !== undefined ? 7 : 5)
      i.writeUInt16LE(b.image.bimgLen, 0)
      i.writeUInt16LE(b.image.holeOffset, 2)
      i[4] = b.image.bimgInfo
      if (b.image.holeLength !== undefined) i.writeUInt16LE(b.image.holeLength, 5)
      parts.push(i)
      payload += b.image.bimgLen
    }
    if (b.rel !== undefined) {
      const r = Buffer.alloc(12)
      b.rel.forEach((v, k) => r.writeUInt32LE(v, 4 * k))
      parts.push(r)
    }
    const n = Buffer.alloc(4)
    n.writeUInt32LE(b.blockNumber, 0)
    parts.push(n)
  }
  if (opts.origin !== undefined) parts.push(Buffer.from([253, opts.origin & 0xff, opts.origin >> 8]))
  if (opts.toplevelXid !== undefined) {
    const x = Buffer.alloc(5)
    x[0] = 252
    x.writeUInt32LE(opts.toplevelXid, 1)
    parts.push(x)
  }
  if (opts.longMain === true || main > 255) {
    const m = Buffer.alloc(5)
    m[0] = 254
    m.writeUInt32LE(main, 1)
    parts.push(m)
  } else if (main > 0) {
    parts.push(Buffer.from([255, main]))
  }
  parts.push(Buffer.alloc(opts.payload ?? payload, 0x5a))
  return Buffer.concat(parts)
}

/** A random record body: mostly what the server writes, sometimes with one rule broken. */
function randomBody(rand: (n: number) => number, profile: VersionProfile): Buffer {
  const { bimg } = profile
  const compressBits = [bimg.COMPRESS_PGLZ, bimg.COMPRESS_LZ4, bimg.COMPRESS_ZSTD].filter((b) => b !== 0)
  const blocks: BlockSpec[] = []
  let id = -1
  for (let k = 0, n = rand(4); k < n; k++) {
    id += 1 + rand(3)
    if (rand(40) === 0) id = rand(40) // out of order, or past XLR_MAX_BLOCK_ID
    let forkFlags = rand(4)
    const dataLength = rand(3) === 0 ? 0 : 1 + rand(200)
    if (dataLength > 0) forkFlags |= 0x20
    if (rand(40) === 0) forkFlags ^= 0x20 // BKPBLOCK_HAS_DATA and the length disagree
    if (rand(5) === 0) forkFlags |= 0x40
    let image: BlockSpec['image']
    if (rand(3) === 0) {
      // Sizes that keep the record on one page: an uncompressed image only with a big hole.
      forkFlags |= 0x10
      const compressed = rand(2) === 0
      const hole = !compressed || rand(3) !== 0
      let bimgInfo = (hole ? bimg.HAS_HOLE : 0) | (rand(2) === 0 ? bimg.APPLY : 0)
      if (compressed) bimgInfo |= compressBits[rand(compressBits.length)]!
      const holeLength = hole ? (compressed ? 1 + rand(8000) : 4000 + rand(4000)) : 0
      let bimgLen = compressed ? 10 + rand(3000) : 8192 - holeLength
      if (rand(30) === 0) bimgLen = [8192, 0, 8191, 1][rand(4)]! // a length the flags do not allow
      if (rand(40) === 0) bimgInfo ^= bimg.HAS_HOLE
      image = {
        bimgLen,
        holeOffset: hole && rand(30) !== 0 ? 24 + rand(4000) : rand(30) === 0 ? 1 + rand(10) : 0,
        bimgInfo,
        ...(compressed && (bimgInfo & bimg.HAS_HOLE) !== 0 ? { holeLength: rand(30) === 0 ? 0 : holeLength } : {}),
      }
    }
    if (dataLength === 0) forkFlags &= ~0x20
    const sameRel = (k > 0 && rand(2) === 0) || rand(60) === 0
    if (sameRel) forkFlags |= 0x80
    blocks.push({
      id,
      forkFlags,
      dataLength,
      ...(image ? { image } : {}),
      ...(sameRel ? {} : { rel: [1663, 5 + rand(5), 16384 + rand(100000)] as [number, number, number] }),
      blockNumber: rand(2) === 0 ? rand(100) : (rand(0x7fffffff) * 2 + 1) >>> 0,
    })
  }
  const main = rand(4) === 0 ? 0 : rand(300)
  const opts = {
    ...(rand(8) === 0 ? { origin: rand(65536) } : {}),
    ...(rand(8) === 0 ? { toplevelXid: (rand(0x7fffffff) * 2 + 1) >>> 0 } : {}),
    ...(rand(10) === 0 ? { longMain: true } : {}),
  }
  let b = body(blocks, main, opts)
  // Payloads that do not add up, or headers cut short.
  if (rand(25) === 0) b = Buffer.concat([b, Buffer.alloc(1 + rand(8))])
  if (rand(25) === 0) b = b.subarray(0, rand(b.length))
  return b
}

describe('native window scan', () => {
  it('is built here (npm install compiles it; without it WAL is read at half speed)', () => {
    assert.ok(scanWalWindow !== null, `native/ was not built: ${walScanMethod}`)
  })

  it('reads the rows by the layout the addon exports, and names every difference', () => {
    assert.ok(scanLayout !== null, `native/ was not built: ${walScanMethod}`)
    assert.deepEqual(layoutDifferences(scanLayout), [])
    assert.deepEqual(layoutDifferences({ ...SCAN_LAYOUT, REC_STRIDE: 9 }), ['REC_STRIDE: 9 in the addon, 8 in window-scan.ts'])
    const { BLK_STRIDE: _, ...withoutStride } = SCAN_LAYOUT
    assert.deepEqual(layoutDifferences({ ...withoutStride, BLK_EXTRA: 11 }), [
      'BLK_STRIDE: missing in the addon, 11 in window-scan.ts',
      'BLK_EXTRA: 11 in the addon, missing in window-scan.ts',
    ])
  })

  it('gives every record of a window its CRC verdict, on one page or across pages, thousands per window', () => {
    const rand = prng(99)
    for (const [size, count, maxLen] of [
      [1 << 20, 30000, 120],
      [1 << 20, 400, 30000],
      [256 * 1024, 2000, 9000],
    ] as const) {
      const records: Buffer[] = []
      for (let i = 0; i < count; i++) records.push(record(Buffer.alloc(rand(maxLen), rand(256))))
      const { buf, starts } = layOut(records, size)
      const window = { gen: 0, buf, len: buf.length }
      // Damage some records after their CRC was set.
      const damaged = new Set<number>()
      for (let i = 0; i < starts.length; i += 1 + rand(20)) {
        const totLen = buf.readUInt32LE(starts[i]!)
        const at = starts[i]! + (rand(2) === 0 ? 4 + rand(16) : 24 + rand(totLen - 24))
        if (at % B < (at < B ? 40 : 24)) continue // not in a page header
        buf[at]! ^= 1 << rand(8)
        damaged.add(i)
      }
      // Some records across pages lose the continuation flag of their next page: no verdict for them.
      const unflagged = new Set<number>()
      for (let i = 0; i < starts.length; i += 1 + rand(10)) {
        const nextPage = starts[i]! - (starts[i]! % B) + B
        if (starts[i]! + buf.readUInt32LE(starts[i]!) <= nextPage) continue
        buf[nextPage + 2]! &= ~1
        unflagged.add(i)
      }
      const scan = new WindowScan(PG15, 8192)
      let verdicts = 0
      for (let i = 0; i < starts.length; i++) {
        const row = scan.find(window, starts[i]!)
        if (unflagged.has(i)) {
          assert.equal(row, -1, `record ${i} at ${starts[i]} goes on to a page that does not continue it`)
          continue
        }
        assert.ok(row >= 0, `record ${i} at ${starts[i]} not reached`)
        const want = recordCrcMatches(gather(buf, starts[i]!), 0, buf.readUInt32LE(starts[i]!))
        assert.equal(scan.crcOk(row), want, `record ${i} at ${starts[i]}`)
        verdicts++
      }
      assert.ok(verdicts > 0 && damaged.size > 0 && (maxLen < 8000 || unflagged.size > 0))
    }
  })

  for (const profile of [PG13, PG14, PG15, PG18]) {
    it(`decodes block headers exactly as the JavaScript decoder does, and refuses what it refuses (PostgreSQL ${profile.major})`, () => {
      const rand = prng(7 + profile.major)
      const scan = new WindowScan(profile, 8192)
      let accepted = 0
      let withBlocks = 0
      let refused = 0
      for (let i = 0; i < 5000; i++) {
        const rec = record(randomBody(rand, profile), rand(50) === 0 ? 200 : 10)
        if (rec.length > B - 40) continue
        const { buf, starts } = layOut([rec], 2 * B)
        let js: DecodedRecord | null = null
        try {
          js = decodeRecord(rec, 40n, profile) as DecodedRecord
        } catch (err) {
          assert.ok(err instanceof RewindError && err.code === 'WAL_INVALID', String(err))
        }
        const row = scan.find({ gen: i, buf, len: buf.length }, starts[0]!)
        assert.equal(row, 0)
        assert.equal(scan.crcOk(row), true)
        assert.equal(
          scan.decoded(row),
          js !== null,
          `record ${i}: ${js === null ? 'refused by JavaScript' : 'accepted by JavaScript'} ${rec.toString('hex')}`,
        )
        if (js === null) {
          refused++
          continue
        }
        accepted++
        if (js.blocks.length > 0) withBlocks++
        const native = new DecodedRecord()
        scan.fill(native, row)
        const fields = (r: DecodedRecord): unknown => ({
          blocks: JSON.parse(JSON.stringify(r.blocks)),
          origin: r.origin,
          toplevelXid: r.toplevelXid,
          main: r.main_data_len,
          fpi: r.fpiLength,
        })
        assert.deepEqual(fields(native), fields(js), `record ${i}`)
      }
      assert.ok(
        accepted > 1000 && withBlocks > 500 && refused > 300,
        `${accepted} accepted (${withBlocks} with blocks), ${refused} refused`,
      )
    })
  }

  it('leaves a record it cannot reach to the caller, and keeps the records after it', () => {
    const a = record(Buffer.alloc(100, 1))
    const { buf, starts } = layOut([a, a, a], 2 * B)
    const window = { gen: 0, buf, len: buf.length }
    const scan = new WindowScan(PG15, 8192)
    // Not a record start the walk can reach: a header that runs past its page.
    assert.equal(scan.find(window, B - 16), -1)
    assert.equal(scan.find(window, starts[1]!), 0)
    assert.equal(scan.find(window, starts[1]!), 0, 'asked twice')
    assert.equal(scan.find(window, starts[2]!), 1)
    // A window refilled (new generation) is scanned again.
    assert.equal(scan.find({ ...window, gen: 1 }, starts[2]!), 0)
    assert.throws(() => scanWalWindow!(buf, 10, 0, new Int32Array(2), new Int32Array(8), new Int32Array(11)), TypeError)
  })
})
