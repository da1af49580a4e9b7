// The WAL reader on real segments of every major: each record against pg_walinspect (15–18, per
// record and per block), pg_waldump -b (15, including lz4 and zstd images), and what SQL said about
// the records it caused (all majors); then the ends of WAL it must find, on the same bytes edited:
// zeroed tails, recycled pages, torn and overwritten continuation records, missing segments.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { crc32c } from '../../src/pg/crc32c.js'
import { decodeControlFile } from '../../src/pg/control.js'
import { formatLsn, maxAlign, parseLsn, segmentStart, type Lsn } from '../../src/pg/lsn.js'
import { profileForMajor } from '../../src/pg/versions.js'
import { XLP_FIRST_IS_CONTRECORD } from '../../src/pg/wal/page.js'
import { WalReader, type EndOfWal, type WalSegmentSource } from '../../src/pg/wal/reader.js'
import type { BlockRef, WalRecord } from '../../src/pg/wal/record.js'
import {
  decodeCheckpoint,
  decodeDbaseCreateFileCopy,
  decodeDbaseDrop,
  decodeEndOfRecovery,
  decodeSmgrCreate,
  decodeSmgrTruncate,
  decodeXactDroppedRelations,
  recordTypeName,
  RM,
  rmgrName,
} from '../../src/pg/wal/rmgr.js'
import { editedSegments, fixtureMajors, loadFixture, MemorySegments, type Fixture } from '../fixtures/load.js'
import { fpiInfo } from '../fixtures/walinspect.js'

/** What a test keeps of a record: everything, with the main data copied out of the reader's buffers. */
interface Seen {
  lsn: Lsn
  endLsn: Lsn
  prev: Lsn
  xid: number
  rmid: number
  info: number
  totLen: number
  mainLen: number
  fpiLen: number
  blocks: readonly BlockRef[]
  origin: number | undefined
  mainData: Buffer
}

function seen(r: WalRecord): Seen {
  return {
    lsn: r.lsn,
    endLsn: r.endLsn,
    prev: r.xl_prev,
    xid: r.xl_xid,
    rmid: r.xl_rmid,
    info: r.xl_info,
    totLen: r.xl_tot_len,
    mainLen: r.main_data_len,
    fpiLen: r.fpiLength,
    origin: r.origin,
    mainData: Buffer.from(r.mainData),
    // Copies: with reuseRecord the reader refills the same objects.
    blocks: r.blocks.map((b) => ({ ...b, ...(b.image !== undefined ? { image: { ...b.image } } : {}) })),
  }
}

interface ReadOptions {
  segments?: Map<bigint, Buffer>
  windowSize?: number
  readInto?: boolean
  sync?: boolean
  generator?: boolean
  reuseRecord?: boolean
  nativeScan?: boolean
  systemIdentifier?: bigint
  profileMajor?: number
  start?: Lsn
}

function reader(f: Fixture, o: ReadOptions = {}): { reader: WalReader; source: WalSegmentSource } {
  const source = new MemorySegments(o.segments ?? f.segments, f.json.wal.tli, f.json.segSize, {
    readInto: o.readInto ?? true,
    sync: o.sync ?? false,
  })
  const r = new WalReader({
    profile: profileForMajor(o.profileMajor ?? f.major),
    segSize: f.json.segSize,
    systemIdentifier: o.systemIdentifier ?? BigInt(f.json.systemIdentifier),
    source,
    ...(o.windowSize !== undefined ? { windowSize: o.windowSize } : {}),
    ...(o.nativeScan !== undefined ? { nativeScan: o.nativeScan } : {}),
  })
  return { reader: r, source }
}

function firstSegmentStart(f: Fixture): Lsn {
  return segmentStart(BigInt(f.json.wal.firstSegno), f.json.segSize)
}

async function readAll(f: Fixture, o: ReadOptions = {}): Promise<{ records: Seen[]; end: EndOfWal }> {
  const { reader: r } = reader(f, o)
  const start = o.start ?? (await r.findNextRecord(firstSegmentStart(f)))
  assert.ok(start !== null)
  const records: Seen[] = []
  if (o.generator) {
    const it = r.records(start)
    for (;;) {
      const step = await it.next()
      if (step.done) {
        assert.ok(step.value !== null)
        return { records, end: step.value }
      }
      records.push(seen(step.value))
    }
  }
  const end = await r.forEachRecord(
    start,
    (rec) => {
      records.push(seen(rec))
    },
    { reuseRecord: o.reuseRecord ?? false },
  )
  assert.ok(end !== null)
  return { records, end }
}

const cache = new Map<number, Promise<{ records: Seen[]; end: EndOfWal }>>()
function fixtureWal(f: Fixture): Promise<{ records: Seen[]; end: EndOfWal }> {
  let hit = cache.get(f.major)
  if (hit === undefined) {
    hit = readAll(f)
    cache.set(f.major, hit)
  }
  return hit
}

function byLsn(records: Seen[], lsn: string | Lsn): Seen {
  const want = typeof lsn === 'string' ? parseLsn(lsn) : lsn
  const found = records.find((r) => r.lsn === want)
  assert.ok(found, `no record at ${formatLsn(want)}`)
  return found
}

/** Where an LSN's byte sits among the segments. */
function at(f: Fixture, lsn: Lsn): { segno: bigint; off: number } {
  return { segno: lsn / BigInt(f.json.segSize), off: Number(lsn % BigInt(f.json.segSize)) }
}

for (const major of fixtureMajors()) {
  const f = loadFixture(major)
  const profile = profileForMajor(major)
  const anchors = f.json.wal.anchors

  describe(`WAL reader on PostgreSQL ${major}`, () => {
    it('reads every record to the zeroed end of the page after the shutdown checkpoint', async () => {
      const { records, end } = await fixtureWal(f)
      assert.ok(records.length > 500, `${records.length} records`)
      const last = records[records.length - 1]!
      assert.equal(rmgrName(last.rmid), 'XLOG')
      assert.equal(recordTypeName(last.rmid, last.info, profile), 'CHECKPOINT_SHUTDOWN')
      assert.equal(end.reason, 'zero-length')
      assert.equal(end.lsn, last.endLsn)
      assert.equal(end.message, `invalid record length at ${formatLsn(end.lsn)}: expected at least 24, got 0`)
      // Every link holds, and each record starts where the one before ended (after a page header).
      for (let i = 1; i < records.length; i++) {
        const a = records[i - 1]!
        const b = records[i]!
        assert.equal(b.prev, a.lsn)
        const gap = Number(b.lsn - a.endLsn)
        assert.ok(gap === 0 || (a.endLsn % 8192n === 0n && (gap === 24 || gap === 40)), `gap ${gap} before ${formatLsn(b.lsn)}`)
        // EndRecPtr: MAXALIGNed end on the same page; past the page headers in between otherwise.
        if ((a.lsn % 8192n) + BigInt(a.totLen) <= 8192n) assert.equal(a.endLsn, a.lsn + maxAlign(BigInt(a.totLen)))
        else assert.ok(a.endLsn > a.lsn + BigInt(a.totLen))
      }
    })

    it('walks back along xl_prev over the same records, in reverse, with and without the native scan, any window size', async () => {
      const { records } = await fixtureWal(f)
      for (const opts of [{}, { nativeScan: false }, { windowSize: 8192 }, { windowSize: 65536, readInto: false }]) {
        const { reader: r } = reader(f, opts)
        const back: Seen[] = []
        let stoppedEarly = 0
        assert.equal(await r.walkBack(records[records.length - 1]!.lsn, () => ++stoppedEarly < 3), null)
        assert.equal(stoppedEarly, 3)
        // The walk ends at the first record, whose predecessor is in a segment the fixture does not hold.
        await assert.rejects(
          r.walkBack(records[records.length - 1]!.lsn, (rec) => {
            back.push(seen(rec))
            return true
          }),
          (err: unknown) => err instanceof RewindError && /could not open file "pg_wal\/[0-9A-F]{24}"/.test(err.message),
        )
        assert.deepEqual(
          back.map((x) => x.lsn),
          records.map((x) => x.lsn).reverse(),
          JSON.stringify(opts),
        )
        assert.deepEqual(back, [...records].reverse(), JSON.stringify(opts))
      }
    })
    it('starts the newest timeline with END_OF_RECOVERY at the history switchpoint', async () => {
      const { records } = await fixtureWal(f)
      // The switchpoint is the end of the last replayed record (after the page header if on a boundary).
      const eor = records.find((r) => r.lsn >= parseLsn(anchors.switchpoint))!
      assert.ok(eor.lsn - parseLsn(anchors.switchpoint) <= 40n)
      assert.equal(recordTypeName(eor.rmid, eor.info, profile), 'END_OF_RECOVERY')
      const d = decodeEndOfRecovery(eor.mainData, profile)
      assert.equal(d.ThisTimeLineID, 3)
      assert.equal(d.PrevTimeLineID, 2)
      assert.equal(d.wal_level !== undefined, major >= 17)
      // The pages before the switch keep the parent's TLI (formats.md §5).
      const first = f.segments.get(BigInt(f.json.wal.firstSegno))!
      assert.equal(first.readUInt32LE(4), 2)
      assert.equal(first.readBigUInt64LE(24), BigInt(f.json.systemIdentifier))
    })

    it('decodes the checkpoint that pg_control_checkpoint() reported', async () => {
      const { records } = await fixtureWal(f)
      const cpAnchor = anchors.checkpoint
      const rec = byLsn(records, cpAnchor.checkpoint_lsn)
      assert.equal(recordTypeName(rec.rmid, rec.info, profile), 'CHECKPOINT_ONLINE')
      const cp = decodeCheckpoint(rec.mainData, profile)
      assert.equal(formatLsn(cp.redo), cpAnchor.redo_lsn)
      assert.equal(cp.ThisTimeLineID, cpAnchor['timeline_id'])
      assert.equal(cp.PrevTimeLineID, cpAnchor['prev_timeline_id'])
      assert.equal(`${cp.nextXid >> 32n}:${cp.nextXid & 0xffffffffn}`, cpAnchor['next_xid'])
      assert.equal(String(cp.nextOid), cpAnchor['next_oid'])
      assert.equal(String(cp.oldestXid), cpAnchor['oldest_xid'])
      assert.equal(String(cp.oldestActiveXid), cpAnchor['oldest_active_xid'])
      assert.equal(cp.time, Date.parse(String(cpAnchor['checkpoint_time'])) / 1000)
      // 17+: an online checkpoint's redo is its own CHECKPOINT_REDO record.
      const redo = byLsn(records, cp.redo)
      const redoType = recordTypeName(redo.rmid, redo.info, profile)
      if (major >= 17) assert.equal(redoType, 'CHECKPOINT_REDO')
      // pg_control (captured later) names its own latest checkpoint, a record of this WAL too.
      const cf = decodeControlFile(f.file('pg_control'))
      const latest = byLsn(records, cf.checkPoint)
      assert.match(recordTypeName(latest.rmid, latest.info, profile), /^CHECKPOINT_(ONLINE|SHUTDOWN)$/)
      assert.deepEqual(decodeCheckpoint(latest.mainData, profile), cf.checkPointCopy)
    })

    it('finds the records of the statements the fixture ran', async () => {
      const { records } = await fixtureWal(f)
      const rel = (r: { spcOid: number; dbOid: number; relNumber: number }) => `${r.spcOid}/${r.dbOid}/${r.relNumber}`
      const of = (rmid: number, code: number) => records.filter((r) => r.rmid === rmid && (r.info & 0xf0) === code)

      const creates = of(RM.SMGR, profile.codes.XLOG_SMGR_CREATE).map((r) => decodeSmgrCreate(r.mainData))
      assert.ok(creates.some((c) => rel(c) === rel(anchors.smgrCreate) && c.forkNum === 0))

      const cpLsn = parseLsn(anchors.checkpoint.checkpoint_lsn)
      const fpi = records.find(
        (r) => r.lsn > cpLsn && r.blocks.some((b) => rel(b) === rel(anchors.heapFpi) && b.blockNumber === 0 && b.hasImage),
      )
      assert.ok(fpi, 'full-page image of the anchor table after the checkpoint')

      const drop = records.find((r) => r.rmid === RM.XACT && r.xid === anchors.dropTable.xid)
      assert.ok(drop)
      assert.equal(recordTypeName(drop.rmid, drop.info, profile), 'COMMIT')
      assert.ok(decodeXactDroppedRelations(drop.info, drop.mainData, profile).some((r) => rel(r) === rel(anchors.dropTable.rel)))
      assert.equal((drop.info & profile.codes.XLR_SPECIAL_REL_UPDATE) !== 0, profile.xactDropsAreSpecialRelUpdates)

      const truncates = of(RM.SMGR, profile.codes.XLOG_SMGR_TRUNCATE).map((r) => decodeSmgrTruncate(r.mainData))
      assert.ok(truncates.some((t) => rel(t) === rel(anchors.vacuumTruncate) && t.blkno === anchors.vacuumTruncate.blkno))

      const dbCreates = of(RM.DBASE, profile.codes.XLOG_DBASE_CREATE_FILE_COPY).map((r) => decodeDbaseCreateFileCopy(r.mainData))
      assert.deepEqual(
        dbCreates.filter((d) => d.db_id === anchors.createDatabase.db_id),
        [anchors.createDatabase],
      )
      const dbDrops = of(RM.DBASE, profile.codes.XLOG_DBASE_DROP).map((r) => decodeDbaseDrop(r.mainData))
      assert.deepEqual(
        dbDrops.filter((d) => d.db_id === anchors.dropDatabase.db_id),
        [anchors.dropDatabase],
      )
      for (const r of [...of(RM.SMGR, profile.codes.XLOG_SMGR_CREATE), ...of(RM.DBASE, profile.codes.XLOG_DBASE_DROP)]) {
        assert.ok((r.info & profile.codes.XLR_SPECIAL_REL_UPDATE) !== 0)
      }
    })

    it('ends each logical message where pg_logical_emit_message said, across pages and segments', async () => {
      const { records } = await fixtureWal(f)
      for (const m of anchors.messages) {
        const rec = records.find((r) => r.endLsn === parseLsn(m.endLsn))
        assert.ok(rec, `message ending at ${m.endLsn}`)
        assert.equal(rmgrName(rec.rmid), 'LogicalMessage')
        // xl_logical_message: dbId, transactional, prefix_size (with NUL), message_size, prefix, message.
        const prefixSize = Number(rec.mainData.readBigUInt64LE(8))
        const messageSize = Number(rec.mainData.readBigUInt64LE(16))
        assert.equal(rec.mainData.toString('utf8', 24, 24 + prefixSize - 1), m.prefix)
        assert.equal(messageSize, m.size)
        assert.ok(rec.mainData.subarray(24 + prefixSize).equals(Buffer.alloc(m.size, 'w')))
      }
      const crossing = records.find((r) => r.endLsn === parseLsn(anchors.messages[2]!.endLsn))!
      assert.notEqual(crossing.lsn / BigInt(f.json.segSize), crossing.endLsn / BigInt(f.json.segSize))
    })

    if (f.json.wal.walinspect !== null) {
      it('agrees with pg_get_wal_records_info on every record', async () => {
        const { records } = await fixtureWal(f)
        const rows = f.json.wal.walinspect!.records
        let i = records.indexOf(byLsn(records, rows[0]![0] as string))
        for (const row of rows) {
          const r = records[i++]!
          const ours = [
            formatLsn(r.lsn),
            formatLsn(r.endLsn),
            formatLsn(r.prev),
            String(r.xid),
            rmgrName(r.rmid),
            recordTypeName(r.rmid, r.info, profile),
            r.totLen,
            r.mainLen,
            r.fpiLen,
          ]
          assert.deepEqual(ours, row)
        }
      })
    }

    if (f.json.wal.walinspect?.blocks) {
      it('agrees with pg_get_wal_block_info on every block reference', async () => {
        const { records } = await fixtureWal(f)
        const rows = f.json.wal.walinspect!.blocks!
        const first = parseLsn(f.json.wal.walinspect!.records[0]![0] as string)
        const last = parseLsn(f.json.wal.walinspect!.records.at(-1)![0] as string)
        const ours = records
          .filter((r) => r.lsn >= first && r.lsn <= last)
          .flatMap((r) =>
            r.blocks.map((b) => [
              formatLsn(r.lsn),
              b.block_id,
              String(b.spcOid),
              String(b.dbOid),
              String(b.relNumber),
              b.forkNumber,
              b.blockNumber,
              b.data_length,
              b.image?.bimg_len ?? 0,
              fpiInfo(b),
            ]),
          )
        assert.deepEqual(ours, rows)
      })
    }

    if (f.json.wal.waldump !== null) {
      it('agrees with pg_waldump -b, including lz4 and zstd images', async () => {
        const { records } = await fixtureWal(f)
        const lines = f.text(f.json.wal.waldump!).split('\n')
        const methods = new Set<string>()
        let rec: Seen | undefined
        let blocks = 0
        const recLine = /^rmgr: (\S+)\s+len \(rec\/tot\):\s+(\d+)\/\s*(\d+), tx:\s+(\d+), lsn: (\S+), prev (\S+), desc: (\S+)/
        const blkLine =
          /^\tblkref #(\d+): rel (\d+)\/(\d+)\/(\d+) fork (\w+) blk (\d+)(?: \(FPW(?: for WAL verification)?\); hole: offset: (\d+), length: (\d+)(?:, compression saved: (\d+), method: (\w+))?)?$/
        for (const line of lines) {
          let m = recLine.exec(line)
          if (m !== null) {
            rec = byLsn(records, m[5]!.replace(/\/0+(?=.)/, '/'))
            assert.deepEqual(
              [
                rmgrName(rec.rmid),
                rec.totLen - rec.fpiLen,
                rec.totLen,
                rec.xid,
                formatLsn(rec.prev),
                recordTypeName(rec.rmid, rec.info, profile),
              ],
              [m[1], Number(m[2]), Number(m[3]), Number(m[4]), m[6]!.replace(/\/0+(?=.)/, '/'), m[7]],
            )
            blocks = 0
            continue
          }
          m = blkLine.exec(line)
          if (m === null) continue
          const b = rec!.blocks[blocks++]!
          assert.deepEqual(
            [b.block_id, b.spcOid, b.dbOid, b.relNumber, b.forkNumber, b.blockNumber],
            [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), ['main', 'fsm', 'vm', 'init'].indexOf(m[5]!), Number(m[6])],
          )
          assert.equal(b.hasImage, m[7] !== undefined)
          if (m[7] !== undefined) {
            assert.equal(b.image!.hole_offset, Number(m[7]))
            assert.equal(b.image!.hole_length, Number(m[8]))
            assert.equal(b.image!.compression, m[10] ?? 'none')
            if (m[9] !== undefined) assert.equal(8192 - b.image!.hole_length - b.image!.bimg_len, Number(m[9]))
            methods.add(b.image!.compression)
          }
        }
        assert.ok(methods.has('pglz') && methods.has('lz4') && methods.has('zstd') && methods.has('none'), [...methods].join())
      })
    }

    it('reads the same through small windows, a read()-only source, the async iterator, a reused record, without CRCs ahead and at random', async () => {
      const { records, end } = await fixtureWal(f)
      for (const o of [
        { windowSize: 8192 },
        { readInto: false },
        { generator: true, windowSize: 65536 },
        { sync: true },
        { sync: true, windowSize: 8192 },
        { sync: true, windowSize: 16384 },
        { sync: true, windowSize: 1 << 20 },
        { reuseRecord: true },
        { sync: true, reuseRecord: true, windowSize: 16384 },
        { nativeScan: false },
        { sync: true, nativeScan: false, reuseRecord: true },
      ] as ReadOptions[]) {
        const again = await readAll(f, o)
        assert.deepEqual(again.end, end)
        assert.equal(again.records.length, records.length)
        assert.deepEqual(again.records, records)
      }
      const { reader: r } = reader(f)
      for (let i = 0; i < records.length; i += 37) {
        const got = await r.readRecord(records[i]!.lsn)
        assert.ok('record' in got)
        assert.deepEqual(seen(got.record), records[i])
      }
      // `until` stops after the record that reaches it, with both APIs.
      const stopAt = records[Math.floor(records.length / 2)]!
      const { reader: u } = reader(f)
      const upTo: Seen[] = []
      assert.equal(
        await u.forEachRecord(
          records[0]!.lsn,
          (rec) => {
            upTo.push(seen(rec))
          },
          { until: stopAt.endLsn - 1n },
        ),
        null,
      )
      assert.deepEqual(upTo, records.slice(0, records.indexOf(stopAt) + 1))
      let count = 0
      const it = u.records(records[0]!.lsn, { until: stopAt.endLsn })
      for (let step = await it.next(); !step.done; step = await it.next()) count++
      assert.equal(count, records.indexOf(stopAt) + 1)
      // close() gives the buffers back: kept records lose their main data, loudly; the reader goes on.
      const { reader: c } = reader(f)
      const got0 = await c.readRecord(records[5]!.lsn)
      assert.ok('record' in got0)
      assert.equal(got0.record.mainData.length, records[5]!.mainLen)
      await c.close()
      assert.equal(got0.record.xl_tot_len, records[5]!.totLen)
      assert.throws(
        () => got0.record.mainData,
        (err: unknown) => err instanceof RewindError && err.code === 'INTERNAL',
      )
      const again0 = await c.readRecord(records[5]!.lsn)
      assert.ok('record' in again0 && again0.record.mainData.equals(records[5]!.mainData))
      await c.close()
      // A page boundary names the record after the page header.
      const afterHeader = records.find((x) => x.lsn % 8192n === 24n || x.lsn % BigInt(f.json.segSize) === 40n)!
      const got = await r.readRecord(afterHeader.lsn & ~8191n)
      assert.ok('record' in got && got.record.lsn === afterHeader.lsn)
    })

    it('ends where the bytes end: truncated segment, missing segment, recycled page', async () => {
      const { records } = await fixtureWal(f)
      const lastSeg = BigInt(f.json.wal.firstSegno + f.json.wal.segments.length - 1)
      // Cut the last segment in the middle of the page of the last record.
      const lastPage = at(f, records.at(-1)!.lsn).off & ~8191
      const cut = await readAll(f, { segments: editedSegments(f, (segno, b) => (segno === lastSeg ? b.subarray(0, lastPage + 100) : b)) })
      assert.equal(cut.end.reason, 'truncated-segment')
      assert.match(cut.end.message, /could not read file "0000000300000000000000[0-9A-F]{2}": read 100 of 8192/)
      assert.deepEqual(cut.records, records.slice(0, cut.records.length))
      assert.ok(cut.records.length < records.length)
      // Without the last segment, the record crossing into it is a WAL_MISSING error.
      for (const sync of [false, true]) {
        await assert.rejects(
          readAll(f, { sync, segments: editedSegments(f, (segno, b) => (segno === lastSeg ? null : b)) }),
          (err: unknown) => err instanceof RewindError && err.code === 'WAL_MISSING' && err.info.segment !== undefined,
        )
        const cutSync = await readAll(f, {
          sync,
          segments: editedSegments(f, (segno, b) => (segno === lastSeg ? b.subarray(0, lastPage + 100) : b)),
        })
        assert.equal(cutSync.end.reason, 'truncated-segment')
      }
      // The page after the end of WAL is a recycled one from an older segment.
      const endPage = (records.at(-1)!.endLsn + 8191n) & ~8191n
      const { reader: r } = reader(f)
      const stale = await r.readRecord(endPage)
      assert.ok('end' in stale)
      assert.equal(stale.end.reason, 'bad-pageaddr')
      assert.match(
        stale.end.message,
        /^unexpected pageaddr 0\/[0-9A-F]+ in WAL segment 0000000300000000000000[0-9A-F]{2}, LSN 0\/[0-9A-F]+, offset \d+$/,
      )
    })

    it('stops at a flipped byte, a bad page address, a foreign system or major', async () => {
      const { records } = await fixtureWal(f)
      const victim = records[Math.floor(records.length / 2)]!
      const v = at(f, victim.lsn)
      const flipped = await readAll(f, {
        segments: editedSegments(f, (segno, b) => {
          if (segno === v.segno) b[v.off + 30]! ^= 0x40
          return b
        }),
      })
      assert.equal(flipped.end.reason, 'bad-crc')
      assert.equal(flipped.end.lsn, records[records.indexOf(victim) - 1]!.endLsn)
      assert.equal(flipped.end.message, `incorrect resource manager data checksum in record at ${formatLsn(victim.lsn)}`)
      assert.deepEqual(flipped.records, records.slice(0, records.indexOf(victim)))

      const page = at(f, (victim.lsn & ~8191n) + 8192n)
      const moved = await readAll(f, {
        segments: editedSegments(f, (segno, b) => {
          if (segno === page.segno) b.writeUInt32LE(0x12345, page.off + 8)
          return b
        }),
      })
      assert.equal(moved.end.reason, 'bad-pageaddr')
      assert.ok(moved.records.length > records.indexOf(victim))

      const foreign = await readAll(f, { systemIdentifier: 42n, start: records[0]!.lsn })
      assert.equal(foreign.end.reason, 'bad-page-header')
      assert.match(
        foreign.end.message,
        /^WAL file is from different database system: WAL file database system identifier is \d+, pg_control database system identifier is 42$/,
      )
      assert.equal(foreign.records.length, 0)

      const otherMajor = await readAll(f, { profileMajor: major === 18 ? 17 : major + 1, start: records[0]!.lsn })
      assert.equal(otherMajor.end.reason, 'bad-magic')
      assert.match(otherMajor.end.message, /^invalid magic number [0-9A-F]{4} in WAL segment /)
    })

    it('checks every continuation page of a multi-page record', async () => {
      const { records } = await fixtureWal(f)
      const big = records.find((r) => r.endLsn === parseLsn(anchors.messages[1]!.endLsn))!
      const next = at(f, (big.lsn & ~8191n) + 8192n)
      const index = records.indexOf(big)
      const expectEnd = async (edit: (b: Buffer) => void, reason: string, message: string) => {
        const got = await readAll(f, {
          segments: editedSegments(f, (segno, b) => {
            if (segno === next.segno) edit(b)
            return b
          }),
        })
        assert.equal(got.end.reason, reason)
        assert.equal(got.end.message, message)
        assert.equal(got.end.lsn, records[index - 1]!.endLsn)
        assert.equal(got.records.length, index)
      }
      const rem = f.segments.get(next.segno)!.readUInt32LE(next.off + 16)
      await expectEnd(
        (b) => b.writeUInt32LE(rem + 8, next.off + 16),
        'bad-contrecord',
        `invalid contrecord length ${rem + 8} (expected ${rem}) at ${formatLsn(big.lsn)}`,
      )
      await expectEnd(
        (b) => b.writeUInt16LE(b.readUInt16LE(next.off + 2) & ~XLP_FIRST_IS_CONTRECORD, next.off + 2),
        'bad-contrecord',
        `there is no contrecord flag at ${formatLsn(big.lsn)}`,
      )
      await expectEnd(
        (b) => b.writeUInt32LE(1, next.off + 4),
        'bad-page-header',
        `out-of-sequence timeline ID 1 (after 3) in WAL segment 000000030000000000000${next.segno.toString(16).toUpperCase().padStart(3, '0')}, ` +
          `LSN ${formatLsn((big.lsn & ~8191n) + 8192n)}, offset ${next.off}`,
      )
    })

    it('follows a record overwritten after a crash (XLP_FIRST_IS_OVERWRITE_CONTRECORD)', async () => {
      // What recovery leaves when the end of a multi-page record was lost: the next page says so
      // and starts with XLOG_OVERWRITE_CONTRECORD, linked to the record before the lost one.
      const { records } = await fixtureWal(f)
      const big = records.find((r) => r.endLsn === parseLsn(anchors.messages[1]!.endLsn))!
      const before = records[records.indexOf(big) - 1]!
      const pageLsn = (big.lsn & ~8191n) + 8192n
      const p = at(f, pageLsn)
      const segments = editedSegments(f, (segno, b) => {
        if (segno !== p.segno) return b
        b.fill(0, p.off + 24, p.off + 8192)
        b.writeUInt16LE(profile.xlpFirstIsOverwriteContrecord, p.off + 2)
        b.writeUInt32LE(0, p.off + 16)
        const rec = Buffer.alloc(42)
        rec.writeUInt32LE(42, 0)
        rec.writeBigUInt64LE(before.lsn, 8)
        rec[16] = 0xd0
        rec[17] = RM.XLOG
        rec[24] = 255
        rec[25] = 16
        rec.writeBigUInt64LE(big.lsn, 26)
        rec.writeUInt32LE(crc32c(rec.subarray(0, 20), crc32c(rec.subarray(24))), 20)
        rec.copy(b, p.off + 24)
        return b
      })
      const got = await readAll(f, { segments })
      const i = records.indexOf(big)
      assert.deepEqual(got.records.slice(0, i), records.slice(0, i))
      const over = got.records[i]!
      assert.equal(over.lsn, pageLsn + 24n)
      assert.equal(over.prev, before.lsn)
      assert.equal(recordTypeName(over.rmid, over.info, profile), 'OVERWRITE_CONTRECORD')
      assert.equal(over.mainData.readBigUInt64LE(0), big.lsn)
      assert.equal(got.records.length, i + 1)
      assert.equal(got.end.reason, 'zero-length')
    })
  })
}
