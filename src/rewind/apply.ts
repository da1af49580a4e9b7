// Executes a Plan against the target: the point of no return. Entries run in the Plan's order
// (removals of files, create, copy, copy-tail, blocks, truncate, removals of directories and links), in groups: a
// group's file actions are done, its data is queued with the source and fetched in large batches,
// written at its offsets, synced, and only then recorded as done in the journal's progress log.
// File removals are not awaited one by one: they run in the thread pool beside the group's copy
// and are awaited before the group counts as flushed. Every action is safe to redo
// (a whole copy leaves the source's bytes and length whatever the file held, a range is written
// at its offset, a removal of what is gone is nothing), so a rerun redoes whatever was not
// recorded and gets the same result.

import type { ChunkSink, Source } from '../source/source.js'
import type { BlockRange } from '../block-map.js'
import type { Emit } from '../events.js'
import { faultPoint, type FaultPoint } from './fault.js'
import { isFileRemoval, type Plan, type PlanEntry } from './plan.js'
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
export function groupEntries(plan: Plan, done: ReadonlySet<number>): number[][] {
  const groups: number[][] = []
  let group: number[] = []
  let bytes = 0
  plan.entries.forEach((entry, index) => {
    if (done.has(index)) return
    group.push(index)
    bytes += entry.bytes
    if (bytes >= GROUP_BYTES || group.length >= GROUP_ENTRIES) {
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
  /** Makes a group's writes durable before it is recorded (null: --no-sync). */
  readonly syncGroup: (() => Promise<void>) | null
  /** Records a group as done, durably. */
  readonly recordDone: (indices: readonly number[]) => Promise<void>
  /** Entries left to someone else (finish writes postgresql.auto.conf): recorded done, not run. */
  readonly deferred?: (entry: PlanEntry) => boolean
}

export interface ApplyResult {
  readonly fetchedBytes: number
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
  let fetchedBytes = 0
  let lastReport = 0
  const total = plan.entries.reduce((n, entry, index) => (opts.done.has(index) ? n : n + entry.bytes), 0)
  const report = (final: boolean) => {
    const now = Date.now()
    if (!final && now - lastReport < 1000) return
    lastReport = now
    emit({ type: 'progress', done: fetchedBytes, total })
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
      report(false)
      await faultPoint(chunkPoint(entry, offset, data.length))
    },
    copyWholeFile: async (path, absSource) => {
      const copied = await target.copyFileFrom(path, absSource)
      fetchedBytes += copied
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

  try {
    for (const group of groupEntries(plan, opts.done)) {
      const entries = group.map((index) => plan.entries[index]!)
      byPath = new Map(entries.map((entry) => [entry.path, entry]))
      // File removals run one after another beside the copy (side by side they slow every other
      // metadata call: measured); both are waited for, whichever fails.
      let removals: Promise<void> = Promise.resolve()
      const copied = (async () => {
        for (const entry of entries) {
          if (opts.deferred?.(entry) === true) continue
          if (isFileRemoval(entry)) {
            removals = removals.then(() => removeFile(entry, target))
            continue
          }
          // A directory is removed once the files in it are gone.
          if (entry.action === 'remove') await removals
          await startEntry(entry, source, target, blockSize)
        }
        await source.flush(sink)
      })()
      const [copy] = await Promise.allSettled([copied])
      const [removal] = await Promise.allSettled([removals]) // complete once the copy has settled
      if (copy.status === 'rejected') throw copy.reason
      if (removal.status === 'rejected') throw removal.reason
      await target.closeAll()
      await faultPoint('group-flushed')
      if (opts.syncGroup !== null) {
        await opts.syncGroup()
        await faultPoint('group-synced')
      }
      await opts.recordDone(group)
      await faultPoint('progress-recorded')
    }
  } finally {
    await target.closeAll().catch(() => {})
  }
  report(true)
  return { fetchedBytes }
}

async function removeFile(entry: PlanEntry, target: TargetDir): Promise<void> {
  await target.remove(entry.path, entry.target!.type)
  await faultPoint('action-remove')
}

/** Does an entry's file action and queues the data it needs. */
async function startEntry(entry: PlanEntry, source: Source, target: TargetDir, blockSize: number): Promise<void> {
  for (const [start, count] of coalesce(entry.blocks, maxGapBlocks(source)))
    source.queueRange(entry.path, start * blockSize, count * blockSize)
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
