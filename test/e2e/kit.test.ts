// The test kit itself, on every major: standbys and cascades follow, promotion forks histories,
// a crash keeps committed data, saved states come back, and no server outlives its kit (nor a
// test process that forgot cleanup). Everything else is tested on top of this.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { Kit, majorsUnderTest, PROJECT_ROOT, type Major, type Node } from '../kit/index.js'

let kit: Kit

before(async () => {
  kit = await Kit.create('kit')
})

after(async () => {
  await kit?.cleanup()
})

/** Timeline a node writes on, or (standby) receives from its upstream. */
async function timeline(node: Node): Promise<number> {
  if (await node.queryValue<boolean>('select pg_is_in_recovery()')) {
    return node.queryValue<number>('select received_tli from pg_stat_wal_receiver')
  }
  const walFile = await node.queryValue<string>('select pg_walfile_name(pg_current_wal_lsn())')
  return parseInt(walFile.slice(0, 8), 16)
}

async function upstreamOf(node: Node): Promise<string[]> {
  const rows = await node.query<{ application_name: string }>(
    "select application_name from pg_stat_replication where state = 'streaming' order by 1",
  )
  return rows.map((row) => row.application_name)
}

for (const major of majorsUnderTest()) {
  test(`kit on PostgreSQL ${major}`, async (t) => {
    const started = Date.now()
    // Both ways rewind can be allowed: checksums on the even majors, wal_log_hints on the odd.
    const checksums = major % 2 === 0
    const primary = await kit.initNode(`primary${major}`, major, { checksums, walLogHints: !checksums, archive: true })
    await primary.start()
    assert.equal(await primary.queryValue('show data_checksums'), checksums ? 'on' : 'off')
    assert.equal(await primary.queryValue('show wal_log_hints'), checksums ? 'off' : 'on')
    assert.equal(Number(await primary.queryValue("select current_setting('server_version_num')::int / 10000")), major)
    await primary.query(`create table t (id int primary key, who text);
      insert into t select g, 'before' from generate_series(1, 1000) g;
      create unlogged table scratch (x int); insert into scratch values (1)`)
    await primary.query('create database other')
    await primary.query("create table o (x text); insert into o values ('a')", [], { dbname: 'other' })

    // A standby by online base copy, and a cascading standby of that standby.
    const standby = await kit.createStandby(primary, `standby${major}`)
    const cascade = await kit.createStandby(standby, `cascade${major}`)
    await primary.query("insert into t select g, 'streamed' from generate_series(1001, 2000) g")
    const lsn = await primary.currentLsn()
    await standby.waitForReplay(lsn)
    await cascade.waitForReplay(lsn)
    const primaryPrint = await primary.fingerprint()
    assert.deepEqual(primaryPrint.databases, ['other', 'postgres', 'template1'])
    assert.deepEqual(primaryPrint.tables['postgres.public.t']?.rows, 2000)
    assert.equal(primaryPrint.tables['postgres.public.scratch'], undefined, 'unlogged tables are not fingerprinted')
    assert.deepEqual(await standby.fingerprint(), primaryPrint)
    assert.deepEqual(await cascade.fingerprint(), primaryPrint)
    assert.equal(await standby.queryValue('select pg_is_in_recovery()'), true)
    assert.deepEqual(await upstreamOf(primary), [standby.name])
    assert.deepEqual(await upstreamOf(standby), [cascade.name])

    // Promotion forks the history: new timeline, and each side writes its own rows. The cascade
    // follows its upstream onto the new timeline.
    await standby.promote()
    assert.equal(await standby.queryValue('select pg_is_in_recovery()'), false)
    assert.equal(await timeline(standby), 2)
    await primary.query("insert into t values (5001, 'old primary only')")
    await standby.query("insert into t values (6001, 'new primary only')")
    const [oldPrint, newPrint] = [await primary.fingerprint(), await standby.fingerprint()]
    assert.notDeepEqual(oldPrint, newPrint)
    assert.equal(oldPrint.tables['postgres.public.t']?.rows, 2001)
    assert.equal(newPrint.tables['postgres.public.t']?.rows, 2001)
    await cascade.waitForReplay(await standby.currentLsn())
    assert.equal(await timeline(cascade), 2)
    assert.deepEqual(await cascade.fingerprint(), newPrint)

    // A crash (immediate stop) loses nothing committed.
    await primary.stop('immediate')
    assert.equal(await primary.isRunning(), false)
    await primary.start()
    assert.deepEqual(await primary.fingerprint(), oldPrint)

    // Indexes are intact (amcheck is created and dropped again on a primary).
    await primary.checkIndexes()
    assert.equal(await primary.queryValue("select count(*)::int from pg_extension where extname = 'amcheck'"), 0)

    // Saved states, with a tablespace outside the data directory and an archive; the new primary
    // has no standby that would replay CREATE TABLESPACE onto the same location.
    const location = await kit.makeDir(`ts${major}`)
    await primary.query(`create tablespace ts location '${location}'`)
    await primary.query('create table in_ts (x int) tablespace ts; insert into in_ts select generate_series(1, 100)')
    await primary.query('select pg_switch_wal()')
    await primary.stop()
    await kit.saveState(`saved${major}`, [primary])
    await primary.start()
    const saved = await primary.fingerprint()
    assert.equal(saved.tables['postgres.public.in_ts']?.rows, 100)
    assert.deepEqual(saved.tables['postgres.public.t'], oldPrint.tables['postgres.public.t'])
    await primary.query('insert into in_ts values (101); drop table t')
    await primary.query('drop database other')
    assert.notDeepEqual(await primary.fingerprint(), saved)
    await primary.stop()
    await kit.restoreState(`saved${major}`)
    await primary.start()
    assert.deepEqual(await primary.fingerprint(), saved)
    assert.ok(fs.readdirSync(primary.archiveDir).length > 0, 'the archive has segments')

    // A standby copied from a stopped node (its tablespace gets its own location) catches up once
    // the node runs again; setConf reloads a running node.
    await primary.stop()
    const copy = await kit.createStandby(primary, `copy${major}`, { fromStopped: true })
    await primary.start()
    await primary.setConf({ work_mem: '3MB' })
    assert.equal(await primary.queryValue('show work_mem'), '3MB')
    await primary.query('insert into in_ts values (102)')
    await copy.waitForReplay(await primary.currentLsn())
    assert.deepEqual(await copy.fingerprint(), await primary.fingerprint())
    const copyLink = fs.readlinkSync(path.join(copy.dataDir, 'pg_tblspc', fs.readdirSync(path.join(copy.dataDir, 'pg_tblspc'))[0]!))
    assert.ok(copyLink.startsWith(path.dirname(copy.dataDir)), `the copy's tablespace is its own (${copyLink})`)

    // Programs run as the PG OS user.
    const whoami = await kit.run('id', ['-un'])
    assert.equal(whoami.stdout.trim(), kit.osUser?.name ?? os.userInfo().username)

    for (const node of [primary, standby, cascade, copy]) await node.stop()
    t.diagnostic(`PostgreSQL ${major}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  })
}

test('cleanup stops every server and removes the base directory', async () => {
  const major = majorsUnderTest()[0] as Major
  const own = await Kit.create('cleanup')
  const primary = await own.initNode('p', major)
  await primary.start()
  const standby = await own.createStandby(primary, 's')
  const pids = [primary.postmasterPid(), standby.postmasterPid()]
  assert.ok(pids.every((pid) => pid !== null))
  await own.cleanup()
  for (const pid of pids) assert.equal(isAlive(pid!), false, `postmaster ${pid} is gone`)
  if (process.env['WALREWIND_KEEP_TMP'] !== '1') assert.equal(fs.existsSync(own.baseDir), false)
  await own.cleanup()
})

test('a test process that exits without cleanup leaves no server behind', async () => {
  const major = majorsUnderTest()[0] as Major
  const kitModule = path.join(PROJECT_ROOT, 'dist', 'test', 'kit', 'index.js')
  const script = `
    import { Kit } from ${JSON.stringify(kitModule)}
    const kit = await Kit.create('orphan')
    const node = await kit.initNode('p', ${major})
    await node.start()
    console.log(JSON.stringify({ pid: node.postmasterPid(), dirs: [kit.baseDir, kit.socketRoot] }))
    process.exit(0)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  assert.equal(code, 0, stderr)
  const { pid, dirs } = JSON.parse(stdout) as { pid: number; dirs: string[] }
  try {
    const deadline = Date.now() + 30_000
    while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(isAlive(pid), false, `postmaster ${pid} was stopped by the exit handler`)
    assert.match(stderr, /sent SIGQUIT/)
  } finally {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  }
})

/** Alive and not a zombie (a container's init may not reap the orphaned postmaster at once). */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
