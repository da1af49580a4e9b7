// The scenarios of pg_rewind's TAP files 001-005, as functions of (major, mode), shared by the
// local and the remote test files.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Kit, type Major } from '../kit/index.js'
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
  snapshotDirectory,
  sql,
  startAsStandbyAndCompare,
  type Mode,
} from './rewind-harness.js'

export async function basicScenario(major: Major, mode: Mode): Promise<void> {
  const kit = await Kit.create(`rewind-001-${major}-${mode}`)
  try {
    const primary = await setupPrimary(kit, major, { archive: mode === 'archive' })
    await sql(primary, "CREATE TABLE tbl1 (d text); INSERT INTO tbl1 VALUES ('in primary')")
    await sql(primary, "CREATE TABLE trunc_tbl (d text); INSERT INTO trunc_tbl VALUES ('in primary')")
    await sql(primary, "CREATE TABLE tail_tbl (id integer, d text); INSERT INTO tail_tbl VALUES (0, 'in primary')")
    await sql(primary, "CREATE TABLE drop_tbl (d text); INSERT INTO drop_tbl VALUES ('in primary')")
    await sql(primary, 'CHECKPOINT')
    const standby = await createStandby(kit, primary)

    await sql(primary, "INSERT INTO tbl1 VALUES ('in primary, before promotion')")
    await sql(primary, "INSERT INTO trunc_tbl VALUES ('in primary, before promotion')")
    await sql(primary, "INSERT INTO tail_tbl SELECT g, 'in primary, before promotion: ' || g FROM generate_series(1, 10000) g")
    await sql(primary, 'CHECKPOINT')
    await promoteStandby(primary, standby)

    await sql(primary, "INSERT INTO tbl1 VALUES ('in primary, after promotion')")
    await sql(standby, "INSERT INTO tbl1 VALUES ('in standby, after promotion')")
    await sql(primary, "INSERT INTO trunc_tbl SELECT 'in primary, after promotion: ' || g FROM generate_series(1, 10000) g")
    await sql(primary, 'DELETE FROM tail_tbl WHERE id > 10')
    await sql(primary, 'VACUUM tail_tbl')
    await sql(primary, "INSERT INTO drop_tbl VALUES ('in primary, after promotion')")
    await sql(primary, 'DROP TABLE drop_tbl')

    if (mode === 'local') {
      const base = [
        `--target-pgdata=${primary.dataDir}`,
        `--source-pgdata=${standby.dataDir}`,
        '--no-sync',
        `--postgres-bindir=${primary.binDir}`,
      ]
      // A running target is refused, with or without crash recovery.
      let run = await kit.runWalrewind(base)
      assert.notEqual(run.code, 0, 'a running target must be refused')
      assert.match(run.stderr, /target data directory was not modified/)
      run = await kit.runWalrewind([...base, '--no-ensure-shutdown'])
      assert.notEqual(run.code, 0, 'a running target must be refused with --no-ensure-shutdown')
      assert.match(run.stderr, /target server must be shut down cleanly/)
      // A running source directory is refused.
      await primary.stop('fast')
      run = await kit.runWalrewind(base)
      assert.notEqual(run.code, 0, 'a running source must be refused')
      assert.match(run.stderr, /source data directory must be shut down cleanly/)
      // A dry run changes nothing.
      await standby.stop('fast')
      const before = await snapshotDirectory(kit, primary.dataDir)
      run = await kit.runWalrewind([...base, '--dry-run'])
      assert.equal(run.code, 0, run.stderr)
      assert.equal(await snapshotDirectory(kit, primary.dataDir), before, '--dry-run modified the target')
      await primary.start()
      await standby.start()
    }

    const run = await runRewind(kit, primary, standby, mode)
    assertRewindOk(run)
    assert.match(run.stderr, /servers diverged at WAL location [0-9A-F]+\/[0-9A-F]+ on timeline 1/)
    if (defaultReplayFrom() === 'last-common-checkpoint') assert.match(run.stderr, /rewinding from last common checkpoint at/)
    // Replayed from the source's checkpoint, the target's WAL is read from the fork: the last
    // common checkpoint is not looked for.
    else assert.doesNotMatch(run.stderr, /rewinding from last common checkpoint/)
    assert.match(run.stderr, /replay will start at [0-9A-F]+\/[0-9A-F]+ on timeline/)
    if (mode !== 'archive') assert.match(run.stderr, /executing ".*postgres" for target server to complete crash recovery/)
    const modes = await kit.run('find', [
      primary.dataDir,
      '(',
      '-type',
      'd',
      '!',
      '-perm',
      '700',
      ')',
      '-o',
      '(',
      '-type',
      'f',
      '!',
      '-perm',
      '600',
      ')',
    ])
    assert.equal(modes.stdout, '', `files or directories with modes other than 0700/0600:\n${modes.stdout}`)
    await startAsStandbyAndCompare(primary, standby, mode)

    assert.deepEqual(await column(primary, 'SELECT d FROM tbl1 ORDER BY d'), [
      'in primary',
      'in primary, before promotion',
      'in standby, after promotion',
    ])
    assert.deepEqual(await column(primary, 'SELECT d FROM trunc_tbl ORDER BY d'), ['in primary', 'in primary, before promotion'])
    assert.deepEqual(await column(primary, 'SELECT count(*) FROM tail_tbl'), ['10001'])
    assert.deepEqual(await column(primary, 'SELECT d FROM drop_tbl ORDER BY d'), ['in primary'])
  } finally {
    await kit.cleanup()
  }
}

export async function withKit(name: string, body: (kit: Kit) => Promise<void>): Promise<void> {
  const kit = await Kit.create(name)
  try {
    await body(kit)
  } finally {
    await kit.cleanup()
  }
}

/** CREATE DATABASE's strategies: FILE_COPY and WAL_LOG exist from 15 on; before, only the copy. */
function createDatabase(major: Major, name: string, strategy: 'file_copy' | 'wal_log'): string {
  return major >= 15 ? `CREATE DATABASE ${name} STRATEGY ${strategy}` : `CREATE DATABASE ${name}`
}

export async function databasesScenario(major: Major, mode: Mode): Promise<void> {
  await withKit(`rewind-002-${major}-${mode}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      init: { groupAccess: true },
      beforeStandby: async (p) => {
        await sql(p, createDatabase(major, 'inprimary', 'wal_log'))
        await sql(p, "CREATE TABLE t (d text); INSERT INTO t VALUES ('inprimary')", 'inprimary')
      },
      beforePromotion: async (p) => {
        await sql(p, createDatabase(major, 'beforepromotion', 'file_copy'))
        await sql(p, "CREATE TABLE t (d text); INSERT INTO t VALUES ('beforepromotion')", 'beforepromotion')
      },
      afterPromotion: async (p, s) => {
        await sql(p, createDatabase(major, 'primary_afterpromotion', 'wal_log'))
        await sql(p, "CREATE TABLE t (d text); INSERT INTO t VALUES ('p')", 'primary_afterpromotion')
        await sql(p, createDatabase(major, 'primary_afterpromotion2', 'file_copy'))
        await sql(s, createDatabase(major, 'standby_afterpromotion', 'wal_log'))
        await sql(s, "CREATE TABLE t (d text); INSERT INTO t VALUES ('s')", 'standby_afterpromotion')
        await sql(s, createDatabase(major, 'standby_afterpromotion2', 'file_copy'))
        await sql(s, 'DROP DATABASE beforepromotion')
        await sql(s, createDatabase(major, 'beforepromotion', 'wal_log'))
      },
    })
    const run = await runRewind(kit, primary, standby, mode)
    assertRewindOk(run)
    const modes = await kit.run('find', [
      primary.dataDir,
      '(',
      '-type',
      'd',
      '!',
      '-perm',
      '750',
      ')',
      '-o',
      '(',
      '-type',
      'f',
      '!',
      '-perm',
      '640',
      ')',
    ])
    assert.equal(modes.stdout, '', `with group access, files and directories must be 0640/0750:\n${modes.stdout}`)
    await startAsStandbyAndCompare(primary, standby, mode)
    assert.deepEqual(await column(primary, 'SELECT datname FROM pg_database ORDER BY 1'), [
      'beforepromotion',
      'inprimary',
      'postgres',
      'standby_afterpromotion',
      'standby_afterpromotion2',
      'template0',
      'template1',
    ])
  })
}

export async function extraFilesScenario(major: Major, mode: Mode): Promise<void> {
  await withKit(`rewind-003-${major}-${mode}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      beforeStandby: async (p) => {
        await shell(
          kit,
          `cd "${p.dataDir}" && mkdir -p tst_both_dir/both_subdir && echo in both1 > tst_both_dir/both_file1 && ` +
            `echo in both2 > tst_both_dir/both_file2 && echo in both3 > tst_both_dir/both_subdir/both_file3`,
        )
      },
      afterPromotion: async (p, s) => {
        await shell(
          kit,
          `cd "${s.dataDir}" && mkdir -p tst_standby_dir/standby_subdir && echo 1 > tst_standby_dir/standby_file1 && ` +
            `echo 2 > tst_standby_dir/standby_file2 && echo 3 > "tst_standby_dir/standby_file3 with 'quotes'" && ` +
            `echo 4 > tst_standby_dir/standby_subdir/standby_file4 && echo mac > tst_standby_dir/.DS_Store`,
        )
        await shell(
          kit,
          `cd "${p.dataDir}" && mkdir -p tst_primary_dir/primary_subdir && echo 1 > tst_primary_dir/primary_file1 && ` +
            `echo 2 > tst_primary_dir/primary_file2 && echo 3 > tst_primary_dir/primary_subdir/primary_file3`,
        )
      },
    })
    const run = await runRewind(kit, primary, standby, mode)
    assertRewindOk(run)
    const listed = (await shell(kit, `cd "${primary.dataDir}" && find . -path '*tst_*' | sort`))
      .trim()
      .split('\n')
      .map((p) => p.slice(2))
    assert.deepEqual(listed, [
      'tst_both_dir',
      'tst_both_dir/both_file1',
      'tst_both_dir/both_file2',
      'tst_both_dir/both_subdir',
      'tst_both_dir/both_subdir/both_file3',
      'tst_standby_dir',
      'tst_standby_dir/standby_file1',
      'tst_standby_dir/standby_file2',
      "tst_standby_dir/standby_file3 with 'quotes'",
      'tst_standby_dir/standby_subdir',
      'tst_standby_dir/standby_subdir/standby_file4',
    ])
    await startAsStandbyAndCompare(primary, standby, mode)
  })
}

export async function walSymlinkScenario(major: Major, mode: Mode): Promise<void> {
  await withKit(`rewind-004-${major}-${mode}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      beforeStart: async (p) => {
        const walDir = await kit.makeDir('xlog_primary')
        await shell(kit, `cd "${p.dataDir}" && cp -a pg_wal/. "${walDir}/" && rm -rf pg_wal && ln -s "${walDir}" pg_wal`)
      },
      beforeStandby: (p) => sql(p, "CREATE TABLE tbl1 (d text); INSERT INTO tbl1 VALUES ('in primary')").then(() => {}),
      beforePromotion: (p) => sql(p, "INSERT INTO tbl1 VALUES ('in primary, before promotion')").then(() => {}),
      afterPromotion: async (p, s) => {
        await sql(p, "INSERT INTO tbl1 VALUES ('in primary, after promotion')")
        await sql(s, "INSERT INTO tbl1 VALUES ('in standby, after promotion')")
      },
    })
    const run = await runRewind(kit, primary, standby, mode)
    assertRewindOk(run)
    assert.ok((await fs.lstat(path.join(primary.dataDir, 'pg_wal'))).isSymbolicLink(), 'pg_wal must stay a symlink')
    await startAsStandbyAndCompare(primary, standby, mode)
    assert.deepEqual(await column(primary, 'SELECT d FROM tbl1 ORDER BY d'), [
      'in primary',
      'in primary, before promotion',
      'in standby, after promotion',
    ])
  })
}

export async function sameTimelineScenario(major: Major): Promise<void> {
  await withKit(`rewind-005-${major}`, async (kit) => {
    const primary = await setupPrimary(kit, major)
    await sql(primary, "CREATE TABLE tbl1 (d text); INSERT INTO tbl1 VALUES ('in primary')")
    const standby = await createStandby(kit, primary)
    await standby.waitForReplay(await primary.currentLsn())
    const run = await runRewind(kit, primary, standby, 'local')
    assertRewindOk(run)
    assert.match(run.stderr, /source and target cluster are on the same timeline/)
    assert.match(run.stderr, /no rewind required/)
    // Nothing to undo: the old primary starts again as it is and keeps its data.
    await primary.start()
    assert.deepEqual(await column(primary, 'SELECT d FROM tbl1'), ['in primary'])
  })
}
