// Patroni (Debian's patroni package) with etcd: a 3-node cluster with use_pg_rewind on, walrewind
// installed as pg_rewind in postgresql.bin_dir. In each round the leader keeps writing WAL its
// replicas do not receive (its walsenders are stopped), then crashes with its Patroni (SIGKILL);
// Patroni fails over; the old leader's Patroni comes back, finishes the crash recovery (Patroni
// does that itself, in single-user mode) and runs pg_rewind with --restore-target-wal, because a
// restore_command is configured (Patroni 3 on PostgreSQL 15+); the old leader then streams from
// the new one and holds its data. One round with the real pg_rewind 15, one with walrewind.

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

const PATRONI = '/usr/bin/patroni'
const ETCD = '/usr/bin/etcd'

function sameList(a: string[], b: string[]): boolean {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort())
}

interface Member {
  name: string
  db: Db
  restPort: number
  config: string
  daemon: ReturnType<Ha['spawnDaemon']> | null
}

describe('Patroni 3 with etcd: failover, then the old leader rejoins through pg_rewind', () => {
  let ha: Ha
  const members: Member[] = []

  before(async () => {
    requirePrograms([PATRONI, ETCD])
    ha = await Ha.create('ha-patroni')
    const archive = ha.dir('archive')
    const sockets = ha.dir('sockets')
    const [clientPort, peerPort] = [await ha.port(), await ha.port()]
    const etcdData = ha.dir('etcd')
    ha.spawnDaemon('etcd', ETCD, [
      '--name',
      'etcd1',
      '--data-dir',
      etcdData,
      '--listen-client-urls',
      `http://127.0.0.1:${clientPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${clientPort}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-cluster',
      `etcd1=http://127.0.0.1:${peerPort}`,
      '--initial-cluster-state',
      'new',
      '--log-level',
      'warn',
    ])
    await waitFor(
      'etcd',
      async () => (await fetch(`http://127.0.0.1:${clientPort}/health`)).ok,
      30_000,
      () => ha.logTail(path.join(ha.kit.baseDir, 'etcd.log')),
    )

    for (const name of ['node1', 'node2', 'node3']) {
      const [pgPort, restPort] = [await ha.port(), await ha.port()]
      const dataDir = path.join(ha.kit.baseDir, name, 'data')
      ha.dir(name)
      const config = path.join(ha.kit.baseDir, `${name}.yml`)
      // The restore_command in every role: Patroni writes its recovery_conf into postgresql.conf
      // only on a replica, and reads restore_command before a rewind from the configuration in
      // place, which on a node that has only ever led has none (then no --restore-target-wal).
      const customConf = path.join(ha.kit.baseDir, `${name}-custom.conf`)
      ha.writeFile(customConf, `restore_command = 'cp ${archive}/%f %p'\n`, 0o644)
      // YAML is a superset of JSON.
      ha.writeFile(
        config,
        JSON.stringify(
          {
            scope: 'walrewind-ha',
            name,
            log: { level: 'INFO' },
            restapi: { listen: `127.0.0.1:${restPort}`, connect_address: `127.0.0.1:${restPort}` },
            etcd3: { hosts: [`127.0.0.1:${clientPort}`] },
            bootstrap: {
              dcs: {
                ttl: 10,
                loop_wait: 1,
                retry_timeout: 3,
                // The replicas lag on purpose (the leader's walsenders are stopped): allow the failover.
                maximum_lag_on_failover: 1024 * 1024 * 1024,
                postgresql: {
                  use_pg_rewind: true,
                  use_slots: false,
                  parameters: {
                    wal_log_hints: 'on',
                    wal_keep_size: '320MB',
                    max_wal_senders: 10,
                    max_connections: 40,
                    shared_buffers: '16MB',
                    fsync: 'off',
                    hot_standby: 'on',
                    archive_mode: 'on',
                    archive_command: `test ! -f ${archive}/%f && cp %p ${archive}/%f`,
                    wal_retrieve_retry_interval: '500ms',
                    lc_messages: 'C',
                  },
                },
              },
              initdb: [{ encoding: 'UTF8' }, { locale: 'C' }],
              pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust'],
            },
            postgresql: {
              listen: `127.0.0.1:${pgPort}`,
              connect_address: `127.0.0.1:${pgPort}`,
              data_dir: dataDir,
              bin_dir: ha.bin,
              pgpass: path.join(ha.kit.homeDir, `pgpass-${name}`),
              authentication: {
                superuser: { username: 'postgres', password: 'super-secret' },
                replication: { username: 'replicator', password: 'rep-secret' },
                rewind: { username: 'rewind_user', password: 'rewind-secret' },
              },
              parameters: { unix_socket_directories: sockets },
              custom_conf: customConf,
              // With a restore_command Patroni 3 passes --restore-target-wal to pg_rewind (PostgreSQL 15+).
              recovery_conf: { restore_command: `cp ${archive}/%f %p` },
            },
          },
          null,
          2,
        ),
      )
      ha.watchDataDir(dataDir)
      members.push({ name, db: new Db(name, pgPort, dataDir, 'super-secret'), restPort, config, daemon: null })
    }
    const [first, ...others] = members
    startPatroni(first!)
    await waitFor(
      'node1 to bootstrap as the leader',
      () => isRole(first!, 'primary'),
      120_000,
      () => ha.logTail(first!.daemon!),
    )
    for (const m of others) startPatroni(m)
    // By name: pg_basebackup's own WAL stream is in pg_stat_replication too while a replica is made.
    await waitFor(
      'node2 and node3 streaming',
      async () => sameList(await streamingStandbys(first!.db), ['node2', 'node3']),
      180_000,
      () => others.map((m) => `--- ${m.name}\n${ha.logTail(m.daemon!)}`).join('\n'),
    )
    await createData(first!.db)
  })

  after(async () => {
    await ha?.cleanup()
  })

  function startPatroni(m: Member): void {
    m.daemon = ha.spawnDaemon(`patroni-${m.name}`, PATRONI, [m.config])
  }

  async function isRole(m: Member, role: 'primary' | 'replica'): Promise<boolean> {
    try {
      return (await fetch(`http://127.0.0.1:${m.restPort}/${role}`, { signal: AbortSignal.timeout(2000) })).status === 200
    } catch {
      return false
    }
  }

  async function leader(): Promise<Member> {
    let found: Member | undefined
    await waitFor(
      'a Patroni leader',
      async () => {
        for (const m of members)
          if ((await isRole(m, 'primary')) && !(await m.db.inRecovery())) {
            found = m
            return true
          }
        return false
      },
      90_000,
      () => members.map((m) => `--- ${m.name}\n${ha.logTail(m.daemon!, 30)}`).join('\n'),
    )
    return found!
  }

  for (const [round, impl] of IMPLS.entries()) {
    test(`with ${impl === 'walrewind' ? 'walrewind as pg_rewind' : 'the real pg_rewind 15'}: crash of the leader, failover, rejoin with --restore-target-wal`, async () => {
      ha.useImpl(impl)
      const old = await leader()
      const others = members.filter((m) => m !== old)
      await waitFor(
        'every replica streaming',
        async () =>
          sameList(
            await streamingStandbys(old.db),
            others.map((m) => m.name),
          ),
        120_000,
      )
      const before = ha.rewindsOf(old.db.dataDir).length
      const frozen = await freezeWalSenders(old.db)
      await writeUnreceived(old.db, round + 1)
      await ha.crash(old.daemon!, old.db, frozen)

      let next: Member | undefined
      await waitFor(
        'the failover',
        async () => {
          for (const m of others)
            if (await isRole(m, 'primary')) {
              next = m
              return true
            }
          return false
        },
        90_000,
        () => others.map((m) => `--- ${m.name}\n${ha.logTail(m.daemon!, 40)}`).join('\n'),
      )
      await waitFor(`${next!.name} out of recovery`, async () => !(await next!.db.inRecovery()), 60_000)
      await next!.db.query(
        `insert into ha_data (id, who, payload) select g, 'after failover', 'x' from generate_series(${(round + 1) * 10_000_000 + 500000}, ${(round + 1) * 10_000_000 + 500999}) g`,
      )

      startPatroni(old)
      await assertFollowsWithSameData(old.db, next!.db, old.name, round + 1, () => `--- ${old.name}\n${ha.logTail(old.daemon!)}`)
      const inv = assertRewoundBy(ha, impl, old.db.dataDir, before, [/^--restore-target-wal$/, /^--source-server$/])
      assert.ok(inv.args.includes('-D'))
      // The rejoined node has its own settings back (Patroni rewrites them), not the new leader's.
      assert.match(fs.readFileSync(path.join(old.db.dataDir, 'postgresql.conf'), 'utf8'), new RegExp(`port = '?${old.db.port}`))
    })
  }
})
