// pg_rewind's RewindTest.pm, for walrewind: a primary and a standby that is promoted, diverging
// writes, a rewind of the old primary (target) against the new one (source) in local, remote or
// archive mode, and the proof: the target starts as a standby of the source, replays everything
// the source has, and holds the same data.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { type Kit, REWIND_GRANTS, REWIND_ROLE, type InitOptions, type Major, type Node, type RunResult } from '../kit/index.js'
import { installAmcheck } from '../kit/fingerprint.js'

export type Mode = 'local' | 'remote' | 'archive'

export const REWIND_USER = REWIND_ROLE
export { REWIND_GRANTS }

export interface Pair {
  kit: Kit
  primary: Node
  standby: Node
}

/** A primary with the rewind role, started; not yet with a standby. */
export async function setupPrimary(
  kit: Kit,
  major: Major,
  opts: InitOptions = {},
  beforeStart?: (node: Node) => Promise<void>,
): Promise<Node> {
  const primary = await kit.initNode('primary', major, { walLogHints: true, ...opts })
  if (beforeStart) await beforeStart(primary)
  await primary.start()
  await primary.query(`CREATE ROLE ${REWIND_USER} LOGIN`)
  for (const grant of REWIND_GRANTS) await primary.query(grant)
  return primary
}

export async function createStandby(kit: Kit, primary: Node): Promise<Node> {
  return kit.createStandby(primary, 'standby')
}

/** Promotes the standby once it has everything the primary wrote. */
export async function promoteStandby(primary: Node, standby: Node): Promise<void> {
  await standby.waitForReplay(await primary.currentLsn())
  await standby.promote()
}

export function sql(node: Node, text: string, dbname?: string): Promise<unknown[]> {
  return node.query(text, [], dbname ? { dbname } : {})
}

/** The rows of a one-column query, as strings, in order. */
export async function column(node: Node, text: string, dbname?: string): Promise<string[]> {
  const rows = await node.query<Record<string, unknown>>(text, [], dbname ? { dbname } : {})
  return rows.map((r) => String(Object.values(r)[0]))
}

export interface RewindRun extends RunResult {
  args: string[]
}

/**
 * The replay start walrewind uses when a test does not name one: WALREWIND_REPLAY_FROM (the suite's
 * second pass runs with pg_rewind's algorithm through it), else the default.
 */
export function defaultReplayFrom(): 'source-checkpoint' | 'last-common-checkpoint' {
  return process.env['WALREWIND_REPLAY_FROM'] === 'last-common-checkpoint' ? 'last-common-checkpoint' : 'source-checkpoint'
}

/** The scenario's skeleton: primary, standby, promote; `before`/`after` write around the promotion. */
export async function forkedPair(
  kit: Kit,
  major: Major,
  opts: {
    init?: InitOptions
    beforeStart?: (node: Node) => Promise<void>
    beforeStandby?: (primary: Node) => Promise<void>
    beforePromotion?: (primary: Node) => Promise<void>
    afterPromotion?: (primary: Node, standby: Node) => Promise<void>
  } = {},
): Promise<{ primary: Node; standby: Node }> {
  const primary = await setupPrimary(kit, major, opts.init ?? {}, opts.beforeStart)
  await opts.beforeStandby?.(primary)
  await sql(primary, 'CHECKPOINT')
  const standby = await createStandby(kit, primary)
  await opts.beforePromotion?.(primary)
  await sql(primary, 'CHECKPOINT')
  await promoteStandby(primary, standby)
  await opts.afterPromotion?.(primary, standby)
  return { primary, standby }
}

/** Runs a shell command as the kit's OS user (files in data directories must be that user's). */
export async function shell(kit: Kit, script: string): Promise<string> {
  const result = await kit.run('sh', ['-c', script])
  assert.equal(result.code, 0, `${script}\n${result.stderr}`)
  return result.stdout
}

/**
 * Runs walrewind with target = primary, source = standby, as pg_rewind's run_pg_rewind(mode):
 * local and remote crash the primary first (so the target needs crash recovery); archive stops it
 * cleanly and moves its pg_wal into the archive.
 */
export async function runRewind(
  kit: Kit,
  target: Node,
  source: Node,
  mode: Mode,
  extraArgs: string[] = [],
  opts: { crash?: boolean } = {},
): Promise<RewindRun> {
  if (mode === 'archive' || opts.crash === false) await target.stop('fast')
  else await target.stop('immediate')
  const args = ['--debug', `--target-pgdata=${target.dataDir}`, '--no-sync', `--postgres-bindir=${target.binDir}`]
  if (mode === 'local') {
    await source.stop('fast')
    args.push(`--source-pgdata=${source.dataDir}`)
  } else if (mode === 'remote') {
    args.push(`--source-server=${source.connectionString({ user: REWIND_USER })}`, '--write-recovery-conf')
  } else {
    await source.stop('fast')
    await moveWalToArchive(kit, target)
    args.push(`--source-pgdata=${source.dataDir}`, '--no-ensure-shutdown', '--restore-target-wal')
  }
  args.push(...extraArgs)
  // As RewindTest.pm: the target's postgresql.conf (its port, paths) would be replaced by the
  // source's copy; keep the target's own.
  const conf = path.join(target.dataDir, 'postgresql.conf')
  const saved = await fs.readFile(conf)
  const result = await kit.runWalrewind(args)
  await fs.writeFile(conf, saved)
  return { ...result, args }
}

/** pg_rewind's archive mode: the target's WAL is only in its archive, fetched by restore_command. */
async function moveWalToArchive(kit: Kit, target: Node): Promise<void> {
  const walDir = path.join(target.dataDir, 'pg_wal')
  for (const name of await fs.readdir(walDir)) {
    if (/^[0-9A-F]{24}$/.test(name) || name.endsWith('.history')) {
      await kit.run('cp', ['-p', path.join(walDir, name), path.join(target.archiveDir, name)])
      await fs.rm(path.join(walDir, name))
    }
  }
  await target.setConf({ restore_command: `cp "${target.archiveDir}/%f" "%p"` })
}

export function assertRewindOk(run: RewindRun, opts: { sourceWalMissing?: boolean } = {}): void {
  assert.equal(run.code, 0, `walrewind ${run.args.join(' ')} failed (exit ${run.code}):\n${run.stderr}\n${run.stdout}`)
  // The source keeps the WAL the rewound node needs, unless a scenario removes it on purpose.
  if (opts.sourceWalMissing !== true) assert.doesNotMatch(run.stderr, /the source no longer has WAL segment/)
}

/**
 * The proof of a rewind: start the target as a standby of the source, let it replay everything
 * the source has now, and compare the data (and the btree indexes, with amcheck).
 */
export async function startAsStandbyAndCompare(target: Node, source: Node, mode: Mode): Promise<void> {
  if (!(await source.isRunning())) await source.start()
  if (mode === 'remote') {
    // -R wrote standby.signal and primary_conninfo for the rewind role; streaming needs REPLICATION.
    await source.query(`ALTER ROLE ${REWIND_USER} WITH REPLICATION`)
    await fs.access(path.join(target.dataDir, 'standby.signal'))
  } else {
    await target.followAs(source)
  }
  await target.start()
  // amcheck must come through replication: a standby cannot create extensions.
  await installAmcheck(source)
  const lsn = await source.currentLsn()
  await target.waitForReplay(lsn)
  assert.deepEqual(await target.fingerprint(), await source.fingerprint(), 'target and source data differ after the rewind')
  await target.checkIndexes()
}

/** Every file of a data directory with its bytes' hash: "unchanged" means this is equal. */
export async function snapshotDirectory(kit: Kit, dir: string): Promise<string> {
  const result = await kit.run('sh', [
    '-c',
    `cd "${dir}" && find . -type f -print0 | sort -z | xargs -0 sha1sum && find . -printf '%p %m %y\\n' | sort`,
  ])
  assert.equal(result.code, 0, result.stderr)
  return result.stdout
}
