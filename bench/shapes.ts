// The rewind benchmark's shapes: how each state is prepared (which leaves two stopped nodes of the
// kit, "primary" = the old primary, the target, and "standby" = the promoted standby, the source)
// and what a run of it measures. Every parameter has a default (the full size) and can be
// overridden from the command line for small validation runs.

import fs from 'node:fs'
import path from 'node:path'
import { parseLsn, REWIND_GRANTS, REWIND_ROLE, type Kit, type Node, type Settings } from '../test/kit/index.js'
import type { ContenderId, Overrides, ShapeName } from './options.js'

export const PG15 = '/usr/lib/postgresql/15/bin'
const HOUR_MS = 3_600_000
const MB = 1024 * 1024

export type Params = Partial<Record<keyof Overrides, number>>
export type Info = Record<string, string | number>

export interface Shape {
  name: ShapeName
  /** rewind: the tools' own time, bytes, memory; streaming: from the rewind's start until the rewound node streams. */
  kind: 'rewind' | 'streaming'
  /** The preparation; shapes with the same preparation and parameters share a saved state. */
  prep: Prep
  /** Default parameters (full size); only these can be overridden. */
  defaults: Params
  defaultTools: ContenderId[]
  describe(p: Params): string
}

export interface PrepContext {
  kit: Kit
  log: (message: string) => void
}

interface Prep {
  name: string
  run(ctx: PrepContext, p: Params): Promise<Info>
}

/** Settings of the new shapes' clusters (on top of the kit's): a realistic buffer pool, WAL kept for the rewind. */
const BENCH_CONF: Settings = { shared_buffers: '512MB', max_wal_size: '2GB', wal_keep_size: '1GB' }

// ---------------------------------------------------------------------------------------------
// Helpers

async function newPrimary(kit: Kit, conf: Settings): Promise<Node> {
  const primary = await kit.initNode('primary', 15, { walLogHints: true, conf })
  await primary.start()
  // The rewind user of pg_rewind's documentation, plus REPLICATION so that -R's primary_conninfo streams.
  await primary.query(`CREATE ROLE ${REWIND_ROLE} LOGIN REPLICATION`)
  for (const grant of REWIND_GRANTS) await primary.query(grant)
  return primary
}

/** Runs Debian's pgbench 15 against `node`; returns the tps it printed (NaN for -i). */
export async function pgbench(kit: Kit, node: Node, args: string[]): Promise<number> {
  const r = await kit.run(path.join(PG15, 'pgbench'), ['-h', node.host, '-p', String(node.port), '-U', 'postgres', ...args, 'postgres'], {
    timeoutMs: 8 * HOUR_MS,
  })
  if (r.code !== 0) throw new Error(`pgbench ${args.join(' ')} on ${node.name} failed:\n${r.stderr}`)
  const tps = /tps = ([\d.]+)/.exec(r.stdout)
  return tps ? Number(tps[1]) : NaN
}

/** The LSN where the new timeline of the promoted `node` begins (its history file). */
async function forkLsn(node: Node): Promise<string> {
  const tli = await node.queryValue<number>('select timeline_id from pg_control_checkpoint()')
  const history = await node.queryValue<string>(`select pg_read_file('pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history')`)
  const last = history
    .trim()
    .split('\n')
    .filter((l) => /^\d/.test(l))
    .pop()
  const lsn = last?.split(/\s+/)[1]
  if (!lsn) throw new Error(`no switch point in the history of ${node.name}: ${history}`)
  return lsn
}

async function walSince(node: Node, lsn: string): Promise<number> {
  return Number(
    await node.queryValue<string>(
      `select pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
    else pg_current_wal_insert_lsn() end, $1)::bigint::text`,
      [lsn],
    ),
  )
}

async function dbSize(node: Node): Promise<string> {
  return node.queryValue<string>('select pg_size_pretty(sum(pg_database_size(oid))) from pg_database')
}

/** Standby made by an online base backup right after the load (the kit's pg_basebackup), caught up, promoted, checkpointed. */
async function standbyPromoted(
  kit: Kit,
  primary: Node,
  log: (m: string) => void,
  conf: Settings = {},
): Promise<{ standby: Node; fork: string }> {
  log('standby: online base backup of the primary')
  const standby = await kit.createStandby(primary, 'standby', { conf })
  await standby.waitForReplay(await primary.currentLsn(), HOUR_MS)
  return { standby, fork: await promote(standby) }
}

async function promote(standby: Node): Promise<string> {
  await standby.promote()
  // pg_rewind 15 takes the source's timeline from its last checkpoint: without this, against a
  // running source promoted a moment ago, it would answer "no rewind required".
  await standby.query('CHECKPOINT')
  return forkLsn(standby)
}

async function stopBoth(primary: Node, standby: Node): Promise<void> {
  await primary.stop()
  await standby.stop()
}

/** pg_waldump --stats over [start, end) of `node`'s (stopped) WAL: records, record bytes, FPI bytes. */
async function walStats(kit: Kit, node: Node, start: string, end: string): Promise<Info> {
  const r = await kit.run(path.join(PG15, 'pg_waldump'), ['--stats', '-p', path.join(node.dataDir, 'pg_wal'), '-s', start, '-e', end], {
    timeoutMs: HOUR_MS,
  })
  // Total  N  record-bytes [x%]  fpi-bytes [x%]  combined [100%]
  const total = /^Total\s+(\d+)\s+(\d+)\s+\S+\s+(\d+)\s+\S+\s+(\d+)/m.exec(r.stdout)
  if (r.code !== 0 || !total) return { 'pg_waldump --stats': `failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0] ?? ''}` }
  return {
    'WAL records before the fork': Number(total[1]),
    'of which record bytes (MB)': Number((Number(total[2]) / MB).toFixed(1)),
    'of which full-page images (MB)': Number((Number(total[3]) / MB).toFixed(1)),
  }
}

function fileCount(dir: string): number {
  let n = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) n++
  return n
}

// ---------------------------------------------------------------------------------------------
// Preparations

/**
 * pgbench -i -s SCALE; a standby by an online base backup right after it; promoted (+ CHECKPOINT);
 * then pgbench -c 4 on both sides at once for SECONDS; the source goes on alone until it has
 * written for SOURCESECONDS and SOURCEWALMB of WAL since the fork (time-to-streaming-long). Both
 * stopped cleanly.
 */
const forkPrep: Prep = {
  name: 'fork',
  async run({ kit, log }, p) {
    const scale = p.scale!,
      seconds = p.seconds!,
      sourceSeconds = p.sourceSeconds ?? 0,
      sourceWalMb = p.sourceWalMb ?? 0
    const long = sourceSeconds > seconds || sourceWalMb > 0
    // The source must keep all its WAL since the fork (the rewound node replays it from there).
    const sourceConf: Settings = long ? { max_wal_size: '4GB', wal_keep_size: `${Math.max(4096, 3 * sourceWalMb)}MB` } : {}
    const primary = await newPrimary(kit, BENCH_CONF)
    log(`primary: pgbench -i -s ${scale}`)
    await pgbench(kit, primary, ['-i', '-q', '-s', String(scale)])
    const { standby, fork } = await standbyPromoted(kit, primary, log, sourceConf)
    const targetStart = await primary.currentLsn()
    log(`fork at ${fork}: ${seconds} s of pgbench -c 4 on both sides at once`)
    const [targetTps, sourceTps] = await Promise.all([
      seconds > 0 ? pgbench(kit, primary, ['-T', String(seconds), '-c', '4']) : NaN,
      seconds > 0 ? pgbench(kit, standby, ['-T', String(seconds), '-c', '4']) : NaN,
    ])
    const info: Info = { database: await dbSize(primary), fork, 'target tps': Math.round(targetTps), 'source tps': Math.round(sourceTps) }
    if (sourceSeconds > seconds) {
      log(`source alone: ${sourceSeconds - seconds} s more of pgbench -c 4`)
      await pgbench(kit, standby, ['-T', String(sourceSeconds - seconds), '-c', '4'])
    }
    let extra = 0
    while (sourceWalMb > 0 && (await walSince(standby, fork)) < sourceWalMb * MB) {
      if (++extra > 60) throw new Error(`the source wrote less than ${sourceWalMb} MB of WAL in ${sourceSeconds + extra * 30} s`)
      log(`source: ${((await walSince(standby, fork)) / MB).toFixed(0)} MB of WAL since the fork, 30 s more`)
      await pgbench(kit, standby, ['-T', '30', '-c', '4'])
    }
    info['target WAL since fork (MB)'] = Math.round((await walSince(primary, targetStart)) / MB)
    info['source WAL since fork (MB)'] = Math.round((await walSince(standby, fork)) / MB)
    if (extra > 0) info['source seconds after the fork'] = sourceSeconds + extra * 30
    await stopBoth(primary, standby)
    return info
  },
}

/**
 * The benchmark's first scenario, as it was: pgbench -i, a standby made after the load (or
 * before it, FOLLOW=1: it streamed the load), 20 s of pgbench on the old primary, then 5 s on the
 * promoted standby. The kit's server settings plus the WAL kept.
 */
function legacyPrep(follow: boolean): Prep {
  return {
    name: follow ? 'follow-load' : 'after-load',
    async run({ kit, log }, p) {
      const scale = p.scale!
      const primary = await newPrimary(kit, { max_wal_size: '4GB', wal_keep_size: '8GB' })
      let standby = follow ? await kit.createStandby(primary, 'standby') : null
      log(`primary: pgbench -i -s ${scale}${follow ? ' (standby streaming)' : ''}`)
      await pgbench(kit, primary, ['-i', '-q', '-s', String(scale)])
      await primary.query('CHECKPOINT')
      standby ??= await kit.createStandby(primary, 'standby')
      await standby.waitForReplay(await primary.currentLsn(), HOUR_MS)
      const fork = await promote(standby)
      log('diverging: 20 s of pgbench on the old primary, 5 s on the new one')
      await pgbench(kit, primary, ['-T', '20', '-c', '4', '-j', '2'])
      await pgbench(kit, standby, ['-T', '5', '-c', '2'])
      await standby.query('CHECKPOINT')
      const info: Info = {
        database: await dbSize(primary),
        fork,
        'source WAL since fork (MB)': Math.round((await walSince(standby, fork)) / MB),
      }
      await stopBoth(primary, standby)
      return info
    },
  }
}

/**
 * TABLES small tables (id int primary key, v int, w bigint; 20 rows: one heap page, a two-page
 * index each), a standby made after them, promoted; then CHANGED tables updated on each side
 * (different ones), and CHANGED/20 new tables created on each side.
 */
const manyTablesPrep: Prep = {
  name: 'many-tables',
  async run({ kit, log }, p) {
    const tables = p.tables!,
      changed = Math.min(p.changed!, Math.floor(p.tables! / 2))
    const primary = await newPrimary(kit, { ...BENCH_CONF, max_locks_per_transaction: 256 })
    log(`primary: ${tables} tables with an index each`)
    const batch = 250
    for (let from = 1; from <= tables; from += batch) {
      const to = Math.min(tables, from + batch - 1)
      await primary.query(`DO $$ BEGIN FOR i IN ${from}..${to} LOOP
        EXECUTE format('CREATE TABLE mt_%s (id int PRIMARY KEY, v int NOT NULL, w bigint)', i);
        EXECUTE format('INSERT INTO mt_%s SELECT g, 0, g FROM generate_series(1, 20) g', i);
      END LOOP; END $$`)
      if (to % 5000 === 0) log(`  ${to} tables`)
    }
    await primary.query('VACUUM')
    await primary.query('CHECKPOINT')
    const { standby, fork } = await standbyPromoted(kit, primary, log)
    const step = Math.max(2, Math.floor(tables / changed))
    const change = async (node: Node, offset: number, tag: string) => {
      const picks = Array.from({ length: changed }, (_, j) => 1 + j * step + offset).filter((i) => i <= tables)
      for (let k = 0; k < picks.length; k += 100) {
        await node.query(`DO $$ DECLARE i int; BEGIN FOREACH i IN ARRAY ARRAY[${picks.slice(k, k + 100).join(',')}] LOOP
          EXECUTE format('UPDATE mt_%s SET v = v + 1 WHERE id %% 3 = 0', i);
          EXECUTE format('INSERT INTO mt_%s VALUES (21, 1, 1)', i);
        END LOOP; END $$`)
      }
      const created = Math.max(1, Math.floor(changed / 20))
      await node.query(`DO $$ BEGIN FOR i IN 1..${created} LOOP
        EXECUTE format('CREATE TABLE new_${tag}_%s (id int PRIMARY KEY, v int)', i);
        EXECUTE format('INSERT INTO new_${tag}_%s SELECT g, g FROM generate_series(1, 100) g', i);
      END LOOP; END $$`)
      return picks.length
    }
    log(`fork at ${fork}: ${changed} tables changed on each side`)
    const [onTarget, onSource] = await Promise.all([change(primary, 0, 'target'), change(standby, Math.floor(step / 2), 'source')])
    const info: Info = { database: await dbSize(primary), fork, 'tables changed on the target': onTarget, 'on the source': onSource }
    await stopBoth(primary, standby)
    info['files in the target'] = fileCount(primary.dataDir)
    return info
  },
}

/**
 * WALMB of WAL of small records (single-row heap inserts, about 70 bytes each: no index, new pages
 * initialised in the record, no full-page images) after the last common checkpoint, streamed by
 * the standby (checkpoint_timeout=1h, max_wal_size=10GB: no checkpoint in between); then the
 * standby is promoted and both sides run SECONDS of pgbench -c 4 (on a small pgbench database,
 * scale SCALE).
 */
const longWalPrep: Prep = {
  name: 'long-wal',
  async run({ kit, log }, p) {
    const walMb = p.walMb!,
      seconds = p.seconds!,
      scale = p.scale!
    const primary = await newPrimary(kit, { ...BENCH_CONF, checkpoint_timeout: '1h', max_wal_size: '10GB' })
    await pgbench(kit, primary, ['-i', '-q', '-s', String(scale)])
    await primary.query('CREATE TABLE smallrec (id int, v int)')
    log('standby: online base backup (its checkpoint is the last common one), streaming')
    const standby = await kit.createStandby(primary, 'standby')
    const redo = await primary.queryValue<string>('select redo_lsn::text from pg_control_checkpoint()')
    // Counted from here: the backup's end switched to a new segment, the rest of the old one is no WAL.
    const insertsFrom = await primary.currentLsn()
    log(`primary: single-row inserts until ${walMb} MB of WAL after the checkpoint (redo ${redo}, inserts from ${insertsFrom})`)
    let rows = 0
    while ((await walSince(primary, insertsFrom)) < walMb * MB) {
      await primary.query('INSERT INTO smallrec SELECT g, g FROM generate_series(1, 100000) g')
      rows += 100000
    }
    await standby.waitForReplay(await primary.currentLsn(), HOUR_MS)
    const beforeFork = await walSince(primary, redo)
    const fork = await promote(standby)
    log(`fork at ${fork}: ${seconds} s of pgbench -c 4 on both sides at once`)
    await Promise.all([
      seconds > 0 ? pgbench(kit, primary, ['-T', String(seconds), '-c', '4']) : null,
      seconds > 0 ? pgbench(kit, standby, ['-T', String(seconds), '-c', '4']) : null,
    ])
    const info: Info = {
      database: await dbSize(primary),
      'last common checkpoint redo': redo,
      fork,
      'rows inserted': rows,
      'WAL from the checkpoint to the fork (MB)': Math.round(beforeFork / MB),
      'of which the inserts (MB)': Math.round(Number(parseLsn(fork) - parseLsn(insertsFrom)) / MB),
      'source WAL since fork (MB)': Math.round((await walSince(standby, fork)) / MB),
    }
    await stopBoth(primary, standby)
    return { ...info, ...(await walStats(kit, primary, redo, fork)) }
  },
}

// ---------------------------------------------------------------------------------------------
// Shapes

const REWIND_TOOLS: ContenderId[] = ['pg_rewind', 'walrewind']
const ALL_TOOLS: ContenderId[] = ['pg_rewind', 'walrewind', 'walrewind-lcc']

const forkShape = (name: ShapeName, scale: number, seconds: number): Shape => ({
  name,
  kind: 'rewind',
  prep: forkPrep,
  defaults: { scale, seconds, sourceSeconds: 0, sourceWalMb: 0 },
  defaultTools: REWIND_TOOLS,
  describe: (p) =>
    `pgbench scale ${p.scale}, standby by base backup after the load, promoted, ${p.seconds} s of pgbench -c 4 on both sides`,
})

export const SHAPES: Record<ShapeName, Shape> = {
  'after-load': {
    name: 'after-load',
    kind: 'rewind',
    prep: legacyPrep(false),
    defaults: { scale: 50 },
    defaultTools: REWIND_TOOLS,
    describe: (p) => `pgbench scale ${p.scale}, standby made after the load, 20 s on the old primary, 5 s on the new`,
  },
  'follow-load': {
    name: 'follow-load',
    kind: 'rewind',
    prep: legacyPrep(true),
    defaults: { scale: 50 },
    defaultTools: REWIND_TOOLS,
    describe: (p) => `pgbench scale ${p.scale}, standby followed the load, 20 s on the old primary, 5 s on the new`,
  },
  'scale200-short': forkShape('scale200-short', 200, 5),
  'scale50-30s': forkShape('scale50-30s', 50, 30),
  'scale500-short': forkShape('scale500-short', 500, 5),
  'many-tables': {
    name: 'many-tables',
    kind: 'rewind',
    prep: manyTablesPrep,
    defaults: { tables: 20000, changed: 300 },
    defaultTools: REWIND_TOOLS,
    describe: (p) =>
      `${p.tables} small tables with an index each, ${p.changed} changed and ${Math.max(1, Math.floor(p.changed! / 20))} created on each side after the fork`,
  },
  'long-wal-before-fork': {
    name: 'long-wal-before-fork',
    kind: 'rewind',
    prep: longWalPrep,
    defaults: { walMb: 150, seconds: 5, scale: 10 },
    defaultTools: REWIND_TOOLS,
    describe: (p) =>
      `${p.walMb} MB of small-record WAL between the last common checkpoint and the fork (standby streaming), then ${p.seconds} s of pgbench -c 4 (scale ${p.scale}) on both sides`,
  },
  'time-to-streaming-short': {
    name: 'time-to-streaming-short',
    kind: 'streaming',
    prep: forkPrep,
    defaults: { scale: 200, seconds: 5, sourceSeconds: 0, sourceWalMb: 0 },
    defaultTools: ALL_TOOLS,
    describe: (p) =>
      `pgbench scale ${p.scale}, standby by base backup after the load, promoted, ${p.seconds} s of pgbench -c 4 on both sides (the same prepared state as scale200-short with these parameters)`,
  },
  'time-to-streaming-long': {
    name: 'time-to-streaming-long',
    kind: 'streaming',
    prep: forkPrep,
    defaults: { scale: 200, seconds: 5, sourceSeconds: 300, sourceWalMb: 2048 },
    defaultTools: ALL_TOOLS,
    describe: (p) =>
      `pgbench scale ${p.scale}, ${p.seconds} s on both sides after the fork, then the source alone until ${p.sourceSeconds} s and ${p.sourceWalMb} MB of WAL since the fork`,
  },
}

/** The shape's defaults with the overrides that apply to it; an override it does not take is an error. */
export function resolveParams(shape: Shape, overrides: Overrides): Params {
  const params: Params = { ...shape.defaults }
  for (const [name, value] of Object.entries(overrides) as Array<[keyof Overrides, number]>) {
    const option = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
    if (!(name in shape.defaults))
      throw new Error(
        `${option(name)} does not apply to shape ${shape.name} (it takes: ${Object.keys(shape.defaults).map(option).join(', ')})`,
      )
    params[name] = value
  }
  return params
}

/** Where the prepared state is saved: the preparation and its parameters (shared by shapes that prepare alike). */
export function stateKey(shape: Shape, params: Params): string {
  return [
    shape.prep.name,
    ...Object.keys(params)
      .sort()
      .map((k) => `${k}${params[k as keyof Overrides]}`),
  ].join('-')
}
