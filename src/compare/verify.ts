// `walrewind verify`: does a stopped target hold the same cluster data as a source? Both listings
// are walked, what each node keeps for itself is left out (scope.ts), the files both have are
// compared block by block where they are (blocks.ts: a server computes digests, so only digests
// cross the network), and the relation blocks that differ are fetched, only those, and compared
// once masked as PostgreSQL's wal_consistency_checking masks them (recheck.ts): a standby's page
// differs from its primary's in hint bits and the like, which is no difference in data.

import path from 'node:path'
import { RewindError } from '../errors.js'
import { type Emit, silent } from '../events.js'
import { type ControlFile, decodeControlFile } from '../pg/control.js'
import { formatLsn } from '../pg/lsn.js'
import type { BlockRange } from '../block-map.js'
import { BlockMap } from '../block-map.js'
import {
  checkSameCluster,
  isCleanlyShutDown,
  readTargetControl,
  readTargetDirMode,
  readTargetProfile,
  runningPostmasterPid,
} from '../rewind/inspect.js'
import { openSource, type SourceSpec } from '../source/open.js'
import { checkRelativePath, isFollowedSymlink } from '../source/path-policy.js'
import type { FileEntry, FileType, Source } from '../source/source.js'
import { listDataDirectory } from '../source/walk.js'
import { type CompareFile, type CompareProgress, findDifferingBlocks } from './blocks.js'
import { type RecheckFile, recheckPages } from './recheck.js'
import { relationFileOf, SKIP_DESCRIPTIONS, type SkipReason, skipReason, unloggedRelations } from './scope.js'

export interface VerifyOptions {
  /** The target data directory: stopped. */
  readonly targetPgdata: string
  /** What to compare with: a spec, or a Source of the caller's own (it is closed at the end). */
  readonly source: SourceSpec | Source
  /** Parallel readers / connections (default 4). */
  readonly jobs?: number | null
  readonly timeoutSeconds?: number | null
  readonly env?: NodeJS.ProcessEnv
  readonly emit?: Emit
  /** Called as the comparison goes: bytes compared, bytes found different. */
  readonly onProgress?: (progress: CompareProgress) => void
}

export type DifferenceKind = 'blocks' | 'content' | 'size' | 'type' | 'source-only' | 'target-only'

export interface VerifyDifference {
  readonly path: string
  /**
   * blocks: relation pages that differ (once masked), or that one side has past the other's end
   * and are not zero; content: another file of the same size with other bytes; size: another file
   * of another size; type: a file on one side, a directory or link on the other; source-only,
   * target-only: present on one side (target-only also for a file the source removed meanwhile).
   */
  readonly kind: DifferenceKind
  /** blocks: [first, count] runs of block numbers within the file (a segment of 1 GB at most). */
  readonly blocks?: readonly BlockRange[]
  readonly sourceSize?: number
  readonly targetSize?: number
  readonly sourceType?: FileType
  readonly targetType?: FileType
}

export interface VerifySide {
  readonly description: string
  readonly checkpoint: string
  readonly timeline: number
  readonly state: number
}

export interface VerifyResult {
  /** No difference: every compared file and relation block matches. */
  readonly equal: boolean
  readonly source: VerifySide & { readonly kind: 'local' | 'server'; readonly running: boolean }
  readonly target: VerifySide
  /** Sorted by path. */
  readonly differences: readonly VerifyDifference[]
  /** Relation blocks whose bytes differ in what replay does not reproduce, and zero blocks past an end: no difference. */
  readonly tolerated: { readonly maskedBlocks: number; readonly zeroTailBlocks: number }
  /** What was left out, and why. */
  readonly skipped: ReadonlyArray<{ readonly reason: SkipReason; readonly description: string; readonly entries: number }>
  /** What may explain differences: a running source, nodes at different points of their WAL, unclean shutdowns. */
  readonly notes: readonly string[]
  readonly stats: {
    readonly files: number
    readonly comparedBytes: number
    readonly method: 'bytes' | 'digests'
    readonly algorithm: string | null
    /** Relation blocks fetched from the source for the second, masked look. */
    readonly fetchedBlocks: number
    readonly seconds: number
    readonly compareSeconds: number
    readonly megabytesPerSecond: number
  }
}

/** Directories and followed links (pg_wal, tablespaces) are the same for the comparison. */
function dirLike(entry: FileEntry): boolean {
  return entry.type === 'directory' || (entry.type === 'symlink' && isFollowedSymlink(entry.path))
}

function side(description: string, control: ControlFile): VerifySide {
  return { description, checkpoint: formatLsn(control.checkPoint), timeline: control.checkPointCopy.ThisTimeLineID, state: control.state }
}

/** Compares a stopped target data directory with a source. Differences are the result, not errors. */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const started = process.hrtime.bigint()
  const emit = opts.emit ?? silent
  const targetDir = path.resolve(opts.targetPgdata)
  await readTargetDirMode(targetDir)
  const pid = await runningPostmasterPid(targetDir)
  if (pid !== null) {
    throw new RewindError(
      'TARGET_NOT_SHUT_DOWN',
      `target server must be shut down: "${targetDir}" is in use by a running server (pid ${pid})`,
      { hint: 'verify compares a stopped target; stop it first.' },
    )
  }
  const targetControl = await readTargetControl(targetDir)
  const profile = await readTargetProfile(targetDir)
  const source =
    'listFiles' in opts.source
      ? opts.source
      : await openSource(opts.source, {
          env: opts.env ?? process.env,
          jobs: opts.jobs ?? null,
          timeoutSeconds: opts.timeoutSeconds ?? null,
          emit,
        })
  try {
    const notes: string[] = []
    if (source.localDataDir !== undefined) {
      const sourcePid = await runningPostmasterPid(source.localDataDir)
      if (sourcePid !== null) {
        throw new RewindError(
          'SOURCE_NOT_SHUT_DOWN',
          `source data directory "${source.localDataDir}" is in use by a running server (pid ${sourcePid})`,
          { hint: 'Stop it, or compare with the running server through --source-server.' },
        )
      }
    }
    const sourceControl = decodeControlFile(await source.readFile('global/pg_control'))
    // The same cluster, major and sizes, as a rewind requires; data checksums or hints do not matter here.
    checkSameCluster({ ...targetControl, wal_log_hints: true }, profile, sourceControl)
    if (!isCleanlyShutDown(targetControl))
      notes.push('the target was not shut down cleanly: its files may lack what only its WAL holds, and differences may come from that')
    if (source.running) {
      notes.push(
        'the source is running: it keeps writing, and its files lag what its WAL holds (changes not yet checkpointed); ' +
          'differences may be explained by replay, and a comparison with a stopped source is exact',
      )
    } else if (!isCleanlyShutDown(sourceControl)) {
      notes.push('the source was not shut down cleanly: its files may lack what only its WAL holds')
    }
    if (!source.running && sourceControl.checkPoint !== targetControl.checkPoint) {
      notes.push(
        `the two nodes stopped at different points of their WAL (last checkpoint ${formatLsn(sourceControl.checkPoint)} on the source, ` +
          `${formatLsn(targetControl.checkPoint)} on the target): what one replayed and the other did not differs`,
      )
    }

    emit({ type: 'step', message: 'listing files' })
    const [sourceFiles, targetFiles] = await Promise.all([source.listFiles(), listDataDirectory(targetDir)])
    const sources = new Map<string, FileEntry>()
    for (const entry of sourceFiles) sources.set(checkRelativePath(entry.path, 'source file'), entry)
    const targets = new Map(targetFiles.map((e) => [e.path, e]))
    const unlogged = unloggedRelations([...sources.keys(), ...targets.keys()])

    const differences: VerifyDifference[] = []
    const skipped = new Map<SkipReason, number>()
    const compare: CompareFile[] = []
    const pageFiles: RecheckFile[] = []
    for (const file of [...new Set([...sources.keys(), ...targets.keys()])].sort()) {
      const reason = skipReason(file, unlogged)
      if (reason !== null) {
        skipped.set(reason, (skipped.get(reason) ?? 0) + 1)
        continue
      }
      const s = sources.get(file)
      const t = targets.get(file)
      if (s === undefined) differences.push({ path: file, kind: 'target-only', targetType: t!.type })
      else if (t === undefined) differences.push({ path: file, kind: 'source-only', sourceType: s.type })
      else if (dirLike(s) && dirLike(t)) continue
      else if (s.type !== t.type) differences.push({ path: file, kind: 'type', sourceType: s.type, targetType: t.type })
      else if (s.type !== 'file')
        continue // a link not followed: where it points is each node's own
      else {
        const rel = relationFileOf(file)
        if (rel !== null && rel.fork !== 'fsm') {
          compare.push({ path: file, sourceSize: s.size, targetSize: t.size })
          pageFiles.push({ path: file, fork: rel.fork, segno: rel.segno, sourceSize: s.size, targetSize: t.size })
        } else if (s.size !== t.size) {
          differences.push({ path: file, kind: 'size', sourceSize: s.size, targetSize: t.size })
        } else {
          compare.push({ path: file, sourceSize: s.size, targetSize: t.size })
        }
      }
    }

    const total = compare.reduce((n, f) => n + Math.min(f.sourceSize, f.targetSize), 0)
    emit({
      type: 'step',
      message: `comparing ${compare.length} files (${(total / 1048576).toFixed(1)} MB) ${source.localDataDir !== undefined ? 'byte for byte' : 'by block digests computed on the source'}`,
    })
    const raw = new BlockMap()
    const summary = await findDifferingBlocks({
      source,
      targetDir,
      files: compare,
      blockSize: targetControl.blcksz,
      blocks: raw,
      partialBlocks: true,
      ...(opts.jobs ? { jobs: opts.jobs } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    })
    const vanished = new Set(summary.vanished)

    const pageSet = new Set(pageFiles.map((f) => f.path))
    const toRecheck = pageFiles.filter((f) => !vanished.has(f.path) && (raw.blockCount(f.path) > 0 || f.sourceSize !== f.targetSize))
    const rawPageBlocks = toRecheck.reduce((n, f) => n + raw.blockCount(f.path), 0)
    if (toRecheck.length > 0)
      emit({
        type: 'step',
        message: `fetching ${rawPageBlocks} differing relation blocks of ${toRecheck.length} files for a masked comparison`,
      })
    const recheck = await recheckPages({
      source,
      targetDir,
      files: toRecheck,
      raw,
      blockSize: targetControl.blcksz,
      relsegSize: targetControl.relseg_size,
    })
    for (const file of recheck.vanished) vanished.add(file)

    for (const file of compare) {
      const t = targets.get(file.path)!
      if (vanished.has(file.path)) {
        differences.push({ path: file.path, kind: 'target-only', targetType: t.type })
      } else if (pageSet.has(file.path)) {
        const blocks = recheck.differing.ranges(file.path)
        if (blocks.length > 0)
          differences.push({ path: file.path, kind: 'blocks', blocks, sourceSize: file.sourceSize, targetSize: file.targetSize })
      } else if (raw.blockCount(file.path) > 0) {
        differences.push({ path: file.path, kind: 'content', sourceSize: file.sourceSize, targetSize: file.targetSize })
      }
    }
    if (vanished.size > 0) notes.push(`${vanished.size} files were removed from the source while it was compared`)
    differences.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

    const sum = (map: Map<string, number>): number => [...map.values()].reduce((n, v) => n + v, 0)
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    return {
      equal: differences.length === 0,
      source: { ...side(source.description, sourceControl), kind: source.kind, running: source.running },
      target: side(targetDir, targetControl),
      differences,
      tolerated: { maskedBlocks: sum(recheck.masked), zeroTailBlocks: sum(recheck.zeroTail) },
      skipped: [...skipped].map(([reason, entries]) => ({ reason, description: SKIP_DESCRIPTIONS[reason], entries })),
      notes,
      stats: {
        files: compare.length,
        comparedBytes: summary.comparedBytes,
        method: summary.method,
        algorithm: summary.algorithm,
        fetchedBlocks: recheck.fetchedBlocks,
        seconds,
        compareSeconds: summary.seconds,
        megabytesPerSecond: summary.seconds > 0 ? summary.comparedBytes / 1048576 / summary.seconds : 0,
      },
    }
  } finally {
    await source.close()
  }
}
