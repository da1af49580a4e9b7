// `walrewind verify` below the clusters: PostgreSQL's page masks (src/compare/page-mask.ts) on
// pages built here as the server lays them out, what is left out of a comparison (scope.ts), and
// verify() and the command on two data directories made of real files (the control file of the
// PostgreSQL 15 fixture, relation pages built here) with one of each kind of difference.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { pageKind, sameMaskedPage } from '../../src/compare/page-mask.js'
import { relationFileOf, skipReason, unloggedRelations } from '../../src/compare/scope.js'
import { verify } from '../../src/compare/verify.js'
import { formatBlocks, parseVerifyArgs, verifyCommand } from '../../src/cli/commands/verify.js'
import { LocalSource } from '../../src/source/local.js'
import type { Source } from '../../src/source/source.js'
import { FIXTURE_DIR } from '../fixtures/load.js'

const B = 8192

interface Item {
  data: Buffer
  /** lp_flags: 1 normal (default), 3 dead. */
  flags?: number
}

/** A page as PageInit and PageAddItem make it: items from the special space down, MAXALIGNed. */
function page(items: Item[], special: Buffer = Buffer.alloc(0)): Buffer {
  const p = Buffer.alloc(B)
  const specialAt = B - special.length
  special.copy(p, specialAt)
  let upper = specialAt
  items.forEach((item, i) => {
    upper -= Math.ceil(item.data.length / 8) * 8
    item.data.copy(p, upper)
    p.writeUInt32LE((upper | ((item.flags ?? 1) << 15) | (item.data.length << 17)) >>> 0, 24 + i * 4)
  })
  p.writeUInt16LE(24 + items.length * 4, 12)
  p.writeUInt16LE(upper, 14)
  p.writeUInt16LE(specialAt, 16)
  p.writeUInt16LE(B | 4, 18)
  return p
}

/** A heap tuple: 23-byte header, t_hoff 24, then `data`. */
function tuple(data: string, opts: { xmin?: number; cid?: number; infomask?: number } = {}): Buffer {
  const t = Buffer.alloc(24 + data.length)
  t.writeUInt32LE(opts.xmin ?? 1000, 0)
  t.writeUInt32LE(opts.cid ?? 0, 8)
  t.writeUInt16LE(1, 16) // ctid offset
  t.writeUInt16LE(2, 18) // natts
  t.writeUInt16LE(opts.infomask ?? 0x0802, 20) // HEAP_XMAX_INVALID | HEAP_HASVARWIDTH
  t[22] = 24
  t.write(data, 24, 'latin1')
  return t
}

function heapPage(rows: string[], opts: { infomask?: number; cid?: number } = {}): Buffer {
  return page(rows.map((r) => ({ data: tuple(r, opts) })))
}

/** BTPageOpaqueData: prev, next, level, flags, cycle id. */
function btreeSpecial(flags: number, cycle = 0): Buffer {
  const s = Buffer.alloc(16)
  s.writeUInt16LE(flags, 12)
  s.writeUInt16LE(cycle, 14)
  return s
}

function withHeader(p: Buffer, edit: (p: Buffer) => void): Buffer {
  const copy = Buffer.from(p)
  edit(copy)
  return copy
}

describe('verify: page masks', () => {
  test('kinds of page, from the special space and the fork', () => {
    const idSpecial = (size: number, id: number) => {
      const s = Buffer.alloc(size)
      s.writeUInt16LE(id, size - 2)
      return s
    }
    const seq = Buffer.alloc(8)
    seq.writeUInt32LE(0x1717, 0)
    assert.equal(pageKind(heapPage(['a']), 'main'), 'heap')
    assert.equal(pageKind(page([], btreeSpecial(1)), 'main'), 'btree')
    assert.equal(pageKind(page([], idSpecial(16, 0xff80)), 'main'), 'hash')
    assert.equal(pageKind(page([], idSpecial(16, 0xff81)), 'main'), 'gist')
    assert.equal(pageKind(page([], idSpecial(8, 0xff82)), 'main'), 'spgist')
    assert.equal(pageKind(page([], idSpecial(8, 0xf093)), 'main'), 'brin')
    assert.equal(pageKind(page([{ data: tuple('1') }], seq), 'main'), 'sequence')
    assert.equal(pageKind(page([], Buffer.alloc(8)), 'main'), 'gin')
    assert.equal(pageKind(Buffer.alloc(B), 'main'), 'new')
    assert.equal(
      pageKind(
        withHeader(heapPage(['a']), (p) => p.writeUInt16LE(10, 12)),
        'main',
      ),
      'unknown',
    )
    assert.equal(pageKind(page([]), 'vm'), 'vm')
  })

  test('heap: hint bits, command ids, LSN, checksum, prune xid and header hints are no difference', () => {
    const primary = withHeader(heapPage(['row one', 'row two'], { infomask: 0x0902, cid: 3 }), (p) => {
      p.writeUInt32LE(0x1234, 4) // pd_lsn
      p.writeUInt16LE(0xbeef, 8) // pd_checksum
      p.writeUInt16LE(0x0007, 10) // PD_HAS_FREE_LINES | PD_PAGE_FULL | PD_ALL_VISIBLE
      p.writeUInt32LE(777, 20) // pd_prune_xid
    })
    const standby = heapPage(['row one', 'row two'], { infomask: 0x0802, cid: 0 })
    assert.equal(sameMaskedPage(primary, standby, 'main', 0).same, true)
    assert.notDeepEqual(primary, standby)
  })

  test("heap: tuple data, a frozen tuple's other bits and line pointers are differences", () => {
    const a = heapPage(['row one', 'row two'])
    assert.equal(sameMaskedPage(a, heapPage(['row one', 'row tw0']), 'main', 0).same, false)
    const frozen = heapPage(['x'], { infomask: 0x0b02 })
    assert.equal(sameMaskedPage(frozen, heapPage(['x'], { infomask: 0x0302 }), 'main', 0).same, true, 'xmax hints of a frozen tuple')
    assert.equal(sameMaskedPage(frozen, heapPage(['x'], { infomask: 0x2b02 }), 'main', 0).same, false, 'HEAP_UPDATED of a frozen tuple')
    const dead = page([{ data: tuple('row one'), flags: 3 }, { data: tuple('row two') }])
    assert.equal(sameMaskedPage(a, dead, 'main', 0).same, false, 'LP_DEAD is WAL-logged in a heap')
  })

  test('heap: padding after a tuple and the unused middle of the page are no difference', () => {
    const a = heapPage(['odd'])
    const b = withHeader(a, (p) => {
      const off = p.readUInt32LE(24) & 0x7fff
      p[off + 24 + 3] = 0xaa // padding: the tuple is 27 bytes, MAXALIGNed to 32
      p[200] = 0xbb // between pd_lower and pd_upper
    })
    assert.equal(sameMaskedPage(a, b, 'main', 0).same, true)
  })

  test('btree: LP_DEAD on a leaf, BTP_HAS_GARBAGE, BTP_SPLIT_END and the cycle id are no difference', () => {
    const items = [{ data: Buffer.from('key one.') }, { data: Buffer.from('key two.') }]
    const leaf = page(items, btreeSpecial(1))
    const killed = page([{ ...items[0]!, flags: 3 }, items[1]!], btreeSpecial(1 | 64 | 32, 7))
    assert.deepEqual(sameMaskedPage(leaf, killed, 'main', 0), { same: true, kind: 'btree' })
    const internal = page(items, btreeSpecial(0))
    assert.equal(sameMaskedPage(internal, page([{ ...items[0]!, flags: 3 }, items[1]!], btreeSpecial(0)), 'main', 0).same, false)
    assert.equal(sameMaskedPage(leaf, page([items[0]!, { data: Buffer.from('key 2wo.') }], btreeSpecial(1)), 'main', 0).same, false)
  })

  test("a sequence's values, and a visibility map's LSN and checksum, are no difference; its bits are", () => {
    const seq = Buffer.alloc(8)
    seq.writeUInt32LE(0x1717, 0)
    assert.equal(sameMaskedPage(page([{ data: tuple('\x01') }], seq), page([{ data: tuple('\x21') }], seq), 'main', 0).same, true)
    const vm = withHeader(page([]), (p) => {
      p[100] = 1
    })
    assert.equal(
      sameMaskedPage(
        vm,
        withHeader(vm, (p) => p.writeUInt16LE(5, 8)),
        'vm',
        0,
      ).same,
      true,
    )
    assert.equal(
      sameMaskedPage(
        vm,
        withHeader(vm, (p) => {
          p[100] = 3
        }),
        'vm',
        0,
      ).same,
      false,
    )
  })

  test('pages of different kinds never match', () => {
    assert.equal(sameMaskedPage(Buffer.alloc(B), heapPage([]), 'main', 0).same, false)
  })
})

describe('verify: what is compared', () => {
  test("each node's own files are left out, with the reason", () => {
    const unlogged = unloggedRelations(['base/5/16400_init', 'base/5/16384', 'base/5/16400'])
    const cases: Record<string, string | null> = {
      'pg_wal/000000010000000000000001': 'wal',
      pg_wal: 'wal',
      'global/pg_control': 'control-file',
      'postgresql.conf': 'configuration',
      'postgresql.auto.conf': 'configuration',
      'standby.signal': 'configuration',
      'backup_label.old': 'configuration',
      'pg_stat/pgstat.stat': 'node-state',
      'pg_logical/replorigin_checkpoint': 'node-state',
      'log/postgresql.log': 'node-state',
      'walrewind.resume': 'node-state',
      'pg_stat_tmp/global.stat': 'not-copied',
      'postmaster.pid': 'not-copied',
      'base/5/pg_internal.init': 'not-copied',
      'base/5/t3_16390': 'temporary',
      'base/5/16384_fsm': 'free-space-map',
      'base/5/16400': 'unlogged',
      'base/5/16400_vm': 'unlogged',
      'base/5/16400_init': null,
      'base/5/16384': null,
      'base/5/16384_vm': null,
      'global/1262': null,
      'pg_xact/0000': null,
      'pg_multixact/offsets/0000': null,
      PG_VERSION: null,
      'conf/postgresql.conf': null,
    }
    for (const [file, reason] of Object.entries(cases)) assert.equal(skipReason(file, unlogged), reason, file)
  })

  test('relation files of every fork and segment, in tablespaces too', () => {
    assert.deepEqual(relationFileOf('pg_tblspc/16385/PG_15_202209061/5/16386_vm.2'), {
      relation: 'pg_tblspc/16385/PG_15_202209061/5/16386',
      fork: 'vm',
      segno: 2,
    })
    assert.deepEqual(relationFileOf('global/1262'), { relation: 'global/1262', fork: 'main', segno: 0 })
    assert.equal(relationFileOf('base/5/PG_VERSION'), null)
  })
})

let root: string
let sourceDir: string
let targetDir: string
let equalDir: string

function write(dir: string, rel: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
  fs.writeFileSync(path.join(dir, rel), data)
}

function both(rel: string, data: Buffer | string): void {
  write(sourceDir, rel, data)
  write(targetDir, rel, data)
}

const rows = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} row ${i}`)

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-verify-'))
  sourceDir = path.join(root, 'source')
  targetDir = path.join(root, 'target')
  equalDir = path.join(root, 'equal')
  both('global/pg_control', fs.readFileSync(path.join(FIXTURE_DIR, 'pg15', 'pg_control')))
  both('PG_VERSION', '15\n')
  both('base/5/PG_VERSION', '15\n')
  // A heap of three pages: the target's first page has hint bits and another command id (no
  // difference), its third page other data.
  const heap = [heapPage(rows(20, 'a')), heapPage(rows(20, 'b')), heapPage(rows(20, 'c'))]
  write(sourceDir, 'base/5/16384', Buffer.concat(heap))
  write(
    targetDir,
    'base/5/16384',
    Buffer.concat([heapPage(rows(20, 'a'), { infomask: 0x0902, cid: 5 }), heap[1]!, heapPage(rows(20, 'C'))]),
  )
  write(sourceDir, 'base/5/16384_fsm', Buffer.alloc(3 * B, 1))
  write(targetDir, 'base/5/16384_fsm', Buffer.alloc(3 * B, 2))
  both('base/5/16384_vm', page([]))
  // The source extended ahead of use: a zero page past the target's end.
  write(sourceDir, 'base/5/16385', Buffer.concat([heap[0]!, heap[1]!, Buffer.alloc(B)]))
  write(targetDir, 'base/5/16385', Buffer.concat([heap[0]!, heap[1]!]))
  // A page with data past the other side's end, on either side.
  write(sourceDir, 'base/5/16386', heap[0]!)
  write(targetDir, 'base/5/16386', Buffer.concat([heap[0]!, heap[1]!]))
  write(sourceDir, 'base/5/16387', Buffer.concat([heap[0]!, heap[2]!]))
  write(targetDir, 'base/5/16387', heap[0]!)
  // A size no relation file has (a partial last block), the same on both sides: no difference.
  both('base/5/16388', Buffer.concat([heap[0]!, Buffer.alloc(100, 7)]))
  // Unlogged: its main fork is each node's own.
  both('base/5/16400_init', Buffer.alloc(0))
  write(sourceDir, 'base/5/16400', heap[0]!)
  write(targetDir, 'base/5/16400', heap[1]!)
  write(sourceDir, 'base/5/16500', heap[0]!)
  write(targetDir, 'base/5/16501', heap[0]!)
  write(sourceDir, 'pg_xact/0000', Buffer.alloc(B, 0x55))
  write(targetDir, 'pg_xact/0000', Buffer.concat([Buffer.alloc(B - 1, 0x55), Buffer.from([0x15])]))
  write(sourceDir, 'pg_multixact/offsets/0000', Buffer.alloc(2 * B))
  write(targetDir, 'pg_multixact/offsets/0000', Buffer.alloc(B))
  fs.mkdirSync(path.join(sourceDir, 'pg_commit_ts'))
  write(targetDir, 'pg_commit_ts', 'not a directory')
  write(sourceDir, 'postgresql.conf', 'port = 5432\n')
  write(targetDir, 'postgresql.conf', 'port = 5433\n')
  write(sourceDir, 'pg_wal/000000010000000000000001', Buffer.alloc(B, 1))
  write(targetDir, 'pg_wal/000000010000000000000001', Buffer.alloc(B, 2))
  write(targetDir, 'standby.signal', '')
  fs.cpSync(sourceDir, equalDir, { recursive: true })
})

after(() => {
  fs.rmSync(root, { recursive: true, force: true })
})

const EXPECTED = [
  { path: 'base/5/16384', kind: 'blocks', blocks: [[2, 1]] },
  { path: 'base/5/16386', kind: 'blocks', blocks: [[1, 1]] },
  { path: 'base/5/16387', kind: 'blocks', blocks: [[1, 1]] },
  { path: 'base/5/16500', kind: 'source-only' },
  { path: 'base/5/16501', kind: 'target-only' },
  { path: 'pg_commit_ts', kind: 'type' },
  { path: 'pg_multixact/offsets/0000', kind: 'size' },
  { path: 'pg_xact/0000', kind: 'content' },
]

/** A directory source seen as a running server's: its block digests, blocks through queue and flush. */
function remoteLike(local: LocalSource): Source {
  return Object.create(local, { localDataDir: { value: undefined }, running: { value: true }, close: { value: async () => {} } })
}

describe('verify: two data directories', () => {
  for (const how of ['stopped directory', 'digests and fetched blocks'] as const) {
    test(`every kind of difference, and what is none (${how})`, async () => {
      const result = await verify({
        targetPgdata: targetDir,
        source: how === 'stopped directory' ? { kind: 'local', pgdata: sourceDir } : remoteLike(new LocalSource(sourceDir)),
      })
      assert.deepEqual(
        result.differences.map((d) => ({ path: d.path, kind: d.kind, ...(d.blocks ? { blocks: d.blocks } : {}) })),
        EXPECTED,
      )
      assert.equal(result.equal, false)
      assert.deepEqual(result.tolerated, { maskedBlocks: 1, zeroTailBlocks: 1 })
      const skipped = Object.fromEntries(result.skipped.map((s) => [s.reason, s.entries]))
      assert.deepEqual(skipped, { 'control-file': 1, configuration: 2, 'free-space-map': 1, unlogged: 1, wal: 2 })
      assert.equal(result.stats.method, how === 'stopped directory' ? 'bytes' : 'digests')
      // Only the blocks whose bytes differ, and the source's tails, were fetched.
      assert.equal(result.stats.fetchedBlocks, 4)
      assert.equal(result.source.running, how !== 'stopped directory')
    })
  }

  test('the same files: equal', async () => {
    const result = await verify({ targetPgdata: equalDir, source: { kind: 'local', pgdata: sourceDir } })
    assert.deepEqual(result.differences, [])
    assert.equal(result.equal, true)
    assert.equal(result.stats.fetchedBlocks, 0)
  })

  test('a running target or directory source is refused', async () => {
    const pid = path.join(equalDir, 'postmaster.pid')
    fs.writeFileSync(pid, `${process.pid}\n`)
    try {
      await assert.rejects(verify({ targetPgdata: equalDir, source: { kind: 'local', pgdata: sourceDir } }), {
        code: 'TARGET_NOT_SHUT_DOWN',
      })
      await assert.rejects(verify({ targetPgdata: targetDir, source: { kind: 'local', pgdata: equalDir } }), {
        code: 'SOURCE_NOT_SHUT_DOWN',
      })
    } finally {
      fs.rmSync(pid)
    }
  })
})

function capture(): { stream: Writable; text: () => string } {
  let text = ''
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk)
      done()
    },
  })
  return { stream, text: () => text }
}

async function runCommand(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = capture()
  const err = capture()
  const code = await verifyCommand(args, { stdout: out.stream, stderr: err.stream, env: {} })
  return { code, stdout: out.text(), stderr: err.text() }
}

describe('verify: the command', () => {
  test('exit 1 with one line per difference, 0 when equal, JSON on request', async () => {
    const found = await runCommand([`--target-pgdata=${targetDir}`, `--source-pgdata=${sourceDir}`])
    assert.equal(found.code, 1, found.stderr)
    assert.match(found.stdout, /^base\/5\/16384: block 2 differs$/m)
    assert.match(found.stdout, /^pg_xact\/0000: content differs$/m)
    assert.match(found.stdout, /^base\/5\/16500: only on the source \(file\)$/m)
    assert.match(found.stdout, /^differences: 8 files \(3 relation blocks\)$/m)
    const equal = await runCommand(['-D', equalDir, '--source-pgdata', sourceDir, '--json'])
    assert.equal(equal.code, 0, equal.stderr)
    const json = JSON.parse(equal.stdout)
    assert.equal(json.ok, true)
    assert.equal(json.equal, true)
  })

  test('errors: the command line (2), a missing target (3)', async () => {
    assert.equal((await runCommand([`--source-pgdata=${sourceDir}`])).code, 2)
    assert.equal((await runCommand([`--target-pgdata=${targetDir}`])).code, 2)
    assert.equal((await runCommand([`--target-pgdata=${targetDir}`, `--source-pgdata=${sourceDir}`, '--source-server=host=x'])).code, 2)
    assert.equal((await runCommand(['--bogus'])).code, 2)
    const missing = await runCommand([`--target-pgdata=${path.join(root, 'nope')}`, `--source-pgdata=${sourceDir}`, '--json'])
    assert.equal(missing.code, 3)
    assert.equal(JSON.parse(missing.stdout).error.code, 'TARGET_DIR')
    assert.equal(parseVerifyArgs(['--help']), 'help')
    assert.throws(() => parseVerifyArgs(['-D', 'x', '--source-pgdata=y', '--jobs=0']), /--jobs must be in range 1..64/)
  })

  test('block lists', () => {
    assert.equal(formatBlocks([[3, 1]]), 'block 3')
    assert.equal(
      formatBlocks([
        [3, 1],
        [10, 3],
      ]),
      '4 blocks: 3, 10-12',
    )
    assert.equal(
      formatBlocks(
        [
          [1, 1],
          [3, 1],
          [5, 1],
        ],
        2,
      ),
      '3 blocks: 1, 3, ... (1 more runs)',
    )
  })
})
