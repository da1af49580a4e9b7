// Benchmark (not a test): WAL decoding throughput of walrewind's reader against pg_waldump on the
// same PostgreSQL 15 segments. A pgbench cluster is built (bulk load = big multi-insert records and
// full-page images; then OLTP traffic = many small records), stopped, and each WAL range is read
// by `pg_waldump -q` (Debian 15: every record read, CRC-checked and decoded, nothing printed) and
// by WalReader over the pg_wal directory (every record CRC-checked and decoded into objects with
// their block references). Best and median wall time of N interleaved runs after a warm-up; MiB/s of WAL.
// Usage: node dist/bench/wal-decode.js [--scale=30] [--seconds=30] [--runs=7] [--json] [--wal-dir=DIR]
// --wal-dir keeps the WAL made there, and reuses it when it is there (same bytes from run to run).

import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { formatLsn, parseLsn, type Lsn } from '../src/pg/lsn.js'
import { PG15 } from '../src/pg/versions.js'
import { walScanMethod } from '../src/pg/native.js'
import { WalReader } from '../src/pg/wal/reader.js'
import { WalDirectory } from '../src/rewind/wal-source.js'
import { Kit } from '../test/kit/index.js'

const DEBIAN_15 = '/usr/lib/postgresql/15/bin'
const SEG = 16 * 1024 * 1024
const run = promisify(execFile)

function arg(name: string, fallback: string): string {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found ? found.slice(name.length + 3) : fallback
}

interface Timing {
  best: number
  median: number
}

function timing(seconds: number[]): Timing {
  const sorted = [...seconds].sort((a, b) => a - b)
  return { best: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]! }
}

/**
 * Each contender once per round, rounds interleaved (a busy machine slows all of them alike), after
 * a warm-up round (page cache, JIT).
 */
async function race(contenders: Record<string, () => Promise<unknown>>, runs: number): Promise<Record<string, Timing>> {
  const seconds: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]))
  for (let round = -1; round < runs; round++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const t0 = process.hrtime.bigint()
      await fn()
      if (round >= 0) seconds[name]!.push(Number(process.hrtime.bigint() - t0) / 1e9)
    }
  }
  return Object.fromEntries(Object.entries(seconds).map(([k, v]) => [k, timing(v)]))
}

async function pgWaldump(walDir: string, start: Lsn, end: Lsn): Promise<void> {
  await run(path.join(DEBIAN_15, 'pg_waldump'), ['-q', '-p', walDir, '-s', formatLsn(start), '-e', formatLsn(end)])
}

/**
 * Reads [start, end) with the reader; `mode` is the API: the callback with one reused record (as
 * the rewind's scan reads), the callback with a record object each, or the async iterator.
 */
async function walrewind(
  walDir: string,
  start: Lsn,
  end: Lsn,
  mode: 'reused' | 'callback' | 'iterator',
): Promise<{ records: number; blocks: number }> {
  const source = new WalDirectory({ dir: walDir, segSize: SEG, timelineOf: () => 1 })
  const reader = new WalReader({ profile: PG15, segSize: SEG, source })
  let records = 0
  let blocks = 0
  try {
    // As pg_rewind reads: up to the record that ends at `end`.
    if (mode !== 'iterator') {
      await reader.forEachRecord(
        start,
        (r) => {
          records++
          blocks += r.blocks.length
        },
        { until: end, reuseRecord: mode === 'reused' },
      )
    } else {
      for await (const r of reader.records(start, { until: end })) {
        records++
        blocks += r.blocks.length
      }
    }
  } finally {
    await reader.close()
    await source.close()
  }
  return { records, blocks }
}

interface Range {
  name: string
  start: Lsn
  end: Lsn
}

interface Wal {
  walDir: string
  ranges: Range[]
  /** How it was made (for the report): pgbench scale and seconds. */
  made: { scale: number; seconds: number }
}

/**
 * A PostgreSQL 15 cluster's WAL from `pgbench -i` then `pgbench -T`, and the three ranges to read.
 * With `saveTo`, the WAL and the ranges are kept there (--wal-dir) for later runs on the same bytes.
 */
async function makeWal(kit: Kit, scale: number, seconds: number, saveTo: string): Promise<Wal> {
  const node = await kit.initNode('pg15', 15, { conf: { max_wal_size: '4GB', wal_keep_size: '8GB', wal_compression: 'pglz' } })
  await node.start()
  const pgbench = async (args: string[]) => {
    const r = await kit.run(
      path.join(DEBIAN_15, 'pgbench'),
      ['-h', node.host, '-p', String(node.port), '-U', 'postgres', ...args, 'postgres'],
      { timeoutMs: 3_600_000 },
    )
    if (r.code !== 0) throw new Error(r.stderr)
  }
  const lsn = async () => parseLsn(await node.queryValue<string>('select pg_current_wal_insert_lsn()::text'))
  const bulkStart = await lsn()
  console.error(`pgbench -i -s ${scale}`)
  await pgbench(['-i', '-q', '-s', String(scale)])
  await node.query('checkpoint')
  const oltpStart = await lsn()
  console.error(`pgbench -T ${seconds}`)
  await pgbench(['-c', '2', '-T', String(seconds)])
  const oltpEnd = await lsn()
  await node.stop()
  let walDir = path.join(node.dataDir, 'pg_wal')

  // Both sides start at a record (pg_waldump finds the next one itself, so give it the same).
  const probe = new WalReader({ profile: PG15, segSize: SEG, source: new WalDirectory({ dir: walDir, segSize: SEG, timelineOf: () => 1 }) })
  const ranges = [
    { name: 'bulk load (pgbench -i)', start: (await probe.findNextRecord(bulkStart))!, end: oltpStart },
    { name: 'OLTP (pgbench -T)', start: (await probe.findNextRecord(oltpStart))!, end: oltpEnd },
    { name: 'all', start: (await probe.findNextRecord(bulkStart))!, end: oltpEnd },
  ]
  if (saveTo !== '') {
    fs.mkdirSync(saveTo, { recursive: true })
    for (const f of fs.readdirSync(walDir)) if (/^[0-9A-F]{24}$/.test(f)) fs.copyFileSync(path.join(walDir, f), path.join(saveTo, f))
    fs.writeFileSync(
      path.join(saveTo, 'ranges.json'),
      JSON.stringify(ranges.map((r) => ({ ...r, start: formatLsn(r.start), end: formatLsn(r.end) }))),
    )
    fs.writeFileSync(path.join(saveTo, 'made.json'), JSON.stringify({ scale, seconds }))
    walDir = saveTo
  }
  return { walDir, ranges, made: { scale, seconds } }
}

function loadSaved(dir: string): Wal {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'ranges.json'), 'utf8')) as { name: string; start: string; end: string }[]
  const madeFile = path.join(dir, 'made.json')
  const made = fs.existsSync(madeFile) ? (JSON.parse(fs.readFileSync(madeFile, 'utf8')) as Wal['made']) : { scale: NaN, seconds: NaN }
  return { walDir: dir, ranges: raw.map((r) => ({ name: r.name, start: parseLsn(r.start), end: parseLsn(r.end) })), made }
}

async function main(): Promise<void> {
  const scale = Number(arg('scale', '30'))
  const seconds = Number(arg('seconds', '30'))
  const runs = Number(arg('runs', '7'))
  const saved = arg('wal-dir', '')
  const kit = await Kit.create('bench-wal-decode')
  try {
    const { walDir, ranges, made } =
      saved !== '' && fs.existsSync(path.join(saved, 'ranges.json')) ? loadSaved(saved) : await makeWal(kit, scale, seconds, saved)
    const results = []
    for (const r of ranges) {
      const mb = Number(r.end - r.start) / (1024 * 1024)
      const counted = await walrewind(walDir, r.start, r.end, 'callback')
      console.error(`${r.name}: ${formatLsn(r.start)}..${formatLsn(r.end)}, ${mb.toFixed(1)} MiB, ${counted.records} records`)
      const t = await race(
        {
          waldump: () => pgWaldump(walDir, r.start, r.end),
          reused: () => walrewind(walDir, r.start, r.end, 'reused'),
          callback: () => walrewind(walDir, r.start, r.end, 'callback'),
          iterator: () => walrewind(walDir, r.start, r.end, 'iterator'),
        },
        runs,
      )
      results.push({
        range: r.name,
        mib: mb,
        records: counted.records,
        blockRefs: counted.blocks,
        waldump: t['waldump']!,
        reused: t['reused']!,
        callback: t['callback']!,
        iterator: t['iterator']!,
      })
    }
    const cpus = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*: (.*)$/m)?.[1] ?? 'unknown CPU'
    if (process.argv.includes('--json')) {
      console.log(JSON.stringify({ node: process.version, cpus, walScanMethod, ...made, runs, results }, null, 2))
      return
    }
    console.log(`${process.version}, ${cpus}, pgbench scale ${made.scale} + ${made.seconds} s, best (median) of ${runs} runs, MiB/s of WAL`)
    console.log(`WAL records checked and decoded by: ${walScanMethod}\n`)
    console.log(
      '| WAL | MiB | records | pg_waldump -q | walrewind forEachRecord, reused record | forEachRecord, a record each | records() iterator |',
    )
    console.log('|---|---:|---:|---:|---:|---:|---:|')
    const rate = (mib: number, t: Timing) => `${(mib / t.best).toFixed(0)} (${(mib / t.median).toFixed(0)})`
    for (const x of results) {
      console.log(
        `| ${x.range} | ${x.mib.toFixed(1)} | ${x.records} | ${rate(x.mib, x.waldump)} | ${rate(x.mib, x.reused)} | ${rate(x.mib, x.callback)} | ${rate(x.mib, x.iterator)} |`,
      )
    }
  } finally {
    await kit.cleanup()
  }
}

await main()
