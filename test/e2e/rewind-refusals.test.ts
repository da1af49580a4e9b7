// Every refusal leaves the target byte for byte as it was: different systems, neither checksums
// nor wal_log_hints, a running target, a corrupt pg_control, missing WAL, a source of another major.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { Kit, majorsUnderTest, type Major, type Node } from '../kit/index.js'
import { forkedPair, shell, snapshotDirectory, sql } from './rewind-harness.js'

async function refusedUntouched(kit: Kit, target: Node, args: string[], expected: RegExp, exitCode: number): Promise<void> {
  const before = await snapshotDirectory(kit, target.dataDir)
  const run = await kit.runWalrewind([`--target-pgdata=${target.dataDir}`, `--postgres-bindir=${target.binDir}`, ...args])
  assert.equal(run.code, exitCode, `expected exit ${exitCode}, got ${run.code}:\n${run.stderr}`)
  assert.match(run.stderr, expected)
  assert.match(run.stderr, /the target data directory was not modified/)
  assert.equal(await snapshotDirectory(kit, target.dataDir), before, 'a refused run modified the target')
}

async function refusalsScenario(major: Major): Promise<void> {
  const kit = await Kit.create(`rewind-refusals-${major}`)
  try {
    const { primary, standby } = await forkedPair(kit, major, {
      afterPromotion: async (p, s) => {
        await sql(p, 'CREATE TABLE a (x int); INSERT INTO a VALUES (1)')
        await sql(s, 'CREATE TABLE b (x int); INSERT INTO b VALUES (1)')
        // On one machine the target would have to share this directory with the source.
        await sql(s, `CREATE TABLESPACE ts_source LOCATION '${await kit.makeDir('ts_source')}'`)
        await sql(s, 'CREATE TABLE in_ts (x int) TABLESPACE ts_source; INSERT INTO in_ts VALUES (1)')
      },
    })
    const other = await kit.initNode('other', major, { walLogHints: true })
    const source = [`--source-pgdata=${standby.dataDir}`]

    // A running target, even with --no-ensure-shutdown.
    await standby.stop()
    await refusedUntouched(kit, primary, [...source, '--no-ensure-shutdown'], /target server must be shut down cleanly/, 3)
    await refusedUntouched(kit, primary, source, /target server must be shut down cleanly/, 3)
    await primary.stop()

    // Another cluster as the source.
    await refusedUntouched(kit, primary, [`--source-pgdata=${other.dataDir}`], /source and target clusters are from different systems/, 3)

    // A corrupt control file on the source side, then on the target side.
    const copy = await kit.makeDir('corrupt-source')
    await shell(
      kit,
      `cp -a "${standby.dataDir}/." "${copy}/" && printf 'X' | dd of="${copy}/global/pg_control" bs=1 seek=40 conv=notrunc 2>/dev/null`,
    )
    await refusedUntouched(kit, primary, [`--source-pgdata=${copy}`], /unexpected control file CRC/, 3)

    // WAL the target needs is gone.
    const walDir = path.join(primary.dataDir, 'pg_wal')
    const segments = (await fs.readdir(walDir)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()
    const hidden = await kit.makeDir('hidden-wal')
    await shell(kit, `mv "${walDir}/${segments[segments.length - 1]}" "${hidden}/"`)
    await refusedUntouched(kit, primary, source, /could not (open|read|find)[^\n]*000000/, 4)
    await shell(kit, `mv "${hidden}/${segments[segments.length - 1]}" "${walDir}/"`)

    // A tablespace the source created lives in a directory the target would share with it.
    await refusedUntouched(
      kit,
      primary,
      source,
      /tablespace location ".*ts_source" for "pg_tblspc\/\d+" already exists and is not empty/,
      3,
    )

    // Neither checksums nor wal_log_hints on the target (the source: a copy of it, same system).
    const noHints = await kit.initNode('nohints', major, { walLogHints: false, checksums: false })
    await noHints.start()
    await noHints.stop()
    const twin = await kit.makeDir('nohints-twin')
    await shell(kit, `cp -a "${noHints.dataDir}/." "${twin}/"`)
    // pg_rewind's refusal, with --compare=wal (walrewind's default compares blocks instead).
    await refusedUntouched(
      kit,
      noHints,
      [`--source-pgdata=${twin}`, '--compare=wal'],
      /target server needs to use either data checksums or "wal_log_hints = on"/,
      3,
    )
  } finally {
    await kit.cleanup()
  }
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: refusals`, () => {
    test('refused runs leave the target untouched', () => refusalsScenario(major))
  })
}
