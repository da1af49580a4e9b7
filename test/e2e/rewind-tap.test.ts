// pg_rewind's t/002_databases.pl, t/003_extrafiles.pl, t/004_pg_xlog_symlink.pl and
// t/005_same_timeline.pl, on every major, from a stopped source directory.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { Kit, majorsUnderTest, type Major } from '../kit/index.js'
import {
  assertRewindOk, column, createStandby, forkedPair, runRewind, setupPrimary, shell, sql, startAsStandbyAndCompare, type Mode,
} from './rewind-harness.js'

async function withKit(name: string, body: (kit: Kit) => Promise<void>): Promise<void> {
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
        await sql(p, 'CREATE TABLE t (d text); INSERT INTO t VALUES (\'inprimary\')', 'inprimary')
      },
      beforePromotion: async (p) => {
        await sql(p, createDatabase(major, 'beforepromotion', 'file_copy'))
        await sql(p, 'CREATE TABLE t (d text); INSERT INTO t VALUES (\'beforepromotion\')', 'beforepromotion')
      },
      afterPromotion: async (p, s) => {
        await sql(p, createDatabase(major, 'primary_afterpromotion', 'wal_log'))
        await sql(p, 'CREATE TABLE t (d text); INSERT INTO t VALUES (\'p\')', 'primary_afterpromotion')
        await sql(p, createDatabase(major, 'primary_afterpromotion2', 'file_copy'))
        await sql(s, createDatabase(major, 'standby_afterpromotion', 'wal_log'))
        await sql(s, 'CREATE TABLE t (d text); INSERT INTO t VALUES (\'s\')', 'standby_afterpromotion')
        await sql(s, createDatabase(major, 'standby_afterpromotion2', 'file_copy'))
        await sql(s, 'DROP DATABASE beforepromotion')
        await sql(s, createDatabase(major, 'beforepromotion', 'wal_log'))
      },
    })
    const run = await runRewind(kit, primary, standby, mode)
    assertRewindOk(run)
    await startAsStandbyAndCompare(primary, standby, mode)
    assert.deepEqual(await column(primary, 'SELECT datname FROM pg_database ORDER BY 1'),
      ['beforepromotion', 'inprimary', 'postgres', 'standby_afterpromotion', 'standby_afterpromotion2', 'template0', 'template1'])
    const modes = await kit.run('find', [primary.dataDir, '(', '-type', 'd', '!', '-perm', '750', ')', '-o', '(', '-type', 'f', '!', '-perm', '640', ')'])
    assert.equal(modes.stdout, '', `with group access, files and directories must be 0640/0750:\n${modes.stdout}`)
  })
}

export async function extraFilesScenario(major: Major, mode: Mode): Promise<void> {
  await withKit(`rewind-003-${major}-${mode}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      beforeStandby: async (p) => {
        await shell(kit, `cd "${p.dataDir}" && mkdir -p tst_both_dir/both_subdir && echo in both1 > tst_both_dir/both_file1 && ` +
          `echo in both2 > tst_both_dir/both_file2 && echo in both3 > tst_both_dir/both_subdir/both_file3`)
      },
      afterPromotion: async (p, s) => {
        await shell(kit, `cd "${s.dataDir}" && mkdir -p tst_standby_dir/standby_subdir && echo 1 > tst_standby_dir/standby_file1 && ` +
          `echo 2 > tst_standby_dir/standby_file2 && echo 3 > "tst_standby_dir/standby_file3 with 'quotes'" && ` +
          `echo 4 > tst_standby_dir/standby_subdir/standby_file4 && echo mac > tst_standby_dir/.DS_Store`)
        await shell(kit, `cd "${p.dataDir}" && mkdir -p tst_primary_dir/primary_subdir && echo 1 > tst_primary_dir/primary_file1 && ` +
          `echo 2 > tst_primary_dir/primary_file2 && echo 3 > tst_primary_dir/primary_subdir/primary_file3`)
      },
    })
    const run = await runRewind(kit, primary, standby, mode)
    assertRewindOk(run)
    const listed = (await shell(kit, `cd "${primary.dataDir}" && find . -path '*tst_*' | sort`)).trim().split('\n').map((p) => p.slice(2))
    assert.deepEqual(listed, [
      'tst_both_dir', 'tst_both_dir/both_file1', 'tst_both_dir/both_file2', 'tst_both_dir/both_subdir', 'tst_both_dir/both_subdir/both_file3',
      'tst_standby_dir', 'tst_standby_dir/standby_file1', 'tst_standby_dir/standby_file2', "tst_standby_dir/standby_file3 with 'quotes'",
      'tst_standby_dir/standby_subdir', 'tst_standby_dir/standby_subdir/standby_file4',
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
    assert.deepEqual(await column(primary, 'SELECT d FROM tbl1 ORDER BY d'),
      ['in primary', 'in primary, before promotion', 'in standby, after promotion'])
  })
}

async function sameTimelineScenario(major: Major): Promise<void> {
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

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: pg_rewind TAP 002-005, local`, () => {
    test('002 databases, group access', () => databasesScenario(major, 'local'))
    test('003 extra files', () => extraFilesScenario(major, 'local'))
    test('004 pg_wal symlink', () => walSymlinkScenario(major, 'local'))
    test('005 same timeline', () => sameTimelineScenario(major))
  })
}
