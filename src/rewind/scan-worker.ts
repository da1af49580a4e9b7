// One thread of a parallel WAL scan: scans its stretch of the target's WAL and sends back what it
// found, the block bitmaps moved rather than copied. See scan-parallel.ts.

import { parentPort, workerData } from 'node:worker_threads'
import { profileForMajor } from '../pg/versions.js'
import { WalReader } from '../pg/wal/reader.js'
import { scanRange } from './scan.js'
import { timelineChooser, WalDirectory } from './wal-source.js'

export interface ScanWorkerInput {
  readonly major: number
  readonly walDir: string
  readonly segSize: number
  readonly blockSize: number
  readonly systemIdentifier: string
  readonly relsegSize: number
  readonly history: ReadonlyArray<{ tli: number; begin: string; end: string | null }>
  readonly start: string
  readonly limit: { end: string } | { stopAt: string }
}

export type ScanWorkerOutput =
  | { ok: true; records: number; firstLsn: string | null; firstPrev: string | null; lastLsn: string | null; lastEnd: string | null
      stopRecordPrev: string | null; bitmaps: Array<[string, Uint32Array]> }
  | { ok: false; message: string }

async function run(input: ScanWorkerInput): Promise<ScanWorkerOutput> {
  const profile = profileForMajor(input.major)
  const history = input.history.map((e) => ({ tli: e.tli, begin: BigInt(e.begin), end: e.end === null ? null : BigInt(e.end) }))
  const dir = new WalDirectory({ dir: input.walDir, segSize: input.segSize, timelineOf: timelineChooser(history, input.segSize) })
  try {
    const reader = new WalReader({ profile, segSize: input.segSize, blockSize: input.blockSize, systemIdentifier: BigInt(input.systemIdentifier), source: dir })
    const limit = 'end' in input.limit ? { end: BigInt(input.limit.end) } : { stopAt: BigInt(input.limit.stopAt) }
    const r = await scanRange(reader, BigInt(input.start), limit, profile, input.relsegSize)
    const str = (v: bigint | null | undefined) => (v === null || v === undefined ? null : v.toString())
    return {
      ok: true, records: r.records, firstLsn: str(r.first?.lsn), firstPrev: str(r.first?.xl_prev), lastLsn: str(r.lastLsn),
      lastEnd: str(r.lastEnd), stopRecordPrev: str(r.stopRecordPrev), bitmaps: [...r.changedBlocks.bitmaps()],
    }
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) }
  } finally {
    await dir.close()
  }
}

if (parentPort) {
  const out = await run(workerData as ScanWorkerInput)
  parentPort.postMessage(out, out.ok ? out.bitmaps.map(([, bits]) => bits.buffer as ArrayBuffer) : [])
}
