// Rewinds from a running source server (issue 5): pg_rewind's TAP 001-004 in remote mode, 007 (a
// standby as the source), 008 (minRecoveryPoint of a standby target), a role with only the four
// documented grants and a password from a pgpass file, a source promoted without a checkpoint yet,
// and a source that stops in the middle of the copy.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { spawn } from 'node:child_process'
import { type Kit, majorsUnderTest, PROJECT_ROOT, type Major, type Node } from '../kit/index.js'
import {
  assertRewindOk,
  column,
  forkedPair,
  REWIND_GRANTS,
  REWIND_USER,
  runRewind,
  shell,
  sql,
  startAsStandbyAndCompare,
} from './rewind-harness.js'
import { basicScenario, databasesScenario, extraFilesScenario, walSymlinkScenario, withKit } from './scenarios.js'

/** t/007_standby_source.pl: A -> B -> C; C promoted and diverges; C rewound against standby B. */
async function standbySourceScenario(major: Major): Promise<void> {
  await withKit(`rewind-007-${major}`, async (kit) => {
    const a = await kit.initNode('node_a', major, { walLogHints: true })
    await a.start()
    await sql(a, `CREATE ROLE ${REWIND_USER} LOGIN REPLICATION`)
    for (const grant of REWIND_GRANTS) await sql(a, grant)
    await sql(a, "CREATE TABLE tbl1 (d text); INSERT INTO tbl1 VALUES ('in A')")
    await sql(a, 'CHECKPOINT')
    const b = await kit.createStandby(a, 'node_b')
    const c = await kit.createStandby(b, 'node_c')
    await sql(a, "INSERT INTO tbl1 VALUES ('in A, before promotion')")
    await sql(a, 'CHECKPOINT')
    const lsn = await a.currentLsn()
    await b.waitForReplay(lsn)
    await c.waitForReplay(lsn)
    await c.promote()
    await sql(a, "INSERT INTO tbl1 VALUES ('in A, after C was promoted')")
    await b.waitForReplay(await a.currentLsn())
    await sql(c, "INSERT INTO tbl1 VALUES ('in C, after C was promoted')")
    await c.stop()
    const conf = path.join(c.dataDir, 'postgresql.conf')
    const saved = await fs.readFile(conf)
    const run = await kit.runWalrewind([
      '--debug',
      `--source-server=${b.connectionString({ user: REWIND_USER })}`,
      `--target-pgdata=${c.dataDir}`,
      '--no-sync',
      '--write-recovery-conf',
    ])
    await fs.writeFile(conf, saved)
    assertRewindOk({ ...run, args: [] })
    await c.start()
    assert.deepEqual(await column(c, 'SELECT d FROM tbl1 ORDER BY d'), ['in A', 'in A, after C was promoted', 'in A, before promotion'])
    await sql(a, "INSERT INTO tbl1 VALUES ('in A, after rewind')")
    const end = await a.currentLsn()
    await b.waitForReplay(end)
    await c.waitForReplay(end)
    assert.deepEqual(await column(c, 'SELECT d FROM tbl1 ORDER BY d'), [
      'in A',
      'in A, after C was promoted',
      'in A, after rewind',
      'in A, before promotion',
    ])
  })
}

/** t/008_min_recovery_point.pl: a standby target whose WAL goes past its last restartpoint. */
async function minRecoveryPointScenario(major: Major): Promise<void> {
  await withKit(`rewind-008-${major}`, async (kit) => {
    const node1 = await kit.initNode('node_1', major, { walLogHints: true })
    await node1.start()
    await sql(
      node1,
      "CREATE TABLE foo (t text); CREATE TABLE bar (t text); INSERT INTO foo VALUES ('in both'); INSERT INTO bar VALUES ('in both')",
    )
    await sql(node1, 'CHECKPOINT')
    const node2 = await kit.createStandby(node1, 'node_2')
    const node3 = await kit.createStandby(node1, 'node_3')
    await node2.waitForReplay(await node1.currentLsn())
    await node3.waitForReplay(await node1.currentLsn())
    await node1.stop()
    await node3.promote()
    await node1.followAs(node3)
    await node1.start()
    await node2.stop()
    await node2.followAs(node3)
    await node2.start()
    await node1.waitForReplay(await node3.currentLsn())
    await node1.promote()
    await sql(node1, "INSERT INTO foo VALUES ('keep this')")
    await sql(node3, "INSERT INTO bar VALUES ('rewind this')")
    await sql(node1, "INSERT INTO foo VALUES ('and this')")
    await sql(node1, "INSERT INTO foo VALUES ('and this too')")
    await node2.waitForReplay(await node3.currentLsn())
    await node2.stop()
    await node3.stop()
    const conf = path.join(node2.dataDir, 'postgresql.conf')
    const saved = await fs.readFile(conf)
    const run = await kit.runWalrewind([`--source-server=${node1.connectionString()}`, `--target-pgdata=${node2.dataDir}`, '--debug'])
    await fs.writeFile(conf, saved)
    assertRewindOk({ ...run, args: [] })
    await node2.followAs(node1)
    await node2.start()
    await node2.waitForReplay(await node1.currentLsn())
    assert.deepEqual(await column(node2, 'SELECT t FROM foo ORDER BY t'), ['and this', 'and this too', 'in both', 'keep this'])
    assert.deepEqual(await column(node2, 'SELECT t FROM bar ORDER BY t'), ['in both'])
  })
}

/** The four grants, a password in a pgpass file, scram over TCP: what HA managers run with. */
async function leastPrivilegeScenario(major: Major): Promise<void> {
  await withKit(`rewind-pgpass-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      init: { hba: [`host all ${REWIND_USER} 127.0.0.1/32 scram-sha-256`, `host replication ${REWIND_USER} 127.0.0.1/32 scram-sha-256`] },
      beforeStandby: async (p) => {
        await sql(p, `ALTER ROLE ${REWIND_USER} PASSWORD 'sekret:with\\colon'`)
        await sql(p, "CREATE TABLE t (d text); INSERT INTO t VALUES ('before')")
      },
      afterPromotion: async (p, s) => {
        await sql(p, "INSERT INTO t VALUES ('primary after')")
        await sql(s, "INSERT INTO t VALUES ('standby after')")
      },
    })
    await shell(
      kit,
      `printf '%s\\n' '127.0.0.1:${standby.port}:*:${REWIND_USER}:sekret\\:with\\\\colon' > "${kit.homeDir}/.pgpass" && chmod 600 "${kit.homeDir}/.pgpass"`,
    )
    // Without one of the grants, the error names the function and the server, and nothing is written.
    await sql(standby, `REVOKE EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) FROM ${REWIND_USER}`)
    await primary.stop()
    const denied = await kit.runWalrewind([
      `--target-pgdata=${primary.dataDir}`,
      `--source-server=${standby.connectionString({ user: REWIND_USER })}`,
    ])
    assert.equal(denied.code, 5, denied.stderr)
    assert.match(denied.stderr, /pg_ls_dir/)
    assert.match(denied.stderr, new RegExp(`127\\.0\\.0\\.1:${standby.port}|port ${standby.port}`))
    assert.match(denied.stderr, /the target data directory was not modified/)
    await sql(standby, `GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO ${REWIND_USER}`)

    const run = await runRewind(kit, primary, standby, 'remote')
    assertRewindOk(run)
    const autoConf = await fs.readFile(path.join(primary.dataDir, 'postgresql.auto.conf'), 'utf8')
    assert.match(autoConf, /primary_conninfo = '.*user=rewind_user.*'/)
    assert.doesNotMatch(autoConf, /sekret/, 'a password from the pgpass file must not be written into primary_conninfo')
    await startAsStandbyAndCompare(primary, standby, 'remote')
    assert.deepEqual(await column(primary, 'SELECT d FROM t ORDER BY d'), ['before', 'standby after'])
  })
}

/** A source promoted a moment ago, whose control file still shows the old timeline's checkpoint. */
async function promotedWithoutCheckpointScenario(major: Major): Promise<void> {
  await withKit(`rewind-nocheckpoint-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      init: { conf: { checkpoint_timeout: '1h' } },
      beforeStandby: (p) => sql(p, "CREATE TABLE t (d text); INSERT INTO t VALUES ('before')").then(() => {}),
      afterPromotion: async (p, s) => {
        await sql(p, "INSERT INTO t VALUES ('old primary after')")
        await sql(s, "INSERT INTO t VALUES ('new primary after')")
      },
    })
    const tli = await standby.queryValue<number>('SELECT timeline_id FROM pg_control_checkpoint()')
    console.error(`checkpoint timeline on the promoted source: ${tli}`)
    // The test means something only while the checkpoint after promotion has not happened yet.
    if (tli === 1) {
      const run = await runRewind(kit, primary, standby, 'remote')
      assertRewindOk(run)
      assert.doesNotMatch(run.stderr, /no rewind required/)
      await startAsStandbyAndCompare(primary, standby, 'remote')
    } else {
      const run = await runRewind(kit, primary, standby, 'remote')
      assertRewindOk(run)
      await startAsStandbyAndCompare(primary, standby, 'remote')
    }
    assert.deepEqual(await column(primary, 'SELECT d FROM t ORDER BY d'), ['before', 'new primary after'])
  })
}

/** The source stops while data is being copied: a clear error, and a second run completes. */
async function sourceStopsScenario(major: Major): Promise<void> {
  await withKit(`rewind-interrupted-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, "CREATE TABLE p (d text); INSERT INTO p VALUES ('gone')")
        await sql(
          s,
          'CREATE TABLE big (a int, b text); INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 600000) g',
        )
      },
    })
    await primary.stop('immediate')
    const conf = path.join(primary.dataDir, 'postgresql.conf')
    const saved = await fs.readFile(conf)
    const args = [
      `--target-pgdata=${primary.dataDir}`,
      `--source-server=${standby.connectionString({ user: REWIND_USER })}`,
      '--progress',
      '--jobs=1',
      '--source-timeout=20',
      `--postgres-bindir=${primary.binDir}`,
      '--no-sync',
    ]
    const interrupted = await runStoppingSource(kit, args, standby)
    assert.notEqual(interrupted.code, 0, 'a source that stops mid-copy must fail the run')
    assert.match(interrupted.stderr, /target data directory was modified/)
    await standby.start()
    const again = await kit.runWalrewind([...args, '--write-recovery-conf'])
    await fs.writeFile(conf, saved)
    assertRewindOk({ ...again, args })
    await startAsStandbyAndCompare(primary, standby, 'remote')
  })
}

/** Runs walrewind and stops the source (immediate) once it reports copying progress. */
async function runStoppingSource(kit: Kit, args: string[], source: Node): Promise<{ code: number; stderr: string }> {
  const uid = kit.osUser?.uid
  const gid = kit.osUser?.gid
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'walrewind.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: kit.homeDir },
    ...(uid !== undefined ? { uid, gid: gid! } : {}),
  })
  let stderr = ''
  let stopping: Promise<void> | null = null
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
    if (stopping === null && /kB \(\d+%\) copied/.test(stderr)) stopping = source.stop('immediate')
  })
  child.stdout.resume()
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)))
  await stopping
  return { code, stderr }
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: remote source`, () => {
    test('001 basic, remote', () => basicScenario(major, 'remote'))
    test('002 databases, remote', () => databasesScenario(major, 'remote'))
    test('003 extra files, remote', () => extraFilesScenario(major, 'remote'))
    test('004 pg_wal symlink, remote', () => walSymlinkScenario(major, 'remote'))
    test('007 standby as source', () => standbySourceScenario(major))
    test('008 min recovery point', () => minRecoveryPointScenario(major))
    test('least privilege, password from pgpass', () => leastPrivilegeScenario(major))
    test('source promoted without a checkpoint', () => promotedWithoutCheckpointScenario(major))
    test('source stops during the copy, second run completes', () => sourceStopsScenario(major))
  })
}
