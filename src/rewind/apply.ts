// Executes a Plan against the target: the point of no return. Entries run in the Plan's order
// (removals of files, create, copy, copy-tail, blocks, truncate, removals of directories and links), in groups: a
// group's file actions are done, its data is queued with the source and fetched in large batches,
// written at its offsets, synced, and only then recorded as done in the journal's progress log;
// a group is synced and recorded while the next one is copied.
// Removals are not awaited one by one: files, then directories and links, in the thread pool
// beside the group's copy (removals.ts), awaited before the group counts as flushed. Every action is safe to redo
// (a whole copy leaves the source's bytes and length whatever the file held, a range is written
// at its offset, a removal of what is gone is nothing), so a rerun redoes whatever was not
// recorded and gets the same result.

import { RewindError } from '../errors.js'
import { PATCH_PIECES, PIECE_DIGEST_LENGTH, pieceDigestsOf } from '../compare/digest.js'
import type { ChunkSink, Source } from '../source/source.js'
import type { BlockRange } from '../block-map.js'
import type { Emit } from '../events.js'
import { faultGroupEntries, faultPoint, type FaultPoint } from './fault.js'
import { isFileRemoval, type Plan, type PlanEntry } from './plan.js'
import { RemovalQueue } from './removals.js'
import type { TargetDir } from './target-dir.js'

/**
 * From a data directory, changed blocks close together are read as one run, gaps included: fewer,
 * larger reads (a gap costs a copy in memory). From a server a gap is bytes the source reads and
 * sends: none there (measured at scale 200 over the loopback: 2.65 s with no gaps, 3.10 s with 4).
 * Only the changed blocks of a run are written (see changedParts): the target's blocks in a gap
 * stay as they are, and the rewind writes no more than pg_rewind does.
 */
export function maxGapBlocks(source: Pick<Source, 'kind'>): number {
  return source.kind === 'local' ? 4 : 0
}

/** A group ends once it fetches this much or holds this many entries: the unit of progress. */
const GROUP_BYTES = 256 * 1024 * 1024
const GROUP_ENTRIES = 4096
/** Removals at once after a group's copy (the thread pool's size). */
const REMOVALS_AFTER_COPY = 4

export function coalesce(blocks: readonly BlockRange[], maxGap: number): BlockRange[] {
  const out: Array<[number, number]> = []
  for (const [start, count] of blocks) {
    const last = out[out.length - 1]
    if (last && start - (last[0] + last[1]) <= maxGap) last[1] = start + count - last[0]
    else out.push([start, count])
  }
  return out
}

/**
 * The parts of a fetched chunk (`offset`, `length` bytes) of `entry` to write: all of it for a
 * whole-file copy and for a copy-tail's tail, else only where it covers changed blocks.
 */
export function changedParts(entry: PlanEntry, blockSize: number, offset: number, length: number): Array<[offset: number, length: number]> {
  if (entry.action === 'copy') return [[offset, length]]
  const end = offset + length
  const tail = entry.action === 'copy-tail' ? entry.target!.size : Infinity
  const parts: Array<[number, number]> = []
  const blocks = entry.blocks
  // The first changed run that ends after the chunk begins.
  let lo = 0
  let hi = blocks.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((blocks[mid]![0] + blocks[mid]![1]) * blockSize <= offset) lo = mid + 1
    else hi = mid
  }
  for (let i = lo; i < blocks.length; i++) {
    const from = Math.max(offset, blocks[i]![0] * blockSize)
    const to = Math.min(end, tail, (blocks[i]![0] + blocks[i]![1]) * blockSize)
    if (from >= Math.min(end, tail)) break
    if (to > from) parts.push([from, to - from])
  }
  if (end > tail) {
    const from = Math.max(offset, tail)
    const last = parts[parts.length - 1]
    if (last !== undefined && last[0] + last[1] === from) last[1] += end - from
    else parts.push([from, end - from])
  }
  return parts
}

/** Plan entry indices in groups, in plan order, leaving out those already done. */
export function groupEntries(plan: Plan, done: ReadonlySet<number>, maxEntries = GROUP_ENTRIES): number[][] {
  const groups: number[][] = []
  let group: number[] = []
  let bytes = 0
  plan.entries.forEach((entry, index) => {
    if (done.has(index)) return
    group.push(index)
    bytes += entry.bytes
    if (bytes >= GROUP_BYTES || group.length >= maxEntries) {
      groups.push(group)
      group = []
      bytes = 0
    }
  })
  if (group.length > 0) groups.push(group)
  return groups
}

export interface ApplyOptions {
  readonly plan: Plan
  readonly source: Source
  readonly target: TargetDir
  readonly blockSize: number
  readonly emit: Emit
  /** Entries a previous run recorded as done. */
  readonly done: ReadonlySet<number>
  /**
   * Makes a group's writes (the files it touched, TargetDir.takeTouched) durable before it is
   * recorded (null: --no-sync). It runs while the next group is copied.
   */
  readonly syncGroup: ((touched: readonly string[]) => Promise<void>) | null
  /** Records a group as done, durably. */
  readonly recordDone: (indices: readonly number[]) => Promise<void>
  /** Entries left to someone else (finish writes postgresql.auto.conf): recorded done, not run. */
  readonly deferred?: (entry: PlanEntry) => boolean
  /**
   * Fetch changed blocks the target holds as patches of its copies, where the source can
   * (queueBlockPatch): only their differing pieces cross the network, for the source's hashing.
   */
  readonly patchBlocks?: boolean
}

export interface ApplyResult {
  /** Bytes received from the source. */
  readonly fetchedBytes: number
  /** Blocks fetched as patches (fetchedBytes counts their differing pieces). */
  readonly patchedBlocks: number
}

/** Which fault point a chunk of `entry` at `offset` passes: a copy-tail's when it reaches past the target's end. */
function chunkPoint(entry: PlanEntry | undefined, offset: number, length: number): FaultPoint {
  if (entry?.action === 'copy') return 'chunk-copy'
  if (entry?.action === 'copy-tail' && offset + length > (entry.target?.size ?? 0)) return 'chunk-copy-tail'
  return 'chunk-blocks'
}

/** Runs what is left of `plan` with data from `source`, writing only through `target`. */
export async function applyPlan(opts: ApplyOptions): Promise<ApplyResult> {
  const { plan, source, target, blockSize, emit } = opts
  const patcher = opts.patchBlocks === true && source.queueBlockPatch ? new BlockPatcher(source, target, blockSize) : null
  let fetchedBytes = 0
  let doneBytes = 0
  let patchedBlocks = 0
  let lastReport = 0
  const total = plan.entries.reduce((n, entry, index) => (opts.done.has(index) ? n : n + entry.bytes), 0)
  const report = (final: boolean) => {
    const now = Date.now()
    if (!final && now - lastReport < 1000) return
    lastReport = now
    emit({ type: 'progress', done: doneBytes, total })
  }

  let byPath = new Map<string, PlanEntry>()
  const sink: ChunkSink = {
    chunk: async (path, offset, data) => {
      const entry = byPath.get(path)
      if (entry === undefined) {
        await target.writeAt(path, offset, data)
      } else {
        for (const [at, length] of changedParts(entry, blockSize, offset, data.length)) {
          await target.writeAt(path, at, data.subarray(at - offset, at - offset + length))
        }
      }
      fetchedBytes += data.length
      doneBytes += data.length
      report(false)
      await faultPoint(chunkPoint(entry, offset, data.length))
    },
    patch: async (path, _offset, length, pieces) => {
      for (const [at, bytes] of pieces) {
        await target.writeAt(path, at, bytes)
        fetchedBytes += bytes.length
      }
      patchedBlocks++
      doneBytes += length
      report(false)
      await faultPoint('chunk-blocks')
    },
    copyWholeFile: async (path, absSource) => {
      const copied = await target.copyFileFrom(path, absSource)
      fetchedBytes += copied
      doneBytes += copied
      report(false)
      await faultPoint('file-copied')
      return copied
    },
    // The file went away on a running source while we fetched it: WAL replay recreates it if it
    // matters, exactly as pg_rewind does.
    missing: async (path) => {
      emit({ type: 'debug', message: `received null value for chunk for file "${path}", file has been deleted` })
      await target.remove(path, 'file')
    },
  }

  // The previous group's sync and record, running while this group copies: the disk flushes one
  // group while the source sends the next. A 3.2 GB copy from a server took 16 s so, 25-31 s when
  // each group's fsync held the copy up.
  let previous: Promise<void> | null = null
  try {
    for (const group of groupEntries(plan, opts.done, faultGroupEntries() ?? GROUP_ENTRIES)) {
      const entries = group.map((index) => plan.entries[index]!)
      byPath = new Map(entries.map((entry) => [entry.path, entry]))
      const removals = new RemovalQueue()
      const copied = (async () => {
        for (const entry of entries) {
          if (opts.deferred?.(entry) === true) continue
          if (isFileRemoval(entry)) {
            removals.add(() => removeFile(entry, target))
            continue
          }
          // A directory or link is removed once the files in it are gone, in the same queue: the
          // copy does not wait for it (one pgsql_tmp left on the target held a 130 MB copy up
          // 750 ms behind the removal of 2 GB of WAL segments).
          if (entry.action === 'remove') {
            removals.add(() => startEntry(entry, source, target, blockSize, patcher), { alone: true })
            continue
          }
          await startEntry(entry, source, target, blockSize, patcher)
        }
        await source.flush(sink)
      })()
      const [copy] = await Promise.allSettled([copied])
      removals.widen(REMOVALS_AFTER_COPY)
      const [removal] = await Promise.allSettled([removals.settled()]) // complete once the copy has settled
      if (copy.status === 'rejected') throw copy.reason
      if (removal.status === 'rejected') throw removal.reason
      await target.closeAll()
      await faultPoint('group-flushed')
      if (previous !== null) await previous
      previous = null
      if (opts.syncGroup === null) {
        await opts.recordDone(group)
        await faultPoint('progress-recorded')
        continue
      }
      const syncGroup = opts.syncGroup
      const touched = target.takeTouched()
      previous = (async () => {
        await syncGroup(touched)
        await faultPoint('group-synced')
        await opts.recordDone(group)
        await faultPoint('progress-recorded')
      })()
      // Awaited after the next group's copy, or below; a copy failing first wins.
      previous.catch(() => {})
    }
    if (previous !== null) await previous
  } finally {
    // A failed copy waits for the previous group's sync and record to end, whatever they give.
    await previous?.catch(() => {})
    await target.closeAll().catch(() => {})
  }
  report(true)
  return { fetchedBytes, patchedBlocks }
}

async function removeFile(entry: PlanEntry, target: TargetDir): Promise<void> {
  if (entry.recycleAs !== undefined) await target.recycle(entry.path, entry.recycleAs)
  else await target.remove(entry.path, entry.target!.type)
  await faultPoint('action-remove')
}

/**
 * Queues the changed blocks the target holds whole (below both sides' sizes) as patches of its
 * copies: reads them here and hashes their pieces.
 */
class BlockPatcher {
  private readonly buffer: Buffer

  constructor(
    private readonly source: Source,
    private readonly target: TargetDir,
    private readonly blockSize: number,
  ) {
    this.buffer = Buffer.allocUnsafe(PATCH_READ_BLOCKS * blockSize)
  }

  /** Queues what it can of `entry`'s blocks; returns the runs left to fetch whole. */
  queue(entry: PlanEntry): readonly BlockRange[] {
    const whole = Math.floor(Math.min(entry.target?.size ?? 0, entry.source?.size ?? 0) / this.blockSize)
    if (whole === 0 || entry.target?.type !== 'file') return entry.blocks
    const rest: BlockRange[] = []
    for (const [start, count] of entry.blocks) {
      const end = Math.min(start + count, whole)
      for (let at = start; at < end; at += PATCH_READ_BLOCKS) {
        const n = Math.min(PATCH_READ_BLOCKS, end - at)
        const got = this.target.readAt(entry.path, at * this.blockSize, this.buffer.subarray(0, n * this.blockSize))
        if (got !== n * this.blockSize)
          throw new RewindError(
            'FILE_IO',
            `could not read block ${at} of target file "${entry.path}": read ${got} of ${n * this.blockSize} bytes`,
            { path: entry.path },
          )
        const digests = Buffer.allocUnsafe(n * BLOCK_DIGESTS_LENGTH)
        for (let i = 0; i < n; i++) {
          const digestsAt = i * BLOCK_DIGESTS_LENGTH
          pieceDigestsOf(this.buffer.subarray(i * this.blockSize, (i + 1) * this.blockSize), digests, digestsAt)
          this.source.queueBlockPatch!(entry.path, at + i, this.blockSize, digests.subarray(digestsAt, digestsAt + BLOCK_DIGESTS_LENGTH))
        }
      }
      if (start + count > end) rest.push([Math.max(start, end), start + count - Math.max(start, end)])
    }
    return rest
  }
}

/** Blocks a patcher reads of the target at a time. */
const PATCH_READ_BLOCKS = 128
/** Bytes of one block's piece digests. */
const BLOCK_DIGESTS_LENGTH = PATCH_PIECES * PIECE_DIGEST_LENGTH

/** Does an entry's file action and queues the data it needs. */
async function startEntry(
  entry: PlanEntry,
  source: Source,
  target: TargetDir,
  blockSize: number,
  patcher: BlockPatcher | null,
): Promise<void> {
  const whole = patcher !== null && entry.blocks.length > 0 ? patcher.queue(entry) : entry.blocks
  for (const [start, count] of coalesce(whole, maxGapBlocks(source))) source.queueRange(entry.path, start * blockSize, count * blockSize)
  switch (entry.action) {
    case 'none':
      return
    case 'create':
      if (entry.source!.type === 'symlink') await target.createSymlink(entry.path, entry.source!.linkTarget!)
      else await target.createDirectory(entry.path)
      await faultPoint('action-create')
      return
    case 'copy':
      await target.truncateForCopy(entry.path)
      await faultPoint('action-copy-truncated')
      source.queueFile(entry.path, entry.source!.size)
      return
    case 'copy-tail':
      source.queueRange(entry.path, entry.target!.size, entry.source!.size - entry.target!.size)
      return
    case 'truncate':
      await target.truncate(entry.path, entry.source!.size)
      await faultPoint('action-truncate')
      return
    case 'remove':
      await target.remove(entry.path, entry.target!.type)
      await faultPoint('action-remove')
      return
  }
}
