// What to fetch from a running source, and the checks on what comes back. Requests are queued as
// runs (contiguous ranges of one file merge, as libpq_source.c merges them) and cut into chunks
// of at most 1 MiB, 1000 chunks (and 32 MiB) a query, only when a batch is taken: the queue costs
// one entry per run, not per megabyte, however much is copied.

import { RewindError } from '../errors.js'
import type { RawField } from './server-wire.js'

/** libpq_source.c MAX_CHUNK_SIZE and MAX_CHUNKS_PER_QUERY. */
export const MAX_CHUNK_SIZE = 1024 * 1024
export const MAX_CHUNKS_PER_QUERY = 1000
/**
 * Our own cap on the bytes one query asks for: pg_rewind has one connection and no reason for
 * it, but with several, a batch is the unit of parallelism, and 1000 full chunks (1 GB) in one
 * query would leave the other connections idle while a few big files are copied.
 */
export const MAX_BYTES_PER_QUERY = 32 * MAX_CHUNK_SIZE

export interface ChunkRequest {
  readonly path: string
  readonly offset: number
  readonly length: number
}

interface Run {
  path: string
  offset: number
  length: number
}

export class FetchQueue {
  private runs: Run[] = []

  get isEmpty(): boolean {
    return this.runs.length === 0
  }

  /** Bytes [offset, offset + length) of `path`; merged with the previous request if it continues it. */
  addRange(path: string, offset: number, length: number): void {
    if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0)) {
      throw new RewindError('INTERNAL', `invalid range ${offset}+${length} queued for file "${path}"`, { path })
    }
    if (length === 0) return
    const last = this.runs[this.runs.length - 1]
    if (last !== undefined && last.path === path && last.offset + last.length === offset) {
      last.length += length
      return
    }
    this.runs.push({ path, offset, length })
  }

  /**
   * A whole file listed with `size` bytes. As pg_rewind, at least one full chunk is asked for, so
   * that a small file that grew since the listing (a configuration file) still comes whole;
   * bigger files are fetched up to their listed size, and WAL replay covers the rest.
   */
  addFile(path: string, size: number): void {
    this.addRange(path, 0, Math.max(size, MAX_CHUNK_SIZE))
  }

  /** Whether what is queued makes a single batch (one query). */
  get fitsOneBatch(): boolean {
    let bytes = 0
    let chunks = 0
    for (const run of this.runs) {
      bytes += run.length
      chunks += Math.ceil(run.length / MAX_CHUNK_SIZE)
      if (bytes > MAX_BYTES_PER_QUERY || chunks > MAX_CHUNKS_PER_QUERY) return false
    }
    return true
  }

  /** Takes everything queued so far, as batches of chunks, cut lazily. */
  *takeBatches(): Generator<ChunkRequest[]> {
    const runs = this.runs
    this.runs = []
    let batch: ChunkRequest[] = []
    let bytes = 0
    for (const run of runs) {
      for (let done = 0; done < run.length; ) {
        const length = Math.min(MAX_CHUNK_SIZE, run.length - done)
        batch.push({ path: run.path, offset: run.offset + done, length })
        done += length
        bytes += length
        if (batch.length === MAX_CHUNKS_PER_QUERY || bytes >= MAX_BYTES_PER_QUERY) {
          yield batch
          batch = []
          bytes = 0
        }
      }
    }
    if (batch.length > 0) yield batch
  }
}

/** An element list for a text[] literal: every element double-quoted, `"` and `\` escaped. */
export function formatTextArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`
}

/** The three array parameters of the fetch statement for `batch`. */
export function fetchParameters(batch: readonly ChunkRequest[]): [paths: string, offsets: string, lengths: string] {
  return [
    formatTextArray(batch.map((r) => r.path)),
    `{${batch.map((r) => r.offset).join(',')}}`,
    `{${batch.map((r) => r.length).join(',')}}`,
  ]
}

/** The fetch statement of libpq_source.c: one row per requested chunk, in request order. */
export const FETCH_CHUNKS_SQL =
  'SELECT path, begin,\n' +
  '  pg_read_binary_file(path, begin, len, true) AS chunk\n' +
  'FROM unnest ($1::text[], $2::int8[], $3::int4[]) as x(path, begin, len)'

// pg_type OIDs (catalog/pg_type.dat)
export const TEXTOID = 25
export const INT8OID = 20
export const BYTEAOID = 17

export interface FetchedChunk {
  readonly path: string
  readonly offset: number
  /** null: the file no longer exists on the source. */
  readonly data: Buffer | null
}

function fetchError(message: string, path?: string): RewindError {
  return new RewindError('SOURCE_QUERY', message, path === undefined ? {} : { path })
}

/** A bytea in text format (bytea_output = hex): `\x` and two hex digits per byte. */
function decodeHexBytea(text: string): Buffer {
  if (!text.startsWith('\\x') || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text.slice(2))) {
    throw fetchError('unexpected result format while fetching remote files')
  }
  return Buffer.from(text.slice(2), 'hex')
}

/** Decodes one row (path, begin, chunk) in binary or text format. */
export function decodeChunkRow(fields: readonly RawField[], binary: boolean): FetchedChunk {
  if (fields.length !== 3) throw fetchError('unexpected result set size while fetching remote files')
  const [pathField, beginField, chunkField] = fields
  if (pathField === null || pathField === undefined || beginField === null || beginField === undefined) {
    throw fetchError('unexpected null values in result while fetching remote files')
  }
  if (
    binary !== Buffer.isBuffer(pathField) ||
    binary !== Buffer.isBuffer(beginField) ||
    (chunkField !== null && binary !== Buffer.isBuffer(chunkField))
  ) {
    throw fetchError('unexpected result format while fetching remote files')
  }
  let path: string
  let offset: number
  let data: Buffer | null
  if (binary) {
    const begin = beginField as Buffer
    if (begin.length !== 8) throw fetchError('unexpected result length while fetching remote files')
    path = (pathField as Buffer).toString('utf8')
    offset = Number(begin.readBigInt64BE(0))
    data = chunkField as Buffer | null
  } else {
    path = pathField as string
    offset = Number(beginField as string)
    data = chunkField === null ? null : decodeHexBytea(chunkField as string)
  }
  return { path, offset, data }
}

/** The checks pg_rewind makes of each received chunk against what was asked, with its messages. */
export function checkChunk(got: FetchedChunk, want: ChunkRequest): void {
  if (got.path !== want.path) throw fetchError(`received data for file "${got.path}", when requested for "${want.path}"`, want.path)
  if (got.offset !== want.offset) {
    throw fetchError(`received data at offset ${got.offset} of file "${want.path}", when requested for offset ${want.offset}`, want.path)
  }
  if (got.data !== null && got.data.length > want.length)
    throw fetchError(`received more than requested for file "${want.path}"`, want.path)
}

/** The result's columns must be text, int8, bytea, as the statement says. */
export function checkChunkColumns(types: readonly number[]): void {
  if (types.length !== 3) throw fetchError('unexpected result set size while fetching remote files')
  if (types[0] !== TEXTOID || types[1] !== INT8OID || types[2] !== BYTEAOID) {
    throw fetchError(`unexpected data types in result set while fetching remote files: ${types.join(' ')}`)
  }
}
