// Rewind to the source's present (issue 13): blocks changed on either side are copied and replay
// starts at the source's checkpoint. The case that proves it is the one where pg_rewind's algorithm
// silently corrupts: on the new primary, a database created by copying the files of a template
// (`live`) that both sides changed after the fork, `live` changed again on the source after the
// copy. Replayed from the last common checkpoint, the copy is made from the target's `live` as
// the rewind left it (its blocks already at the source's present), so the new database holds rows
// it never had on the source.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { majorsUnderTest, type Kit, type Major, type Node } from '../kit/index.js'
import { assertRewindOk, column, forkedPair, runRewind, sql, startAsStandbyAndCompare, type Mode } from './rewind-harness.js'
import { withKit } from './scenarios.js'
import { parseLsn } from '../../src/pg/lsn.js'
import { runPaused } from './pause-harness.js'
import { REWIND_USER } from './rewind-harness.js'

const ROWS = 3000
const TARGET_ROWS = 822

function createFromTemplate(major: Major): string {
  return major >= 15 ? 'CREATE DATABASE copied TEMPLATE live STRATEGY file_copy' : 'CREATE DATABASE copied TEMPLATE live'
}

/** The diverged pair of the scenario, both stopped and saved as 'diverged'. */
async function divergedPair(kit: Kit, major: Major): Promise<{ primary: Node; standby: Node }> {
  const pair = await forkedPair(kit, major, {
    beforeStandby: async (p) => {
      await sql(p, 'CREATE DATABASE live')
      await sql(p, `CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, 'common' FROM generate_series(1, ${ROWS}) g`, 'live')
    },
    afterPromotion: async (p, s) => {
      // Both sides append to t: the same blocks at its end change on both.
      await sql(p, `INSERT INTO t SELECT g, 'old primary' FROM generate_series(${ROWS + 1}, ${ROWS + TARGET_ROWS}) g`, 'live')
      await sql(s, createFromTemplate(major))
      await sql(s, `INSERT INTO t SELECT g, 'new primary, after the copy' FROM generate_series(${ROWS + 1}, ${ROWS + 500}) g`, 'live')
      await sql(s, "UPDATE t SET v = 'updated on the new primary' WHERE id % 7 = 0", 'live')
    },
  })
  await pair.primary.stop('fast')
  await pair.standby.stop('fast')
  await kit.saveState('diverged', [pair.primary, pair.standby])
  return pair
}

async function rewindAndCompare(kit: Kit, pair: { primary: Node; standby: Node }, mode: Mode, extra: string[] = []): Promise<string> {
  await kit.restoreState('diverged')
  if (mode === 'remote') await pair.standby.start()
  const run = await runRewind(kit, pair.primary, pair.standby, mode, ['--json', '--replay-from=source-checkpoint', ...extra])
  assertRewindOk(run)
  await startAsStandbyAndCompare(pair.primary, pair.standby, mode)
  assert.deepEqual(
    await column(pair.primary, 'SELECT count(*) FROM t', 'copied'),
    [String(ROWS)],
    'the copied database holds what the template held when it was copied',
  )
  await pair.primary.stop('fast')
  await pair.standby.stop('fast')
  return run.stdout
}

describe("rewind to the source's present: a database copied from a template changed on both sides", { concurrency: false }, () => {
  for (const major of majorsUnderTest()) {
    test(`PostgreSQL ${major}: local and remote source, verified equal to the source`, async () => {
      await withKit(`rewind-present-${major}`, async (kit) => {
        const pair = await divergedPair(kit, major)
        for (const mode of ['local', 'remote'] as const) {
          const out = JSON.parse(await rewindAndCompare(kit, pair, mode)) as {
            replay: { from: string; checkpoint: { redo: string } }
            divergence: { lsn: string }
          }
          assert.equal(out.replay.from, 'source-checkpoint', `${mode}: ${JSON.stringify(out.replay)}`)
          assert.ok(
            parseLsn(out.replay.checkpoint.redo) > parseLsn(out.divergence.lsn),
            `replay starts at the source's checkpoint after the fork, not at the last common one before it: ${JSON.stringify({ replay: out.replay, divergence: out.divergence })}`,
          )
        }
      })
    })
  }

  test('a running source that copies a database during the rewind: replay moves to its later checkpoint, after copying again', async () => {
    const major = majorsUnderTest().at(-1)!
    await withKit(`rewind-present-during-${major}`, async (kit) => {
      const pair = await divergedPair(kit, major)
      await kit.restoreState('diverged')
      await pair.standby.start()
      const faultDir = await kit.makeDir('faults')
      const args = [
        '--debug',
        `--target-pgdata=${pair.primary.dataDir}`,
        `--source-server=${pair.standby.connectionString({ user: REWIND_USER })}`,
        '--write-recovery-conf',
        '--no-sync',
        `--postgres-bindir=${pair.primary.binDir}`,
        '--replay-from=source-checkpoint',
      ]
      // Paused after the plan, before the copy: the database is copied from `live` as it is then,
      // and `live` changes again before its blocks are copied.
      const run = await runPaused(kit, args, 'control-removed', 1, faultDir, async () => {
        await sql(pair.standby, createFromTemplate(major).replace('copied', 'copied_during'))
        await sql(
          pair.standby,
          `INSERT INTO t SELECT g, 'after the second copy' FROM generate_series(${ROWS + 501}, ${ROWS + 900}) g`,
          'live',
        )
      })
      assertRewindOk({ ...run, args })
      assert.match(run.stderr, /created a database by copying files at .* during the rewind: copying again/)
      await startAsStandbyAndCompare(pair.primary, pair.standby, 'remote')
      assert.deepEqual(await column(pair.primary, 'SELECT count(*) FROM t', 'copied_during'), [String(ROWS + 500)])
    })
  })

  test("pg_rewind's algorithm (--replay-from=last-common-checkpoint) is the one this scenario breaks", async () => {
    const major = majorsUnderTest().at(-1)!
    await withKit(`rewind-present-old-${major}`, async (kit) => {
      const pair = await divergedPair(kit, major)
      await kit.restoreState('diverged')
      const run = await runRewind(kit, pair.primary, pair.standby, 'local', ['--replay-from=last-common-checkpoint'])
      assertRewindOk(run)
      await pair.standby.start()
      await pair.primary.followAs(pair.standby)
      await pair.primary.start()
      await pair.primary.waitForReplay(await pair.standby.currentLsn())
      const copiedRows = await column(pair.primary, 'SELECT count(*) FROM t', 'copied')
      assert.deepEqual(await column(pair.standby, 'SELECT count(*) FROM t', 'copied'), [String(ROWS)])
      assert.notDeepEqual(copiedRows, [String(ROWS)], 'the old algorithm was expected to copy the template as the rewind left it')
    })
  })
})
