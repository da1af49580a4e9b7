// Blocks fetched from a running source as patches of the target's copies (Source.queueBlockPatch):
// the request carries the digests of the target's pieces of each block, the server reads the
// block with pg_read_binary_file (the rewind role's grant), hashes its own pieces in SQL and sends
// only those that differ, with a bit mask saying which. A pgbench-changed page differs from the
// target's in a few of its 32 pieces, so a patch moves about an eighth of the block.

import { PATCH_PIECES, PIECE_DIGEST_LENGTH } from '../compare/digest.js'
import { RewindError } from '../errors.js'
import { formatTextArray } from './server-fetch.js'
import type { RawField } from './server-wire.js'

/** Blocks one patch query asks for: about 50 ms of the server's hashing, 256 kB of digests. */
export const PATCH_BLOCKS_PER_QUERY = 1024

export interface PatchRequest {
  readonly path: string
  readonly block: number
  readonly blockSize: number
  /** PATCH_PIECES digests of the target's pieces of the block. */
  readonly digests: Buffer
}

/**
 * One row per block, in the order asked: (path, block, length of the source's block: NULL for no
 * file, mask of the pieces sent: NULL unless the block is whole, data: the pieces sent in order, or
 * what there is of a short block). $3 holds the target's piece digests, PATCH_PIECES per block.
 */
export const BLOCK_PATCH_SQL =
  'SELECT x.path, x.blk, length(x.d),\n' +
  '  CASE WHEN length(x.d) = $4::int4 THEN coalesce(y.mask, 0) END,\n' +
  '  CASE WHEN length(x.d) = $4::int4 THEN y.data ELSE x.d END\n' +
  'FROM (SELECT r.path, r.blk, r.ord, pg_read_binary_file(r.path, r.blk * $4::int4, $4::int4, true) AS d\n' +
  '      FROM unnest($1::text[], $2::int8[]) WITH ORDINALITY AS r(path, blk, ord)) AS x\n' +
  'LEFT JOIN LATERAL (\n' +
  `  SELECT sum(1::int8 << p)::int8 AS mask, string_agg(substr(x.d, p * ($4::int4 / ${PATCH_PIECES}) + 1, $4::int4 / ${PATCH_PIECES}), ''::bytea ORDER BY p) AS data\n` +
  `  FROM generate_series(0, ${PATCH_PIECES - 1}) AS p\n` +
  '  WHERE length(x.d) = $4::int4\n' +
  `    AND substr(sha256(substr(x.d, p * ($4::int4 / ${PATCH_PIECES}) + 1, $4::int4 / ${PATCH_PIECES})), 1, ${PIECE_DIGEST_LENGTH})\n` +
  `        <> substr($3::bytea, ((x.ord::int4 - 1) * ${PATCH_PIECES} + p) * ${PIECE_DIGEST_LENGTH} + 1, ${PIECE_DIGEST_LENGTH})\n` +
  ') AS y ON true\n' +
  'ORDER BY x.ord'

/** The statement's parameters: the digests go as one bytea in binary format. */
export function blockPatchParameters(batch: readonly PatchRequest[]): [string, string, Buffer, string] {
  const blockSize = batch[0]?.blockSize ?? 0
  for (const r of batch) {
    if (
      !(Number.isSafeInteger(r.block) && r.block >= 0) ||
      r.digests.length !== PATCH_PIECES * PIECE_DIGEST_LENGTH ||
      r.blockSize !== blockSize ||
      !(blockSize > 0 && blockSize % PATCH_PIECES === 0)
    ) {
      throw new RewindError('INTERNAL', `invalid block patch request for block ${r.block} of file "${r.path}"`, { path: r.path })
    }
  }
  return [
    formatTextArray(batch.map((r) => r.path)),
    `{${batch.map((r) => r.block).join(',')}}`,
    Buffer.concat(batch.map((r) => r.digests)),
    String(blockSize),
  ]
}

export type PatchRow =
  /** The source has no such file. */
  | { readonly kind: 'missing' }
  /** The source's block is shorter than a block (the file shrank): what there is of it. */
  | { readonly kind: 'short'; readonly data: Buffer }
  /** The pieces that differ, [offset in the file, bytes]. */
  | { readonly kind: 'pieces'; readonly pieces: Array<[number, Buffer]> }

function patchError(message: string, path: string): RewindError {
  return new RewindError('SOURCE_QUERY', message, { path })
}

function int64(field: RawField, what: string, path: string): number {
  const value = Buffer.isBuffer(field) ? (field.length === 8 ? Number(field.readBigInt64BE(0)) : NaN) : Number(field)
  if (!Number.isSafeInteger(value)) throw patchError(`unexpected ${what} while fetching block patches of file "${path}"`, path)
  return value
}

/** One row of the patch statement, binary format, checked against the block asked for. */
export function decodePatchRow(fields: readonly RawField[], want: PatchRequest): PatchRow {
  const { blockSize } = want
  if (fields.length !== 5) throw patchError('unexpected result set size while fetching block patches', want.path)
  const [pathField, blockField, lengthField, maskField, dataField] = fields
  if (!Buffer.isBuffer(pathField) || !Buffer.isBuffer(blockField)) {
    throw patchError(`unexpected result format while fetching block patches of file "${want.path}"`, want.path)
  }
  const path = pathField.toString('utf8')
  if (path !== want.path) throw patchError(`received a block patch for file "${path}", when requested for "${want.path}"`, want.path)
  const block = int64(blockField, 'block number', want.path)
  if (block !== want.block) {
    throw patchError(`received a patch of block ${block} of file "${want.path}", when requested for block ${want.block}`, want.path)
  }
  if (lengthField === null || lengthField === undefined) return { kind: 'missing' }
  const length = Buffer.isBuffer(lengthField) && lengthField.length === 4 ? lengthField.readInt32BE(0) : -1
  const data = dataField === null || dataField === undefined ? Buffer.alloc(0) : dataField
  if (!Buffer.isBuffer(data) || length < 0 || length > blockSize) {
    throw patchError(`unexpected result format while fetching block patches of file "${want.path}"`, want.path)
  }
  const offset = block * blockSize
  if (length < blockSize) {
    if (data.length !== length)
      throw patchError(`received ${data.length} bytes of a ${length}-byte block of file "${want.path}"`, want.path)
    return { kind: 'short', data }
  }
  const mask = maskField === null || maskField === undefined ? -1 : int64(maskField, 'piece mask', want.path)
  const piece = blockSize / PATCH_PIECES
  const pieces: Array<[number, Buffer]> = []
  if (mask >= 0 && mask < 2 ** PATCH_PIECES) {
    let at = 0
    for (let p = 0; p < PATCH_PIECES; p++) {
      if (Math.floor(mask / 2 ** p) % 2 === 0) continue
      const last = pieces[pieces.length - 1]
      const bytes = data.subarray(at, at + piece)
      // Adjacent pieces go as one write.
      if (last !== undefined && last[0] + last[1].length === offset + p * piece) last[1] = data.subarray(at - last[1].length, at + piece)
      else pieces.push([offset + p * piece, bytes])
      at += piece
    }
    if (at === data.length) return { kind: 'pieces', pieces }
  }
  throw patchError(`received ${data.length} bytes for piece mask ${mask} of block ${block} of file "${want.path}"`, want.path)
}
