// What an HA manager relies on when it runs walrewind as pg_rewind, on the kit's clusters: the
// program linked into a bin directory beside postgres and run with a PATH that has no postgres
// (crash recovery of a target killed mid-run finds the postgres beside it); --require-source-wal
// refusing before any write where the default only warns; the target's own configuration files
// kept as walrewind and copied as pg_rewind; channel_binding=require over TLS (SCRAM-SHA-256-PLUS),
// and libpq's refusal when the server authenticates without channel binding. The oldest and the
// newest major under test.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import { majorsUnderTest, PROJECT_ROOT, type Kit, type Major } from '../kit/index.js'
import { giveToUser } from '../kit/os-user.js'
import { forkedPair, REWIND_USER, shell, snapshotDirectory, sql, startAsStandbyAndCompare } from './rewind-harness.js'
import { withKit } from './scenarios.js'

/** node's directory, /usr/bin and /bin: no postgres (checked). */
function pathWithoutPostgres(): string {
  const dirs = [...new Set([path.dirname(process.execPath), '/usr/bin', '/bin'])]
  for (const dir of dirs) assert.ok(!fs.existsSync(path.join(dir, 'postgres')), `${dir} has a postgres`)
  return dirs.join(':')
}

/** A bin directory as a distribution lays it out: the major's programs, pg_rewind and walrewind linked to walrewind. */
function installBeside(kit: Kit, binDir: string): string {
  const dir = path.join(kit.baseDir, 'bin')
  fs.mkdirSync(dir, { mode: 0o755 })
  for (const name of fs.readdirSync(binDir)) fs.symlinkSync(path.join(binDir, name), path.join(dir, name))
  for (const name of ['pg_rewind', 'walrewind']) {
    fs.rmSync(path.join(dir, name), { force: true })
    fs.symlinkSync(path.join(PROJECT_ROOT, 'bin', 'walrewind.js'), path.join(dir, name))
  }
  return dir
}

async function dropInScenario(major: Major): Promise<void> {
  await withKit(`ha-dropin-${major}`, async (kit) => {
    let forkSegment = ''
    const { primary, standby } = await forkedPair(kit, major, {
      beforeStandby: (p) => sql(p, 'CREATE TABLE t (a int); INSERT INTO t VALUES (0)').then(() => {}),
      afterPromotion: async (p, s) => {
        forkSegment = String((await s.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f)
        await sql(p, 'INSERT INTO t VALUES (1)')
        await sql(s, 'INSERT INTO t VALUES (2)')
        await sql(s, 'SELECT pg_switch_wal()')
        await sql(s, 'INSERT INTO t VALUES (3)')
        await sql(s, 'CHECKPOINT')
        // The source's checkpoint removed the WAL from the fork on; an archive keeps it.
        await shell(kit, `mv "${path.join(s.dataDir, 'pg_wal', forkSegment)}" "${s.archiveDir}/"`)
      },
    })
    await primary.stop('fast')
    await standby.stop('fast')
    const bin = installBeside(kit, primary.binDir)
    const env = { PATH: pathWithoutPostgres() }
    const args = [`--target-pgdata=${primary.dataDir}`, `--source-pgdata=${standby.dataDir}`]
    const ownConf = fs.readFileSync(path.join(primary.dataDir, 'postgresql.conf'), 'utf8')

    // --require-source-wal: refused before any write, exit 3 as walrewind, 1 as pg_rewind.
    const before = await snapshotDirectory(kit, primary.dataDir)
    const refused = await kit.run(path.join(bin, 'walrewind'), [...args, '--require-source-wal'], { env })
    assert.equal(refused.code, 3, refused.stderr)
    assert.match(
      refused.stderr,
      new RegExp(`^walrewind: error: the source no longer has WAL segment ${forkSegment}, which the rewound server must replay`, 'm'),
    )
    assert.match(refused.stderr, /the target data directory was not modified/)
    const refusedAsPgRewind = await kit.run(path.join(bin, 'pg_rewind'), [...args, '--require-source-wal'], { env })
    assert.equal(refusedAsPgRewind.code, 1, refusedAsPgRewind.stderr)
    assert.match(refusedAsPgRewind.stderr, /^pg_rewind: error: the source no longer has WAL segment/m)
    assert.equal(await snapshotDirectory(kit, primary.dataDir), before, 'a refused run modified the target')

    // The configuration files: pg_rewind's plan copies the source's, walrewind's keeps the target's.
    const planned = async (program: string, extra: string[] = []) => {
      const r = await kit.run(path.join(bin, program), [...args, '--dry-run', '--json', ...extra], { env })
      assert.equal(r.code, 0, r.stderr)
      const entries = (JSON.parse(r.stdout) as { plan: { entries: Array<{ path: string; action: string }> } }).plan.entries
      return entries
        .filter((e) => ['postgresql.conf', 'pg_hba.conf', 'postgresql.auto.conf'].includes(e.path))
        .map((e) => `${e.action} ${e.path}`)
    }
    assert.deepEqual(await planned('pg_rewind'), ['copy pg_hba.conf', 'copy postgresql.auto.conf', 'copy postgresql.conf'])
    assert.deepEqual(await planned('walrewind', ['--copy-config-files']), [
      'copy pg_hba.conf',
      'copy postgresql.auto.conf',
      'copy postgresql.conf',
    ])
    assert.deepEqual(await planned('walrewind'), [])

    // A target killed while it ran: the crash recovery runs the postgres beside the program.
    await primary.start()
    await sql(primary, 'INSERT INTO t VALUES (4)')
    await primary.stop('immediate')
    const run = await kit.run(path.join(bin, 'walrewind'), [...args, '--debug'], { env })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, new RegExp(`executing "${bin}/postgres" for target server to complete crash recovery`))
    assert.match(run.stderr, /found via the directory of the program\)/)
    assert.match(run.stderr, /warning: the source no longer has WAL segment/)
    assert.equal(
      fs.readFileSync(path.join(primary.dataDir, 'postgresql.conf'), 'utf8'),
      ownConf,
      "the target's own postgresql.conf was replaced",
    )
    await primary.setConf({ restore_command: `cp "${standby.archiveDir}/%f" "%p"` })
    await startAsStandbyAndCompare(primary, standby, 'local')
    assert.deepEqual(
      (await primary.query<{ a: number }>('SELECT a FROM t ORDER BY a')).map((r) => r.a),
      [0, 2, 3],
    )
  })
}

/** A CA-less self-signed server certificate, owned by the servers' OS user. */
function selfSigned(kit: Kit): { cert: string; key: string } {
  const dir = path.join(kit.baseDir, 'tls')
  fs.mkdirSync(dir, { mode: 0o700 })
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
    ],
    { cwd: dir, encoding: 'utf8' },
  )
  assert.equal(r.status, 0, r.stderr)
  for (const f of ['', 'server.crt', 'server.key']) {
    if (f !== '') fs.chmodSync(path.join(dir, f), 0o600)
    giveToUser(path.join(dir, f), kit.osUser)
  }
  return { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') }
}

async function channelBindingScenario(major: Major): Promise<void> {
  await withKit(`ha-channel-binding-${major}`, async (kit) => {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, 'CREATE TABLE on_target (a int)')
        await sql(s, 'CREATE TABLE on_source (a int)')
      },
    })
    const { cert, key } = selfSigned(kit)
    await standby.stop()
    fs.writeFileSync(
      path.join(standby.dataDir, 'pg_hba.conf'),
      [
        `hostssl all ${REWIND_USER} 127.0.0.1/32 scram-sha-256`,
        'local all all trust',
        'host all postgres 127.0.0.1/32 trust',
        'host replication all 127.0.0.1/32 trust',
        '',
      ].join('\n'),
    )
    await standby.setConf({ ssl: true, ssl_cert_file: cert, ssl_key_file: key })
    await standby.start()
    await sql(standby, `ALTER ROLE ${REWIND_USER} PASSWORD 'cb-secret'`)
    await primary.stop()
    const rewind = (conninfo: string) =>
      kit.runWalrewind([`--target-pgdata=${primary.dataDir}`, `--source-server=${conninfo}`, '--dry-run'])

    const bound = await rewind(
      `host=127.0.0.1 port=${standby.port} user=${REWIND_USER} password=cb-secret dbname=postgres sslmode=require channel_binding=require`,
    )
    assert.equal(bound.code, 0, bound.stderr)
    // The superuser is let in by trust: libpq (and walrewind) refuse that under channel_binding=require.
    const unbound = await rewind(
      `host=127.0.0.1 port=${standby.port} user=postgres dbname=postgres sslmode=require channel_binding=require`,
    )
    assert.equal(unbound.code, 5, unbound.stderr)
    assert.match(unbound.stderr, /failed: channel binding required, but server authenticated client without channel binding/)
    const plain = await rewind(
      `host=127.0.0.1 port=${standby.port} user=${REWIND_USER} password=cb-secret dbname=postgres sslmode=disable channel_binding=require`,
    )
    assert.equal(plain.code, 5, plain.stderr)
    assert.match(plain.stderr, /no pg_hba\.conf entry|channel binding is required, but SSL not in use/)
  })
}

const majors = majorsUnderTest()
for (const major of [...new Set([majors[0]!, majors[majors.length - 1]!])]) {
  describe(`PostgreSQL ${major}: walrewind as HA managers run it`, () => {
    test('linked beside postgres, PATH without postgres: --require-source-wal, configuration files, crash recovery', () =>
      dropInScenario(major))
    test('channel_binding=require over TLS', () => channelBindingScenario(major))
  })
}
