// Scenarios pg_rewind's TAP files 009 and 010 cover, and the ones they leave out: relation files
// that get new relfilenodes (TRUNCATE, VACUUM FULL), unlogged tables, a large table with many
// blocks changed after the fork, tablespaces on both sides and on the target only.

import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, test } from 'node:test'
import { type Kit, majorsUnderTest, type Node, PROJECT_ROOT, type Major } from '../kit/index.js'
import {
  assertRewindOk,
  column,
  createStandby,
  defaultReplayFrom,
  forkedPair,
  promoteStandby,
  runRewind,
  setupPrimary,
  shell,
  sql,
  startAsStandbyAndCompare,
} from './rewind-harness.js'
import { withKit } from './scenarios.js'

/** t/009_growing_files.pl: a source file that grows while it is copied fails the run, loudly. */
async function growingFileScenario(major: Major): Promise<void> {
  await withKit(`rewind-009-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, "CREATE TABLE tbl1 (d text); INSERT INTO tbl1 VALUES ('in primary')")
        await sql(s, "CREATE TABLE tbl2 (d text); INSERT INTO tbl2 VALUES ('in standby')")
      },
    })
    await primary.stop()
    await standby.stop()
    const grower = path.join(standby.dataDir, 'tst_both_dir', 'file1')
    await shell(kit, `mkdir -p "${path.dirname(grower)}" && echo a > "${grower}"`)
    // walrewind's own --debug output is appended to the very file it copies.
    const run = await kit.run('sh', [
      '-c',
      `exec "${process.execPath}" "${path.join(PROJECT_ROOT, 'bin', 'walrewind.js')}" --debug --no-sync ` +
        `--source-pgdata="${standby.dataDir}" --target-pgdata="${primary.dataDir}" 2>>"${grower}"`,
    ])
    assert.notEqual(run.code, 0, 'a source file growing during the copy must fail the run')
    const lines = (await shell(kit, `cat "${grower}"`)).trim().split('\n')
    assert.match(lines.find((l) => l.includes('error:')) ?? '', /error: size of source file ".*tst_both_dir\/file1" changed concurrently/)
    const sizes = await shell(kit, `stat -c %s "${grower}" "${path.join(primary.dataDir, 'tst_both_dir', 'file1')}"`)
    const [sourceSize, targetSize] = sizes.trim().split('\n')
    assert.notEqual(sourceSize, targetSize)
  })
}

/** t/010_keep_recycled_wals.pl: WAL the target needs that the source never archived stays. */
async function keepRecycledWalScenario(major: Major): Promise<void> {
  await withKit(`rewind-010-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      init: { archive: true },
      beforePromotion: async (p) => {
        await sql(p, 'CHECKPOINT')
        await p.setConf({ archive_command: 'false' })
        await sql(p, 'CREATE TABLE t (a int); INSERT INTO t VALUES (1)')
        await sql(p, 'SELECT pg_switch_wal()')
      },
      afterPromotion: async (_p, s) => {
        await sql(s, 'CREATE TABLE u (a int); INSERT INTO u VALUES (1)')
        await sql(s, 'SELECT pg_switch_wal()')
      },
    })
    // pg_rewind's rule, for its algorithm: replay from the last common checkpoint needs the target's
    // own WAL from there to the fork. Replaying from the source's checkpoint needs none of it.
    const run = await runRewind(kit, primary, standby, 'local', ['--replay-from=last-common-checkpoint'], { crash: false })
    assertRewindOk(run)
    assert.match(run.stderr, /Not removing file ".*" because it is required for recovery/)
    await primary.setConf({ archive_command: `cp %p "${primary.archiveDir}/%f"` })
    await startAsStandbyAndCompare(primary, standby, 'local')
  })
}

/** New relfilenodes on both sides, unlogged tables, and many changed blocks of one big table. */
async function relationsScenario(major: Major): Promise<void> {
  await withKit(`rewind-relations-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      beforeStandby: async (p) => {
        await sql(
          p,
          "CREATE TABLE big (id int PRIMARY KEY, pad text); INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g",
        )
        await sql(p, 'CREATE TABLE trunc_p (a int); INSERT INTO trunc_p SELECT generate_series(1, 1000)')
        await sql(p, 'CREATE TABLE trunc_s (a int); INSERT INTO trunc_s SELECT generate_series(1, 1000)')
        await sql(p, 'CREATE TABLE vf (a int, b text); INSERT INTO vf SELECT g, md5(g::text) FROM generate_series(1, 5000) g')
        await sql(p, 'CREATE UNLOGGED TABLE ul (a int); INSERT INTO ul SELECT generate_series(1, 1000)')
        await sql(p, 'CREATE INDEX vf_b ON vf (b)')
      },
      afterPromotion: async (p, s) => {
        // The old primary changes every 7th row of the big table: thousands of blocks to copy back.
        await sql(p, "UPDATE big SET pad = repeat('p', 200) WHERE id % 7 = 0")
        await sql(p, 'TRUNCATE trunc_p')
        await sql(p, 'VACUUM FULL vf')
        await sql(p, 'INSERT INTO ul SELECT generate_series(1, 5000)')
        await sql(s, "UPDATE big SET pad = repeat('s', 200) WHERE id % 1000 = 0")
        await sql(s, 'TRUNCATE trunc_s')
        await sql(s, 'INSERT INTO trunc_s VALUES (42)')
        await sql(s, 'DELETE FROM vf WHERE a % 2 = 0')
        await sql(s, 'VACUUM FULL vf')
        await sql(s, 'CREATE UNLOGGED TABLE ul2 (a int); INSERT INTO ul2 VALUES (1)')
      },
    })
    const run = await runRewind(kit, primary, standby, 'local', ['--progress'])
    assertRewindOk(run)
    assert.match(run.stderr, /need to copy \d+ MB \(total source directory size is \d+ MB\)/)
    await startAsStandbyAndCompare(primary, standby, 'local')
    assert.deepEqual(await column(primary, "SELECT count(*) FROM big WHERE pad LIKE 'p%'"), ['0'])
    assert.deepEqual(await column(primary, 'SELECT count(*) FROM vf'), ['2500'])
    assert.deepEqual(await column(primary, 'SELECT a FROM trunc_s'), ['42'])
  })
}

/** A tablespace both sides have (each its own copy), and one the target created after the fork. */
async function tablespacesScenario(major: Major): Promise<void> {
  await withKit(`rewind-tablespaces-${major}`, async (kit) => {
    let targetOnly = ''
    const { primary, standby } = await forkedPair(kit, major, {
      beforeStandby: async (p) => {
        const location = await kit.makeDir('ts_both')
        await sql(p, `CREATE TABLESPACE ts_both LOCATION '${location}'`)
        await sql(
          p,
          'CREATE TABLE in_ts (a int, b text) TABLESPACE ts_both; INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 20000) g',
        )
      },
      afterPromotion: async (p, s) => {
        const location = (targetOnly = await kit.makeDir('ts_target_only'))
        await sql(p, `CREATE TABLESPACE ts_target LOCATION '${location}'`)
        await sql(p, 'CREATE TABLE t_target (a int) TABLESPACE ts_target; INSERT INTO t_target VALUES (1)')
        await sql(p, "UPDATE in_ts SET b = 'primary' WHERE a % 10 = 0")
        await sql(s, "UPDATE in_ts SET b = 'standby' WHERE a % 100 = 0")
        await sql(s, 'CREATE TABLE moved (a int); INSERT INTO moved VALUES (1); ALTER TABLE moved SET TABLESPACE ts_both')
      },
    })
    const run = await runRewind(kit, primary, standby, 'local')
    assertRewindOk(run)
    await startAsStandbyAndCompare(primary, standby, 'local')
    assert.deepEqual(await column(primary, 'SELECT spcname FROM pg_tablespace ORDER BY 1'), ['pg_default', 'pg_global', 'ts_both'])
    assert.deepEqual(await column(primary, "SELECT count(*) FROM in_ts WHERE b = 'primary'"), ['0'])
    assert.deepEqual(await column(primary, "SELECT count(*) FROM in_ts WHERE b = 'standby'"), ['200'])
    const leftovers = await shell(kit, `find "${targetOnly}" -mindepth 1 | head -5`)
    assert.equal(leftovers.trim(), '', 'the target-only tablespace must be emptied')
  })
}

/**
 * Two standbys promoted independently both take timeline 2, from different points. pg_rewind
 * compares the numbers only and says "no rewind required"; the histories tell them apart.
 */
async function sameTimelineNumberScenario(major: Major): Promise<void> {
  await withKit(`rewind-split-brain-${major}`, async (kit) => {
    const primary = await kit.initNode('primary', major, { walLogHints: true })
    await primary.start()
    await sql(primary, "CREATE TABLE t (d text); INSERT INTO t VALUES ('before')")
    await sql(primary, 'CHECKPOINT')
    const a = await kit.createStandby(primary, 'a')
    const b = await kit.createStandby(primary, 'b')
    await a.waitForReplay(await primary.currentLsn())
    await a.promote()
    await sql(primary, "INSERT INTO t VALUES ('only b saw this')")
    await b.waitForReplay(await primary.currentLsn())
    await b.promote()
    await sql(a, "INSERT INTO t VALUES ('in a')")
    await sql(b, "INSERT INTO t VALUES ('in b')")
    await primary.stop()
    const run = await runRewind(kit, b, a, 'local', [], { crash: false })
    assertRewindOk(run)
    assert.doesNotMatch(run.stderr, /no rewind required/)
    assert.match(run.stderr, /servers diverged at WAL location .* on timeline 1/)
    await startAsStandbyAndCompare(b, a, 'local')
    assert.deepEqual(await column(b, 'SELECT d FROM t ORDER BY d'), ['before', 'in a'])
  })
}

/**
 * A checkpoint recycles old WAL segments by renaming them to future segment names. Such a file on
 * the source, past the end of its WAL, holds stale bytes and must not be copied (nor crash the
 * planner, as it once did). Made here as the server makes it: an old segment renamed ahead.
 */
async function recycledSegmentScenario(major: Major): Promise<void> {
  await withKit(`rewind-recycled-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, 'CREATE TABLE on_target (a int); INSERT INTO on_target VALUES (1)')
        await sql(s, 'CREATE TABLE on_source (a int); INSERT INTO on_source VALUES (1)')
        const current = String((await s.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f)
        const ahead = current.slice(0, 16) + (parseInt(current.slice(16), 16) + 3).toString(16).toUpperCase().padStart(8, '0')
        const walDir = path.join(s.dataDir, 'pg_wal')
        await shell(kit, `cp "${walDir}/${current}" "${walDir}/${ahead}"`)
      },
    })
    const run = await runRewind(kit, primary, standby, 'local')
    assertRewindOk(run)
    assert.match(run.stderr, /is past the end of the source's WAL: not copied/)
    await startAsStandbyAndCompare(primary, standby, 'local')
  })
}

/**
 * The target's WAL after the fork (and older segments the source lacks) is recycled, not unlinked:
 * renamed to segment names past the source's WAL, on its timeline. The rewound standby streams
 * through them: the walreceiver writes the source's WAL into them, and recovery never takes their
 * stale pages for WAL.
 */
async function recycledTargetWalScenario(major: Major): Promise<void> {
  await withKit(`rewind-recycle-target-wal-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, 'CREATE TABLE on_target (a int)')
        for (let i = 0; i < 4; i++) {
          await sql(p, 'INSERT INTO on_target SELECT generate_series(1, 1000)')
          await sql(p, 'SELECT pg_switch_wal()')
        }
        await sql(s, 'CREATE TABLE on_source (a int); INSERT INTO on_source VALUES (1)')
      },
    })
    const run = await runRewind(kit, primary, standby, 'local', [], { crash: false })
    assertRewindOk(run)
    const recycled = [...run.stderr.matchAll(/"pg_wal\/([0-9A-F]{24})" is recycled as "pg_wal\/([0-9A-F]{24})"/g)].map(
      (m): [string, string] => [m[1]!, m[2]!],
    )
    assert.ok(recycled.length >= 4, `expected the target's WAL after the fork to be recycled:\n${run.stderr}`)
    const walDir = path.join(primary.dataDir, 'pg_wal')
    const names = new Set((await shell(kit, `ls "${walDir}"`)).split('\n'))
    for (const [from, to] of recycled) {
      assert.ok(!names.has(from), `${from} is gone from its name`)
      assert.ok(names.has(to), `${to} is there`)
      assert.equal(to.slice(0, 8), '00000002', "named on the source's timeline")
      assert.ok(to.slice(8) > from.slice(8), 'a higher segment number than it held')
    }
    await startAsStandbyAndCompare(primary, standby, 'local')
    // The source's WAL now reaches past every recycled segment: streamed into them, replayed.
    const last = recycled.map(([, to]) => parseInt(to.slice(16), 16)).reduce((a, b) => Math.max(a, b))
    for (;;) {
      const current = String((await standby.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f)
      if (parseInt(current.slice(16), 16) > last) break
      await sql(standby, 'INSERT INTO on_source SELECT generate_series(1, 100)')
      await sql(standby, 'SELECT pg_switch_wal()')
    }
    await sql(standby, 'INSERT INTO on_source VALUES (2)')
    await primary.waitForReplay(await standby.currentLsn())
    assert.deepEqual(
      await primary.fingerprint(),
      await standby.fingerprint(),
      'target and source differ after streaming through recycled segments',
    )
  })
}

/**
 * The source's checkpoints removed the WAL from the fork on (as with wal_keep_size = 0 and no
 * slot): the rewind still works, says which segment the rewound node will need from an archive
 * (streaming from the source cannot give it), and with that archive the node starts.
 */
async function sourceWalRemovedScenario(major: Major): Promise<void> {
  await withKit(`rewind-wal-removed-${major}`, async (kit) => {
    let forkSegment = ''
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        forkSegment = String((await s.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f)
        await sql(p, 'CREATE TABLE on_target (a int); INSERT INTO on_target VALUES (1)')
        await sql(s, 'CREATE TABLE on_source (a int); INSERT INTO on_source VALUES (1)')
        await sql(s, 'SELECT pg_switch_wal()')
        await sql(s, 'INSERT INTO on_source VALUES (2)')
        await sql(s, 'CHECKPOINT')
        // What the checkpoint would have removed, kept in an archive instead.
        await shell(kit, `mv "${path.join(s.dataDir, 'pg_wal', forkSegment)}" "${s.archiveDir}/"`)
      },
    })
    const run = await runRewind(kit, primary, standby, 'local')
    assertRewindOk(run, { sourceWalMissing: true })
    // Without the source's WAL from the fork, its changed blocks are unknown: pg_rewind's algorithm.
    if (defaultReplayFrom() === 'source-checkpoint')
      assert.match(
        run.stderr,
        new RegExp(
          `warning: the source no longer has its WAL from the fork \\(.*${forkSegment}\\): replaying from the last common checkpoint`,
        ),
      )
    assert.match(
      run.stderr,
      new RegExp(`warning: the source no longer has WAL segment ${forkSegment}, which the rewound server must replay .*restore_command`),
    )
    await primary.setConf({ restore_command: `cp "${standby.archiveDir}/%f" "%p"` })
    await startAsStandbyAndCompare(primary, standby, 'local')
    assert.deepEqual(await column(primary, 'SELECT a FROM on_source ORDER BY a'), ['1', '2'])
  })
}

/**
 * A pair whose last common checkpoint lies segments before the fork (built by hand, with three
 * segment switches in between), diverged on table `t`; both stopped.
 */
async function pairWithSegmentsBeforeFork(kit: Kit, major: Major): Promise<{ primary: Node; standby: Node }> {
  const primary = await setupPrimary(kit, major, { conf: { wal_keep_size: '1GB' } })
  await sql(primary, 'CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 1000)')
  const standby = await createStandby(kit, primary)
  await sql(primary, 'CHECKPOINT')
  for (let i = 0; i < 3; i++) {
    await sql(primary, 'INSERT INTO t SELECT generate_series(1, 100)')
    await sql(primary, 'SELECT pg_switch_wal()')
  }
  await promoteStandby(primary, standby)
  await sql(primary, 'UPDATE t SET a = -a WHERE a % 3 = 0')
  await sql(standby, 'UPDATE t SET a = a + 1000000 WHERE a % 5 = 0')
  return { primary, standby }
}

/**
 * Removes from a stopped node's pg_wal every segment before its newest (the one it was on when it
 * stopped; segment numbers compared, whatever the timeline); returns their names.
 */
async function removeAllButNewestSegment(kit: Kit, node: Node): Promise<string[]> {
  const walDir = path.join(node.dataDir, 'pg_wal')
  const names = (await shell(kit, `cd "${walDir}" && ls | grep -E '^[0-9A-F]{24}$' | sort`)).split('\n').filter((n) => n !== '')
  const newest = names.reduce((a, b) => (b.slice(8) > a.slice(8) ? b : a))
  const older = names.filter((n) => n.slice(8) < newest.slice(8))
  for (const name of older) await shell(kit, `rm "${path.join(walDir, name)}"`)
  return older
}

/**
 * The target no longer has its WAL between the last common checkpoint and the fork (removed after
 * the split, no archive): pg_rewind stops at "could not find previous WAL record". Replayed from
 * the source's checkpoint, walrewind reads the target's WAL from the fork only and never needs
 * them. Replayed from the last common checkpoint (pg_rewind's algorithm), it needs them: before
 * the fork both nodes wrote the same WAL, so they are read from the source, without comparing.
 */
async function targetPreForkWalGoneScenario(major: Major): Promise<void> {
  await withKit(`rewind-prefork-wal-${major}`, async (kit) => {
    const { primary, standby } = await pairWithSegmentsBeforeFork(kit, major)
    await primary.stop('fast')
    const removed = await removeAllButNewestSegment(kit, primary)
    assert.ok(removed.length >= 2, `expected WAL before the fork to remove, found ${removed.join(' ')}`)
    const dry = await runRewind(kit, primary, standby, 'local', ['--dry-run', '--replay-from=source-checkpoint'], { crash: false })
    assertRewindOk(dry)
    assert.doesNotMatch(
      dry.stderr,
      /reading WAL segment [0-9A-F]{24} from the source|rewinding from last common checkpoint|comparing the blocks/,
      'the WAL before the fork is not needed',
    )
    const run = await runRewind(kit, primary, standby, 'local', ['--replay-from=last-common-checkpoint'], { crash: false })
    assertRewindOk(run)
    assert.match(run.stderr, /rewinding from last common checkpoint at/)
    assert.match(run.stderr, /reading WAL segment [0-9A-F]{24} from the source: the target no longer has it/)
    await startAsStandbyAndCompare(primary, standby, 'local')
  })
}

/**
 * Both fallbacks gone: the source recycled its WAL from the fork (so pg_rewind's algorithm would be
 * needed) and the target its WAL back to the last common checkpoint (so that algorithm cannot
 * start), with the source holding neither. Only a comparison of the blocks can tell; replay then
 * starts at the source's checkpoint, whose WAL the source still has.
 */
async function bothWalsGoneScenario(major: Major): Promise<void> {
  await withKit(`rewind-both-wal-gone-${major}`, async (kit) => {
    const { primary, standby } = await pairWithSegmentsBeforeFork(kit, major)
    await sql(standby, 'SELECT pg_switch_wal()')
    await sql(standby, 'INSERT INTO t VALUES (-777777)')
    await sql(standby, 'CHECKPOINT')
    await primary.stop('fast')
    await standby.stop('fast')
    // The target keeps the segment it was on at the fork; the source only the one its
    // checkpoint's redo point is in.
    await removeAllButNewestSegment(kit, primary)
    await removeAllButNewestSegment(kit, standby)
    const run = await runRewind(kit, primary, standby, 'local', ['--replay-from=source-checkpoint'], { crash: false })
    assertRewindOk(run, { sourceWalMissing: true })
    assert.match(run.stderr, /warning: the source no longer has its WAL from the fork/)
    assert.match(run.stderr, /comparing the blocks of every relation file with the source: the target no longer has the WAL it needs/)
    assert.match(run.stderr, /replay will start at .*replay starts at the source's checkpoint/)
    await startAsStandbyAndCompare(primary, standby, 'local')
    assert.deepEqual(await column(primary, 'SELECT count(*) FROM t WHERE a = -777777'), ['1'])
  })
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: edge cases, local`, () => {
    test('a recycled WAL segment on the source', () => recycledSegmentScenario(major))
    test('WAL from the fork on removed from the source', () => sourceWalRemovedScenario(major))
    test('two nodes on timeline 2 from different forks', () => sameTimelineNumberScenario(major))
    test('009 growing source file', () => growingFileScenario(major))
    test('010 recycled WAL kept', () => keepRecycledWalScenario(major))
    test("the target's removed WAL recycled, streamed through", () => recycledTargetWalScenario(major))
    test("the target's WAL before the fork gone: read from the source", () => targetPreForkWalGoneScenario(major))
    test("the source's WAL from the fork and the target's before it gone: compared", () => bothWalsGoneScenario(major))
    test('relations: TRUNCATE, VACUUM FULL, unlogged, many blocks', () => relationsScenario(major))
    test('tablespaces', () => tablespacesScenario(major))
  })
}
