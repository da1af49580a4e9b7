// The block comparison engine: which blocks of files present on both sides differ, found without
// moving the cluster. A stopped source on this machine is read in place and compared byte for byte
// with the target; any other source computes digests of block ranges where its files are (a server
// in SQL), and only the digests travel. Several batches are in flight at once; memory stays at one
// batch buffer or two per worker, whatever the size of the files.

import path from 'node:path'
import { RewindError } from '../errors.js'
import type { BlockMap } from '../block-map.js'
import type { BlockDigests, DigestAlgorithm, Source } from '../source/source.js'
import { blockDigestsOf, DIGEST_ALGORITHM } from './digest.js'
import { type CompareFile, type CompareRange, compareBatches, totalComparedBytes } from './ranges.js'
import { readExactly, readRange } from './read.js'

export type { CompareFile } from './ranges.js'

/** Bytes a batch reads: digests from a server are asked for this much at a time. */
const DIGEST_BATCH_BYTES = 8 * 1024 * 1024
/** Ranges (small files) in one digest batch at most. */
const DIGEST_BATCH_RANGES = 256
/** Bytes read of each side at a time when both are on this machine. */
const LOCAL_BATCH_BYTES = 2 * 1024 * 1024
const DEFAULT_JOBS = 4

export interface CompareProgress {
  /** Bytes compared so far, of `totalBytes` (each side). */
  readonly comparedBytes: number
  readonly totalBytes: number
  /** Bytes of the blocks found different so far. */
  readonly differingBytes: number
}

export interface FindDifferingBlocksOptions {
  readonly source: Source
  /** The target data directory, read here. */
  readonly targetDir: string
  /** Files present on both sides, with each side's size: blocks up to the smaller size are compared. */
  readonly files: readonly CompareFile[]
  readonly blockSize: number
  /** Where differing blocks go: the path as given, the block number within that file. */
  readonly blocks: BlockMap
  /**
   * Compare a last, partial block where the smaller size ends inside one (files that are not
   * relation data). Default: whole blocks only, as a relation file's are.
   */
  readonly partialBlocks?: boolean
  /** Batches in flight at once (default 4); a server source computes them on its connections. */
  readonly jobs?: number
  /** Called after each range compared. */
  readonly onProgress?: (progress: CompareProgress) => void
}

export interface CompareSummary {
  readonly files: number
  readonly comparedBytes: number
  readonly differingBlocks: number
  readonly differingBytes: number
  /** `bytes`: both sides read here; `digests`: the source's digests against the target's. */
  readonly method: 'bytes' | 'digests'
  /** With `digests`: the algorithm the source used. */
  readonly algorithm: DigestAlgorithm | null
  /** Files the source no longer had when they were compared (a running source). */
  readonly vanished: readonly string[]
  readonly seconds: number
}

/** What one worker compares a batch with: reusable buffers of one batch's size. */
interface Worker {
  readonly target: Buffer
  readonly source: Buffer | null
}

/**
 * Adds to `blocks` every block, within the part both sides have, whose bytes differ between the
 * source and the target. Blocks the source no longer has when asked (a running source truncating
 * a file) count as differing; a file the source no longer has is reported in `vanished`.
 */
export async function findDifferingBlocks(opts: FindDifferingBlocksOptions): Promise<CompareSummary> {
  const started = process.hrtime.bigint()
  const { source, blockSize } = opts
  const partialBlocks = opts.partialBlocks ?? false
  checkCompareFiles(opts.files)
  const localSourceDir = source.localDataDir
  const method = localSourceDir !== undefined ? 'bytes' : 'digests'
  const batchBytes = method === 'bytes' ? LOCAL_BATCH_BYTES : DIGEST_BATCH_BYTES
  const rounded = Math.max(blockSize, batchBytes - (batchBytes % blockSize))
  const batches = compareBatches(opts.files, blockSize, {
    batchBytes: rounded,
    maxRanges: method === 'bytes' ? 1 : DIGEST_BATCH_RANGES,
    partialBlocks,
  })
  const totalBytes = totalComparedBytes(opts.files, blockSize, partialBlocks)
  const vanished = new Set<string>()
  let comparedBytes = 0
  let differingBytes = 0
  let differingBlocks = 0
  let algorithm: DigestAlgorithm | null = null

  const differs = (range: CompareRange, block: number): void => {
    opts.blocks.add(range.file.path, block)
    differingBlocks++
    const start = (block - range.firstBlock) * blockSize
    differingBytes += Math.min(blockSize, range.bytes - start)
  }
  const done = (range: CompareRange): void => {
    comparedBytes += range.bytes
    opts.onProgress?.({ comparedBytes, totalBytes, differingBytes })
  }

  /** Both sides here: one read of each, one memcmp, then block by block only if they differ. */
  const compareBytes = async (worker: Worker, range: CompareRange): Promise<void> => {
    const position = range.firstBlock * blockSize
    const [got] = await Promise.all([
      readRange(path.join(localSourceDir!, range.file.path), worker.source!, range.bytes, position),
      readExactly(path.join(opts.targetDir, range.file.path), worker.target, range.bytes, position),
    ])
    if (got === null) {
      vanished.add(range.file.path)
    } else if (got < range.bytes || !worker.source!.subarray(0, range.bytes).equals(worker.target.subarray(0, range.bytes))) {
      for (let i = 0; i < range.count; i++) {
        const start = i * blockSize
        const end = Math.min(start + blockSize, range.bytes)
        if (end > got || !worker.source!.subarray(start, end).equals(worker.target.subarray(start, end)))
          differs(range, range.firstBlock + i)
      }
    }
    done(range)
  }

  /** The source's digests against the target's: the target's batch is read and hashed here while the source computes its own. */
  const compareDigests = async (worker: Worker, batch: CompareRange[]): Promise<void> => {
    const asked = digestsOf(source, batch, blockSize)
    // Settled even if a target read fails first: no rejection is left unhandled.
    asked.catch(() => {})
    const mine: Buffer[][] = []
    let at = 0
    for (const range of batch) {
      const into = worker.target.subarray(at, at + range.bytes)
      await readExactly(path.join(opts.targetDir, range.file.path), into, range.bytes, range.firstBlock * blockSize)
      mine.push(blockDigestsOf(into, range.bytes, blockSize))
      at += range.bytes
    }
    const theirs = await asked
    algorithm = theirs.algorithm
    batch.forEach((range, i) => {
      const sourceDigests = theirs.ranges[i]
      if (sourceDigests === null || sourceDigests === undefined) {
        vanished.add(range.file.path)
      } else {
        const targetDigests = mine[i]!
        for (let b = 0; b < range.count; b++) {
          const d = sourceDigests[b]
          if (d === undefined || !d.equals(targetDigests[b]!)) differs(range, range.firstBlock + b)
        }
      }
      done(range)
    })
  }

  const jobs = Math.max(1, Math.floor(opts.jobs ?? DEFAULT_JOBS))
  let failed = false
  const run = async (): Promise<void> => {
    const worker: Worker = {
      target: Buffer.allocUnsafe(rounded),
      source: method === 'bytes' ? Buffer.allocUnsafe(rounded) : null,
    }
    try {
      for (;;) {
        if (failed) return
        const next = batches.next()
        if (next.done === true) return
        if (method === 'bytes') for (const range of next.value) await compareBytes(worker, range)
        else await compareDigests(worker, next.value)
      }
    } catch (err) {
      failed = true
      throw err
    }
  }
  const results = await Promise.allSettled(Array.from({ length: jobs }, run))
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (rejected !== undefined) throw rejected.reason
  return {
    files: opts.files.length,
    comparedBytes,
    differingBlocks,
    differingBytes,
    method,
    algorithm,
    vanished: [...vanished].sort(),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }
}

/** The source's block digests: its own method, else its bytes fetched and hashed here. */
function digestsOf(source: Source, batch: readonly CompareRange[], blockSize: number): Promise<BlockDigests> {
  if (source.blockDigests) {
    return source.blockDigests(
      batch.map((r) => ({ path: r.file.path, firstBlock: r.firstBlock, count: r.count })),
      blockSize,
    )
  }
  return fetchedDigests(source, batch, blockSize)
}

// A Source without blockDigests: its queue and flush are shared, so one batch at a time.
const fetching = new WeakMap<Source, Promise<unknown>>()

async function fetchedDigests(source: Source, batch: readonly CompareRange[], blockSize: number): Promise<BlockDigests> {
  const before = fetching.get(source) ?? Promise.resolve()
  const mine = before
    .catch(() => {})
    .then(async () => {
      const got = batch.map((r) => ({ data: Buffer.alloc(r.bytes), end: 0, missing: false }))
      for (const r of batch) source.queueRange(r.file.path, r.firstBlock * blockSize, r.bytes)
      await source.flush({
        chunk: async (file, offset, data) => {
          // Ranges of one file do not overlap: the chunk belongs to the one that holds its offset.
          batch.forEach((r, i) => {
            const start = r.firstBlock * blockSize
            if (r.file.path !== file || offset < start || offset >= start + r.bytes) return
            const into = got[i]!
            data.copy(into.data, offset - start)
            into.end = Math.max(into.end, offset - start + data.length)
          })
        },
        missing: async (file) => {
          batch.forEach((r, i) => {
            if (r.file.path === file) got[i]!.missing = true
          })
        },
      })
      return {
        algorithm: DIGEST_ALGORITHM,
        ranges: got.map((b) => (b.missing ? null : blockDigestsOf(b.data, b.end, blockSize))),
      }
    })
  fetching.set(source, mine)
  return mine
}

/** A RewindError for a comparison asked of files it cannot compare. */
export function checkCompareFiles(files: readonly CompareFile[]): void {
  const seen = new Set<string>()
  for (const f of files) {
    if (seen.has(f.path)) throw new RewindError('INTERNAL', `file "${f.path}" given twice to the block comparison`, { path: f.path })
    seen.add(f.path)
    if (!(Number.isSafeInteger(f.sourceSize) && f.sourceSize >= 0 && Number.isSafeInteger(f.targetSize) && f.targetSize >= 0)) {
      throw new RewindError('INTERNAL', `invalid sizes for file "${f.path}" given to the block comparison`, { path: f.path })
    }
  }
}
