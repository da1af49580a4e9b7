// Any node against any node (issue 6): the 4-node family with timelines 1-4, and for all 12 ordered
// pairs, from one saved state each, a rewind of the target against the source; the target then
// follows the source as a standby with the same data. Local mode on every major; remote mode on
// 15 and 18 (WALREWIND_FAMILY_REMOTE=all for every major). Also `walrewind timelines --json` names
// the right common timeline and divergence point for every pair, checked against the history files.

import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { buildFamily, FAMILY_NAMES, Kit, majorsUnderTest, REWIND_ROLE, type Family, type Major, type Node } from '../kit/index.js'
import { installAmcheck } from '../kit/fingerprint.js'

const REMOTE_MAJORS = process.env['WALREWIND_FAMILY_REMOTE'] === 'all' ? [13, 14, 15, 16, 17, 18] : [15, 18]

interface HistoryLine {
  tli: number
  switchpoint: bigint
}

function parseLsnText(text: string): bigint {
  const [hi, lo] = text.split('/')
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
}

/** Independent of walrewind's parser: the history as the server wrote it, plus the node's own TLI. */
/** The timeline a running primary writes on (its control file may not show it before a checkpoint). */
function currentTli(node: Node): Promise<number> {
  return node.queryValue<number>("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
}

async function historyOf(node: Node): Promise<HistoryLine[]> {
  const tli = await currentTli(node)
  if (tli === 1) return []
  const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`
  const text = await fs.readFile(path.join(node.dataDir, 'pg_wal', name), 'utf8')
  return text
    .split('\n')
    .filter((l) => /^\d/.test(l))
    .map((l) => {
      const [t, lsn] = l.split('\t')
      return { tli: Number(t), switchpoint: parseLsnText(lsn!) }
    })
}

/** The expected (common timeline, divergence) of a pair, worked out from the two history files. */
function expectedDivergence(
  source: { tli: number; lines: HistoryLine[] },
  target: { tli: number; lines: HistoryLine[] },
): { tli: number; lsn: bigint | null } {
  const entries = (h: { tli: number; lines: HistoryLine[] }) => {
    const out: Array<{ tli: number; begin: bigint; end: bigint | null }> = []
    let begin = 0n
    for (const l of h.lines) {
      out.push({ tli: l.tli, begin, end: l.switchpoint })
      begin = l.switchpoint
    }
    out.push({ tli: h.tli, begin, end: null })
    return out
  }
  const a = entries(source)
  const b = entries(target)
  let i = 0
  while (i < Math.min(a.length, b.length) && a[i]!.tli === b[i]!.tli && a[i]!.begin === b[i]!.begin) i++
  const ea = a[i - 1]!
  const eb = b[i - 1]!
  const ends = [ea.end, eb.end].filter((e): e is bigint => e !== null)
  return { tli: ea.tli, lsn: ends.length ? ends.reduce((x, y) => (x < y ? x : y)) : null }
}

async function familyScenario(major: Major): Promise<void> {
  const kit = await Kit.create(`family-${major}`)
  try {
    const family = await buildFamily(kit, major, { rows: 20000 })
    for (const name of FAMILY_NAMES) await installAmcheck(family[name]).catch(() => {})
    const tlis: Record<string, { tli: number; lines: HistoryLine[] }> = {}
    for (const name of FAMILY_NAMES) tlis[name] = { tli: await currentTli(family[name]), lines: await historyOf(family[name]) }
    assert.deepEqual(
      FAMILY_NAMES.map((n) => tlis[n]!.tli),
      [1, 2, 3, 4],
      'the family must be on timelines 1, 2, 3, 4',
    )
    const fingerprints: Record<string, unknown> = {}
    for (const name of FAMILY_NAMES) fingerprints[name] = await family[name].fingerprint()
    for (const name of FAMILY_NAMES) await family[name].stop()

    // The timeline view, on the stopped family.
    const view = await kit.runWalrewind(['timelines', '--json', ...FAMILY_NAMES.map((n) => `${n}=${family[n].dataDir}`)])
    assert.equal(view.code, 0, view.stderr)
    const pairs = (
      JSON.parse(view.stdout) as { pairs: Array<{ source: string; target: string; commonTimeline: number; divergence: string | null }> }
    ).pairs
    assert.equal(pairs.length, 12)
    for (const p of pairs) {
      const expected = expectedDivergence(tlis[p.source]!, tlis[p.target]!)
      assert.equal(p.commonTimeline, expected.tli, `common timeline of ${p.source} -> ${p.target}`)
      assert.equal(p.divergence === null ? null : parseLsnText(p.divergence), expected.lsn, `divergence of ${p.source} -> ${p.target}`)
    }
    await kit.saveState(
      'family',
      FAMILY_NAMES.map((n) => family[n]),
    )

    const modes: Array<'local' | 'remote'> = REMOTE_MAJORS.includes(major) ? ['local', 'remote'] : ['local']
    // One round per source: the three others are rewound against it, then all follow it.
    for (const mode of modes) {
      for (const sourceName of FAMILY_NAMES) {
        await kit.restoreState('family')
        await rewindOthersAgainst(kit, family, sourceName, mode, fingerprints[sourceName])
      }
    }
  } finally {
    await kit.cleanup()
  }
}

async function rewindOthersAgainst(
  kit: Kit,
  family: Family,
  sourceName: keyof Family,
  mode: 'local' | 'remote',
  sourceFingerprint: unknown,
): Promise<void> {
  const source = family[sourceName]
  const targets = FAMILY_NAMES.filter((n) => n !== sourceName).map((n) => family[n])
  if (mode === 'remote') await source.start()
  for (const target of targets) {
    const label = `${mode}: ${target.name} rewound against ${sourceName}`
    const conf = path.join(target.dataDir, 'postgresql.conf')
    const ownConf = await fs.readFile(conf)
    const args = [
      `--target-pgdata=${target.dataDir}`,
      '--no-sync',
      '--json',
      mode === 'remote' ? `--source-server=${source.connectionString({ user: REWIND_ROLE })}` : `--source-pgdata=${source.dataDir}`,
    ]
    const run = await kit.runWalrewind(args)
    await fs.writeFile(conf, ownConf)
    assert.equal(run.code, 0, `${label} failed:\n${run.stderr}`)
    const result = JSON.parse(run.stdout) as { outcome: string }
    assert.ok(['rewound', 'no-rewind-required'].includes(result.outcome), `${label}: ${result.outcome}`)
  }
  if (mode === 'local') await source.start()
  for (const target of targets) {
    await target.followAs(source)
    await target.start()
  }
  const lsn = await source.currentLsn()
  for (const target of targets) {
    const label = `${mode}: ${target.name} rewound against ${sourceName}`
    await target.waitForReplay(lsn)
    assert.deepEqual(await target.fingerprint(), sourceFingerprint, `${label}: data differs`)
    await target.checkIndexes()
  }
  for (const node of [...targets, source]) await node.stop()
}

for (const major of majorsUnderTest()) {
  describe(`PostgreSQL ${major}: the 4-node family`, () => {
    test('every ordered pair rewinds and follows', { timeout: 900_000 }, () => familyScenario(major))
  })
}
