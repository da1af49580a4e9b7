// The WAL scan on several threads. The stretch from the last common checkpoint to the end of the
// target's WAL is cut at segment starts, each cut moved to the first record that begins in that
// segment (past the tail of a record continued from before), and each piece scanned by a worker.
// The pieces must join up: the record at each cut links back (xl_prev) to the last record of the
// piece before it. This is only a faster way to the same result: if anything does not fit, the
// caller scans again on one thread, which also gives the exact error.

import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { maxAlign, segmentOf, segmentStart, type Lsn } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { pageHeaderSize, decodePageHeader, XLOG_BLCKSZ, XLP_FIRST_IS_CONTRECORD } from '../pg/wal/page.js'
import type { WalSegmentSource } from '../pg/wal/reader.js'
import { BlockMap } from './block-map.js'
import { checkEndPoint, type ScanResult } from './scan.js'
import type { ScanWorkerInput, ScanWorkerOutput } from './scan-worker.js'

/** A piece smaller than this is not worth a thread. */
const MIN_BYTES_PER_WORKER = Number(process.env["WALREWIND_SCAN_MIN_BYTES"] ?? 96 * 1024 * 1024)
const MAX_WORKERS = 4

/** Where the first record that begins in segment `segno` starts, or null if none does. */
export async function firstRecordInSegment(source: WalSegmentSource, segno: bigint, segSize: number): Promise<Lsn | null> {
  const base = segmentStart(segno, segSize)
  for (let off = 0; off < segSize; off += XLOG_BLCKSZ) {
    const page = await source.read(segno, off, XLOG_BLCKSZ)
    if (page.length < XLOG_BLCKSZ) return null
    const header = decodePageHeader(page)
    if (header.xlp_pageaddr !== base + BigInt(off)) return null
    const size = pageHeaderSize(page)
    if ((header.xlp_info & XLP_FIRST_IS_CONTRECORD) === 0) return base + BigInt(off + size)
    // The tail of a record from before fills this page, or ends on it.
    if (header.xlp_rem_len < XLOG_BLCKSZ - size) {
      const next = maxAlign(base + BigInt(off + size + header.xlp_rem_len))
      // Ending flush with the page: the next record begins after the next page's header.
      if (next % BigInt(XLOG_BLCKSZ) !== 0n) return next
    }
  }
  return null
}

export interface ParallelScanInput {
  readonly major: number
  readonly walDir: string
  readonly wal: WalSegmentSource
  readonly history: readonly TimelineEntry[]
  readonly segSize: number
  readonly blockSize: number
  readonly systemIdentifier: bigint
  readonly relsegSize: number
  readonly start: Lsn
  readonly end: Lsn
  readonly threads?: number
}

/** The scan on several threads, or null when it is not worth it or the pieces did not join. */
export async function scanTargetWalParallel(input: ParallelScanInput): Promise<(ScanResult & { threads: number }) | null> {
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length
  const wanted = Math.min(input.threads ?? cpus, MAX_WORKERS, Math.floor(Number(input.end - input.start) / MIN_BYTES_PER_WORKER))
  if (wanted < 2) return null
  const firstSeg = segmentOf(input.start, input.segSize)
  const lastSeg = segmentOf(input.end, input.segSize)
  const span = lastSeg - firstSeg
  const cuts: Lsn[] = []
  for (let i = 1; i < wanted; i++) {
    const cut = await firstRecordInSegment(input.wal, firstSeg + (span * BigInt(i)) / BigInt(wanted), input.segSize)
    if (cut === null || cut <= (cuts[cuts.length - 1] ?? input.start) || cut >= input.end) return null
    cuts.push(cut)
  }
  const history = input.history.map((e) => ({ tli: e.tli, begin: e.begin.toString(), end: e.end === null ? null : e.end.toString() }))
  const starts = [input.start, ...cuts]
  const outputs = await Promise.all(starts.map((start, i) => runWorker({
    major: input.major, walDir: input.walDir, segSize: input.segSize, blockSize: input.blockSize,
    systemIdentifier: input.systemIdentifier.toString(), relsegSize: input.relsegSize, history, start: start.toString(),
    limit: i < cuts.length ? { stopAt: cuts[i]!.toString() } : { end: input.end.toString() },
  })))
  if (outputs.some((o) => !o.ok)) return null
  const ok = outputs as Array<Extract<ScanWorkerOutput, { ok: true }>>
  // Each cut's record must be the very next record after the piece before it.
  for (let i = 0; i < cuts.length; i++) {
    if (ok[i]!.lastLsn === null || ok[i]!.stopRecordPrev !== ok[i]!.lastLsn) return null
    if (ok[i + 1]!.firstLsn !== cuts[i]!.toString()) return null
  }
  const last = ok[ok.length - 1]!
  checkEndPoint(last.lastEnd === null ? null : BigInt(last.lastEnd), input.start, input.end)
  const changedBlocks = new BlockMap()
  let records = 0
  for (const o of ok) {
    records += o.records
    for (const [p, bits] of o.bitmaps) changedBlocks.mergeBitmap(p, bits)
  }
  return { changedBlocks, records, walBytes: Number(input.end - input.start), threads: starts.length }
}

function runWorker(input: ScanWorkerInput): Promise<ScanWorkerOutput> {
  return new Promise((resolve) => {
    const worker = new Worker(path.join(path.dirname(fileURLToPath(import.meta.url)), 'scan-worker.js'), { workerData: input })
    worker.once('message', (out: ScanWorkerOutput) => resolve(out))
    worker.once('error', (err) => resolve({ ok: false, message: err.message }))
    worker.once('exit', (code) => { if (code !== 0) resolve({ ok: false, message: `scan worker exited with ${code}` }) })
  })
}
