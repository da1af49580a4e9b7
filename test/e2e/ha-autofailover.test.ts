// pg_auto_failover 2 (Debian's postgresql-15-auto-failover): a monitor and two nodes, walrewind
// installed as pg_rewind next to the pg_ctl pg_autoctl is given (--pgctl), where pg_autoctl looks
// for it. In each round the primary keeps writing WAL its standby does not receive (its walsender
// is stopped; the writes commit locally, the standby being synchronous), then crashes with its
// keeper (SIGKILL); the monitor fails over; the old primary's keeper comes back, is demoted and
// rejoins through pg_rewind ("First, try to rewind. If that fails, do a pg_basebackup": the
// recorded exit status proves the rewind did it). One round with the real pg_rewind 15, one with
// walrewind.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  assertFollowsWithSameData,
  assertRewoundBy,
  createData,
  Db,
  freezeWalSenders,
  Ha,
  IMPLS,
  requirePrograms,
  streamingStandbys,
  waitFor,
  writeUnreceived,
} from './ha-harness.js'

const PG_AUTOCTL = '/usr/bin/pg_autoctl'

interface Keeper {
  name: string
  db: Db
  daemon: ReturnType<Ha['spawnDaemon']> | null
}

describe('pg_auto_failover 2: failover, then the old primary rejoins through pg_rewind', () => {
  let ha: Ha
  let monitor: Db
  let monitorDaemon: ReturnType<Ha['spawnDaemon']>
  const keepers: Keeper[] = []
  let env: Record<string, string>

  before(async () => {
    requirePrograms([PG_AUTOCTL])
    ha = await Ha.create('ha-autofailover')
    const sockets = ha.dir('sockets')
    // pg_autoctl talks to its local postgres through the socket directory, as the superuser.
    env = { PGHOST: sockets, PGUSER: 'postgres' }
    const pgctl = path.join(ha.bin, 'pg_ctl')
    const common = ['--pgctl', pgctl, '--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl']

    // The monitor, on a data directory made here: Debian's default socket directory is not ours.
    const monitorPort = await ha.port()
    const monitorDir = path.join(ha.dir('monitor'), 'data')
    await initdb(monitorDir, sockets)
    ha.watchDataDir(monitorDir)
    await ha.must(PG_AUTOCTL, ['create', 'monitor', '--pgdata', monitorDir, '--pgport', String(monitorPort), ...common], {
      env,
      timeoutMs: 120_000,
    })
    monitorDaemon = ha.spawnDaemon('monitor', PG_AUTOCTL, ['run', '--pgdata', monitorDir], { env })
    monitor = new Db('monitor', monitorPort, monitorDir)
    await waitFor(
      'the monitor',
      () => monitor.isUp(),
      60_000,
      () => ha.logTail(monitorDaemon),
    )
    // Fail over within seconds rather than half a minute.
    for (const [name, value] of [
      ['health_check_period', 1000],
      ['health_check_retry_delay', 500],
      ['health_check_max_retries', 1],
      ['node_considered_unhealthy_timeout', 3000],
      ['primary_demote_timeout', 3000],
    ] as const) {
      await monitor.query(`alter system set pgautofailover.${name} = ${value}`)
    }
    await monitor.query('select pg_reload_conf()')
    const monitorUri = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`

    for (const name of ['node1', 'node2']) {
      const port = await ha.port()
      const dataDir = path.join(ha.dir(name), 'data')
      // The first node's directory is made here (socket directory, wal_log_hints); the second is
      // pg_autoctl's copy of the first.
      if (name === 'node1') await initdb(dataDir, sockets)
      ha.watchDataDir(dataDir)
      await ha.must(
        PG_AUTOCTL,
        ['create', 'postgres', '--pgdata', dataDir, '--pgport', String(port), '--name', name, '--monitor', monitorUri, ...common],
        { env, timeoutMs: 180_000 },
      )
      const keeper: Keeper = { name, db: new Db(name, port, dataDir), daemon: null }
      keepers.push(keeper)
      startKeeper(keeper)
      await waitFor(
        `${name} registered and running`,
        async () =>
          (await states()).some(
            (s) =>
              s.name === name &&
              (s.reported === 'single' || s.reported === 'primary' || s.reported === 'secondary') &&
              s.reported === s.goal,
          ),
        180_000,
        () => ha.logTail(keeper.daemon!),
      )
    }
    await waitFor('node2 streaming from node1', async () => (await streamingStandbys(keepers[0]!.db)).length === 1, 120_000)
    await createData(keepers[0]!.db)
  })

  after(async () => {
    await ha?.cleanup()
  })

  async function initdb(dataDir: string, sockets: string): Promise<void> {
    await ha.must(path.join(ha.bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
    fs.appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        '# walrewind HA test',
        `unix_socket_directories = '${sockets}'`,
        'wal_log_hints = on',
        'fsync = off',
        "wal_keep_size = '320MB'",
        "shared_buffers = '16MB'",
        "lc_messages = 'C'",
        '',
      ].join('\n'),
    )
  }

  function startKeeper(k: Keeper): void {
    k.daemon = ha.spawnDaemon(`keeper-${k.name}`, PG_AUTOCTL, ['run', '--pgdata', k.db.dataDir], { env })
  }

  async function states(): Promise<Array<{ id: number; name: string; reported: string; goal: string }>> {
    return (
      await monitor.query<{ nodeid: number; nodename: string; reportedstate: string; goalstate: string }>(
        'select nodeid, nodename, reportedstate, goalstate from pgautofailover.node order by nodeid',
        [],
        { dbname: 'pg_auto_failover' },
      )
    ).map((r) => ({ id: Number(r.nodeid), name: r.nodename, reported: r.reportedstate, goal: r.goalstate }))
  }

  const stateText = async () => JSON.stringify(await states().catch((err) => String(err)))

  for (const [round, impl] of IMPLS.entries()) {
    test(`with ${impl === 'walrewind' ? 'walrewind as pg_rewind' : 'the real pg_rewind 15'}: crash of the primary, failover, rejoin`, async () => {
      ha.useImpl(impl)
      await waitFor(
        'a primary and a secondary',
        async () => (await states()).every((n) => n.reported === n.goal && (n.reported === 'primary' || n.reported === 'secondary')),
        120_000,
        () => ha.logTail(monitorDaemon, 20),
      )
      const nodes = await states()
      const primaryName = nodes.find((n) => n.reported === 'primary' && n.goal === 'primary')?.name
      assert.ok(primaryName !== undefined, `no primary: ${await stateText()}`)
      const old = keepers.find((k) => k.name === primaryName)!
      const next = keepers.find((k) => k !== old)!
      await waitFor(`${next.name} streaming`, async () => (await streamingStandbys(old.db)).length === 1, 120_000)
      const before = ha.rewindsOf(old.db.dataDir).length
      const frozen = await freezeWalSenders(old.db)
      await writeUnreceived(old.db, round + 1)
      await ha.crash(old.daemon!, old.db, frozen)

      await waitFor(
        `the failover to ${next.name}`,
        async () => {
          const s = (await states()).find((n) => n.name === next.name)
          return s !== undefined && (s.reported === 'wait_primary' || s.reported === 'primary') && !(await next.db.inRecovery())
        },
        120_000,
        () => `states: ${JSON.stringify(nodes)}\n--- ${next.name}\n${ha.logTail(next.daemon!, 40)}`,
      )
      await next.db.query(
        `insert into ha_data (id, who, payload) select g, 'after failover', 'x' from generate_series(${(round + 1) * 10_000_000 + 500000}, ${(round + 1) * 10_000_000 + 500999}) g`,
      )

      startKeeper(old)
      const oldId = (await states()).find((n) => n.name === old.name)!.id
      await assertFollowsWithSameData(
        old.db,
        next.db,
        `pgautofailover_standby_${oldId}`,
        round + 1,
        () => `--- ${old.name}\n${ha.logTail(old.daemon!)}`,
      )
      assertRewoundBy(ha, impl, old.db.dataDir, before, [/^--source-server$/, /^--progress$/])
      const log = fs.readFileSync(old.daemon!.logFile, 'utf8')
      assert.doesNotMatch(log, /trying pg_basebackup instead/, 'pg_autoctl fell back to pg_basebackup')
      await waitFor(
        'both nodes settled',
        async () => (await states()).every((s) => s.reported === s.goal && (s.reported === 'primary' || s.reported === 'secondary')),
        60_000,
        () => ha.logTail(old.daemon!, 20),
      )
    })
  }
})
