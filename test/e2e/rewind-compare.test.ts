// When the WAL cannot tell which blocks changed (issue 14): a target that ran without data checksums
// and wal_log_hints (hint-bit changes never reach its WAL), and one whose WAL from the fork on is
// gone. pg_rewind refuses both ("target server needs to use either data checksums or
// wal_log_hints = on", "could not find previous WAL record"); walrewind compares the blocks of
// every relation file with the source's (in place, or by digests a running source computes) and
// copies those that differ, then replays from the source's checkpoint.

import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, test } from 'node:test'
import { majorsUnderTest, type Kit, type Major, type Node } from '../kit/index.js'
import { assertRewindOk, forkedPair, runRewind, shell, sql, startAsStandbyAndCompare, type Mode } from './rewind-harness.js'
import { withKit } from './scenarios.js'

interface Diverged {
  primary: Node
  standby: Node
  targetRedoSegment: string
  state: string
}

/** Both sides change the same tables; saved as `state`, both stopped. */
async function diverged(kit: Kit, major: Major, hints: boolean, state: string): Promise<Diverged> {
  let targetRedoSegment = ''
  const { primary, standby } = await forkedPair(kit, major, {
    init: { walLogHints: hints, checksums: false },
    beforeStandby: async (p) => {
      await sql(p, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g`)
      await sql(p, `CREATE TABLE only_hints (id int, v text); INSERT INTO only_hints SELECT g, 'x' FROM generate_series(1, 5000) g`)
    },
    afterPromotion: async (p, s) => {
      await sql(p, "UPDATE t SET v = 'old primary' WHERE id % 11 = 0")
      await sql(p, 'DELETE FROM t WHERE id % 13 = 0')
      await sql(p, 'VACUUM t')
      // Hint bits set by reads alone: pages changed on the old primary that no WAL names.
      await sql(p, 'SELECT count(*) FROM only_hints')
      await sql(s, "UPDATE t SET v = 'new primary' WHERE id % 7 = 0")
      await sql(s, "INSERT INTO t SELECT g, 'new primary' FROM generate_series(20001, 21000) g")
      // The old primary ran on: segments switched, a checkpoint after them.
      for (let i = 0; i < 3; i++) {
        await sql(
          p,
          "INSERT INTO t SELECT g, 'old primary, later' FROM generate_series(30000 + 100 * $i, 30099 + 100 * $i) g".replaceAll(
            '$i',
            String(i),
          ),
        )
        await sql(p, 'SELECT pg_switch_wal()')
      }
      await sql(p, 'CHECKPOINT')
      targetRedoSegment = String((await p.query<{ f: string }>('SELECT pg_walfile_name(redo_lsn) AS f FROM pg_control_checkpoint()'))[0]!.f)
    },
  })
  await primary.stop('fast')
  await standby.stop('fast')
  await kit.saveState(state, [primary, standby])
  return { primary, standby, targetRedoSegment, state }
}

async function rewindByComparing(kit: Kit, pair: Diverged, mode: Mode, opts: { removeTargetWal?: boolean } = {}): Promise<void> {
  await kit.restoreState(pair.state)
  if (opts.removeTargetWal) {
    // Everything before the segment of the target's last checkpoint: the fork and what followed it.
    const walDir = path.join(pair.primary.dataDir, 'pg_wal')
    const removed = await shell(
      kit,
      `cd "${walDir}" && for f in $(ls | grep -E '^[0-9A-F]{24}$'); do ` +
        `if [ "$(echo $f | cut -c9-24)" \\< "$(echo ${pair.targetRedoSegment} | cut -c9-24)" ]; then rm "$f"; echo "$f"; fi; done`,
    )
    assert.ok(removed.trim().split('\n').length >= 2, `expected segments to remove before ${pair.targetRedoSegment}: ${removed}`)
  }
  if (mode === 'remote') await pair.standby.start()
  const run = await runRewind(kit, pair.primary, pair.standby, mode, ['--json', '--progress'], { crash: false })
  assertRewindOk(run)
  assert.match(run.stderr, /comparing the blocks of every relation file with the source: /)
  assert.match(run.stderr, opts.removeTargetWal ? /the target no longer has the WAL it needs/ : /without data checksums and wal_log_hints/)
  assert.match(run.stderr, /\d+\/\d+ MB compared \(100%\), \d+ MB to copy, \d+ MB\/s/)
  const out = JSON.parse(run.stdout) as {
    compare?: { method: string; differingBlocks: number }
    replay: { from: string }
    patchedBlocks?: number
  }
  assert.equal(out.replay.from, 'source-checkpoint')
  assert.equal(out.compare?.method, mode === 'remote' ? 'digests' : 'bytes')
  assert.ok((out.compare?.differingBlocks ?? 0) > 0, JSON.stringify(out.compare))
  // Patches are the default only across a network, not over the loopback.
  assert.equal(out.patchedBlocks, undefined)
  await startAsStandbyAndCompare(pair.primary, pair.standby, mode)
  await pair.primary.stop('fast')
  await pair.standby.stop('fast')
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: rewind by comparing blocks`, () => {
    test("no checksums nor wal_log_hints, local (in place) and running source (digests); then the target's WAL from the fork gone", async () => {
      await withKit(`rewind-compare-${major}`, async (kit) => {
        const pair = await diverged(kit, major, false, 'no-hints')
        // pg_rewind's behaviour on request, and a comparison cannot replay from the last common checkpoint.
        const refused = await runRewind(kit, pair.primary, pair.standby, 'local', ['--compare=wal'], { crash: false })
        assert.equal(refused.code, 3, refused.stderr)
        assert.match(refused.stderr, /target server needs to use either data checksums or "wal_log_hints = on"/)
        assert.match(refused.stderr, /the target data directory was not modified/)
        const conflicting = await runRewind(kit, pair.primary, pair.standby, 'local', ['--replay-from=last-common-checkpoint'], {
          crash: false,
        })
        assert.equal(conflicting.code, 2, conflicting.stderr)
        assert.match(conflicting.stderr, /comparing blocks .* needs replay from the source's checkpoint/)
        await rewindByComparing(kit, pair, 'local')
        await rewindByComparing(kit, pair, 'remote')
      })
      // With wal_log_hints, only the missing WAL leaves the WAL unable to tell.
      await withKit(`rewind-compare-walgone-${major}`, async (kit) => {
        const pair = await diverged(kit, major, true, 'hints')
        await rewindByComparing(kit, pair, 'local', { removeTargetWal: true })
        await rewindByComparing(kit, pair, 'remote', { removeTargetWal: true })
      })
    })
  })
}

// A long split: the running source wrote more WAL since the fork than half its relation data (and
// over a GB), so comparing moves less than reading that WAL would; with checksums, and the WAL
// whole on both sides, --compare=auto compares anyway. The differing blocks come as patches
// (--patch-blocks=on; auto would not over the loopback): only their differing pieces cross.
const newest = majorsUnderTest().at(-1)!
describe(`PostgreSQL ${newest}: compared because the source wrote more WAL than its data`, () => {
  test('running source, 1 GB of WAL since the fork against 30 MB of data: compared, patched, verified', async () => {
    await withKit(`rewind-compare-longsplit-${newest}`, async (kit) => {
      const { primary, standby } = await forkedPair(kit, newest, {
        init: { checksums: true },
        beforeStandby: async (p) => {
          await sql(p, 'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g')
        },
        afterPromotion: async (p, s) => {
          await sql(p, "UPDATE t SET v = 'old primary' WHERE id % 11 = 0")
          await sql(s, "UPDATE t SET v = 'new primary' WHERE id % 7 = 0")
          // 16 MB of LSN a switch: 70 of them after a row each, about 1.1 GB.
          for (let i = 0; i < 70; i++) await sql(s, `INSERT INTO t VALUES (${100000 + i}, 'switch ${i}'); SELECT pg_switch_wal()`)
        },
      })
      const run = await runRewind(kit, primary, standby, 'remote', ['--json', '--patch-blocks=on'], { crash: false })
      assertRewindOk(run)
      assert.match(
        run.stderr,
        /comparing the blocks of every relation file with the source: the source wrote \d+ MB of WAL since the fork, more than half its \d+ MB of relation data/,
      )
      const out = JSON.parse(run.stdout) as {
        compare?: { method: string; differingBlocks: number }
        replay: { from: string }
        patchedBlocks?: number
      }
      assert.equal(out.replay.from, 'source-checkpoint')
      assert.equal(out.compare?.method, 'digests')
      assert.ok((out.compare?.differingBlocks ?? 0) > 0, JSON.stringify(out.compare))
      assert.ok((out.patchedBlocks ?? 0) > 0, `patchedBlocks: ${out.patchedBlocks}`)
      await startAsStandbyAndCompare(primary, standby, 'remote')
      await primary.stop('fast')
      await standby.stop('fast')
    })
  })
})
