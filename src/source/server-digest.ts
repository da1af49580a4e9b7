// Block digests computed by a running source (src/compare): each range read with
// pg_read_binary_file(text, bigint, bigint, boolean), one of the four functions a rewind role is
// granted, cut into blocks in SQL, each block hashed with sha256(), the digests of a range returned as one
// bytea. So a comparison moves 32 bytes per 8 kB block over the network, not the block.

import { DIGEST_LENGTH } from '../compare/digest.js'
import { RewindError } from '../errors.js'
import { formatTextArray } from './server-fetch.js'
import type { RawField } from './server-wire.js'
import type { BlockDigestRange } from './source.js'

/** Bytes a digest query may read on the server, at most (the comparison asks for about this much). */
export const MAX_DIGEST_BYTES_PER_QUERY = 64 * 1024 * 1024

/**
 * One row per range, in the order asked: (path, digests), digests NULL for a file that is not
 * there, empty past its end. $4 is the block size.
 */
export function blockDigestsSql(): string {
  const digests = "string_agg(sha256(substr(x.d, b * $4::int4 + 1, $4::int4)), ''::bytea ORDER BY b)"
  return (
    'SELECT x.path, CASE WHEN x.d IS NULL THEN NULL ELSE coalesce(\n' +
    `  (SELECT ${digests} FROM generate_series(0, (length(x.d) + $4::int4 - 1) / $4::int4 - 1) AS b), ''::bytea) END\n` +
    'FROM (SELECT r.path, pg_read_binary_file(r.path, r.first * $4::int4, r.count * $4::int4, true) AS d\n' +
    '      FROM unnest($1::text[], $2::int8[], $3::int8[]) AS r(path, first, count)) AS x'
  )
}

/** The four parameters of the digest statement. */
export function blockDigestParameters(ranges: readonly BlockDigestRange[], blockSize: number): string[] {
  let bytes = 0
  for (const r of ranges) {
    if (!(Number.isSafeInteger(r.firstBlock) && r.firstBlock >= 0 && Number.isSafeInteger(r.count) && r.count > 0)) {
      throw new RewindError('INTERNAL', `invalid block range ${r.firstBlock}+${r.count} asked of file "${r.path}"`, { path: r.path })
    }
    bytes += r.count * blockSize
  }
  if (bytes > MAX_DIGEST_BYTES_PER_QUERY) throw new RewindError('INTERNAL', `block digests of ${bytes} bytes asked in one query`)
  return [
    formatTextArray(ranges.map((r) => r.path)),
    `{${ranges.map((r) => r.firstBlock).join(',')}}`,
    `{${ranges.map((r) => r.count).join(',')}}`,
    String(blockSize),
  ]
}

function digestError(message: string, path: string): RewindError {
  return new RewindError('SOURCE_QUERY', message, { path })
}

/** One row of the digest statement, checked against the range asked for: its block digests, or null. */
export function decodeDigestRow(fields: readonly RawField[], want: BlockDigestRange): Buffer[] | null {
  if (fields.length !== 2) throw digestError('unexpected result set size while computing block digests', want.path)
  const [pathField, digestField] = fields
  const got = Buffer.isBuffer(pathField) ? pathField.toString('utf8') : pathField
  if (got !== want.path) throw digestError(`received block digests for file "${got}", when requested for "${want.path}"`, want.path)
  if (digestField === null || digestField === undefined) return null
  let bytes: Buffer
  if (Buffer.isBuffer(digestField)) bytes = digestField
  else if (/^\\x(?:[0-9a-fA-F]{2})*$/.test(digestField)) bytes = Buffer.from(digestField.slice(2), 'hex')
  else throw digestError(`unexpected result format while computing block digests of file "${want.path}"`, want.path)
  const size = DIGEST_LENGTH
  if (bytes.length % size !== 0 || bytes.length / size > want.count) {
    throw digestError(`received ${bytes.length} bytes of block digests for ${want.count} blocks of file "${want.path}"`, want.path)
  }
  const digests: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) digests.push(bytes.subarray(at, at + size))
  return digests
}
