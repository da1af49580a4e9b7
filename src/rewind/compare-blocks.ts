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

/**
 * With a running source, changed blocks are found by comparing instead of reading its WAL from the
 * fork once that WAL exceeds this share of its relation data, and COMPARE_MIN_SOURCE_WAL_BYTES.
 * That WAL crosses the network, about 150-250 MB/s on the loopback here, where the comparison
 * hashes the files in place (SHA-256 with SHA extensions: 1.4 GB/s a core, on both sides at once)
 * and sends 32 bytes a block. The WAL is measured as the distance between LSNs, which counts the
 * unused rest of switched segments (archive_timeout): the minimum keeps an idle source's switches
 * from making a small cluster compared, and the share keeps a big cluster from being read whole.
 */
export const COMPARE_WHEN_SOURCE_WAL_EXCEEDS = 0.5
export const COMPARE_MIN_SOURCE_WAL_BYTES = 1024 * 1024 * 1024

/** A relation data file a comparison reads (a regular file the rewind does not leave out). */
function isComparedFile(entry: FileEntry, profile: VersionProfile): boolean {
  return entry.type === 'file' && exclusionReason(entry.path) === null && parseRelationDataFile(entry.path, profile) !== null
}

/** Bytes of the relation data files in a listing: what a comparison reads on each side. */
export function relationDataBytes(files: readonly FileEntry[], profile: VersionProfile): number {
  let bytes = 0
  for (const entry of files) if (isComparedFile(entry, profile)) bytes += entry.size
  return bytes
}

/** Why comparing reads less than the source's WAL since the fork would, or null when it does not. */
export function cheaperToCompare(sourceWalBytes: number, relationBytes: number): string | null {
  if (sourceWalBytes <= Math.max(COMPARE_WHEN_SOURCE_WAL_EXCEEDS * relationBytes, COMPARE_MIN_SOURCE_WAL_BYTES)) return null
  const mb = (n: number) => `${Math.round(n / (1024 * 1024))} MB`
  return (
    `the source wrote ${mb(sourceWalBytes)} of WAL since the fork, more than half its ${mb(relationBytes)} of relation data, ` +
    'so comparing moves less than reading that WAL'
  )
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
    if (target?.type !== 'file' || !isComparedFile(entry, input.profile)) continue
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
