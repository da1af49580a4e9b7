// The format readers on live clusters of every major. A primary runs a workload that touches every
// format corner (many tables, TOAST, full-page images with and without compression, every index
// access method, sequences, prepared and sub-transactions, a replication origin, a tablespace,
// CREATE DATABASE in both strategies, TRUNCATE, DROP, VACUUM truncation, pg_switch_wal, a record
// larger than a page and one across a segment boundary), then a standby is promoted and a standby
// of it promoted again. On each of the three timelines: `walrewind controldata --json` equals the
// pg_control_*() functions field by field, and every record walrewind reads equals pg_walinspect's
// pg_get_wal_records_info (15+) and pg_get_wal_block_info (16+); on 13 and 14, which have no
// pg_walinspect, every record's CRC and prev link hold up to the flushed end, and the records of
// known statements are where SQL says. The first major under test runs with 2 MiB segments.

import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, test } from 'node:test'
import { formatLsn, parseLsn, parseSegmentFileName, segmentStart, type Lsn } from '../../src/pg/lsn.js'
import { parseTimelineHistory, timelineOneHistory } from '../../src/pg/timeline.js'
import { profileForMajor, type VersionProfile } from '../../src/pg/versions.js'
import { WalReader } from '../../src/pg/wal/reader.js'
import type { BlockRef, WalRecord } from '../../src/pg/wal/record.js'
import { recordTypeName, rmgrName } from '../../src/pg/wal/rmgr.js'
import { timelineChooser, WalDirectory } from '../../src/rewind/wal-source.js'
import { controlJsonAsSql, sqlControlView } from '../fixtures/control-sql.js'
import { blockRefText, fpiInfo } from '../fixtures/walinspect.js'
import { Kit, majorsUnderTest, type Major, type Node } from '../kit/index.js'

/** What a test keeps of a record (the reader reuses its buffers). */
interface Rec {
  lsn: Lsn
  endLsn: Lsn
  prev: Lsn
  xid: number
  rmid: number
  info: number
  totLen: number
  mainLen: number
  fpiLen: number
  blocks: readonly BlockRef[]
  origin: number | undefined
  toplevelXid: number | undefined
}

function keep(r: WalRecord): Rec {
  return {
    lsn: r.lsn,
    endLsn: r.endLsn,
    prev: r.xl_prev,
    xid: r.xl_xid,
    rmid: r.xl_rmid,
    info: r.xl_info,
    totLen: r.xl_tot_len,
    mainLen: r.main_data_len,
    fpiLen: r.fpiLength,
    blocks: r.blocks,
    origin: r.origin,
    toplevelXid: r.toplevelXid,
  }
}

async function value<T = string>(node: Node, sql: string): Promise<T> {
  return node.queryValue<T>(sql)
}

/** Every record from `start` to the flushed end of the node's WAL, read as pg_rewind would (following the history). */
async function readWal(node: Node, profile: VersionProfile, segSize: number, tli: number, start: Lsn, end: Lsn): Promise<Rec[]> {
  const history =
    tli === 1
      ? timelineOneHistory()
      : parseTimelineHistory(
          await value(
            node,
            `select convert_from(pg_read_binary_file('pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history'), 'UTF8')`,
          ),
          tli,
        )
  const source = new WalDirectory({ dir: path.join(node.dataDir, 'pg_wal'), segSize, timelineOf: timelineChooser(history, segSize) })
  try {
    const sysid = BigInt(await value(node, 'select system_identifier::text from pg_control_system()'))
    const reader = new WalReader({ profile, segSize, systemIdentifier: sysid, source })
    const first = await reader.findNextRecord(start)
    assert.ok(first !== null, `no record after ${formatLsn(start)}`)
    const records: Rec[] = []
    const stop = await reader.forEachRecord(first, (r) => {
      if (r.endLsn > end) return false
      records.push(keep(r))
      return true
    })
    // The WAL must not end (a CRC, a prev link, a page) before the flushed end.
    if (stop !== null && stop.lsn < end)
      assert.fail(`WAL ended at ${formatLsn(stop.lsn)} before ${formatLsn(end)}: ${stop.reason}: ${stop.message}`)
    assert.equal(records.at(-1)!.endLsn, end, 'the last record ends at the flush position')
    return records
  } finally {
    await source.close()
  }
}

/** Each record and block reference of [start, end) against pg_walinspect on the node itself. */
async function compareWithWalinspect(node: Node, profile: VersionProfile, records: Rec[]): Promise<void> {
  const start = formatLsn(records[0]!.lsn)
  const end = formatLsn(records.at(-1)!.endLsn)
  const rows = await node.query<
    Record<string, unknown>
  >(`select start_lsn::text, end_lsn::text, prev_lsn::text, xid::text, resource_manager,
    record_type, record_length, main_data_length, fpi_length, block_ref from pg_get_wal_records_info('${start}', '${end}')`)
  assert.equal(rows.length, records.length, 'number of records')
  for (let i = 0; i < rows.length; i++) {
    const r = records[i]!
    assert.deepEqual(
      {
        start_lsn: formatLsn(r.lsn),
        end_lsn: formatLsn(r.endLsn),
        prev_lsn: formatLsn(r.prev),
        xid: String(r.xid),
        resource_manager: rmgrName(r.rmid),
        record_type: recordTypeName(r.rmid, r.info, profile),
        record_length: r.totLen,
        main_data_length: r.mainLen,
        fpi_length: r.fpiLen,
        block_ref: blockRefText(r.blocks, profile.major),
      },
      rows[i],
    )
  }
  if (profile.major < 16) return
  const blocks = await node.query<Record<string, unknown>>(`select start_lsn::text, block_id, reltablespace::int8, reldatabase::int8,
    relfilenode::int8, relforknumber, relblocknumber, block_data_length, block_fpi_length, block_fpi_info
    from pg_get_wal_block_info('${start}', '${end}', false)`)
  const ours = records.flatMap((r) =>
    r.blocks.map((b) => ({
      start_lsn: formatLsn(r.lsn),
      block_id: b.block_id,
      reltablespace: String(b.spcOid),
      reldatabase: String(b.dbOid),
      relfilenode: String(b.relNumber),
      relforknumber: b.forkNumber,
      relblocknumber: String(b.blockNumber),
      block_data_length: b.data_length,
      block_fpi_length: b.image?.bimg_len ?? 0,
      block_fpi_info: fpiInfo(b),
    })),
  )
  assert.equal(blocks.length, ours.length, 'number of block references')
  for (let i = 0; i < blocks.length; i++) assert.deepEqual(ours[i], blocks[i])
}

/** controldata --json against the pg_control_*() functions, read until the file holds still. */
async function compareControlData(kit: Kit, node: Node): Promise<Record<string, unknown>> {
  let last = ''
  for (let attempt = 0; attempt < 20; attempt++) {
    const run = await kit.runWalrewind(['controldata', '--json', node.dataDir])
    assert.equal(run.code, 0, run.stderr)
    // system_identifier as text: a JSON number would be rounded.
    const columns = {
      system: 'pg_control_version, catalog_version_no, system_identifier::text, pg_control_last_modified',
      checkpoint: '*',
      init: '*',
      recovery: '*',
    }
    const sql = Object.fromEntries(
      await Promise.all(
        Object.entries(columns).map(async ([fn, cols]) => [
          fn,
          JSON.parse(await value(node, `select row_to_json(t)::text from (select ${cols} from pg_control_${fn}()) t`)) as Record<
            string,
            unknown
          >,
        ]),
      ),
    )
    const again = await kit.runWalrewind(['controldata', '--json', node.dataDir])
    // A standby rewrites pg_control as it replays; compare a state that held for both reads.
    if (again.stdout !== run.stdout) {
      last = again.stdout
      continue
    }
    const doc = JSON.parse(run.stdout) as Record<string, unknown>
    assert.deepEqual(controlJsonAsSql(doc), sqlControlView(sql as never))
    return doc
  }
  assert.fail(`pg_control kept changing: ${last}`)
}

/** Where the oldest segment of the node's pg_wal starts. */
async function oldestSegmentStart(node: Node, segSize: number): Promise<Lsn> {
  const rows = await node.query<{ name: string }>(
    "select name from pg_ls_waldir() where name ~ '^[0-9A-F]{24}$' order by substr(name, 9), name limit 1",
  )
  return segmentStart(parseSegmentFileName(rows[0]!.name, segSize)!.segno, segSize)
}

async function emit(node: Node, prefix: string, size: number): Promise<Lsn> {
  return parseLsn(await value(node, `select pg_logical_emit_message(false, '${prefix}', repeat('m', ${size}))::text`))
}

/** The workload; returns the end LSNs of the two messages that must cross a page and a segment. */
async function workload(kit: Kit, node: Node, major: Major, segSize: number, tag: string): Promise<{ pages: Lsn; segments: Lsn }> {
  const q = (sql: string) => node.query(sql)
  await q(`do $$ begin for i in 1..25 loop
    execute format('create table %I (id int primary key, v text, n numeric)', 'w_${tag}_' || i);
    execute format('insert into %I select g, md5(g::text), g * 1.5 from generate_series(1, 400) g', 'w_${tag}_' || i);
    end loop; end $$`)
  await q(`create table toast_${tag} (id int, big text, rnd text);
    insert into toast_${tag} select g, repeat('compressible ', 20000), (select string_agg(md5(random()::text), '') from generate_series(1, 300))
    from generate_series(1, 8) g`)
  await q(`create table idx_${tag} (id int, t text, a int[], p point, r int4range);
    insert into idx_${tag} select g, md5(g::text), array[g, g + 1], point(g, g), int4range(g, g + 10) from generate_series(1, 3000) g;
    create index on idx_${tag} using hash (t); create index on idx_${tag} using gin (a); create index on idx_${tag} using gist (p);
    create index on idx_${tag} using brin (id); create index on idx_${tag} using spgist (p); create index on idx_${tag} (t)`)
  await q(`create sequence seq_${tag}; select nextval('seq_${tag}') from generate_series(1, 50)`)
  // Full-page images: compressed, then not.
  await q(
    `set wal_compression = ${major >= 15 ? 'pglz' : 'on'}; checkpoint; update w_${tag}_1 set v = v || 'c'; update idx_${tag} set t = t || 'c' where id % 3 = 0`,
  )
  await q(`set wal_compression = off; checkpoint; update w_${tag}_2 set v = v || 'u'; delete from w_${tag}_3 where id > 100`)
  await q(`vacuum w_${tag}_3`)
  await q(`begin; insert into w_${tag}_4 values (100001, 'sub'); savepoint a; insert into w_${tag}_4 values (100002, 'sub2');
    savepoint b; insert into w_${tag}_4 values (100003, 'sub3'); release b; rollback to a; commit`)
  await q(`begin; create table prep_${tag} (a int); insert into prep_${tag} values (1); prepare transaction 'p1_${tag}'`)
  await q(`commit prepared 'p1_${tag}'`)
  await q(`begin; drop table prep_${tag}; prepare transaction 'p2_${tag}'`)
  await q(`commit prepared 'p2_${tag}'`)
  await q(`begin; create table prep2_${tag} (a int); prepare transaction 'p3_${tag}'`)
  await q(`rollback prepared 'p3_${tag}'`)
  await q(`select pg_replication_origin_create('origin_${tag}'); select pg_replication_origin_session_setup('origin_${tag}');
    insert into w_${tag}_5 values (200001, 'from an origin'); select pg_replication_origin_session_reset();
    select pg_replication_origin_advance('origin_${tag}', '0/1'); select pg_replication_origin_drop('origin_${tag}')`)
  const location = await kit.makeDir(`ts_${tag}`)
  await q(`create tablespace ts_${tag} location '${location}'`)
  await q(`create table in_ts_${tag} (a int) tablespace ts_${tag}; insert into in_ts_${tag} select generate_series(1, 1000)`)
  await q(`drop table in_ts_${tag}`)
  await q(`drop tablespace ts_${tag}`)
  await q(major >= 15 ? `create database copy_${tag} strategy file_copy` : `create database copy_${tag}`)
  if (major >= 15) await q(`create database wal_${tag} strategy wal_log`)
  await q(`drop database copy_${tag}`)
  // A mapped catalog rewritten: a RelMap update.
  await q('vacuum full pg_database')
  await q(`truncate w_${tag}_6; drop table w_${tag}_7; delete from w_${tag}_8 where id > 20`)
  await q(`vacuum w_${tag}_8`)
  const pages = await emit(node, `pages_${tag}`, 100_000)
  await q('select pg_switch_wal()')
  await q(`insert into w_${tag}_9 values (300001, 'after the switch')`)
  // Fill up to just before a segment boundary, then write a message across it.
  for (;;) {
    const at = parseLsn(await value(node, 'select pg_current_wal_insert_lsn()::text'))
    const left = Number(BigInt(segSize) - (at % BigInt(segSize)))
    if (left < 30_000) break
    await emit(node, `fill_${tag}`, Math.min(1_000_000, left - 20_000))
  }
  const segments = await emit(node, `segments_${tag}`, 60_000)
  await q(`insert into w_${tag}_10 values (400001, 'the end')`)
  return { pages, segments }
}

/** The checks of one timeline's WAL: every record read, and against pg_walinspect where it exists. */
async function checkTimeline(
  node: Node,
  major: Major,
  segSize: number,
  tli: number,
  start: Lsn,
  messages: { pages: Lsn; segments: Lsn },
): Promise<Rec[]> {
  const profile = profileForMajor(major)
  await node.query('select pg_switch_wal() where false') // a round trip so that all of the above is flushed
  const end = parseLsn(await value(node, 'select pg_current_wal_flush_lsn()::text'))
  const records = await readWal(node, profile, segSize, tli, start, end)
  assert.ok(records.length > 2000, `${records.length} records`)
  const big = records.find((r) => r.endLsn === messages.pages)
  assert.ok(big && big.totLen > 8192 * 10, 'a record larger than a page')
  const crossing = records.find((r) => r.endLsn === messages.segments)
  assert.ok(crossing && crossing.lsn / BigInt(segSize) !== crossing.endLsn / BigInt(segSize), 'a record across a segment boundary')
  assert.ok(records.some((r) => r.rmid === 0 && recordTypeName(0, r.info, profile) === 'SWITCH'))
  assert.ok(
    records.some((r) => r.origin !== undefined),
    'a record with a replication origin',
  )
  assert.equal(
    records.some((r) => r.toplevelXid !== undefined),
    major >= 14,
    'top-level xids of subtransactions (wal_level logical, 14+)',
  )
  for (const name of ['COMMIT_PREPARED', 'ABORT_PREPARED', 'PREPARE']) {
    assert.ok(
      records.some((r) => r.rmid === 1 && recordTypeName(1, r.info, profile) === name),
      name,
    )
  }
  for (const rmgr of [
    'Hash',
    'Gin',
    'Gist',
    'BRIN',
    'SPGist',
    'Sequence',
    'Tablespace',
    'Database',
    'Storage',
    'RelMap',
    'ReplicationOrigin',
  ]) {
    assert.ok(
      records.some((r) => rmgrName(r.rmid) === rmgr),
      `a ${rmgr} record`,
    )
  }
  const compressed = records.flatMap((r) => r.blocks).filter((b) => b.image !== undefined)
  assert.ok(compressed.some((b) => b.image!.compression === 'pglz') && compressed.some((b) => b.image!.compression === 'none'))
  if (major >= 15) await compareWithWalinspect(node, profile, records)
  return records
}

async function formatsOnLiveClusters(major: Major, segSizeMb: number): Promise<void> {
  const kit = await Kit.create(`formats-${major}`)
  try {
    const segSize = segSizeMb * 1024 * 1024
    const primary = await kit.initNode('primary', major, {
      checksums: true,
      walSegmentSizeMb: segSizeMb,
      conf: { wal_level: 'logical', max_prepared_transactions: 5, wal_compression: major >= 15 ? 'pglz' : 'on' },
    })
    await primary.start()
    if (major >= 15) await primary.query('create extension pg_walinspect')
    const sysid = await value(primary, 'select system_identifier::text from pg_control_system()')

    // Timeline 1, from its oldest segment still in pg_wal (initdb recycles the first ones).
    const start1 = await oldestSegmentStart(primary, segSize)
    const m1 = await workload(kit, primary, major, segSize, 't1')
    await checkTimeline(primary, major, segSize, 1, start1, m1)
    const doc1 = await compareControlData(kit, primary)
    assert.equal(doc1['stateName'], 'in production')
    assert.equal(doc1['system_identifier'], sysid)
    assert.equal(doc1['xlog_seg_size'], segSize)

    // Timeline 2: a promoted standby, checked in recovery first.
    const s1 = await kit.createStandby(primary, 's1')
    await s1.waitForReplay(await primary.currentLsn())
    const inRecovery = await compareControlData(kit, s1)
    assert.equal(inRecovery['stateName'], 'in archive recovery')
    await s1.promote()
    await s1.query('checkpoint')
    const switch2 = parseTimelineHistory(
      await value(s1, "select convert_from(pg_read_binary_file('pg_wal/00000002.history'), 'UTF8')"),
      2,
    )[1]!.begin
    const m2 = await workload(kit, s1, major, segSize, 't2')
    await checkTimeline(s1, major, segSize, 2, switch2, m2)
    const doc2 = await compareControlData(kit, s1)
    assert.equal((doc2['checkPointCopy'] as Record<string, unknown>)['ThisTimeLineID'], 2)

    // Timeline 3: a standby of the promoted standby, promoted in turn.
    const s2 = await kit.createStandby(s1, 's2')
    await s2.waitForReplay(await s1.currentLsn())
    await s2.promote()
    const history3 = parseTimelineHistory(await value(s2, "select convert_from(pg_read_binary_file('pg_wal/00000003.history'), 'UTF8')"), 3)
    assert.deepEqual(
      history3.map((e) => e.tli),
      [1, 2, 3],
    )
    assert.equal(history3[1]!.begin, switch2)
    const m3 = await workload(kit, s2, major, segSize, 't3')
    // Read across the switch, from the oldest WAL the base copy gave s2 (timeline 2) to timeline 3.
    const records3 = await checkTimeline(s2, major, segSize, 3, await oldestSegmentStart(s2, segSize), m3)
    const eor = records3.filter((r) => r.rmid === 0 && recordTypeName(0, r.info, profileForMajor(major)) === 'END_OF_RECOVERY')
    // The switchpoint is the end of the last replayed record: on a page boundary, the new
    // timeline's first record starts after the page header.
    const begin3 = history3[2]!.begin
    const afterHeader = begin3 % 8192n !== 0n ? begin3 : begin3 + (begin3 % BigInt(segSize) === 0n ? 40n : 24n)
    assert.deepEqual(
      eor.map((r) => r.lsn).filter((lsn) => lsn > switch2 + 40n),
      [afterHeader],
    )
    assert.ok(records3[0]!.lsn < history3[2]!.begin)
    await s2.query('checkpoint')
    const doc3 = await compareControlData(kit, s2)
    assert.equal((doc3['checkPointCopy'] as Record<string, unknown>)['ThisTimeLineID'], 3)

    // The waldump command on the same WAL agrees with the reader.
    const dump = await kit.runWalrewind([
      'waldump',
      '--json',
      '-p',
      path.join(s2.dataDir, 'pg_wal'),
      '-t',
      '3',
      '-s',
      formatLsn(history3[2]!.begin),
      '-e',
      formatLsn(records3.at(-1)!.endLsn),
    ])
    assert.equal(dump.code, 0, dump.stderr)
    const lines = dump.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const fromSwitch = records3.filter((r) => r.lsn >= history3[2]!.begin)
    assert.deepEqual(
      lines.map((l) => [l['lsn'], l['prev'], l['totLen']]),
      fromSwitch.map((r) => [formatLsn(r.lsn), formatLsn(r.prev), r.totLen]),
    )
  } finally {
    await kit.cleanup()
  }
}

const majors = majorsUnderTest()
for (const major of majors) {
  // One major with a non-default segment size (the first under test, so that a narrowed run keeps it).
  const segSizeMb = major === majors[0] ? 2 : 16
  describe(`PostgreSQL ${major}: on-disk formats on live clusters (${segSizeMb} MiB segments)`, () => {
    test('pg_control and every WAL record on three timelines', () => formatsOnLiveClusters(major, segSizeMb))
  })
}
