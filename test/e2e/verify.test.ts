// `walrewind verify` (issue 14) on real clusters of every major: a primary and its streaming
// standby, caught up and both stopped, verify as equal (the standby's pages differ from the
// primary's only where a server writes without WAL: hint bits, command ids...); one block of a
// table file planted on the standby is found, exactly, from the stopped primary's directory and
// from the running primary through a role with only the four rewind grants (digests on the server).

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import type { VerifyResult } from '../../src/compare/verify.js'
import { decodeControlFile } from '../../src/pg/control.js'
import { formatLsn, type Kit, majorsUnderTest, type Node } from '../kit/index.js'
import { REWIND_USER, setupPrimary, shell, sql } from './rewind-harness.js'
import { withKit } from './scenarios.js'

const BLCKSZ = 8192

interface VerifyRun {
  code: number
  result: VerifyResult & { ok: boolean }
  stderr: string
}

async function runVerify(kit: Kit, target: Node, source: string[]): Promise<VerifyRun> {
  const run = await kit.runWalrewind(['verify', `--target-pgdata=${target.dataDir}`, ...source, '--json'])
  let result: VerifyResult & { ok: boolean }
  try {
    result = JSON.parse(run.stdout)
  } catch {
    assert.fail(`walrewind verify printed no JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`)
  }
  return { code: run.code, result, stderr: run.stderr }
}

function assertEqual(run: VerifyRun, what: string): void {
  assert.deepEqual(run.result.differences, [], `${what}: differences found\n${JSON.stringify(run.result, null, 2)}\n${run.stderr}`)
  assert.equal(run.result.equal, true)
  assert.equal(run.code, 0, run.stderr)
}

/** Overwrites 8 bytes of the first live tuple's data in `block` of `file`, as the kit's OS user. */
async function plantDifference(kit: Kit, file: string, block: number): Promise<void> {
  const page = Buffer.alloc(BLCKSZ)
  const handle = await fs.open(file, 'r')
  await handle.read(page, 0, BLCKSZ, block * BLCKSZ)
  await handle.close()
  const lower = page.readUInt16LE(12)
  let offset = -1
  for (let at = 24; at < lower; at += 4) {
    const lp = page.readUInt32LE(at)
    if (((lp >>> 15) & 3) === 1) {
      offset = (lp & 0x7fff) + page[(lp & 0x7fff) + 22]! // the tuple's data, past its header (t_hoff)
      break
    }
  }
  assert.ok(offset > 0, `no live tuple in block ${block} of ${file}`)
  await shell(kit, `printf 'WALREWND' | dd of="${file}" bs=1 seek=${block * BLCKSZ + offset} conv=notrunc status=none`)
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: walrewind verify`, () => {
    test('a caught-up stopped standby verifies equal to its primary; one planted block is found, locally and remotely', () =>
      withKit(`verify-${major}`, async (kit) => {
        const primary = await setupPrimary(kit, major)
        await sql(
          primary,
          "CREATE TABLE early (id int, note text); INSERT INTO early SELECT g, 'before the copy' FROM generate_series(1, 500) g",
        )
        await sql(primary, 'CHECKPOINT')
        const standby = await kit.createStandby(primary, 'standby')
        // Replayed on the standby: DDL (catalog tuples with command ids), inserts, updates,
        // deletes, a vacuum, an index, then reads that set hint bits on the primary only.
        await sql(primary, 'CREATE TABLE t (id int PRIMARY KEY, payload text)')
        await sql(primary, 'INSERT INTO t SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 3000) g')
        await sql(primary, "UPDATE t SET payload = 'updated' WHERE id % 10 = 0")
        await sql(primary, 'DELETE FROM t WHERE id % 7 = 0')
        await sql(
          primary,
          "BEGIN; INSERT INTO early VALUES (1000, 'in a transaction'); UPDATE early SET note = 'changed' WHERE id < 50; COMMIT",
        )
        await sql(primary, 'VACUUM t')
        await sql(primary, 'SELECT count(*) FROM t; SELECT count(*) FROM early')
        // No dead catalog tuples left: the queries verify runs on the primary later would prune
        // their pages (a write the stopped standby cannot replay).
        await sql(primary, 'VACUUM')
        const file = String((await primary.query<{ f: string }>("SELECT pg_relation_filepath('t') AS f"))[0]!.f)
        await standby.waitForReplay(await primary.currentLsn())
        await primary.stop('fast')
        // The standby replays the primary's shutdown checkpoint before it is stopped too.
        const control = decodeControlFile(await fs.readFile(path.join(primary.dataDir, 'global', 'pg_control')))
        await standby.waitForReplay(formatLsn(control.checkPoint + 1n))
        await standby.stop('fast')

        const local = await runVerify(kit, standby, [`--source-pgdata=${primary.dataDir}`])
        assertEqual(local, 'stopped standby against its stopped primary')
        assert.equal(local.result.stats.method, 'bytes')
        assert.ok(local.result.stats.files > 50 && local.result.stats.comparedBytes > 1_000_000, JSON.stringify(local.result.stats))

        await primary.start()
        const conninfo = `--source-server=${primary.connectionString({ user: REWIND_USER })}`
        const remote = await runVerify(kit, standby, [conninfo])
        // Started after a clean shutdown and left idle, the primary writes nothing its files hold.
        assertEqual(remote, 'stopped standby against its running primary')
        assert.equal(remote.result.stats.method, 'digests')
        assert.equal(remote.result.source.running, true)
        assert.ok(
          remote.result.notes.some((n) => /the source is running/.test(n)),
          JSON.stringify(remote.result.notes),
        )
        // Only the blocks whose digests differ are fetched: those the masked look then finds equal.
        const { maskedBlocks, zeroTailBlocks } = remote.result.tolerated
        assert.ok(remote.result.stats.fetchedBlocks <= maskedBlocks + zeroTailBlocks, JSON.stringify(remote.result, null, 2))
        assert.ok(remote.result.stats.fetchedBlocks * BLCKSZ < remote.result.stats.comparedBytes / 10, JSON.stringify(remote.result.stats))
        if (process.env['WALREWIND_VERIFY_DEBUG'] === '1')
          console.log(JSON.stringify({ local: local.result, remote: remote.result }, null, 2))

        const block = 1
        await plantDifference(kit, path.join(standby.dataDir, file), block)
        const expected = [{ path: file, kind: 'blocks', blocks: [[block, 1]] }]
        const strip = (r: VerifyResult) => r.differences.map((d) => ({ path: d.path, kind: d.kind, blocks: d.blocks }))

        const remoteFound = await runVerify(kit, standby, [conninfo])
        assert.deepEqual(strip(remoteFound.result), expected, JSON.stringify(remoteFound.result, null, 2))
        assert.equal(remoteFound.code, 1)

        await primary.stop('fast')
        const localFound = await runVerify(kit, standby, [`--source-pgdata=${primary.dataDir}`])
        assert.deepEqual(strip(localFound.result), expected, JSON.stringify(localFound.result, null, 2))
        assert.equal(localFound.code, 1)
        const text = await kit.runWalrewind(['verify', `--target-pgdata=${standby.dataDir}`, `--source-pgdata=${primary.dataDir}`])
        assert.equal(text.code, 1)
        assert.match(text.stdout, new RegExp(`^${file}: block ${block} differs$`, 'm'), text.stdout)
      }))
  })
}
