// Finding changed blocks by comparing them (--compare), when the target's WAL cannot tell: it ran
// without data checksums and wal_log_hints (hint-bit changes are not in its WAL), or its WAL from
// the last common checkpoint on is gone. Every relation data file both sides hold is compared up to
// the smaller size (src/compare: in place, or by digests the source computes); the differing
// blocks join the block map and the plan copies them like blocks the WAL named. Replay must then
// start at the source's checkpoint: what the comparison saw is the source's present.

import { findDifferingBlocks, type CompareFile, type CompareSummary } from '../compare/blocks.js'
import type { ControlFile } from '../pg/control.js'
import { parseRelationDataFile } from '../pg/relpath.js'
import type { VersionProfile } from '../pg/versions.js'
import type { FileEntry, Source } from '../source/source.js'
import type { Emit } from '../events.js'
import type { BlockMap } from '../block-map.js'
import { exclusionReason } from './plan.js'

export type CompareMode = 'auto' | 'wal' | 'blocks'

/** Whether the target's WAL records hint-bit changes: with data checksums or wal_log_hints. */
export function hintBitsInWal(control: ControlFile): boolean {
  return control.data_checksum_version !== 0 || control.wal_log_hints
}

export interface CompareInput {
  readonly source: Source
  readonly targetDir: string
  readonly sourceFiles: readonly FileEntry[]
  readonly targetFiles: readonly FileEntry[]
  readonly profile: VersionProfile
  readonly blockSize: number
  readonly blocks: BlockMap
  readonly jobs?: number | null
  readonly emit: Emit
}

/** Compares the relation data files both sides hold; differing blocks are added to `blocks`. */
export async function compareRelationFiles(input: CompareInput): Promise<CompareSummary> {
  const targets = new Map(input.targetFiles.map((entry) => [entry.path, entry]))
  const files: CompareFile[] = []
  for (const entry of input.sourceFiles) {
    const target = targets.get(entry.path)
    if (entry.type !== 'file' || target?.type !== 'file' || exclusionReason(entry.path) !== null) continue
    if (parseRelationDataFile(entry.path, input.profile) === null) continue
    files.push({ path: entry.path, sourceSize: entry.size, targetSize: target.size })
  }
  const startedAt = Date.now()
  let lastReport = 0
  const summary = await findDifferingBlocks({
    source: input.source,
    targetDir: input.targetDir,
    files,
    blockSize: input.blockSize,
    blocks: input.blocks,
    ...(input.jobs ? { jobs: input.jobs } : {}),
    onProgress: (progress) => {
      const now = Date.now()
      if (now - lastReport < 250 && progress.comparedBytes < progress.totalBytes) return
      lastReport = now
      input.emit({
        type: 'compare-progress',
        compared: progress.comparedBytes,
        total: progress.totalBytes,
        differing: progress.differingBytes,
        startedAt,
      })
    },
  })
  return summary
}
