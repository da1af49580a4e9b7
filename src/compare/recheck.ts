// The second look of `walrewind verify` at relation pages: the blocks whose bytes differ are
// fetched from the source (only those) and compared with the target's once masked as PostgreSQL
// masks them (page-mask.ts); the blocks one side has past the other's end are checked for zeros
// (a relation extended ahead of use, or by a bulk insert, holds zero pages its standby never got).

import path from 'node:path'
import { BlockMap } from '../block-map.js'
import type { Source } from '../source/source.js'
import type { PageFork } from './page-mask.js'
import { isAllZero, sameMaskedPage } from './page-mask.js'
import { readExactly } from './read.js'

/** Past this many blocks, the tail one side has beyond the other's end is not read: it differs. */
export const MAX_TAIL_BLOCKS = 1024

export interface RecheckFile {
  readonly path: string
  readonly fork: PageFork
  readonly segno: number
  readonly sourceSize: number
  readonly targetSize: number
}

export interface RecheckResult {
  /** Blocks that differ: in both and different once masked, or past the other's end and not zero. */
  readonly differing: BlockMap
  /** Blocks equal once masked, per file. */
  readonly masked: Map<string, number>
  /** Zero blocks one side has past the other's end, per file. */
  readonly zeroTail: Map<string, number>
  /** Files the source no longer had. */
  readonly vanished: Set<string>
  /** Blocks fetched from the source. */
  readonly fetchedBlocks: number
}

/**
 * `raw` holds the blocks whose bytes differ within what both sides have. Every block of `files`
 * that raw names, or that lies past the other side's end, starts as differing, and stops being
 * so once seen equal when masked, or zero.
 */
export async function recheckPages(opts: {
  readonly source: Source
  readonly targetDir: string
  readonly files: readonly RecheckFile[]
  readonly raw: BlockMap
  readonly blockSize: number
  readonly relsegSize: number
}): Promise<RecheckResult> {
  const { source, blockSize } = opts
  const differing = new BlockMap()
  const tolerated = new BlockMap()
  const masked = new Map<string, number>()
  const zeroTail = new Map<string, number>()
  const vanished = new Set<string>()
  const byPath = new Map<string, RecheckFile>()
  const bump = (map: Map<string, number>, file: string): void => {
    map.set(file, (map.get(file) ?? 0) + 1)
  }
  let fetchedBlocks = 0

  for (const file of opts.files) {
    byPath.set(file.path, file)
    const common = Math.floor(Math.min(file.sourceSize, file.targetSize) / blockSize)
    for (const [start, count] of opts.raw.ranges(file.path)) {
      for (let b = start; b < start + count; b++) differing.add(file.path, b)
      // A partial last block is asked for as it is; it then stays a difference (no page to mask).
      source.queueRange(file.path, start * blockSize, Math.min(count * blockSize, file.sourceSize - start * blockSize))
    }
    // Past the shorter side's end (a partial last block of both is compared as it is).
    const longer = file.sourceSize === file.targetSize ? common : Math.ceil(Math.max(file.sourceSize, file.targetSize) / blockSize)
    for (let b = common; b < longer; b++) differing.add(file.path, b)
    const tail = longer - common
    if (tail === 0 || tail > MAX_TAIL_BLOCKS) continue
    if (file.sourceSize > file.targetSize) {
      source.queueRange(file.path, common * blockSize, file.sourceSize - common * blockSize)
    } else {
      const buf = Buffer.allocUnsafe(file.targetSize - common * blockSize)
      await readExactly(path.join(opts.targetDir, file.path), buf, buf.length, common * blockSize)
      for (let i = 0; i < tail; i++) {
        if (isAllZero(buf.subarray(i * blockSize, (i + 1) * blockSize))) {
          tolerated.add(file.path, common + i)
          bump(zeroTail, file.path)
        }
      }
    }
  }

  await source.flush({
    chunk: async (file, offset, data) => {
      const info = byPath.get(file)
      if (info === undefined || offset % blockSize !== 0) return
      const common = Math.floor(Math.min(info.sourceSize, info.targetSize) / blockSize)
      const first = offset / blockSize
      const whole = Math.floor(data.length / blockSize)
      fetchedBlocks += whole
      const inCommon = Math.max(0, Math.min(whole, common - first))
      const target = Buffer.allocUnsafe(inCommon * blockSize)
      if (inCommon > 0) await readExactly(path.join(opts.targetDir, file), target, target.length, offset)
      for (let i = 0; i < whole; i++) {
        const block = first + i
        const page = data.subarray(i * blockSize, (i + 1) * blockSize)
        if (block >= common) {
          if (isAllZero(page)) {
            tolerated.add(file, block)
            bump(zeroTail, file)
          }
        } else if (
          sameMaskedPage(page, target.subarray(i * blockSize, (i + 1) * blockSize), info.fork, info.segno * opts.relsegSize + block).same
        ) {
          tolerated.add(file, block)
          bump(masked, file)
        }
      }
    },
    missing: async (file) => {
      vanished.add(file)
    },
  })

  const result = new BlockMap()
  for (const file of opts.files) {
    for (const [start, count] of differing.ranges(file.path)) {
      for (let b = start; b < start + count; b++) if (!tolerated.has(file.path, b)) result.add(file.path, b)
    }
  }
  return { differing: result, masked, zeroTail, vanished, fetchedBlocks }
}
