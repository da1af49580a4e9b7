// The block patch statement's parameters and the checks on its rows (src/source/server-patch.ts);
// the statement itself runs against real servers in e2e/server-source.test.ts.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PATCH_PIECES, PIECE_DIGEST_LENGTH, pieceDigestsOf, digestOf } from '../../src/compare/digest.js'
import { isNetworkAddress } from '../../src/source/server-session.js'
import { BLOCK_PATCH_SQL, blockPatchParameters, decodePatchRow, type PatchRequest } from '../../src/source/server-patch.js'

const B = 8192
const PIECE = B / PATCH_PIECES

function int8(n: number | bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigInt64BE(BigInt(n))
  return b
}
function int4(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

const want: PatchRequest = { path: 'base/5/16384', block: 7, blockSize: B, digests: Buffer.alloc(PATCH_PIECES * PIECE_DIGEST_LENGTH) }
const row = (fields: Array<Buffer | null>) => decodePatchRow([Buffer.from(want.path), int8(7), ...fields], want)

describe('block patches', () => {
  test('piece digests: the first 8 bytes of the SHA-256 of each 256-byte piece', () => {
    const block = Buffer.alloc(B)
    for (let i = 0; i < B; i++) block[i] = (i * 7) & 0xff
    const out = Buffer.alloc(4 + PATCH_PIECES * PIECE_DIGEST_LENGTH)
    pieceDigestsOf(block, out, 4)
    for (let p = 0; p < PATCH_PIECES; p++) {
      const expected = digestOf(block.subarray(p * PIECE, (p + 1) * PIECE)).subarray(0, PIECE_DIGEST_LENGTH)
      assert.ok(out.subarray(4 + p * PIECE_DIGEST_LENGTH, 4 + (p + 1) * PIECE_DIGEST_LENGTH).equals(expected), `piece ${p}`)
    }
  })

  test('parameters: paths, blocks, the digests as one binary bytea; bad requests refused', () => {
    const other = { ...want, path: 'base/5/1"x', block: 0, digests: Buffer.alloc(PATCH_PIECES * PIECE_DIGEST_LENGTH, 1) }
    const [paths, blocks, digests, blockSize] = blockPatchParameters([want, other])
    assert.equal(paths, '{"base/5/16384","base/5/1\\"x"}')
    assert.equal(blocks, '{7,0}')
    assert.ok(digests.equals(Buffer.concat([want.digests, other.digests])))
    assert.equal(blockSize, '8192')
    assert.match(BLOCK_PATCH_SQL, /pg_read_binary_file\(r\.path, r\.blk \* \$4::int4, \$4::int4, true\)/)
    assert.throws(() => blockPatchParameters([{ ...want, digests: Buffer.alloc(3) }]), /invalid block patch request/)
    assert.throws(() => blockPatchParameters([want, { ...want, blockSize: 4096 }]), /invalid block patch request/)
    assert.throws(() => blockPatchParameters([{ ...want, block: -1 }]), /invalid block patch request/)
  })

  test('rows: pieces at their offsets (adjacent ones as one), a short block, a missing file', () => {
    const data = Buffer.alloc(3 * PIECE)
    data.fill(1, 0, PIECE)
    data.fill(2, PIECE, 2 * PIECE)
    data.fill(3, 2 * PIECE)
    // Pieces 0, 1 and 31.
    const got = row([int4(B), int8(2 ** 0 + 2 ** 1 + 2 ** 31), data])
    assert.equal(got.kind, 'pieces')
    const pieces = got.kind === 'pieces' ? got.pieces : []
    assert.deepEqual(
      pieces.map(([at, bytes]) => [at, bytes.length, bytes[0], bytes[bytes.length - 1]]),
      [
        [7 * B, 2 * PIECE, 1, 2],
        [7 * B + 31 * PIECE, PIECE, 3, 3],
      ],
    )
    assert.deepEqual(row([int4(B), int8(0), null]), { kind: 'pieces', pieces: [] })
    assert.deepEqual(row([int4(100), null, Buffer.alloc(100, 9)]), { kind: 'short', data: Buffer.alloc(100, 9) })
    assert.deepEqual(row([null, null, null]), { kind: 'missing' })
  })

  test('rows that do not match the request are refused', () => {
    assert.throws(
      () => decodePatchRow([Buffer.from('base/5/1'), int8(7), int4(B), int8(0), null], want),
      /received a block patch for file "base\/5\/1"/,
    )
    assert.throws(
      () => decodePatchRow([Buffer.from(want.path), int8(8), int4(B), int8(0), null], want),
      /patch of block 8 .* requested for block 7/,
    )
    assert.throws(() => row([int4(B), int8(1), Buffer.alloc(PIECE + 1)]), /received 257 bytes for piece mask 1/)
    assert.throws(() => row([int4(B), int8(2 ** 32), Buffer.alloc(0)]), /piece mask/)
    assert.throws(() => row([int4(B), int8(-1), Buffer.alloc(0)]), /piece mask/)
    assert.throws(() => row([int4(B + 1), null, Buffer.alloc(0)]), /unexpected result format/)
    assert.throws(() => row([int4(100), null, Buffer.alloc(99)]), /received 99 bytes of a 100-byte block/)
    assert.throws(() => decodePatchRow([Buffer.from(want.path), int8(7), int4(B)], want), /unexpected result set size/)
  })

  test('patches are the default across a network only: not over a Unix socket nor a loopback address', () => {
    for (const local of [undefined, '', '127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])
      assert.equal(isNetworkAddress(local), false, local)
    for (const remote of ['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.5', 'fe80::1', '2001:db8::1'])
      assert.equal(isNetworkAddress(remote), true, remote)
  })
})
