// A rewind from start to end, read top to bottom like pg_rewind.c main(): inspect -> diverge ->
// ("no rewind required") -> scan -> plan -> preflight -> journal -> apply -> finish. Each step is
// one call. Nothing is written to the target before the journal, except the crash recovery the
// target's own server does when it was not shut down cleanly (after every check that does not
// depend on it). From the journal on, an interruption is finished by running the same command
// again: rewind() then finds the journal and resumes its plan (resumeRewind).

import path from 'node:path'
import fs from 'node:fs/promises'
import { RewindError } from '../errors.js'
import { decodeControlFile, type ControlFile } from '../pg/control.js'
import { formatLsn, historyFileName, segmentFileName, segmentOf, type Lsn } from '../pg/lsn.js'
import type { TimelineEntry } from '../pg/timeline.js'
import type { VersionProfile } from '../pg/versions.js'
import { LocalSource } from '../source/local.js'
import { openSource, type SourceSpec } from '../source/open.js'
import { isTablespaceLink } from '../source/path-policy.js'
import type { Source } from '../source/source.js'
import { findCommonAncestor } from '../pg/timeline.js'
import { errText, isNotFound, listDataDirectory } from '../source/walk.js'
import { applyPlan } from './apply.js'
import { currentTimeline, findDivergence, findLastCommonCheckpoint, historyOf } from './diverge.js'
import type { Emit } from '../events.js'
import { faultPoint } from './fault.js'
import { CONTROL_FILE, finishRewind, NEW_CONTROL_FILE, removeJournal, writeRecoveryConfig } from './finish.js'
import {
  checkHintBitsInWal,
  checkSameCluster,
  checkShutdownStates,
  isCleanlyShutDown,
  readTargetDirMode,
  readTargetProfile,
  runningPostmasterPid,
} from './inspect.js'
import { addInterruptedMarker, AUTO_CONF, hasInterruptedMarker, MARKER_PARAMETER, removeInterruptedMarker } from './interrupted-marker.js'
import {
  controlFileOf,
  encodeJournal,
  JOURNAL_FILE,
  journalState,
  readJournal,
  readProgress,
  recordControlRemoval,
  recordProgress,
  type Journal,
} from './journal.js'
import { plan as makePlan, type Plan, type PlanReplay, type ReplayFrom } from './plan.js'
import { beginSourceScan, chooseReplayStart, type EarlySourceScan, NoCommonCheckpointError } from './replay-start.js'
import { BlockMap } from '../block-map.js'
import { cheaperToCompare, compareRelationFiles, hintBitsInWal, relationDataBytes, type CompareMode } from './compare-blocks.js'
import type { LastCheckpoint } from './diverge.js'
import { parseMemorySetting, readDataDirSetting } from '../pg/conf-file.js'
import { findPostgres, readRestoreCommand, runCrashRecovery, type PostgresBinary } from './postgres-bin.js'
import { checkFreeSpace, checkWritable } from './preflight.js'
import { restoreWalSegment } from './restore.js'
import { scanTargetWal } from './scan.js'
import { walScanMethod } from '../pg/native.js'
import { modesFromDataDirMode, TargetDir } from './target-dir.js'
import { sourceWalSegments, TargetWalWithSourceFallback } from './source-wal.js'
import { timelineChooser, WalDirectory } from './wal-source.js'
import { WalReader, type WalSegmentSource } from '../pg/wal/reader.js'

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
  /**
   * The path the program was invoked by (the CLI's process.argv[1]): postgres is looked for next to
   * it first, as pg_rewind does. Null or absent for a library caller.
   */
  readonly programPath?: string | null
  /** Name for messages about the program (default walrewind). */
  readonly programName?: string
  /**
   * Copy the source's postgresql.conf, pg_hba.conf, pg_ident.conf and postgresql.auto.conf over the
   * target's, as pg_rewind does. Default false: the target keeps its own (walrewind's behaviour).
   */
  readonly copyConfigFiles?: boolean
  /** Refuse (SOURCE_WAL_MISSING) instead of warning when the source no longer has WAL the rewound node needs. */
  readonly requireSourceWal?: boolean
  /**
   * Fetch the changed blocks the target holds as patches of its copies (a running source): only
   * their differing pieces cross the network, for the source's hashing of them. Default: when
   * blocks are compared with a source across a network (not a Unix socket nor loopback), where the
   * network is what the comparison spares.
   */
  readonly patchBlocks?: boolean
  /**
   * Where replay on the rewound node starts (replay-start.ts): 'source-checkpoint' (default: blocks
   * changed on either side copied) or 'last-common-checkpoint' (pg_rewind's algorithm).
   */
  readonly replayFrom?: ReplayFrom
  /**
   * How changed blocks are found (compare-blocks.ts): 'wal' (pg_rewind's, with its refusals),
   * 'blocks' (compared with the source), 'auto' (default: compared when the WAL cannot tell).
   */
  readonly compare?: CompareMode
  /** Parallel readers / connections. */
  readonly jobs?: number | null
  readonly timeoutSeconds?: number | null
  readonly env?: NodeJS.ProcessEnv
  readonly emit?: Emit
}

export interface RewindResult {
  readonly outcome: 'rewound' | 'no-rewind-required' | 'dry-run'
  readonly reason?: 'same-timeline' | 'target-is-ancestor' | 'already-rewound'
  /** The run finished a rewind an earlier run had begun (from its journal). */
  readonly resumed?: boolean
  readonly major: number
  readonly divergence?: { readonly lsn: string; readonly tli: number }
  readonly checkpoint?: { readonly lsn: string; readonly redo: string; readonly tli: number }
  /** Where replay on the rewound node starts, and why. */
  readonly replay?: PlanReplay
  /** When blocks were compared: why, and what it found. */
  readonly compare?: {
    readonly reason: string
    readonly method: 'bytes' | 'digests'
    readonly comparedBytes: number
    readonly differingBlocks: number
  }
  readonly plan?: Plan
  readonly walRecordsScanned?: number
  readonly fetchedBytes?: number
  /** Changed blocks fetched as patches (--patch-blocks): only their differing pieces were fetched. */
  readonly patchedBlocks?: number
  readonly millis: number
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

  // inspect: the target, and whether a rewind of it was interrupted
  const dirMode = await readTargetDirMode(targetDir)
  const profile = await readTargetProfile(targetDir)
  const journal = await readJournal(targetDir)
  if (journal !== null) {
    const resumed = await resumeRewind({ options, journal, targetDir, dirMode, profile, env, emit, started })
    if (resumed !== null) return resumed
  }
  if (!dryRun) await removeLeftoverMarker(targetDir, dirMode, emit)
  if (await completeControlFileRename(targetDir, dirMode, dryRun, emit)) {
    return { outcome: 'rewound', resumed: true, major: profile.major, millis: Date.now() - started }
  }
  let targetControlBytes = await readTargetControlBytes(targetDir)
  let targetControl = decodeControlFile(targetControlBytes)
  const rewoundLabel = await hasRewindBackupLabel(targetDir)
  let postgres: PostgresBinary | null = null
  const needsCrashRecovery = !isCleanlyShutDown(targetControl) && (options.ensureShutdown ?? true) && !rewoundLabel
  if (needsCrashRecovery || options.restoreTargetWal) {
    postgres = await findPostgres(
      profile.major,
      { bindir: options.postgresBindir ?? null, programPath: options.programPath ?? null, programName: options.programName ?? 'walrewind' },
      env,
    )
    emit({ type: 'debug', message: `using "${postgres.path}" (PostgreSQL ${postgres.version}, found via ${postgres.foundVia})` })
  }
  const restoreCommand = options.restoreTargetWal ? await readRestoreCommand(postgres!, targetDir, options.configFile ?? null) : null
  if (restoreCommand !== null) emit({ type: 'debug', message: `using for rewind restore_command = '${restoreCommand}'` })

  // inspect: the source
  const source = await sourceOf(options, env, emit)
  let wal: ReturnType<typeof targetWal> | null = null
  // The source's side of the scan stage, which may still run when a failure of the target's side
  // ends the rewind: waited for before the source is closed.
  const sourceSide: { listed: Promise<unknown> | null; early: EarlySourceScan | null; abandoned: boolean } = {
    listed: null,
    early: null,
    abandoned: false,
  }
  try {
    const sourceControlBytes = await source.readFile(CONTROL_FILE)
    const sourceControl = decodeControlFile(sourceControlBytes)

    // Every check that does not depend on shutdown states, before crash recovery writes.
    checkSameCluster(targetControl, profile, sourceControl)
    const compareMode = options.compare ?? 'auto'
    let compareReason: string | null = compareMode === 'blocks' ? 'asked for (--compare=blocks)' : null
    if (!hintBitsInWal(targetControl)) {
      if (compareMode === 'wal') checkHintBitsInWal(targetControl)
      compareReason ??= 'the target runs without data checksums and wal_log_hints, so its WAL leaves hint-bit changes out'
    }
    const cannotTell = (err: unknown): string | null => {
      if (compareMode === 'wal' || !(err instanceof RewindError) || err.code !== 'WAL_MISSING') return null
      return `the target no longer has the WAL it needs (${err.info.segment ?? err.info.path ?? err.message})`
    }
    const sourceTli = currentTimeline(sourceControl)
    const sourceHistory = historyOf(sourceTli, await readHistory(source, sourceTli), source.description)
    if (rewoundLabel && !isCleanlyShutDown(targetControl)) {
      // A finished rewind that was never started: its recovery must run in a server that enforces
      // minRecoveryPoint, never in single-user crash recovery.
      checkAlreadyRewound(targetControl, sourceHistory, source.description)
      emit({ type: 'info', message: 'the target was rewound already and has not been started since: no rewind required' })
      if (options.writeRecoveryConf && !dryRun) await writeStandbySettings(source, new TargetDir(targetDir, modesFromDataDirMode(dirMode)))
      return { outcome: 'no-rewind-required', reason: 'already-rewound', major: profile.major, millis: Date.now() - started }
    }
    if (needsCrashRecovery) {
      const pid = await runningPostmasterPid(targetDir)
      if (pid !== null) {
        throw new RewindError('TARGET_NOT_SHUT_DOWN', 'target server must be shut down cleanly', {
          detail: `The target server is running (postmaster.pid names process ${pid}).`,
          path: targetDir,
        })
      }
      emit({ type: 'info', message: `executing "${postgres!.path}" for target server to complete crash recovery` })
      if (!dryRun) {
        await runCrashRecovery(postgres!, targetDir, options.configFile ?? null)
        targetControlBytes = await readTargetControlBytes(targetDir)
        targetControl = decodeControlFile(targetControlBytes)
      }
    }
    checkShutdownStates(targetControl, sourceControl, source.running)

    // diverge: from the target's WAL
    const segSize = targetControl.xlog_seg_size
    const targetTli = currentTimeline(targetControl)
    const targetHistory = historyOf(targetTli, await readHistory(new LocalSource(targetDir), targetTli), targetDir)
    const targetWalReader = targetWal(
      targetDir,
      targetHistory,
      targetControl,
      restoreCommand,
      sourceWalSegments(source, segSize, sourceHistory),
      emit,
    )
    wal = targetWalReader
    const divergence = await findDivergence({
      source: sourceControl,
      target: targetControl,
      sourceHistory,
      targetHistory,
      readTargetRecord: async (lsn) => {
        const result = await targetWalReader.reader.readRecord(lsn)
        if ('end' in result)
          throw new RewindError('WAL_INVALID', `could not read WAL record at ${formatLsn(lsn)}: ${result.end.message}`, {
            lsn: formatLsn(lsn),
          })
        return result.record
      },
    })
    if (divergence.kind === 'same-timeline') emit({ type: 'info', message: 'source and target cluster are on the same timeline' })
    else emit({ type: 'info', message: `servers diverged at WAL location ${formatLsn(divergence.lsn)} on timeline ${divergence.tli}` })
    if (divergence.kind !== 'rewind') {
      emit({ type: 'info', message: 'no rewind required' })
      if (options.writeRecoveryConf && !dryRun) await writeStandbySettings(source, new TargetDir(targetDir, modesFromDataDirMode(dirMode)))
      return {
        outcome: 'no-rewind-required',
        reason: divergence.kind === 'same-timeline' ? 'same-timeline' : 'target-is-ancestor',
        major: profile.major,
        ...(divergence.kind === 'no-rewind' ? { divergence: { lsn: formatLsn(divergence.lsn), tli: divergence.tli } } : {}),
        millis: Date.now() - started,
      }
    }
    targetWalReader.setFork(divergence.lsn)
    // pg_rewind's algorithm replays from the last common checkpoint and reads the target's WAL from
    // there. Replaying from the source's checkpoint needs neither: every block either side changed
    // since the fork is copied, so the target's WAL is read from the fork, and the walk back to the
    // last common checkpoint (a pass over all the WAL before the fork, up to max_wal_size of it) is
    // made only should the source's WAL force pg_rewind's algorithm after all.
    const fromCommonCheckpoint = options.replayFrom === 'last-common-checkpoint'
    let commonCheckpoint: LastCheckpoint | null = null
    let commonCheckpointLooked = false
    const lookForCommonCheckpoint = async (): Promise<LastCheckpoint | null> => {
      if (commonCheckpointLooked) return commonCheckpoint
      commonCheckpointLooked = true
      try {
        commonCheckpoint = await findLastCommonCheckpoint(targetWalReader.reader, divergence.lsn, profile, segSize, targetWalReader.tliOf)
        emit({
          type: 'info',
          message: `rewinding from last common checkpoint at ${formatLsn(commonCheckpoint.lsn)} on timeline ${commonCheckpoint.tli}`,
        })
      } catch (err) {
        const why = cannotTell(err)
        if (why === null) throw err
        compareReason ??= why
      }
      return commonCheckpoint
    }
    const scanFrom = fromCommonCheckpoint ? (await lookForCommonCheckpoint())?.lsn : divergence.lsn

    // scan; the reads of the two sides are independent, so they run at once: the target's WAL
    // and listing, and the source's listing, then the WAL end and, unless blocks will be compared
    // because the source wrote too much WAL, the source's WAL (a server reads and sends it while
    // this thread decodes the target's)
    mark('inspect and diverge')
    emit({ type: 'step', message: 'reading source file list' })
    emit({ type: 'step', message: 'reading target file list' })
    emit({ type: 'step', message: 'reading WAL in target' })
    const scanned =
      scanFrom === undefined
        ? null
        : scanTargetWal(targetWalReader.reader, scanFrom, divergence.targetWalEnd, profile, targetControl.relseg_size).catch(
            (err: unknown) => {
              const why = cannotTell(err)
              if (why === null) throw err
              compareReason ??= why
              return null
            },
          )
    const listed = source.listFiles().then(async (files) => {
      const walEnd = await source.walEnd(sourceControl)
      const tooMuchWal =
        compareMode === 'auto' && source.running && options.replayFrom !== 'last-common-checkpoint'
          ? cheaperToCompare(Number(walEnd.lsn - divergence.lsn), relationDataBytes(files, profile))
          : null
      if (!fromCommonCheckpoint && tooMuchWal === null && !sourceSide.abandoned) {
        sourceSide.early = beginSourceScan({
          source,
          sourceControl,
          sourceHistory,
          sourceWalEnd: walEnd,
          divergence: divergence.lsn,
          comparing: compareReason !== null,
          profile,
          relsegSize: targetControl.relseg_size,
        })
      }
      return { files, walEnd, tooMuchWal }
    })
    sourceSide.listed = listed
    const [sourceListing, targetFiles, targetScan] = await Promise.all([listed, listDataDirectory(targetDir), scanned])
    const { files: sourceFiles, walEnd: sourceWalEnd } = sourceListing
    const scan = targetScan ?? { changedBlocks: new BlockMap(), records: 0, walBytes: 0 }
    mark(`listing and scanning ${scan.records} WAL records (checked by: ${walScanMethod})`)
    compareReason ??= sourceListing.tooMuchWal
    if (compareReason !== null && options.replayFrom === 'last-common-checkpoint') {
      throw new RewindError(
        'USAGE',
        `comparing blocks (${compareReason}) needs replay from the source's checkpoint, not --replay-from=last-common-checkpoint`,
      )
    }
    const replayInput = {
      source,
      sourceControl,
      sourceHistory,
      sourceWalEnd,
      divergence: divergence.lsn,
      commonCheckpoint: lookForCommonCheckpoint,
      profile,
      relsegSize: targetControl.relseg_size,
      changedBlocks: scan.changedBlocks,
      early: sourceSide.early,
      emit,
    }
    let replay = await chooseReplayStart({
      ...replayInput,
      wanted: compareReason !== null ? 'source-checkpoint' : (options.replayFrom ?? 'source-checkpoint'),
      comparing: compareReason !== null,
    }).catch((err: unknown) => {
      // The source recycled its WAL from the fork, and the target its WAL back to the last common
      // checkpoint: only a comparison can tell the changed blocks.
      if (!(err instanceof NoCommonCheckpointError) || compareReason === null) throw err
      return null
    })
    replay ??= await chooseReplayStart({ ...replayInput, wanted: 'source-checkpoint', comparing: true })
    emit({
      type: 'info',
      message: `replay will start at ${formatLsn(replay.checkpoint.redo)} on timeline ${replay.checkpoint.tli} (${replay.reason})`,
    })
    mark(`reading ${replay.sourceRecords} WAL records of the source`)
    let compared: RewindResult['compare'] | undefined
    if (compareReason !== null) {
      emit({ type: 'info', message: `comparing the blocks of every relation file with the source: ${compareReason}` })
      const summary = await compareRelationFiles({
        source,
        targetDir,
        sourceFiles,
        targetFiles,
        profile,
        blockSize: targetControl.blcksz,
        blocks: scan.changedBlocks,
        jobs: options.jobs ?? null,
        emit,
      })
      compared = {
        reason: compareReason,
        method: summary.method,
        comparedBytes: summary.comparedBytes,
        differingBlocks: summary.differingBlocks,
      }
      mark(
        `comparing ${summary.comparedBytes} bytes of ${summary.files} files (${summary.method}): ${summary.differingBlocks} blocks differ`,
      )
    }
    // Without the target's WAL back to it, the last common checkpoint is unknown: the plan and the
    // journal name the replay start in its place.
    const checkpoint = commonCheckpoint ?? replay.checkpoint

    // plan
    const keepWal =
      replay.from === 'last-common-checkpoint'
        ? replayWalOfTarget(checkpoint.redo, divergence.lsn, segSize, targetWalReader.tliOf)
        : new Set<string>()
    const planned = makePlan({
      sourceWalEnd: sourceWalEnd.lsn,
      sourceHistory,
      profile,
      blockSize: targetControl.blcksz,
      relsegSize: targetControl.relseg_size,
      walSegSize: segSize,
      sourceDescription: source.description,
      sourceKind: source.kind,
      targetDir,
      sourceFiles,
      targetFiles,
      changedBlocks: scan.changedBlocks,
      keepWal,
      divergence: { lsn: divergence.lsn, tli: divergence.tli },
      checkpoint,
      replay: { from: replay.from, checkpoint: replay.checkpoint, reason: replay.reason },
      keepTargetConfig: !(options.copyConfigFiles ?? false),
      recycleWal: { targetRedo: targetControl.checkPointCopy.redo, maxWalSize: await targetMaxWalSize(targetDir) },
      debug: (message) => emit({ type: 'debug', message }),
    })
    const patchBlocks = source.queueBlockPatch !== undefined && (options.patchBlocks ?? (compareReason !== null && source.overNetwork))
    const thePlan: Plan = patchBlocks ? { ...planned, patchBlocks } : planned
    reportPlan(thePlan, sourceWalEnd.lsn, emit, options.requireSourceWal ?? false)
    mark('planning')
    const summary = {
      major: profile.major,
      divergence: thePlan.divergence,
      checkpoint: thePlan.checkpoint,
      replay: thePlan.replay!,
      plan: thePlan,
      walRecordsScanned: scan.records + replay.sourceRecords,
      ...(compared ? { compare: compared } : {}),
    }
    if (dryRun) {
      emit({ type: 'info', message: 'Done!' })
      return { outcome: 'dry-run', ...summary, millis: Date.now() - started }
    }

    const theJournal: Journal = {
      startedAt: new Date().toISOString(),
      targetControl: targetControlBytes,
      sourceControl: sourceControlBytes,
      targetHistory,
      divergence: { lsn: divergence.lsn, tli: divergence.tli },
      checkpoint,
      planWalEnd: sourceWalEnd.lsn,
      plan: thePlan,
    }
    const journalText = encodeJournal(theJournal)
    await checkBeforeFirstWrite(targetDir, thePlan, null, journalText.length)
    await wal.close()
    wal = null

    // This is the point of no return. Once we start copying things, there is no turning back!
    const target = new TargetDir(targetDir, modesFromDataDirMode(dirMode))
    await writeStage(async () => {
      // From the first write on, PostgreSQL refuses to start the directory.
      await addInterruptedMarker(target)
      await faultPoint('marker-written')
      await target.replaceFileDurably(JOURNAL_FILE, journalText)
      await faultPoint('journal-written')
    })
    const applied = await runJournaled({
      journal: theJournal,
      done: new Set(),
      target,
      source,
      sourceHistory,
      segSize,
      options,
      emit,
      mark,
    })
    return { outcome: 'rewound', ...summary, ...applied, millis: Date.now() - started }
  } finally {
    sourceSide.abandoned = true
    await sourceSide.listed?.catch(() => {})
    await sourceSide.early?.stop()
    await wal?.close()
    await source.close()
  }
}

/** Errors from here on leave a modified target, which the same command finishes. */
async function writeStage<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    throw modified(err)
  }
}

function modified(err: unknown): unknown {
  if (err instanceof RewindError) {
    err.targetModified = true
    return err
  }
  if (err instanceof Error) return Object.assign(new RewindError('INTERNAL', err.message, {}, { cause: err }), { targetModified: true })
  return err
}

interface JournaledRun {
  readonly journal: Journal
  readonly done: ReadonlySet<number>
  readonly target: TargetDir
  readonly source: Source
  readonly sourceHistory: readonly TimelineEntry[]
  readonly segSize: number
  readonly options: RewindOptions
  readonly emit: Emit
  readonly mark: (stage: string) => void
}

/**
 * Everything after the journal: the target's pg_control off its path, the plan's entries not yet
 * done, and the finish. The same for a first run and for a resumed one.
 */
async function runJournaled(run: JournaledRun): Promise<{ fetchedBytes: number; patchedBlocks?: number }> {
  const { journal, target, source, options, emit } = run
  const sync = options.sync ?? true
  const syncMethod = options.syncMethod ?? 'fsync'
  return writeStage(async () => {
    const primaryConninfo = options.writeRecoveryConf ? source.recoveryConninfo() : null
    if (options.writeRecoveryConf && primaryConninfo === null) {
      throw new RewindError('USAGE', 'no source server information (--source-server) specified for --write-recovery-conf')
    }
    await addInterruptedMarker(target)
    await recordControlRemoval(target)
    await target.removeDurably(CONTROL_FILE)
    await faultPoint('control-removed')
    const applied = await applyPlan({
      plan: journal.plan,
      source,
      target,
      blockSize: controlFileOf(journal).blcksz,
      emit,
      done: run.done,
      syncGroup: sync ? (touched) => target.syncPaths(touched, syncMethod) : null,
      recordDone: (indices) => recordProgress(target, indices, sync),
      // Copied at the end instead: emptied for the copy, it would lose the marker until then.
      deferred: (entry) => entry.path === AUTO_CONF && entry.action === 'copy',
      patchBlocks: journal.plan.patchBlocks === true,
    })
    if (applied.patchedBlocks > 0) {
      emit({
        type: 'debug',
        message: `${applied.patchedBlocks} blocks fetched as patches: only their differing pieces crossed the network`,
      })
    }
    run.mark(`copying ${applied.fetchedBytes} bytes`)
    const copyAutoConf = journal.plan.entries.some((entry) => entry.path === AUTO_CONF && entry.action === 'copy')
    const finished = await finishRewind({
      source,
      sourceHistory: run.sourceHistory,
      target,
      journal,
      segSize: run.segSize,
      sync,
      syncMethod,
      primaryConninfo,
      copyAutoConf,
      emit,
    })
    run.mark('finishing (control file, sync)')
    emit({ type: 'info', message: 'Done!' })
    return {
      fetchedBytes: applied.fetchedBytes + finished.catchUpBytes,
      ...(journal.plan.patchBlocks === true ? { patchedBlocks: applied.patchedBlocks } : {}),
    }
  })
}

interface ResumeInput {
  readonly options: RewindOptions
  readonly journal: Journal
  readonly targetDir: string
  readonly dirMode: number
  readonly profile: VersionProfile
  readonly env: NodeJS.ProcessEnv
  readonly emit: Emit
  readonly started: number
}

/** Finishes the plan of an interrupted rewind, as its journal recorded it; null if the journal is stale. */
async function resumeRewind(input: ResumeInput): Promise<RewindResult | null> {
  const { options, journal, targetDir, profile, emit, started } = input
  const dryRun = options.dryRun ?? false
  const progress = await readProgress(targetDir, journal.plan.entries.length)
  const state = journalState(journal, await readFileIfExists(path.join(targetDir, CONTROL_FILE)), progress)
  if (state === 'stale') {
    emit({
      type: 'warning',
      code: 'STALE_JOURNAL',
      message: `ignoring ${JOURNAL_FILE}: the rewind that wrote it was interrupted before it changed anything else, and the target has run since`,
    })
    if (dryRun) return null
    await removeJournalFiles(targetDir, input.dirMode)
    return null
  }
  if (state === 'conflict') {
    throw modified(
      new RewindError(
        'JOURNAL_CONFLICT',
        `a rewind of "${targetDir}" was interrupted, and a global/pg_control has been put in place since`,
        {
          path: path.join(targetDir, CONTROL_FILE),
          detail: `The data directory is partly rewound (see ${JOURNAL_FILE}); its pg_control is neither the one it had nor one the rewind wrote.`,
          hint: 'Restore the data directory from a base backup or a new copy of the source.',
        },
      ),
    )
  }
  const targetControl = controlFileOf(journal)
  emit({ type: 'info', message: `resuming the rewind interrupted after it began at ${journal.startedAt}` })
  const source = await writeStage(() => sourceOf(options, input.env, emit))
  try {
    return await writeStage(async () => {
      const sourceControlBytes = await source.readFile(CONTROL_FILE)
      const sourceControl = decodeControlFile(sourceControlBytes)
      checkSameCluster(targetControl, profile, sourceControl)
      checkShutdownStates(targetControl, sourceControl, source.running)
      if (!source.running && !sourceControlBytes.equals(journal.sourceControl)) {
        // The journal's sizes and WAL end are those of the stopped source as it was: a directory
        // that ran since does not match them. A running server is read as it is, so it can.
        throw new RewindError(
          'SOURCE_CHANGED',
          `source data directory "${source.description}" was started since the interrupted rewind began`,
          {
            hint: 'Start the source and finish the rewind against it as a running server (--source-server), or restore the target from a base backup.',
          },
        )
      }
      const sourceTli = currentTimeline(sourceControl)
      const sourceHistory = historyOf(sourceTli, await readHistory(source, sourceTli), source.description)
      const common = findCommonAncestor(sourceHistory, journal.targetHistory)
      if (common === null || common.lsn !== journal.divergence.lsn) {
        throw new RewindError(
          'SOURCE_CHANGED',
          `the source's timeline history no longer matches the interrupted rewind (which diverged at ${formatLsn(journal.divergence.lsn)})`,
          { hint: 'Rewind against the source the interrupted run used, or restore the target from a base backup.' },
        )
      }
      emit({
        type: 'info',
        message: `servers diverged at WAL location ${formatLsn(journal.divergence.lsn)} on timeline ${journal.divergence.tli}`,
      })
      // A plan replayed from the source's checkpoint names the last common checkpoint only if it
      // was looked for; else its checkpoint is the replay start.
      const replay = journal.plan.replay
      if (replay === undefined || replay.from === 'last-common-checkpoint' || replay.checkpoint.lsn !== formatLsn(journal.checkpoint.lsn)) {
        emit({
          type: 'info',
          message: `rewinding from last common checkpoint at ${formatLsn(journal.checkpoint.lsn)} on timeline ${journal.checkpoint.tli}`,
        })
      }
      const plan = journal.plan
      const done = progress.done
      emit({ type: 'info', message: `${done.size} of ${plan.entries.length} planned actions were done already` })
      const summary = {
        major: profile.major,
        divergence: plan.divergence,
        checkpoint: plan.checkpoint,
        ...(plan.replay ? { replay: plan.replay } : {}),
        plan,
        resumed: true,
      }
      if (dryRun) {
        emit({ type: 'info', message: 'Done!' })
        return { outcome: 'dry-run' as const, ...summary, millis: Date.now() - started }
      }
      const pending = new Set(plan.entries.map((_, index) => index).filter((index) => !done.has(index)))
      await checkBeforeFirstWrite(targetDir, plan, pending, 0)
      const target = new TargetDir(targetDir, modesFromDataDirMode(input.dirMode))
      const applied = await runJournaled({
        journal,
        done,
        target,
        source,
        sourceHistory,
        segSize: targetControl.xlog_seg_size,
        options,
        emit,
        mark: (stage) => emit({ type: 'debug', message: stage }),
      })
      return { outcome: 'rewound' as const, ...summary, ...applied, millis: Date.now() - started }
    })
  } finally {
    await source.close()
  }
}

/**
 * A marker without a journal: a run was interrupted between its first write (the marker) and its
 * journal, so nothing else was written. The marker goes; this run starts afresh.
 */
async function removeLeftoverMarker(targetDir: string, dirMode: number, emit: Emit): Promise<void> {
  const target = new TargetDir(targetDir, modesFromDataDirMode(dirMode))
  if (!(await hasInterruptedMarker(target))) return
  emit({
    type: 'info',
    message: `removing the ${MARKER_PARAMETER} line a rewind interrupted before its first data write left in ${AUTO_CONF}`,
  })
  await removeInterruptedMarker(target)
}

/** A stale journal and what came with it go; the target is then as the interrupted run found it. */
async function removeJournalFiles(targetDir: string, dirMode: number): Promise<void> {
  const target = new TargetDir(targetDir, modesFromDataDirMode(dirMode))
  await removeInterruptedMarker(target)
  await removeJournal(target)
}

/**
 * The journal was removed and the new pg_control was waiting beside its place when the last run
 * ended: the rewind was complete but for that rename, which is done here.
 */
async function completeControlFileRename(targetDir: string, dirMode: number, dryRun: boolean, emit: Emit): Promise<boolean> {
  if ((await readFileIfExists(path.join(targetDir, CONTROL_FILE))) !== null) return false
  const waiting = await readFileIfExists(path.join(targetDir, NEW_CONTROL_FILE))
  if (waiting === null) return false
  decodeControlFile(waiting)
  emit({ type: 'info', message: 'the interrupted rewind was complete but for putting its new control file in place' })
  if (!dryRun) {
    await writeStage(() => new TargetDir(targetDir, modesFromDataDirMode(dirMode)).renameDurably(NEW_CONTROL_FILE, CONTROL_FILE))
  }
  emit({ type: 'info', message: 'Done!' })
  return true
}

/** A finished rewind is "no rewind required" only if it was a rewind onto this source's history. */
function checkAlreadyRewound(target: ControlFile, sourceHistory: readonly TimelineEntry[], sourceDescription: string): void {
  const end = target.minRecoveryPoint
  const onHistory = sourceHistory.some(
    (entry) => entry.tli === target.minRecoveryPointTLI && entry.begin <= end && (entry.end === null || end <= entry.end),
  )
  if (!onHistory) {
    throw new RewindError('TARGET_NOT_SHUT_DOWN', 'target server must be shut down cleanly', {
      detail: `The target was rewound (it has a rewind's backup_label) to follow another history than that of ${sourceDescription}, and was never started since.`,
      hint: 'Start it once so that it finishes that recovery, stop it, then rewind it again.',
    })
  }
}

async function hasRewindBackupLabel(targetDir: string): Promise<boolean> {
  const text = await readFileIfExists(path.join(targetDir, 'backup_label'))
  return text !== null && /^BACKUP METHOD: pg_rewind$/m.test(text.toString('utf8'))
}

/** Space, permissions and tablespace locations: the checks that need the plan, before any write. */
async function checkBeforeFirstWrite(
  targetDir: string,
  plan: Plan,
  pending: ReadonlySet<number> | null,
  journalBytes: number,
): Promise<void> {
  await checkNewTablespaceLocations(plan, pending)
  await checkWritable(targetDir, plan, pending)
  await checkFreeSpace(targetDir, plan, pending, journalBytes)
}

/** The target's max_wal_size in bytes, if the configuration files in its data directory set it. */
async function targetMaxWalSize(targetDir: string): Promise<number | null> {
  const value = await readDataDirSetting(targetDir, 'max_wal_size')
  return value === null ? null : parseMemorySetting(value, 'MB')
}

function reportPlan(thePlan: Plan, sourceWalEnd: Lsn, emit: Emit, requireSourceWal: boolean): void {
  for (const entry of thePlan.entries)
    emit({
      type: 'debug',
      message: `${entry.path} (${entry.action.toUpperCase().replace('-', '_')})${entry.blocks.length ? ` ${entry.blocks.reduce((n, [, c]) => n + c, 0)} blocks` : ''}`,
    })
  emit({
    type: 'step',
    message: `need to copy ${Math.floor(thePlan.totals.fetchBytes / 1048576)} MB (total source directory size is ${Math.floor(thePlan.totals.sourceBytes / 1048576)} MB)`,
  })
  const gone = thePlan.sourceWalMissing
  if (gone.length > 0) {
    const missing =
      `the source no longer has WAL segment ${gone[0]}${gone.length > 1 ? ` nor ${gone.length - 1} more after it` : ''}, ` +
      `which the rewound server must replay (from the redo point at ${thePlan.replay?.checkpoint.redo ?? thePlan.checkpoint.redo} to the source's WAL end at ${formatLsn(sourceWalEnd)})`
    if (requireSourceWal) {
      throw new RewindError('SOURCE_WAL_MISSING', missing, {
        segment: gone[0]!,
        hint: 'Rewind against a source that still has this WAL (a replication slot or a larger wal_keep_size keeps it), or make it available to the rewound server through a restore_command and run without --require-source-wal.',
      })
    }
    emit({
      type: 'warning',
      code: 'SOURCE_WAL_MISSING',
      message: `${missing}: it will reach a consistent state only if its restore_command can fetch that WAL from an archive`,
    })
  }
}

/** The target's WAL segments replay needs before the fork, from the last common checkpoint's redo point: never removed. */
function replayWalOfTarget(redo: Lsn, divergence: Lsn, segSize: number, tliOf: (segno: bigint) => number): Set<string> {
  const keep = new Set<string>()
  for (let segno = segmentOf(redo, segSize); segno <= segmentOf(divergence, segSize); segno++) {
    keep.add(`pg_wal/${segmentFileName(tliOf(segno), segno, segSize)}`)
  }
  return keep
}

async function sourceOf(options: RewindOptions, env: NodeJS.ProcessEnv, emit: Emit): Promise<Source> {
  if ('listFiles' in options.source) return options.source
  return openSource(options.source, { env, jobs: options.jobs ?? null, timeoutSeconds: options.timeoutSeconds ?? null, emit })
}

async function readTargetControlBytes(dir: string): Promise<Buffer> {
  const file = path.join(dir, CONTROL_FILE)
  try {
    return await fs.readFile(file)
  } catch (err) {
    throw new RewindError('TARGET_DIR', `could not open file "${file}" for reading: ${errText(err)}`, { path: file }, { cause: err })
  }
}

async function readFileIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file)
  } catch (err) {
    if (isNotFound(err)) return null
    throw new RewindError('TARGET_DIR', `could not read file "${file}": ${errText(err)}`, { path: file }, { cause: err })
  }
}

/**
 * A tablespace the target gets from the source is linked to the source's location. If a non-empty
 * directory is already there, it is someone's data: on one machine, the source's own tablespace,
 * which the copy would overwrite while reading it. Refused before any write. (A resumed run made
 * the link and may have filled the location itself: only entries not done yet are checked.)
 */
async function checkNewTablespaceLocations(plan: Plan, pending: ReadonlySet<number> | null): Promise<void> {
  for (const [index, entry] of plan.entries.entries()) {
    if (pending !== null && !pending.has(index)) continue
    if (entry.action !== 'create' || entry.source?.type !== 'symlink' || !isTablespaceLink(entry.path)) continue
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
  if (conninfo === null)
    throw new RewindError('USAGE', 'no source server information (--source-server) specified for --write-recovery-conf')
  await writeRecoveryConfig(target, conninfo)
}

async function readHistory(source: Source, tli: number): Promise<string | null> {
  if (tli === 1) return null
  const data = await source.readFileIfExists(`pg_wal/${historyFileName(tli)}`)
  return data === null ? null : data.toString('utf8')
}

/**
 * The target's WAL, following its own history, restoring missing segments if asked (into pg_wal,
 * as pg_rewind), else reading those wholly before the fork from the source (set `forkSegment`).
 */
function targetWal(
  targetDir: string,
  history: TimelineEntry[],
  control: ControlFile,
  restoreCommand: string | null,
  fromSource: { segments: WalSegmentSource; close: () => Promise<void> },
  emit: Emit,
) {
  const segSize = control.xlog_seg_size
  const tliOf = timelineChooser(history, segSize)
  const dir = new WalDirectory({
    dir: path.join(targetDir, 'pg_wal'),
    segSize,
    timelineOf: tliOf,
    ...(restoreCommand !== null
      ? { restore: (fileName: string, destPath: string) => restoreWalSegment(restoreCommand, fileName, destPath, segSize) }
      : {}),
  })
  const segments = new TargetWalWithSourceFallback(dir, fromSource.segments, (fileName) =>
    emit({
      type: 'info',
      message: `reading WAL segment ${fileName} from the source: the target no longer has it, and before the fork both wrote the same WAL`,
    }),
  )
  const reader = new WalReader({
    profile: control.profile,
    segSize,
    blockSize: control.blcksz,
    systemIdentifier: control.system_identifier,
    source: segments,
  })
  return {
    reader,
    tliOf,
    setFork: (lsn: Lsn) => {
      segments.forkSegment = segmentOf(lsn, segSize)
    },
    close: async () => {
      await dir.close()
      await fromSource.close()
    },
  }
}
