// Block digests computed here, as a server computes them in SQL (sha256(bytea)): one digest per
// block of a buffer, the last one over what is left when the buffer ends inside a block. A leaf
// module: the local source and the comparison both use it.

import crypto from 'node:crypto'
import type { DigestAlgorithm } from '../source/source.js'

export const DIGEST_ALGORITHM: DigestAlgorithm = 'sha256'
/** Bytes of one digest. */
export const DIGEST_LENGTH = 32

// crypto.hash (Node.js 20.12+) skips the Hash object: about twice as fast on 8 kB blocks.
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer }).hash

export function digestOf(data: Buffer): Buffer {
  return oneShot ? oneShot(DIGEST_ALGORITHM, data, 'buffer') : crypto.createHash(DIGEST_ALGORITHM).update(data).digest()
}

/** Digests of the blocks of data[0, length), blockSize bytes each, the last one possibly shorter. */
export function blockDigestsOf(data: Buffer, length: number, blockSize: number): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < length; at += blockSize) out.push(digestOf(data.subarray(at, Math.min(at + blockSize, length))))
  return out
}

/**
 * A block fetched as a patch (Source.queueBlockPatch) is cut into this many pieces; only pieces
 * whose digest differs from the target's travel. 32 pieces of 256 bytes of an 8 kB page: a
 * pgbench-changed heap or index page differs in about 4 of them (measured at scale 200).
 */
export const PATCH_PIECES = 32
/** A piece's digest: the first bytes of its SHA-256 (a 2^-64 chance of missing a difference). */
export const PIECE_DIGEST_LENGTH = 8

/** Writes the digests of the PATCH_PIECES pieces of `block` into `into` from `at`. */
export function pieceDigestsOf(block: Buffer, into: Buffer, at: number): void {
  const piece = block.length / PATCH_PIECES
  for (let p = 0; p < PATCH_PIECES; p++) {
    digestOf(block.subarray(p * piece, (p + 1) * piece)).copy(into, at + p * PIECE_DIGEST_LENGTH, 0, PIECE_DIGEST_LENGTH)
  }
}
