// A rewind from start to end, read top to bottom like pg_rewind.c main(): inspect -> diverge ->
// ("no rewind required") -> scan -> plan -> apply -> finish. Each step is one call. Nothing is
// written to the target before the point of no return, except the crash recovery the target's
// own server does when it was not shut down cleanly (after every check that does not depend on it).

import path from 'node:path'
import fs from 'node:fs/promises'
import { RewindError } from '../errors.js'
import { decodeControlFile, type ControlFile } from '../pg/control.js'
import { formatLsn, historyFileName, type Lsn } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import { LocalSource } from '../source/local.js'
import type { FileEntry, Source } from '../source/source.js'
import type { BlockMap } from './block-map.js'
import { encodeResumeState, readResumeState, RESUME_FILE } from './resume.js'
import { findCommonAncestor } from '../pg/timeline.js'
import { listDataDirectory } from '../source/walk.js'
import { applyPlan } from './apply.js'
import { currentTimeline, findDivergence, findLastCommonCheckpoint, historyOf, type LastCheckpoint } from './diverge.js'
import type { Emit } from './events.js'
import { newControlFile, replayStart, writeBackupLabel, writeControlFile, writeRecoveryConfig } from './finish.js'
import { checkSameCluster, checkShutdownStates, isCleanlyShutDown, readTargetControl, readTargetDirMode, readTargetProfile, runningPostmasterPid } from './inspect.js'
import { plan as makePlan, type Plan } from './plan.js'
import { findPostgres, readRestoreCommand, runCrashRecovery, type PostgresBinary } from './postgres-bin.js'
import { restoreWalSegment } from './restore.js'
import { scanTargetWal } from './scan.js'
import { walScanMethod } from '../pg/native.js'
import { modesFromDataDirMode, TargetDir } from './target-dir.js'
import { openDataDirWal } from './wal-source.js'

export type SourceSpec = { readonly kind: 'local'; readonly pgdata: string } | { readonly kind: 'server'; readonly conninfo: string }

export interface RewindOptions {
  readonly targetPgdata: string
  /** Where to rewind from: a spec, or a Source of the caller's own (it is closed at the end). */
  readonly source: SourceSpec | Source
  readonly dryRun?: boolean
  readonly sync?: boolean
  readonly syncMethod?: 'fsync' | 'syncfs'
  readonly restoreTargetWal?: boolean
  readonly ensureShutdown?: boolean
  readonly writeRecoveryConf?: boolean
  readonly configFile?: string | null
  readonly postgresBindir?: string | null
  /** Parallel readers / connections. */
  readonly jobs?: number | null
  readonly timeoutSeconds?: number | null
  readonly env?: NodeJS.ProcessEnv
  readonly emit?: Emit
}

/** What the fork left to undo: found in the target's WAL, or saved by an interrupted run. */
interface Forked {
  readonly divergence: { readonly lsn: Lsn; readonly tli: number }
  readonly checkpoint: LastCheckpoint
  readonly keepWal: ReadonlySet<string>
  readonly changedBlocks: BlockMap
  readonly targetHistory: TimelineEntry[]
  readonly sourceFiles: FileEntry[]
  readonly targetFiles: FileEntry[]
  readonly walRecords: number
}

export interface RewindResult {
  readonly outcome: 'rewound' | 'no-rewind-required' | 'dry-run'
  readonly reason?: 'same-timeline' | 'target-is-ancestor'
  readonly major: number
  readonly divergence?: { readonly lsn: string; readonly tli: number }
  readonly checkpoint?: { readonly lsn: string; readonly redo: string; readonly tli: number }
  readonly plan?: Plan
  readonly walRecordsScanned?: number
  readonly fetchedBytes?: number
  readonly millis: number
}

/** Opens the source named by `spec`. */
export async function openSource(spec: SourceSpec, opts: { env: NodeJS.ProcessEnv; jobs?: number | null; timeoutSeconds?: number | null; emit: Emit }): Promise<Source> {
  if (spec.kind === 'local') return new LocalSource(spec.pgdata, opts.jobs ?? 4)
  const { openServerSource } = await import('../source/server.js')
  return openServerSource(spec.conninfo, {
    env: opts.env,
    ...(opts.jobs ? { jobs: opts.jobs } : {}),
    ...(opts.timeoutSeconds ? { timeoutMs: opts.timeoutSeconds * 1000 } : {}),
    emit: opts.emit,
  })
}

/** Rewinds `targetPgdata` to follow the source. Throws RewindError; `targetModified` tells if it wrote. */
export async function rewind(options: RewindOptions): Promise<RewindResult> {
  const started = Date.now()
  const emit = options.emit ?? (() => {})
  let lastMark = started
  const mark = (stage: string) => {
    const now = Date.now()
    emit({ type: 'debug', message: `${stage} took ${now - lastMark} ms` })
    lastMark = now
  }
  const env = options.env ?? process.env
  const targetDir = path.resolve(options.targetPgdata)
  const dryRun = options.dryRun ?? false

  // inspect: the target
  const dirMode = await readTargetDirMode(targetDir)
  const profile = await readTargetProfile(targetDir)
  let targetControl = await readTargetControl(targetDir)
  let postgres: PostgresBinary | null = null
  const needsCrashRecovery = !isCleanlyShutDown(targetControl) && (options.ensureShutdown ?? true)
  if (needsCrashRecovery || options.restoreTargetWal) {
    postgres = await findPostgres(profile.major, options.postgresBindir ?? null, env)
    emit({ type: 'debug', message: `using "${postgres.path}" (PostgreSQL ${postgres.version}, found via ${postgres.foundVia})` })
  }
  const restoreCommand = options.restoreTargetWal ? await readRestoreCommand(postgres!, targetDir, options.configFile ?? null) : null
  if (restoreCommand !== null) emit({ type: 'debug', message: `using for rewind restore_command = '${restoreCommand}'` })

  // inspect: the source
  const source = 'listFiles' in options.source ? options.source
    : await openSource(options.source, { env, jobs: options.jobs ?? null, timeoutSeconds: options.timeoutSeconds ?? null, emit })
  let wal: ReturnType<typeof targetWal> | null = null
  try {
    if (source.kind === 'server') emit({ type: 'step', message: 'connected to server' })
    const sourceControlBytes = await source.readFile('global/pg_control')
    const sourceControl = decodeControlFile(sourceControlBytes)

    // Every check that does not depend on shutdown states, before crash recovery writes.
    checkSameCluster(targetControl, profile, sourceControl)
    if (needsCrashRecovery) {
      const pid = await runningPostmasterPid(targetDir)
      if (pid !== null) {
        throw new RewindError('TARGET_NOT_SHUT_DOWN', 'target server must be shut down cleanly',
          { detail: `The target server is running (postmaster.pid names process ${pid}).`, path: targetDir })
      }
      emit({ type: 'info', message: `executing "${postgres!.path}" for target server to complete crash recovery` })
      if (!dryRun) {
        await runCrashRecovery(postgres!, targetDir, options.configFile ?? null)
        targetControl = await readTargetControl(targetDir)
      }
    }
    checkShutdownStates(targetControl, sourceControl, source.kind)

    // diverge: from the target's WAL, or from what an interrupted run saved of it
    const segSize = targetControl.xlog_seg_size
    const sourceTli = currentTimeline(sourceControl)
    const sourceHistory = historyOf(sourceTli, await readHistory(source, sourceTli), source.description)
    const resumed = await readResumeState(targetDir, targetControl)
    if (resumed === 'stale') emit({ type: 'warning', code: 'STALE_RESUME_FILE', message: `ignoring ${RESUME_FILE}: it was written for another state of this data directory` })
    let forked: Forked
    if (resumed !== null && resumed !== 'stale') {
      emit({ type: 'info', message: `resuming the rewind interrupted after it began at ${resumed.startedAt}` })
      const common = findCommonAncestor(sourceHistory, resumed.targetHistory)
      if (common === null || common.lsn !== resumed.divergence.lsn) {
        throw new RewindError('SOURCE_CHANGED', `the source's timeline history no longer matches the interrupted rewind (which diverged at ${formatLsn(resumed.divergence.lsn)})`,
          { hint: 'Rewind against the source the interrupted run used, or restore the target from a base backup.' })
      }
      emit({ type: 'info', message: `servers diverged at WAL location ${formatLsn(resumed.divergence.lsn)} on timeline ${resumed.divergence.tli}` })
      emit({ type: 'info', message: `rewinding from last common checkpoint at ${formatLsn(resumed.checkpoint.lsn)} on timeline ${resumed.checkpoint.tli}` })
      emit({ type: 'step', message: 'reading source file list' })
      const sourceFiles = await source.listFiles()
      emit({ type: 'step', message: 'reading target file list' })
      const targetFiles = await listDataDirectory(targetDir)
      forked = { ...resumed, sourceFiles, targetFiles, walRecords: 0, targetHistory: [...resumed.targetHistory] }
    } else {
      const targetTli = currentTimeline(targetControl)
      const targetHistory = historyOf(targetTli, await readHistory(new LocalSource(targetDir), targetTli), targetDir)
      const keepWal = new Set<string>()
      const targetWalReader = targetWal(targetDir, targetHistory, targetControl, restoreCommand, keepWal)
      wal = targetWalReader
      const divergence = await findDivergence({
        source: sourceControl, target: targetControl, sourceHistory, targetHistory,
        readTargetRecord: async (lsn) => {
          const result = await targetWalReader.reader.readRecord(lsn)
          if ('end' in result) throw new RewindError('WAL_INVALID', `could not read WAL record at ${formatLsn(lsn)}: ${result.end.message}`, { lsn: formatLsn(lsn) })
          return result.record
        },
      })
      if (divergence.kind === 'same-timeline') emit({ type: 'info', message: 'source and target cluster are on the same timeline' })
      else emit({ type: 'info', message: `servers diverged at WAL location ${formatLsn(divergence.lsn)} on timeline ${divergence.tli}` })
      if (divergence.kind !== 'rewind') {
        emit({ type: 'info', message: 'no rewind required' })
        if (options.writeRecoveryConf && !dryRun) await writeStandbySettings(source, new TargetDir(targetDir, modesFromDataDirMode(dirMode)))
        return {
          outcome: 'no-rewind-required', reason: divergence.kind === 'same-timeline' ? 'same-timeline' : 'target-is-ancestor', major: profile.major,
          ...(divergence.kind === 'no-rewind' ? { divergence: { lsn: formatLsn(divergence.lsn), tli: divergence.tli } } : {}),
          millis: Date.now() - started,
        }
      }
      await targetWalReader.recordOpened(true)
      const checkpoint = await findLastCommonCheckpoint(targetWalReader.reader, divergence.lsn, profile, segSize, targetWalReader.tliOf)
      await targetWalReader.recordOpened(false)
      emit({ type: 'info', message: `rewinding from last common checkpoint at ${formatLsn(checkpoint.lsn)} on timeline ${checkpoint.tli}` })

      // scan; the three reads are independent, so they run at once
      mark('inspect and diverge')
      emit({ type: 'step', message: 'reading source file list' })
      emit({ type: 'step', message: 'reading target file list' })
      emit({ type: 'step', message: 'reading WAL in target' })
      const [sourceFiles, targetFiles, scan] = await Promise.all([
        source.listFiles(),
        listDataDirectory(targetDir),
        scanTargetWal(targetWalReader.reader, checkpoint.lsn, divergence.targetWalEnd, profile, targetControl.relseg_size),
      ])
      mark(`listing and scanning ${scan.records} WAL records (checked by: ${walScanMethod})`)
      forked = {
        divergence: { lsn: divergence.lsn, tli: divergence.tli }, checkpoint, keepWal, changedBlocks: scan.changedBlocks,
        sourceFiles, targetFiles, walRecords: scan.records, targetHistory,
      }
    }
    const { checkpoint } = forked

    // plan
    const sourceWalEnd = await source.walEnd(sourceControl)
    const thePlan = makePlan({
      sourceWalEnd: sourceWalEnd.lsn, sourceHistory,
      profile, blockSize: targetControl.blcksz, relsegSize: targetControl.relseg_size, walSegSize: segSize,
      sourceDescription: source.description, sourceKind: source.kind, targetDir, sourceFiles: forked.sourceFiles, targetFiles: forked.targetFiles,
      changedBlocks: forked.changedBlocks, keepWal: forked.keepWal, divergence: forked.divergence, checkpoint,
      debug: (message) => emit({ type: 'debug', message }),
    })
    for (const entry of thePlan.entries) emit({ type: 'debug', message: `${entry.path} (${entry.action.toUpperCase().replace('-', '_')})${entry.blocks.length ? ` ${entry.blocks.reduce((n, [, c]) => n + c, 0)} blocks` : ''}` })
    emit({ type: 'step', message: `need to copy ${Math.floor(thePlan.totals.fetchBytes / 1048576)} MB (total source directory size is ${Math.floor(thePlan.totals.sourceBytes / 1048576)} MB)` })
    const gone = thePlan.sourceWalMissing
    if (gone.length > 0) {
      emit({ type: 'warning', code: 'SOURCE_WAL_MISSING', message: `the source no longer has WAL segment ${gone[0]}${gone.length > 1 ? ` nor ${gone.length - 1} more after it` : ''}, ` +
        `which the rewound server must replay (from the fork at ${thePlan.divergence.lsn} to the source's WAL end at ${formatLsn(sourceWalEnd.lsn)}): ` +
        'it will reach a consistent state only if its restore_command can fetch that WAL from an archive' })
    }
    mark('planning')
    const summary = { major: profile.major, divergence: thePlan.divergence, checkpoint: thePlan.checkpoint, plan: thePlan, walRecordsScanned: forked.walRecords }
    if (dryRun) {
      emit({ type: 'info', message: 'Done!' })
      return { outcome: 'dry-run', ...summary, millis: Date.now() - started }
    }

    await checkNewTablespaceLocations(thePlan)

    // This is the point of no return. Once we start copying things, there is no turning back!
    const target = new TargetDir(targetDir, modesFromDataDirMode(dirMode))
    if (!(resumed !== null && resumed !== 'stale')) {
      await target.writeFileDurably(RESUME_FILE, encodeResumeState({ ...forked, startedAt: new Date().toISOString() }, targetControl))
    }
    try {
      const applied = await applyPlan(thePlan, source, target, targetControl.blcksz, emit)
      mark(`copying ${applied.fetchedBytes} bytes`)
      await finish(source, target, sourceControlBytes, sourceControl, checkpoint, segSize, options, emit)
      await target.remove(RESUME_FILE, 'file')
      mark('finishing (control file, sync)')
      emit({ type: 'info', message: 'Done!' })
      return { outcome: 'rewound', ...summary, fetchedBytes: applied.fetchedBytes, millis: Date.now() - started }
    } catch (err) {
      if (err instanceof RewindError) err.targetModified = true
      else if (err instanceof Error) throw Object.assign(new RewindError('INTERNAL', err.message, {}, { cause: err }), { targetModified: true })
      throw err
    }
  } finally {
    await wal?.close()
    await source.close()
  }
}

async function finish(source: Source, target: TargetDir, sourceControlBytes: Buffer, sourceControl: ControlFile, checkpoint: LastCheckpoint,
  segSize: number, options: RewindOptions, emit: Emit): Promise<void> {
  // The source's control file is fetched last, so minRecoveryPoint covers everything copied.
  const afterBytes = await source.readFile('global/pg_control')
  const after = decodeControlFile(afterBytes)
  if (source.kind === 'local' && !afterBytes.equals(sourceControlBytes)) {
    throw new RewindError('SOURCE_CHANGED', 'source system was modified while pg_rewind was running')
  }
  emit({ type: 'step', message: 'creating backup label and updating control file' })
  await writeBackupLabel(target, replayStart(checkpoint, sourceControl), segSize, new Date())
  const end = await source.walEnd(after)
  await writeControlFile(target, newControlFile(afterBytes, end))
  if (options.sync ?? true) {
    emit({ type: 'step', message: 'syncing target data directory' })
    await target.sync(options.syncMethod ?? 'fsync')
  }
  if (options.writeRecoveryConf) await writeStandbySettings(source, target)
}

/**
 * A tablespace the target gets from the source is linked to the source's location. If a non-empty
 * directory is already there, it is someone's data: on one machine, the source's own tablespace,
 * which the copy would overwrite while reading it. Refused before any write.
 */
async function checkNewTablespaceLocations(plan: Plan): Promise<void> {
  for (const entry of plan.entries) {
    if (entry.action !== 'create' || entry.source?.type !== 'symlink' || !entry.path.startsWith('pg_tblspc/')) continue
    const location = entry.source.linkTarget!
    const names = await fs.readdir(location).catch(() => null)
    if (names !== null && names.length > 0) {
      throw new RewindError('TARGET_DIR', `tablespace location "${location}" for "${entry.path}" already exists and is not empty`, {
        path: location,
        hint: 'If the source runs on this machine, that is its own tablespace; a target cannot share it. Otherwise empty or remove the directory.',
      })
    }
  }
}

async function writeStandbySettings(source: Source, target: TargetDir): Promise<void> {
  const conninfo = source.recoveryConninfo()
  if (conninfo === null) throw new RewindError('USAGE', 'no source server information (--source-server) specified for --write-recovery-conf')
  await writeRecoveryConfig(target, conninfo)
}

async function readHistory(source: Source, tli: number): Promise<string | null> {
  if (tli === 1) return null
  const data = await source.readFileIfExists(`pg_wal/${historyFileName(tli)}`)
  return data === null ? null : data.toString('utf8')
}

/** The target's WAL, following its own history, restoring missing segments if asked (into pg_wal, as pg_rewind). */
function targetWal(targetDir: string, history: TimelineEntry[], control: ControlFile, restoreCommand: string | null, keepWal: Set<string>) {
  let recording = false
  const { reader, dir, timelineOf: tliOf } = openDataDirWal(targetDir, control, history, {
    ...(restoreCommand !== null
      ? { restore: (fileName: string, destPath: string) => restoreWalSegment(restoreCommand, fileName, destPath, control.xlog_seg_size) }
      : {}),
    onSegmentOpened: (fileName: string) => { if (recording) keepWal.add(`pg_wal/${fileName}`) },
  })
  return {
    reader, tliOf, close: () => dir.close(),
    /** While on, every segment opened is one the target needs to replay from the last common checkpoint. */
    recordOpened: async (on: boolean) => { await dir.close(); recording = on },
  }
}

