// pg_rewind's t/001_basic.pl: a table gaining rows on both sides, one truncated by growth on the
// target, one shrunk on the target (copy-tail), one dropped on the target (copied back whole);
// in local mode also the refusals of a running target / running source and a dry run.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Kit, majorsUnderTest, type Major } from '../kit/index.js'
import {
  assertRewindOk, column, createStandby, promoteStandby, runRewind, setupPrimary, snapshotDirectory, sql,
  startAsStandbyAndCompare, type Mode,
} from './rewind-harness.js'

async function basicScenario(major: Major, mode: Mode): Promise<void> {
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
      const base = [`--target-pgdata=${primary.dataDir}`, `--source-pgdata=${standby.dataDir}`, '--no-sync', `--postgres-bindir=${primary.binDir}`]
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
    assert.match(run.stderr, /rewinding from last common checkpoint at/)
    if (mode !== 'archive') assert.match(run.stderr, /executing ".*postgres" for target server to complete crash recovery/)
    await startAsStandbyAndCompare(primary, standby, mode)

    assert.deepEqual(await column(primary, 'SELECT d FROM tbl1 ORDER BY d'),
      ['in primary', 'in primary, before promotion', 'in standby, after promotion'])
    assert.deepEqual(await column(primary, 'SELECT d FROM trunc_tbl ORDER BY d'), ['in primary', 'in primary, before promotion'])
    assert.deepEqual(await column(primary, 'SELECT count(*) FROM tail_tbl'), ['10001'])
    assert.deepEqual(await column(primary, 'SELECT d FROM drop_tbl ORDER BY d'), ['in primary'])
    const modes = await kit.run('find', [primary.dataDir, '(', '-type', 'd', '!', '-perm', '700', ')', '-o', '(', '-type', 'f', '!', '-perm', '600', ')'])
    assert.equal(modes.stdout, '', `files or directories with modes other than 0700/0600:\n${modes.stdout}`)
  } finally {
    await kit.cleanup()
  }
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: 001 basic`, () => {
    test('local', () => basicScenario(major, 'local'))
    test('archive (-c, target WAL only in the archive)', () => basicScenario(major, 'archive'))
  })
}
