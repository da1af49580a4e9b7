// repmgr 5 (Debian's postgresql-15-repmgr): a primary and a standby registered with repmgr,
// walrewind installed as pg_rewind in pg_bindir. In each round the primary keeps writing WAL its
// standby does not receive (its walsender is stopped), then crashes (SIGKILL: it is left shut
// down uncleanly); the standby is promoted (repmgr standby promote); the old primary is rejoined
// with `repmgr node rejoin --force-rewind`, which on PostgreSQL 13+ hands the unclean data
// directory to pg_rewind, whose crash recovery (postgres --single, found next to pg_rewind) runs
// first. The old primary then streams from the new one and holds its data. One round with the real
// pg_rewind 15, one with walrewind.

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
  waitCrashed,
  waitFor,
  writeUnreceived,
} from './ha-harness.js'

const REPMGR = '/usr/lib/postgresql/15/bin/repmgr'

interface Node {
  name: string
  id: number
  db: Db
  config: string
  logFile: string
  conninfo: string
}

describe('repmgr 5: promote, then the crashed old primary rejoins with node rejoin --force-rewind', () => {
  let ha: Ha
  const nodes: Node[] = []
  let archiveDir: string

  before(async () => {
    requirePrograms([REPMGR])
    ha = await Ha.create('ha-repmgr')
    const sockets = ha.dir('sockets')
    archiveDir = ha.dir('config-archive')
    for (const [i, name] of ['node1', 'node2'].entries()) {
      const port = await ha.port()
      const dataDir = path.join(ha.dir(name), 'data')
      ha.watchDataDir(dataDir)
      const logFile = path.join(ha.kit.baseDir, `${name}-postgres.log`)
      const conninfo = `host=127.0.0.1 port=${port} user=repmgr dbname=repmgr connect_timeout=2`
      const config = path.join(ha.kit.baseDir, `${name}-repmgr.conf`)
      ha.writeFile(
        config,
        [
          `node_id=${i + 1}`,
          `node_name='${name}'`,
          `conninfo='${conninfo}'`,
          `data_directory='${dataDir}'`,
          `pg_bindir='${ha.bin}'`,
          'use_replication_slots=false',
          'log_level=INFO',
          // pg_ctl with a log file: the server must not keep repmgr's output open.
          `service_start_command='${ha.bin}/pg_ctl -w -t 90 -D ${dataDir} -l ${logFile} start'`,
          `service_stop_command='${ha.bin}/pg_ctl -w -t 90 -D ${dataDir} -m fast stop'`,
          `service_restart_command='${ha.bin}/pg_ctl -w -t 90 -D ${dataDir} -l ${logFile} restart'`,
          `service_promote_command='${ha.bin}/pg_ctl -w -t 90 -D ${dataDir} promote'`,
          '',
        ].join('\n'),
      )
      nodes.push({ name, id: i + 1, db: new Db(name, port, dataDir), config, logFile, conninfo })
    }
    const [primary, standby] = nodes as [Node, Node]

    await ha.must(path.join(ha.bin, 'initdb'), [
      '-D',
      primary.db.dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ])
    fs.appendFileSync(
      path.join(primary.db.dataDir, 'postgresql.conf'),
      [
        '',
        '# walrewind HA test',
        `port = ${primary.db.port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${sockets}'`,
        'wal_log_hints = on',
        'fsync = off',
        "wal_keep_size = '320MB'",
        "shared_buffers = '16MB'",
        'max_wal_senders = 10',
        'hot_standby = on',
        "shared_preload_libraries = 'repmgr'",
        "lc_messages = 'C'",
        "wal_retrieve_retry_interval = '500ms'",
        '',
      ].join('\n'),
    )
    fs.writeFileSync(
      path.join(primary.db.dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        'host all all 127.0.0.1/32 trust',
        'local replication all trust',
        'host replication all 127.0.0.1/32 trust',
        '',
      ].join('\n'),
    )
    await startServer(primary)
    await primary.db.query('create user repmgr superuser replication')
    await primary.db.query('create database repmgr owner repmgr')
    await ha.must(REPMGR, ['-f', primary.config, 'primary', 'register'])

    await ha.must(
      REPMGR,
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(primary.db.port),
        '-U',
        'repmgr',
        '-d',
        'repmgr',
        '-f',
        standby.config,
        'standby',
        'clone',
        '--fast-checkpoint',
      ],
      { timeoutMs: 180_000 },
    )
    fs.appendFileSync(path.join(standby.db.dataDir, 'postgresql.conf'), `\nport = ${standby.db.port}\n`)
    await startServer(standby)
    await ha.must(REPMGR, ['-f', standby.config, 'standby', 'register'])
    await waitFor('node2 streaming from node1', async () => (await streamingStandbys(primary.db)).length === 1, 120_000)
    await createData(primary.db)
  })

  after(async () => {
    await ha?.cleanup()
  })

  async function startServer(node: Node): Promise<void> {
    await ha.must(path.join(ha.bin, 'pg_ctl'), ['-w', '-t', '90', '-D', node.db.dataDir, '-l', node.logFile, 'start'], {
      timeoutMs: 120_000,
    })
  }

  for (const [round, impl] of IMPLS.entries()) {
    test(`with ${impl === 'walrewind' ? 'walrewind as pg_rewind' : 'the real pg_rewind 15'}: crash, promote, node rejoin --force-rewind of the unclean old primary`, async () => {
      ha.useImpl(impl)
      let old: Node | undefined
      for (const n of nodes) if ((await n.db.isUp()) && !(await n.db.inRecovery())) old = n
      assert.ok(old !== undefined, 'no primary')
      const next = nodes.find((n) => n !== old)!
      await waitFor(`${next.name} streaming`, async () => (await streamingStandbys(old!.db)).length === 1, 120_000)
      const before = ha.rewindsOf(old.db.dataDir).length
      const frozen = await freezeWalSenders(old.db)
      await writeUnreceived(old.db, round + 1)
      // The crash: the postmaster and the stopped walsender, by pid.
      const killed = [old.db.postmasterPid()!, ...frozen]
      for (const pid of killed) process.kill(pid, 'SIGKILL')
      await waitCrashed(old.db, killed)

      await ha.must(REPMGR, ['-f', next.config, 'standby', 'promote'], { timeoutMs: 120_000 })
      await waitFor(`${next.name} out of recovery`, async () => !(await next.db.inRecovery()), 60_000)
      // pg_rewind 15 reads the source's timeline from its last checkpoint: a primary promoted a moment
      // ago still shows the old one there, and pg_rewind 15 would say "no rewind required" (its
      // documentation asks for this CHECKPOINT; walrewind, like pg_rewind 16, does not need it).
      await next.db.query('checkpoint')
      await next.db.query(
        `insert into ha_data (id, who, payload) select g, 'after failover', 'x' from generate_series(${(round + 1) * 10_000_000 + 500000}, ${(round + 1) * 10_000_000 + 500999}) g`,
      )

      const rejoin = await ha.run(
        REPMGR,
        [
          '-f',
          old.config,
          'node',
          'rejoin',
          '-d',
          next.conninfo,
          '--force-rewind',
          '--config-files=postgresql.conf',
          `--config-archive-dir=${archiveDir}`,
          '--verbose',
        ],
        { timeoutMs: 240_000 },
      )
      assert.equal(
        rejoin.code,
        0,
        `repmgr node rejoin exited ${rejoin.code}\n${rejoin.stdout}\n${rejoin.stderr}\n--- ${old.logFile}\n${ha.logTail(old.logFile)}`,
      )
      assert.match(rejoin.stderr + rejoin.stdout, /database is not shut down cleanly/)
      const inv = assertRewoundBy(ha, impl, old.db.dataDir, before, [/^--source-server=/])
      if (impl === 'walrewind') {
        // walrewind ran the crash recovery itself, with the postgres beside it (the PATH has none).
        assert.match(inv.stderr, /executing ".*\/rewind-impl\/postgres" for target server to complete crash recovery/)
      }
      await assertFollowsWithSameData(
        old.db,
        next.db,
        old.name,
        round + 1,
        () => `${rejoin.stdout}\n${rejoin.stderr}\n--- ${old.logFile}\n${ha.logTail(old.logFile)}`,
      )
    })
  }
})
