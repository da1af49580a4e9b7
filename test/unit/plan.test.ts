// The planner on listings shaped like real data directories: pg_rewind's decide_file_action()
// cases, the execution order, and the refusals of names no data directory has.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RewindError } from '../../src/errors.js'
import { profileForMajor } from '../../src/pg/versions.js'
import { BlockMap } from '../../src/block-map.js'
import { plan, type PlanInput } from '../../src/rewind/plan.js'
import type { FileEntry } from '../../src/source/source.js'

const MB = 1024 * 1024
const file = (path: string, size: number): FileEntry => ({ path, type: 'file', size })
const dir = (path: string): FileEntry => ({ path, type: 'directory', size: 0 })
const link = (path: string, linkTarget: string): FileEntry => ({ path, type: 'symlink', size: 0, linkTarget })

function input(sourceFiles: FileEntry[], targetFiles: FileEntry[], extra: Partial<PlanInput> = {}): PlanInput {
  return {
    profile: profileForMajor(15),
    blockSize: 8192,
    relsegSize: 131072,
    walSegSize: 16 * MB,
    sourceDescription: 'source',
    sourceKind: 'local',
    targetDir: '/target',
    sourceFiles,
    targetFiles,
    changedBlocks: new BlockMap(),
    keepWal: new Set(),
    divergence: { lsn: 0x3000100n, tli: 1 },
    checkpoint: { lsn: 0x3000060n, redo: 0x3000028n, tli: 1 },
    replay: { from: 'last-common-checkpoint', checkpoint: { lsn: 0x3000060n, redo: 0x3000028n, tli: 1 }, reason: 'test' },
    ...extra,
  }
}

const common = [dir('base'), dir('base/5'), dir('global'), file('global/pg_control', 8192), file('PG_VERSION', 3), dir('pg_wal')]

describe('plan', () => {
  test('relation files: copy-tail when the target is shorter, truncate when longer, blocks within both', () => {
    const blocks = new BlockMap()
    for (const b of [0, 1, 2, 7, 40]) blocks.add('base/5/16384', b)
    blocks.add('base/5/16385', 3)
    const p = plan(
      input(
        [...common, file('base/5/16384', 10 * 8192), file('base/5/16385', 4 * 8192)],
        [...common, file('base/5/16384', 8 * 8192), file('base/5/16385', 6 * 8192)],
        { changedBlocks: blocks },
      ),
    )
    const grown = p.entries.find((e) => e.path === 'base/5/16384')!
    assert.equal(grown.action, 'copy-tail')
    assert.deepEqual(grown.blocks, [
      [0, 3],
      [7, 1],
    ]) // block 40 is past both ends
    assert.equal(grown.bytes, 2 * 8192 + 4 * 8192)
    const shrunk = p.entries.find((e) => e.path === 'base/5/16385')!
    assert.equal(shrunk.action, 'truncate')
    assert.deepEqual(shrunk.blocks, [[3, 1]])
  })

  test('source only is copied, target only removed (files first, directories last and children first), pg_control and PG_VERSION left alone', () => {
    const p = plan(
      input(
        [...common, file('base/5/20000', 8192), file('postgresql.conf', 100)],
        [
          ...common,
          dir('base/5/sub'),
          file('base/5/sub/x', 1),
          file('postgresql.conf', 90),
          file('postmaster.pid', 50),
          file('backup_label', 10),
        ],
      ),
    )
    const actions = p.entries.map((e) => `${e.action} ${e.path}`)
    assert.deepEqual(actions, [
      'remove postmaster.pid',
      'remove base/5/sub/x',
      'remove backup_label',
      'copy base/5/20000',
      'copy postgresql.conf',
      'remove base/5/sub',
    ])
    assert.ok(!actions.some((a) => a.includes('pg_control') || a.includes('PG_VERSION')))
  })

  test("configuration files: copied from the source as pg_rewind, or kept (the target's own, whatever the source has) with keepTargetConfig", () => {
    const confs = (size: number) =>
      ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf', 'postgresql.auto.conf'].map((name) => file(name, size))
    const source = [...common, ...confs(100), file('conf.d/extra.conf', 5), dir('conf.d'), file('base/5/postgresql.conf', 1)]
    const target = [...common, ...confs(90).slice(0, 3), file('postgresql.auto.conf.tmp', 1)]
    const copied = plan(input(source, target)).entries.map((e) => `${e.action} ${e.path}`)
    assert.deepEqual(copied, [
      'remove postgresql.auto.conf.tmp',
      'create conf.d',
      'copy base/5/postgresql.conf',
      'copy conf.d/extra.conf',
      'copy pg_hba.conf',
      'copy pg_ident.conf',
      'copy postgresql.auto.conf',
      'copy postgresql.conf',
    ])
    const kept = plan(input(source, target, { keepTargetConfig: true }))
    // only the four files at the top level; anything else (an included file, a same name deeper) as before
    assert.deepEqual(
      kept.entries.map((e) => `${e.action} ${e.path}`),
      ['remove postgresql.auto.conf.tmp', 'create conf.d', 'copy base/5/postgresql.conf', 'copy conf.d/extra.conf'],
    )
    assert.equal(kept.totals.fetchBytes, 6)
    // a target without them does not get the source's, one with them keeps them even if the source has none
    assert.deepEqual(plan(input(common, [...common, ...confs(1)], { keepTargetConfig: true })).entries, [])
  })

  test('WAL segments wholly before the fork and equal on both sides are not copied again', () => {
    const seg = (name: string) => file(`pg_wal/${name}`, 16 * MB)
    const p = plan(
      input(
        [
          ...common,
          seg('000000010000000000000002'),
          seg('000000010000000000000003'),
          seg('000000020000000000000003'),
          file('pg_wal/00000002.history', 40),
        ],
        [...common, seg('000000010000000000000002'), seg('000000010000000000000003'), seg('000000010000000000000004')],
        { keepWal: new Set(['pg_wal/000000010000000000000004']) },
      ),
    )
    const byPath = new Map(p.entries.map((e) => [e.path, e.action]))
    assert.equal(byPath.get('pg_wal/000000010000000000000002'), undefined, 'before the fork: unchanged')
    assert.equal(byPath.get('pg_wal/000000010000000000000003'), 'copy', 'the segment of the fork is copied')
    assert.equal(byPath.get('pg_wal/000000020000000000000003'), 'copy')
    assert.equal(byPath.get('pg_wal/000000010000000000000004'), undefined, 'needed for recovery: kept')
  })

  test('recycled WAL segments past the end of the source are neither copied nor kept', () => {
    const seg = (name: string) => file(`pg_wal/${name}`, 16 * MB)
    const p = plan(
      input(
        [...common, seg('000000020000000000000004'), seg('000000020000000000000005'), seg('000000020000000000000006')],
        [...common, seg('000000020000000000000006')],
        { sourceWalEnd: 0x4800000n },
      ),
    )
    const byPath = new Map(p.entries.map((e) => [e.path, e.action]))
    assert.equal(byPath.get('pg_wal/000000020000000000000004'), 'copy', 'the segment holding the end is copied')
    assert.equal(byPath.get('pg_wal/000000020000000000000005'), undefined, 'past the end, source only: nothing to do')
    assert.equal(byPath.get('pg_wal/000000020000000000000006'), 'remove', 'past the end, on both: the target copy goes')
  })

  test("removed WAL segments are recycled past every listed segment and the source's end, on its timeline, up to a limit", () => {
    const seg = (name: string, size = 16 * MB) => file(`pg_wal/${name}`, size)
    const sourceHistory = [
      { tli: 1, begin: 0n, end: 0x3000100n },
      { tli: 2, begin: 0x3000100n, end: null },
    ]
    // The target: old segments the source no longer has (1, 2), its own WAL after the fork (3-5),
    // a pre-allocated one (9), a short file, and a segment it needs (keepWal).
    const targetWal = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003', '000000010000000000000004']
    const p = plan(
      input(
        [...common, seg('000000020000000000000003'), seg('000000020000000000000004'), seg('000000020000000000000005')],
        [
          ...common,
          ...targetWal.map((name) => seg(name)),
          seg('000000010000000000000005'),
          seg('000000010000000000000009'),
          seg('00000001000000000000000A', 8192),
          seg('000000010000000000000006'),
        ],
        {
          sourceHistory,
          sourceWalEnd: 0x5000200n,
          keepWal: new Set(['pg_wal/000000010000000000000006']),
          recycleWal: { targetRedo: 0x5000028n },
        },
      ),
    )
    const byPath = new Map(p.entries.map((e) => [e.path, e]))
    // Limit: max(segments the target kept from its redo on (5, 6, 9: 3), 1 GB = 64): all six go.
    const recycled = p.entries.filter((e) => e.recycleAs !== undefined).sort((a, b) => (a.path < b.path ? -1 : 1))
    assert.deepEqual(
      recycled.map((e) => [e.path, e.recycleAs]),
      [
        ['pg_wal/000000010000000000000001', 'pg_wal/00000002000000000000000B'],
        ['pg_wal/000000010000000000000002', 'pg_wal/00000002000000000000000C'],
        ['pg_wal/000000010000000000000003', 'pg_wal/00000002000000000000000D'],
        ['pg_wal/000000010000000000000004', 'pg_wal/00000002000000000000000E'],
        ['pg_wal/000000010000000000000005', 'pg_wal/00000002000000000000000F'],
        ['pg_wal/000000010000000000000009', 'pg_wal/000000020000000000000010'],
      ],
    )
    for (const e of recycled) assert.equal(e.action, 'remove', 'still a removal from its path')
    assert.equal(byPath.get('pg_wal/00000001000000000000000A')?.recycleAs, undefined, 'not a whole segment: unlinked')
    assert.equal(byPath.get('pg_wal/000000010000000000000006'), undefined, 'needed: kept')
    // With 64 MB segments, 1 GB is 16 of them: beyond that and what the target kept ahead, unlinked.
    const many = Array.from({ length: 20 }, (_, i) => seg(`0000000100000000000000${(0x10 + i).toString(16).toUpperCase()}`, 64 * MB))
    const limited = plan(input(common, [...common, ...many], { walSegSize: 64 * MB, recycleWal: { targetRedo: 0x100000000n } }))
    assert.equal(limited.entries.filter((e) => e.recycleAs !== undefined).length, 16)
    assert.equal(limited.entries.filter((e) => e.action === 'remove').length, 20)
    // The target's max_wal_size (4 GB: 64 segments of 64 MB) lets all twenty go.
    const configured = plan(
      input(common, [...common, ...many], { walSegSize: 64 * MB, recycleWal: { targetRedo: 0x100000000n, maxWalSize: 4096 * MB } }),
    )
    assert.equal(configured.entries.filter((e) => e.recycleAs !== undefined).length, 20)
    // Without recycleWal (pg_rewind's way) nothing is recycled.
    assert.equal(
      plan(input(common, [...common, ...many], { walSegSize: 64 * MB })).entries.some((e) => e.recycleAs !== undefined),
      false,
    )
  })

  test("names the WAL from the fork to the source's end that the source no longer has, on the source's timelines", () => {
    const seg = (name: string) => file(`pg_wal/${name}`, 16 * MB)
    // Timeline 2 forked off 1 at 0/3000100 (segment 3); the source's WAL ends in segment 6.
    const sourceHistory = [
      { tli: 1, begin: 0n, end: 0x3000100n },
      { tli: 2, begin: 0x3000100n, end: null },
    ]
    const extra = { sourceHistory, sourceWalEnd: 0x6000200n }
    const all = [
      seg('000000010000000000000002'),
      seg('000000010000000000000003'),
      seg('000000020000000000000003'),
      seg('000000020000000000000004'),
      seg('000000020000000000000005'),
      seg('000000020000000000000006'),
    ]
    assert.deepEqual(plan(input([...common, ...all], common, extra)).sourceWalMissing, [])
    // Its checkpoints removed segments 3 and 4 of timeline 2 (the timeline-1 copy of 3 does not count).
    const removed = all.filter((e) => !/0000000200000000000000(03|04)$/.test(e.path))
    assert.deepEqual(plan(input([...common, ...removed], common, extra)).sourceWalMissing, [
      '000000020000000000000003',
      '000000020000000000000004',
    ])
    // A WAL end exactly at a segment boundary does not need the segment after it.
    assert.deepEqual(plan(input([...common, ...all], common, { sourceHistory, sourceWalEnd: 0x7000000n })).sourceWalMissing, [])
    assert.deepEqual(plan(input([...common, ...all], common, { sourceHistory, sourceWalEnd: 0x7000028n })).sourceWalMissing, [
      '000000020000000000000007',
    ])
    // Without the history or the end there is nothing to say.
    assert.deepEqual(plan(input([...common], common)).sourceWalMissing, [])
  })

  test("replay from the source's checkpoint: WAL before its redo point is neither copied nor asked of the source", () => {
    const seg = (name: string) => file(`pg_wal/${name}`, 16 * MB)
    const sourceHistory = [
      { tli: 1, begin: 0n, end: 0x3000100n },
      { tli: 2, begin: 0x3000100n, end: null },
    ]
    const replay = { from: 'source-checkpoint' as const, checkpoint: { lsn: 0x5000100n, redo: 0x50000a0n, tli: 2 }, reason: 'test' }
    const sourceWal = [
      seg('000000020000000000000003'),
      seg('000000020000000000000004'),
      seg('000000020000000000000005'),
      seg('000000020000000000000006'),
    ]
    const p = plan(
      input(
        [...common, ...sourceWal, file('pg_wal/00000002.history', 40)],
        [...common, seg('000000010000000000000003'), seg('000000010000000000000004'), seg('000000020000000000000004')],
        { replay, sourceHistory, sourceWalEnd: 0x6000200n },
      ),
    )
    const byPath = new Map(p.entries.map((e) => [e.path, e.action]))
    assert.equal(byPath.get('pg_wal/000000020000000000000003'), undefined, 'source only, before the redo point: not copied')
    assert.equal(byPath.get('pg_wal/000000020000000000000004'), undefined, 'on both, before the redo point: left alone')
    assert.equal(byPath.get('pg_wal/000000010000000000000004'), 'remove', "the target's own WAL after the fork goes")
    assert.equal(byPath.get('pg_wal/000000020000000000000005'), 'copy', 'the segment of the redo point is copied')
    assert.equal(byPath.get('pg_wal/000000020000000000000006'), 'copy')
    assert.equal(byPath.get('pg_wal/00000002.history'), 'copy')
    assert.deepEqual(p.replay, { from: 'source-checkpoint', checkpoint: { lsn: '0/5000100', redo: '0/50000A0', tli: 2 }, reason: 'test' })
    // Only WAL from the redo point on must still be on the source.
    assert.deepEqual(
      plan(input([...common, ...sourceWal.slice(2)], common, { replay, sourceHistory, sourceWalEnd: 0x6000200n })).sourceWalMissing,
      [],
    )
  })

  test('excluded directories keep the directory but not its contents', () => {
    const p = plan(
      input(
        [...common, dir('pg_replslot'), dir('pg_replslot/s'), file('pg_replslot/s/state', 200)],
        [...common, dir('pg_replslot'), dir('pg_replslot/old'), file('pg_replslot/old/state', 200)],
      ),
    )
    assert.deepEqual(
      p.entries.map((e) => `${e.action} ${e.path}`),
      ['remove pg_replslot/old/state', 'remove pg_replslot/old'],
    )
  })

  test('a file that is a directory on the other side is an error', () => {
    assert.throws(
      () => plan(input([...common, dir('foo')], [...common, file('foo', 1)])),
      (err: unknown) =>
        err instanceof RewindError && err.code === 'FILE_TYPE_MISMATCH' && /file "foo" is of different type/.test(err.message),
    )
  })

  test('pg_wal may be a symlink on one side only', () => {
    const p = plan(input([...common.filter((e) => e.path !== 'pg_wal'), link('pg_wal', '/wal')], common))
    assert.equal(p.entries.length, 0)
  })
})

// Each rule, with every hostile name, is tested in path-policy.test.ts; here, that the planner applies them.
describe('plan refuses what a hostile source lists', () => {
  const hostile: Array<[string, FileEntry[]]> = [
    ['a path with ..', [file('base/../../etc/passwd', 1)]],
    ['a tablespace link with a relative target', [link('pg_tblspc/16400', '../../etc')]],
    ['a file below a file', [file('global/pg_filenode.map', 512), file('global/pg_filenode.map/x', 1)]],
    ['a server listing a symlink outside pg_tblspc', [link('base/5/evil', '/etc'), file('base/5/evil/passwd', 1)]],
  ]
  for (const [what, entries] of hostile) {
    test(what, () => {
      assert.throws(
        () => plan(input([...common, ...entries], common, { sourceKind: 'server' })),
        (err: unknown) => err instanceof RewindError && err.code === 'SOURCE_UNSAFE_PATH',
      )
    })
  }

  test('a directory source may have a stray symlink, but nothing is planned below it', () => {
    const p = plan(input([...common, link('log', '/var/log/pg')], common, { sourceKind: 'local' }))
    assert.deepEqual(
      p.entries.map((e) => `${e.action} ${e.path}`),
      ['create log'],
    )
    assert.throws(
      () => plan(input([...common, link('log', '/var/log/pg'), file('log/x', 1)], common, { sourceKind: 'local' })),
      (err: unknown) => err instanceof RewindError && err.code === 'SOURCE_UNSAFE_PATH',
    )
  })
})
