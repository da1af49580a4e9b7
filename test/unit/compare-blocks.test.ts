// The block comparison engine (src/compare/blocks.ts) on real files in a temporary directory, in
// its three ways of reading the source: a directory here byte for byte, a source's own block
// digests (LocalSource's, as a server's would be), and a source without digests (its bytes
// fetched and hashed here). Plus the batches it cuts, and the server's digest statement pieces.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type CompareProgress, findDifferingBlocks } from '../../src/compare/blocks.js'
import { blockDigestsOf, digestOf } from '../../src/compare/digest.js'
import { compareBatches, comparedLength } from '../../src/compare/ranges.js'
import { BlockMap } from '../../src/block-map.js'
import { LocalSource } from '../../src/source/local.js'
import { blockDigestParameters, blockDigestsSql, decodeDigestRow } from '../../src/source/server-digest.js'
import type { Source } from '../../src/source/source.js'

const B = 8192
let root: string
let sourceDir: string
let targetDir: string

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-compare-'))
  sourceDir = path.join(root, 'source')
  targetDir = path.join(root, 'target')
})

after(() => {
  fs.rmSync(root, { recursive: true, force: true })
})

/** Deterministic bytes: block b of file `seed` is filled from (seed, b). */
function content(seed: number, bytes: number): Buffer {
  const buf = Buffer.alloc(bytes + 4)
  for (let i = 0; i < bytes; i += 4) buf.writeUInt32LE(((seed * 2654435761) ^ Math.imul(i, 40503)) >>> 0, i)
  return buf.subarray(0, bytes)
}

/** The same file on both sides, then `changes` (byte offsets) flipped on the target. */
function pair(rel: string, seed: number, bytes: number, changes: number[] = [], targetBytes = bytes): void {
  for (const dir of [sourceDir, targetDir]) fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
  const data = content(seed, Math.max(bytes, targetBytes))
  fs.writeFileSync(path.join(sourceDir, rel), data.subarray(0, bytes))
  const target = Buffer.from(data.subarray(0, targetBytes))
  for (const at of changes) target[at] = target[at]! ^ 0xff
  fs.writeFileSync(path.join(targetDir, rel), target)
}

/**
 * The local source seen as a remote one (no localDataDir): the comparison then asks for its
 * block digests, or without them (`digests` false) fetches its bytes through queue and flush.
 */
function wrapped(local: LocalSource, digests: boolean): Source {
  return Object.create(local, { localDataDir: { value: undefined }, ...(digests ? {} : { blockDigests: { value: undefined } }) })
}

const MODES = ['bytes', 'digests', 'fetched'] as const
function sourceFor(mode: (typeof MODES)[number]): Source {
  const local = new LocalSource(sourceDir)
  return mode === 'bytes' ? local : wrapped(local, mode === 'digests')
}

function blocksOf(map: BlockMap, file: string): Array<readonly [number, number]> {
  return map.ranges(file)
}

describe('compare: batches', () => {
  test('common part in whole blocks, or with the partial last block', () => {
    assert.equal(comparedLength({ path: 'a', sourceSize: 3 * B + 10, targetSize: 5 * B }, B, false), 3 * B)
    assert.equal(comparedLength({ path: 'a', sourceSize: 3 * B + 10, targetSize: 5 * B }, B, true), 3 * B + 10)
  })

  test('small files share a batch, big ones are cut, none exceeds its bytes or ranges', () => {
    const files = [
      { path: 'a', sourceSize: 2 * B, targetSize: 2 * B },
      { path: 'b', sourceSize: 9 * B, targetSize: 10 * B },
      { path: 'c', sourceSize: B, targetSize: B },
      { path: 'd', sourceSize: B, targetSize: B },
      { path: 'e', sourceSize: 0, targetSize: B },
    ]
    const batches = [...compareBatches(files, B, { batchBytes: 4 * B, maxRanges: 2, partialBlocks: false })]
    const shape = batches.map((batch) => batch.map((r) => `${r.file.path}:${r.firstBlock}+${r.count}`))
    assert.deepEqual(shape, [['a:0+2'], ['b:0+4'], ['b:4+4'], ['b:8+1', 'c:0+1'], ['d:0+1']])
  })
})

for (const mode of MODES) {
  describe(`compare: findDifferingBlocks, source read by ${mode}`, () => {
    test('equal files: no block; every byte counted', async () => {
      fs.rmSync(sourceDir, { recursive: true, force: true })
      fs.rmSync(targetDir, { recursive: true, force: true })
      pair('base/5/100', 1, 10 * B)
      pair('base/5/101', 2, 3 * B)
      const blocks = new BlockMap()
      const files = [
        { path: 'base/5/100', sourceSize: 10 * B, targetSize: 10 * B },
        { path: 'base/5/101', sourceSize: 3 * B, targetSize: 3 * B },
      ]
      const summary = await findDifferingBlocks({ source: sourceFor(mode), targetDir, files, blockSize: B, blocks })
      assert.equal(blocks.fileCount, 0)
      assert.equal(summary.comparedBytes, 13 * B)
      assert.equal(summary.differingBlocks, 0)
      assert.equal(summary.method, mode === 'bytes' ? 'bytes' : 'digests')
      assert.equal(summary.algorithm, mode === 'bytes' ? null : 'sha256')
    })

    test('the blocks that differ, and only those, within the part both sides have', async () => {
      fs.rmSync(sourceDir, { recursive: true, force: true })
      fs.rmSync(targetDir, { recursive: true, force: true })
      pair('base/5/200', 3, 10 * B, [3 * B + 17, 3 * B + 4000, 7 * B, 10 * B - 1])
      // Source longer: only the blocks both have are compared.
      pair('base/5/201', 4, 12 * B, [B], 10 * B)
      // Target longer, first block changed.
      pair('base/5/202', 5, 2 * B, [0], 4 * B)
      const files = [
        { path: 'base/5/200', sourceSize: 10 * B, targetSize: 10 * B },
        { path: 'base/5/201', sourceSize: 12 * B, targetSize: 10 * B },
        { path: 'base/5/202', sourceSize: 2 * B, targetSize: 4 * B },
      ]
      const blocks = new BlockMap()
      const progress: CompareProgress[] = []
      const summary = await findDifferingBlocks({
        source: sourceFor(mode),
        targetDir,
        files,
        blockSize: B,
        blocks,
        jobs: 3,
        onProgress: (p) => progress.push(p),
      })
      assert.deepEqual(blocksOf(blocks, 'base/5/200'), [
        [3, 1],
        [7, 1],
        [9, 1],
      ])
      assert.deepEqual(blocksOf(blocks, 'base/5/201'), [[1, 1]])
      assert.deepEqual(blocksOf(blocks, 'base/5/202'), [[0, 1]])
      assert.equal(summary.differingBlocks, 5)
      assert.equal(summary.differingBytes, 5 * B)
      const last = progress[progress.length - 1]!
      assert.deepEqual(last, { comparedBytes: 22 * B, totalBytes: 22 * B, differingBytes: 5 * B })
    })

    test('a partial last block is compared only when asked', async () => {
      fs.rmSync(sourceDir, { recursive: true, force: true })
      fs.rmSync(targetDir, { recursive: true, force: true })
      pair('pg_xact/0000', 6, 3 * B + 100, [3 * B + 50])
      const files = [{ path: 'pg_xact/0000', sourceSize: 3 * B + 100, targetSize: 3 * B + 100 }]
      const whole = new BlockMap()
      await findDifferingBlocks({ source: sourceFor(mode), targetDir, files, blockSize: B, blocks: whole })
      assert.equal(whole.fileCount, 0)
      const partial = new BlockMap()
      const summary = await findDifferingBlocks({
        source: sourceFor(mode),
        targetDir,
        files,
        blockSize: B,
        blocks: partial,
        partialBlocks: true,
      })
      assert.deepEqual(blocksOf(partial, 'pg_xact/0000'), [[3, 1]])
      assert.equal(summary.differingBytes, 100)
    })

    test('big files cut in ranges and many small files in batches, several at once', async () => {
      fs.rmSync(sourceDir, { recursive: true, force: true })
      fs.rmSync(targetDir, { recursive: true, force: true })
      const big = 2600 // blocks: more than one batch in every mode
      const changed = [0, 255, 256, 1023, 1024, 1025, 2047, 2599]
      pair(
        'base/5/300',
        7,
        big * B,
        changed.map((b) => b * B + 123),
      )
      const files = [{ path: 'base/5/300', sourceSize: big * B, targetSize: big * B }]
      for (let i = 0; i < 300; i++) {
        const rel = `base/5/${1000 + i}`
        pair(rel, 100 + i, 2 * B, i % 50 === 0 ? [B + i] : [])
        files.push({ path: rel, sourceSize: 2 * B, targetSize: 2 * B })
      }
      const blocks = new BlockMap()
      const summary = await findDifferingBlocks({ source: sourceFor(mode), targetDir, files, blockSize: B, blocks, jobs: 4 })
      assert.deepEqual(blocksOf(blocks, 'base/5/300'), [
        [0, 1],
        [255, 2],
        [1023, 3],
        [2047, 1],
        [2599, 1],
      ])
      for (let i = 0; i < 300; i++) assert.deepEqual(blocksOf(blocks, `base/5/${1000 + i}`), i % 50 === 0 ? [[1, 1]] : [])
      assert.equal(summary.differingBlocks, changed.length + 6)
      assert.equal(summary.comparedBytes, (big + 600) * B)
    })

    // A stopped directory read through its queue and flush must not change: those refuse instead,
    // so the next two are not for the fetched way.
    if (mode !== 'fetched')
      test('a file the source no longer has is reported, not compared', async () => {
        fs.rmSync(sourceDir, { recursive: true, force: true })
        fs.rmSync(targetDir, { recursive: true, force: true })
        pair('base/5/400', 8, 2 * B)
        pair('base/5/401', 9, 2 * B, [5])
        fs.rmSync(path.join(sourceDir, 'base/5/400'))
        const files = [
          { path: 'base/5/400', sourceSize: 2 * B, targetSize: 2 * B },
          { path: 'base/5/401', sourceSize: 2 * B, targetSize: 2 * B },
        ]
        const blocks = new BlockMap()
        const summary = await findDifferingBlocks({ source: sourceFor(mode), targetDir, files, blockSize: B, blocks })
        assert.deepEqual(summary.vanished, ['base/5/400'])
        assert.deepEqual(blocksOf(blocks, 'base/5/400'), [])
        assert.deepEqual(blocksOf(blocks, 'base/5/401'), [[0, 1]])
      })

    if (mode !== 'fetched')
      test('a source that shrank since its listing: the blocks it no longer has differ', async () => {
        fs.rmSync(sourceDir, { recursive: true, force: true })
        fs.rmSync(targetDir, { recursive: true, force: true })
        pair('base/5/500', 10, 6 * B)
        fs.truncateSync(path.join(sourceDir, 'base/5/500'), 4 * B)
        const blocks = new BlockMap()
        await findDifferingBlocks({
          source: sourceFor(mode),
          targetDir,
          files: [{ path: 'base/5/500', sourceSize: 6 * B, targetSize: 6 * B }],
          blockSize: B,
          blocks,
        })
        assert.deepEqual(blocksOf(blocks, 'base/5/500'), [[4, 2]])
      })

    test('a target file shorter than listed is an I/O error', async () => {
      fs.rmSync(sourceDir, { recursive: true, force: true })
      fs.rmSync(targetDir, { recursive: true, force: true })
      pair('base/5/600', 11, 4 * B)
      fs.truncateSync(path.join(targetDir, 'base/5/600'), 2 * B)
      await assert.rejects(
        findDifferingBlocks({
          source: sourceFor(mode),
          targetDir,
          files: [{ path: 'base/5/600', sourceSize: 4 * B, targetSize: 4 * B }],
          blockSize: B,
          blocks: new BlockMap(),
        }),
        (err: Error & { code?: string }) => err.code === 'FILE_IO' && /unexpected EOF/.test(err.message),
      )
    })
  })
}

describe('compare: digests', () => {
  test('LocalSource.blockDigests: SHA-256 per block, the last over what is left; null for no file', async () => {
    fs.rmSync(sourceDir, { recursive: true, force: true })
    fs.rmSync(targetDir, { recursive: true, force: true })
    pair('f', 12, 2 * B + 10)
    const data = fs.readFileSync(path.join(sourceDir, 'f'))
    const got = await new LocalSource(sourceDir).blockDigests(
      [
        { path: 'f', firstBlock: 1, count: 4 },
        { path: 'nope', firstBlock: 0, count: 1 },
      ],
      B,
    )
    assert.equal(got.algorithm, 'sha256')
    assert.deepEqual(got.ranges, [[digestOf(data.subarray(B, 2 * B)), digestOf(data.subarray(2 * B))], null])
    assert.deepEqual(blockDigestsOf(data, data.length, B).length, 3)
    // PostgreSQL's sha256('\x0000...'::bytea) of one zero block, as the server computes it.
    assert.equal(digestOf(Buffer.alloc(B)).toString('hex'), '9f1dcbc35c350d6027f98be0f5c8b43b42ca52b7604459c0c42be3aa88913d47')
  })

  test('the server statement: parameters, and rows checked against the request', () => {
    const ranges = [
      { path: 'base/5/1"x', firstBlock: 3, count: 2 },
      { path: 'global/1262', firstBlock: 0, count: 1 },
    ]
    assert.deepEqual(blockDigestParameters(ranges, B), ['{"base/5/1\\"x","global/1262"}', '{3,0}', '{2,1}', '8192'])
    assert.match(blockDigestsSql(), /pg_read_binary_file\(r\.path, r\.first \* \$4::int4, r\.count \* \$4::int4, true\)/)
    assert.match(blockDigestsSql(), /sha256\(substr/)
    const d1 = Buffer.alloc(32, 1)
    const d2 = Buffer.alloc(32, 2)
    const want = ranges[0]!
    assert.deepEqual(decodeDigestRow([Buffer.from(want.path), Buffer.concat([d1, d2])], want), [d1, d2])
    assert.deepEqual(decodeDigestRow([want.path, `\\x${d1.toString('hex')}`], want), [d1])
    assert.equal(decodeDigestRow([want.path, null], want), null)
    assert.deepEqual(decodeDigestRow([want.path, Buffer.alloc(0)], want), [])
    assert.throws(() => decodeDigestRow(['global/1262', Buffer.alloc(0)], want), /received block digests for file "global\/1262"/)
    assert.throws(() => decodeDigestRow([want.path, Buffer.alloc(96)], want), /96 bytes of block digests for 2 blocks/)
    assert.throws(() => decodeDigestRow([want.path, Buffer.alloc(33)], want), /33 bytes/)
    assert.throws(() => blockDigestParameters([{ path: 'a', firstBlock: 0, count: 0 }], B), /invalid block range/)
  })
})
