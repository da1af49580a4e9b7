// Executes a Plan against the target: the point of no return. Entries run in the Plan's order
// (create, copy, copy-tail, blocks, truncate, remove); data is queued with the source and fetched
// in large batches, then written at its offset. Every action is safe to repeat, so running the
// same plan again after an interruption gives the same result.

import type { ChunkSink, Source } from '../source/source.js'
import type { BlockRange } from './block-map.js'
import type { Emit } from './events.js'
import type { Plan } from './plan.js'
import type { TargetDir } from './target-dir.js'

/**
 * Changed blocks close together are fetched as one run, gaps included: fewer, larger reads. The
 * blocks in a gap were not changed by the target; taking the source's version of them is what a
 * base backup does, and replay from the last common checkpoint makes them consistent.
 */
const MAX_GAP_BLOCKS = 4

export function coalesce(blocks: readonly BlockRange[]): BlockRange[] {
  const out: Array<[number, number]> = []
  for (const [start, count] of blocks) {
    const last = out[out.length - 1]
    if (last && start - (last[0] + last[1]) <= MAX_GAP_BLOCKS) last[1] = start + count - last[0]
    else out.push([start, count])
  }
  return out
}

export interface ApplyResult {
  readonly fetchedBytes: number
}

/** Runs `plan` with data from `source`, writing only through `target`. */
export async function applyPlan(plan: Plan, source: Source, target: TargetDir, blockSize: number, emit: Emit): Promise<ApplyResult> {
  let fetchedBytes = 0
  let lastReport = 0
  const total = plan.totals.fetchBytes
  const report = (final: boolean) => {
    const now = Date.now()
    if (!final && now - lastReport < 1000) return
    lastReport = now
    emit({ type: 'progress', done: fetchedBytes, total })
  }

  for (const entry of plan.entries) {
    for (const [start, count] of coalesce(entry.blocks)) source.queueRange(entry.path, start * blockSize, count * blockSize)
    switch (entry.action) {
      case 'none':
        break
      case 'create':
        if (entry.source!.type === 'symlink') await target.createSymlink(entry.path, entry.source!.linkTarget!)
        else await target.createDirectory(entry.path)
        break
      case 'copy':
        await target.truncateForCopy(entry.path)
        source.queueFile(entry.path, entry.source!.size)
        break
      case 'copy-tail':
        source.queueRange(entry.path, entry.target!.size, entry.source!.size - entry.target!.size)
        break
      case 'truncate':
        await target.truncate(entry.path, entry.source!.size)
        break
      case 'remove':
        await target.remove(entry.path, entry.target!.type)
        break
    }
  }

  const sink: ChunkSink = {
    chunk: async (path, offset, data) => {
      await target.writeAt(path, offset, data)
      fetchedBytes += data.length
      report(false)
    },
    // The file went away on a running source while we fetched it: WAL replay recreates it if it
    // matters, exactly as pg_rewind does.
    copyWholeFile: async (path, absSource) => {
      const copied = await target.copyFileFrom(path, absSource)
      fetchedBytes += copied
      report(false)
      return copied
    },
    missing: async (path) => {
      emit({ type: 'debug', message: `received null value for chunk for file "${path}", file has been deleted` })
      await target.remove(path, 'file')
    },
  }
  await source.flush(sink)
  await target.closeAll()
  report(true)
  return { fetchedBytes }
}
