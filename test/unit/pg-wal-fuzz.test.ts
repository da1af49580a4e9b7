// Hostile bytes: thousands of randomly corrupted copies of the real fixture WAL (flipped bytes,
// garbage and zeroed ranges, pages copied over others, wild record lengths, truncated and missing
// segments), read to the end. Every run must end in a typed RewindError or an end of WAL with a
// known reason: never another exception, never a hang. The same for single records, pg_control and
// history files. Seeded (WALREWIND_FUZZ_SEED overrides) and bounded in time.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { crc32c } from '../../src/pg/crc32c.js'
import { decodeControlFile } from '../../src/pg/control.js'
import { formatLsn, parseLsn, segmentStart, type Lsn } from '../../src/pg/lsn.js'
import { parseTimelineHistory } from '../../src/pg/timeline.js'
import { WalReader, type EndOfWalReason } from '../../src/pg/wal/reader.js'
import { decodeRecord } from '../../src/pg/wal/record.js'
import { fixtureMajors, loadFixture, MemorySegments, type Fixture } from '../fixtures/load.js'

const SEED = Number(process.env['WALREWIND_FUZZ_SEED'] ?? 4)
/** A fixed number of runs, not a time budget: the same seed then reaches the same checks on a busy machine. */
const RUNS = Number(process.env['WALREWIND_FUZZ_RUNS'] ?? 600)

const REASONS: ReadonlySet<EndOfWalReason> = new Set([
  'zero-length',
  'bad-magic',
  'bad-pageaddr',
  'bad-page-header',
  'bad-record-header',
  'bad-crc',
  'bad-prev-link',
  'bad-contrecord',
  'bad-record',
  'truncated-segment',
])

/** mulberry32: small, seeded, good enough to pick bytes. */
function prng(seed: number): { next: () => number; int: (n: number) => number } {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { next, int: (n: number) => Math.floor(next() * n) }
}

interface Target {
  fixture: Fixture
  start: Lsn
  /** Bytes of WAL in use per segment (corruption goes there, where it matters). */
  used: Map<bigint, number>
  /** Records that lie on one page: segment, offset, xl_tot_len. */
  inPage: { segno: bigint; off: number; totLen: number }[]
}

async function target(major: number): Promise<Target> {
  const fixture = loadFixture(major)
  const source = new MemorySegments(fixture.segments, 3, fixture.json.segSize)
  const reader = new WalReader({ profile: fixture.profile, segSize: fixture.json.segSize, source })
  const start = (await reader.findNextRecord(segmentStart(BigInt(fixture.json.wal.firstSegno), fixture.json.segSize)))!
  let last = start
  const inPage: Target['inPage'] = []
  const segSize = BigInt(fixture.json.segSize)
  await reader.forEachRecord(start, (r) => {
    last = r.endLsn
    const off = Number(r.lsn % segSize)
    if ((off % 8192) + r.xl_tot_len <= 8192) inPage.push({ segno: r.lsn / segSize, off, totLen: r.xl_tot_len })
  })
  const used = new Map<bigint, number>()
  const seg = BigInt(fixture.json.segSize)
  for (const segno of fixture.segments.keys()) {
    used.set(segno, last / seg > segno ? fixture.json.segSize : Math.max(8192, Number(last % seg) + 8192))
  }
  return { fixture, start, used, inPage }
}

/** An FNV-1a-style hash chained over the records (fields and main data), to compare two readings without keeping them. */
function fold(h: number, text: string): number {
  h ^= 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

type Mutation = (segs: Map<bigint, Buffer>, r: ReturnType<typeof prng>, t: Target) => string

/** A spot in the WAL in use, in a segment still there (an earlier mutation may have dropped one). */
const pick = (segs: Map<bigint, Buffer>, t: Target, r: ReturnType<typeof prng>): { segno: bigint; off: number; used: number } => {
  const keys = [...segs.keys()]
  const segno = keys[r.int(keys.length)]!
  const used = Math.min(t.used.get(segno)!, segs.get(segno)!.length)
  return { segno, off: r.int(Math.max(1, used - 8)), used: Math.max(used, 8) }
}

const MUTATIONS: Mutation[] = [
  (segs, r, t) => {
    // A record whose CRC still holds over changed bytes (mostly its block headers): what only the
    // decoder's own rules can catch.
    const { segno, off, totLen } = t.inPage[r.int(t.inPage.length)]!
    const b = segs.get(segno)
    if (b === undefined || off + totLen > b.length) return 'no record to rewrite'
    const n = 1 + r.int(4)
    for (let i = 0; i < n; i++) {
      const at = off + 24 + (r.int(3) === 0 ? r.int(totLen - 24) : r.int(Math.min(40, totLen - 24)))
      b[at] = r.int(2) === 0 ? r.int(256) : b[at]! ^ (1 << r.int(8))
    }
    b.writeUInt32LE(crc32c(b.subarray(off, off + 20), crc32c(b.subarray(off + 24, off + totLen))), off + 20)
    return `rewrite ${n} body bytes of the record at ${segno}:${off}, CRC made to match`
  },
  (segs, r, t) => {
    const p = pick(segs, t, r)
    const n = 1 + r.int(8)
    for (let i = 0; i < n; i++) segs.get(p.segno)![Math.min(p.used - 1, p.off + r.int(64))]! ^= 1 << r.int(8)
    return `flip ${n} bits near ${p.segno}:${p.off}`
  },
  (segs, r, t) => {
    const p = pick(segs, t, r)
    const len = 1 + r.int(300)
    const b = segs.get(p.segno)!
    for (let i = p.off; i < Math.min(b.length, p.off + len); i++) b[i] = r.int(256)
    return `garbage ${len} at ${p.segno}:${p.off}`
  },
  (segs, r, t) => {
    const p = pick(segs, t, r)
    const len = 1 + r.int(9000)
    const b = segs.get(p.segno)!
    b.fill(0, p.off, Math.min(b.length, p.off + len))
    return `zero ${len} at ${p.segno}:${p.off}`
  },
  (segs, r, t) => {
    const a = pick(segs, t, r)
    const b = pick(segs, t, r)
    const from = a.off & ~8191
    const to = b.off & ~8191
    const src = segs.get(a.segno)!
    const dst = segs.get(b.segno)!
    if (to < dst.length) src.copy(dst, to, from, Math.min(src.length, from + 8192))
    return `page ${a.segno}:${from} over ${b.segno}:${to}`
  },
  (segs, r, t) => {
    // A page header field (magic, info, tli, pageaddr, rem_len) set to anything.
    const p = pick(segs, t, r)
    const page = p.off & ~8191
    const field = [0, 2, 4, 8, 12, 16][r.int(6)]!
    const b = segs.get(p.segno)!
    if (page + field + 2 <= b.length) b.writeUInt16LE(r.int(65536), page + field)
    return `page header +${field} at ${p.segno}:${page}`
  },
  (segs, r, t) => {
    // Some 8-aligned spot read as a record length: anything from 0 to 4 GiB.
    const p = pick(segs, t, r)
    const at = p.off & ~7
    const wild = [0, 1, 23, 24, 25, 8192, 65536, 1 << 30, 0xffffffff, r.int(0xffffffff)][r.int(10)]!
    if (at + 4 <= segs.get(p.segno)!.length) segs.get(p.segno)!.writeUInt32LE(wild >>> 0, at)
    return `length ${wild} at ${p.segno}:${at}`
  },
  (segs, r, t) => {
    const p = pick(segs, t, r)
    segs.set(p.segno, segs.get(p.segno)!.subarray(0, p.off))
    return `truncate ${p.segno} to ${p.off}`
  },
  (segs, r) => {
    // Never the first: with it gone there is nothing to read at all.
    const keys = [...segs.keys()].slice(1)
    if (keys.length === 0) return 'no segment to drop'
    const segno = keys[r.int(keys.length)]!
    segs.delete(segno)
    return `drop segment ${segno}`
  },
]

describe('fuzz', () => {
  it('corrupted WAL always ends in a typed error or a known end of WAL', async (t0) => {
    const r = prng(SEED)
    const targets = await Promise.all(fixtureMajors().map(target))
    const reasons = new Map<string, number>()
    let runs = 0
    for (; runs < RUNS; runs++) {
      const t = targets[r.int(targets.length)]!
      const segs = new Map([...t.fixture.segments].map(([k, v]) => [k, Buffer.from(v)]))
      const what: string[] = []
      for (let i = 0, n = 1 + r.int(3); i < n; i++) what.push(MUTATIONS[r.int(MUTATIONS.length)]!(segs, r, t))
      const mode = r.int(3)
      const windowSize = [8192, 65536, 1 << 20][r.int(3)]!
      const context = `seed ${SEED}, run ${runs}, PostgreSQL ${t.fixture.major}: ${what.join('; ')}`
      // The same bytes read with the native window scan and without, one reused record or a new one
      // each time: the records given and the outcome must not depend on how.
      const outcomes: string[] = []
      for (const nativeScan of [true, false]) {
        const source = new MemorySegments(segs, 3, t.fixture.json.segSize, { readInto: mode > 0, sync: mode === 2 })
        const reader = new WalReader({
          profile: t.fixture.profile,
          segSize: t.fixture.json.segSize,
          systemIdentifier: BigInt(t.fixture.json.systemIdentifier),
          source,
          windowSize,
          nativeScan,
        })
        let count = 0
        let digest = 0
        try {
          const end = await reader.forEachRecord(
            t.start,
            (rec) => {
              count++
              assert.ok(count < 100_000, `no end in sight (${context})`)
              digest = fold(digest, JSON.stringify(rec) + rec.mainData.toString('hex'))
            },
            { reuseRecord: r.int(2) === 0 },
          )
          assert.ok(end !== null && REASONS.has(end.reason), `unexpected end ${end?.reason}: ${end?.message} (${context})`)
          assert.equal(typeof end.message, 'string')
          assert.ok(end.lsn >= t.start, context)
          if (nativeScan) reasons.set(end.reason, (reasons.get(end.reason) ?? 0) + 1)
          outcomes.push(`${count} records (digest ${digest}), then ${end.reason} at ${formatLsn(end.lsn)}: ${end.message}`)
        } catch (err) {
          if (!(err instanceof RewindError)) throw new Error(`${context}: ${(err as Error).stack}`)
          if (nativeScan) reasons.set(err.code, (reasons.get(err.code) ?? 0) + 1)
          outcomes.push(`${count} records (digest ${digest}), then ${err.code}: ${err.message}`)
        }
      }
      assert.equal(outcomes[0], outcomes[1], `with and without the native scan (${context})`)
    }
    t0.diagnostic(`${runs} runs (seed ${SEED}): ${[...reasons].map(([k, v]) => `${k} ${v}`).join(', ')}`)
    // The corruptions reach every kind of check.
    for (const reason of [
      'bad-crc',
      'bad-pageaddr',
      'bad-magic',
      'bad-record-header',
      'truncated-segment',
      'WAL_MISSING',
      'bad-contrecord',
    ]) {
      assert.ok((reasons.get(reason) ?? 0) > 0, `no run ended with ${reason}: ${JSON.stringify([...reasons])}`)
    }
  })

  it('single records with a valid CRC but shuffled bodies decode or fail with WAL_INVALID', async () => {
    const r = prng(SEED + 1)
    const t = await target(fixtureMajors().at(-1)!)
    // Whole records that sit on one page of the first segment, as they are on disk.
    const seg = t.fixture.segments.get(BigInt(t.fixture.json.wal.firstSegno))!
    const source = new MemorySegments(t.fixture.segments, 3, t.fixture.json.segSize)
    const reader = new WalReader({ profile: t.fixture.profile, segSize: t.fixture.json.segSize, source })
    const records: { lsn: Lsn; bytes: Buffer }[] = []
    await reader.forEachRecord(t.start, (rec) => {
      const off = Number(rec.lsn % BigInt(t.fixture.json.segSize))
      if (rec.lsn / BigInt(t.fixture.json.segSize) === BigInt(t.fixture.json.wal.firstSegno) && (off % 8192) + rec.xl_tot_len <= 8192) {
        records.push({ lsn: rec.lsn, bytes: Buffer.from(seg.subarray(off, off + rec.xl_tot_len)) })
      }
    })
    let ok = 0
    let failed = 0
    for (let i = 0; i < 5000; i++) {
      const { lsn, bytes } = records[r.int(records.length)]!
      const b = Buffer.from(bytes)
      for (let n = 1 + r.int(4); n > 0; n--) b[24 + r.int(Math.max(1, b.length - 24))] = r.int(256)
      if (b.length <= 24) continue
      b.writeUInt32LE(crc32c(b.subarray(0, 20), crc32c(b.subarray(24))), 20)
      try {
        const rec = decodeRecord(b, lsn, t.fixture.profile)
        assert.ok(rec.main_data_len <= b.length)
        ok++
      } catch (err) {
        assert.ok(err instanceof RewindError && err.code === 'WAL_INVALID', String(err))
        failed++
      }
    }
    assert.ok(ok > 0 && failed > 0, `${ok} decoded, ${failed} refused`)
  })

  it('pg_control and history files: any bytes give a decoded file or a typed error', () => {
    const r = prng(SEED + 2)
    for (const major of fixtureMajors()) {
      const good = loadFixture(major).file('pg_control')
      for (let i = 0; i < 300; i++) {
        const b = Buffer.from(good)
        for (let n = 1 + r.int(6); n > 0; n--) b[r.int(300)] = r.int(256)
        // Half the time the CRC is made valid again, so the checks behind it run too.
        if (r.next() < 0.5) for (const off of [288, 292]) b.writeUInt32LE(crc32c(b.subarray(0, off)), off)
        try {
          decodeControlFile(b)
        } catch (err) {
          assert.ok(err instanceof RewindError && ['CONTROL_FILE_INVALID', 'INCOMPATIBLE_VERSION'].includes(err.code), String(err))
        }
      }
    }
    const alphabet = '0123456789ABCDEFabcdef/\t \n#xyz'
    for (let i = 0; i < 3000; i++) {
      let text = ''
      for (let n = r.int(60); n > 0; n--) text += alphabet[r.int(alphabet.length)]
      try {
        const entries = parseTimelineHistory(text, 1 + r.int(20))
        assert.equal(entries.at(-1)!.end, null)
      } catch (err) {
        assert.ok(err instanceof RewindError && err.code === 'TIMELINE_HISTORY_INVALID', String(err))
      }
    }
    assert.throws(() => parseLsn('ffffffffff/0'), RewindError)
  })
})
