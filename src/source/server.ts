// A running primary or standby as the source, over node-postgres, doing what pg_rewind's
// libpq_source.c does: a recursive pg_ls_dir listing, pg_read_binary_file for single files, and
// batches of up to 1000 chunks of 1 MiB fetched with one prepared statement, here over several
// connections at once. Rows stream to the sink one by one; a server that stops answering fails
// within the timeout, and any failure closes every connection.

import os from 'node:os'
import path from 'node:path'
import type { FieldDef } from 'pg'
import { RewindError } from '../errors.js'
import type { Emit } from '../events.js'
import type { ControlFile } from '../pg/control.js'
import { formatLsn, parseLsn } from '../pg/lsn.js'
import { profileForServerVersion, type VersionProfile } from '../pg/versions.js'
import { formatPrimaryConninfo } from './conninfo-format.js'
import { parseConninfo } from './conninfo-parse.js'
import { resolveConnection, type ResolveOptions, type ResolvedConnection } from './conninfo-resolve.js'
import {
  checkChunk,
  checkChunkColumns,
  decodeChunkRow,
  FETCH_CHUNKS_SQL,
  fetchParameters,
  FetchQueue,
  type ChunkRequest,
} from './server-fetch.js'
import { connectAnother, connectFirst, isTooManyConnections, sourceError, type SourceConnection } from './server-session.js'
import { isSafeRelativePath } from './path-policy.js'
import { blockDigestParameters, blockDigestsSql, decodeDigestRow } from './server-digest.js'
import { DIGEST_ALGORITHM } from '../compare/digest.js'
import { BLOCK_PATCH_SQL, blockPatchParameters, decodePatchRow, PATCH_BLOCKS_PER_QUERY, type PatchRequest } from './server-patch.js'
import { binaryRowsSupported, StreamingQuery, type RawField } from './server-wire.js'
import type { BlockDigestRange, BlockDigests, ChunkSink, FileEntry, Source, SourceWalEnd } from './source.js'

export interface ServerSourceOptions {
  /** Where PG* variables, HOME and PGPASSFILE come from. */
  readonly env: NodeJS.ProcessEnv
  /** Parallel connections for fetching (default 4). */
  readonly jobs?: number
  /** A server silent this long while we wait on it fails with SOURCE_TIMEOUT (default 60 s). */
  readonly timeoutMs?: number
  readonly emit?: Emit
  /** The OS user name, libpq's default user (default: the process's). */
  readonly osUser?: string
  /** Socket directory and home directory overrides, see ResolveOptions. */
  readonly resolve?: ResolveOptions
}

const DEFAULT_JOBS = 4
const DEFAULT_TIMEOUT_MS = 60_000
const FETCH_STATEMENT = 'fetch_chunks_stmt'

// The recursive listing of libpq_source.c (unchanged from 9.5 to 18), except for the tablespace
// locations: a scalar subquery for pg_tblspc entries instead of a join, so that no hash join
// holds every row back until the whole tree was walked. Rows stream out as directories are
// read, and a big cluster's listing never looks like a silent server to the timeout.
const LIST_FILES_SQL =
  'WITH RECURSIVE files (path, filename, size, isdir) AS (\n' +
  "  SELECT '' AS path, filename, size, isdir FROM\n" +
  "  (SELECT pg_ls_dir('.', true, false) AS filename) AS fn,\n" +
  '        pg_stat_file(fn.filename, true) AS this\n' +
  '  UNION ALL\n' +
  "  SELECT parent.path || parent.filename || '/' AS path,\n" +
  '         fn, this.size, this.isdir\n' +
  '  FROM files AS parent,\n' +
  '       pg_ls_dir(parent.path || parent.filename, true, false) AS fn,\n' +
  "       pg_stat_file(parent.path || parent.filename || '/' || fn, true) AS this\n" +
  "       WHERE parent.isdir = 't'\n" +
  ')\n' +
  'SELECT path || filename, size, isdir,\n' +
  "       CASE WHEN path = 'pg_tblspc/' THEN\n" +
  '         (SELECT pg_tablespace_location(t.oid) FROM pg_tablespace t WHERE t.oid::text = files.filename)\n' +
  '       END AS link_target\n' +
  'FROM files\n'

const LIST_WAL_SQL =
  "SELECT fn, this.size, this.isdir FROM pg_ls_dir('pg_wal', true, false) AS fn, pg_stat_file('pg_wal/' || fn, true) AS this"

/** SQLSTATE undefined_file: pg_read_binary_file on a file that is not there. */
const UNDEFINED_FILE = '58P01'

/**
 * Connects to the server `conninfoText` names (libpq syntax, defaults and environment), sets the
 * session up as pg_rewind does and checks full_page_writes. Extra connections for fetching are
 * opened at the first flush.
 */
export async function openServerSource(conninfoText: string, opts: ServerSourceOptions): Promise<ServerSource> {
  const emit = opts.emit ?? (() => {})
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const resolved = resolveConnection(parseConninfo(conninfoText), opts.env, opts.osUser ?? currentOsUser(opts.env), {
    defaultConnectTimeoutMs: timeoutMs,
    ...opts.resolve,
  })
  for (const message of resolved.warnings) emit({ type: 'warning', code: 'SOURCE_PASSFILE', message })
  const first = await connectFirst(resolved)
  const source = new ServerSource(resolved, first, { jobs: opts.jobs ?? DEFAULT_JOBS, timeoutMs, emit })
  try {
    await source.setUp()
  } catch (err) {
    await source.close()
    throw err
  }
  return source
}

export class ServerSource implements Source {
  readonly kind = 'server' as const
  readonly running = true
  readonly description: string
  /** server_version_num of the source, e.g. 170004. */
  serverVersionNum = 0
  private readonly conns: SourceConnection[]
  private readonly queue = new FetchQueue()
  private patches: PatchRequest[] = []
  private readonly jobs: number
  private readonly timeoutMs: number
  private readonly emit: Emit
  private readonly watchdog: NodeJS.Timeout
  private failure: RewindError | null = null
  private extraOpened = false
  private extraConnections: Promise<void> | null = null
  private closed = false
  /** The connections block digests are computed on, each lent to one query at a time. */
  private digestPool: Promise<void> | null = null
  private readonly idle: SourceConnection[] = []
  private readonly waiting: Array<(conn: SourceConnection) => void> = []

  constructor(
    private readonly resolved: ResolvedConnection,
    first: SourceConnection,
    opts: { jobs: number; timeoutMs: number; emit: Emit },
  ) {
    this.conns = [first]
    this.description = first.description
    this.jobs = Math.max(1, Math.floor(opts.jobs))
    this.timeoutMs = opts.timeoutMs
    this.emit = opts.emit
    this.watchdog = setInterval(() => this.checkSilence(), Math.min(1000, Math.max(50, this.timeoutMs / 4)))
    this.watchdog.unref()
  }

  /** Cuts off connections whose server stayed silent past the timeout while we waited on it. */
  private checkSilence(): void {
    const now = Date.now()
    for (const conn of this.conns) {
      const silent = conn.silentFor(now)
      if (silent !== null && silent > this.timeoutMs) {
        conn.timedOut = true
        conn.destroy()
      }
    }
  }

  /** What the source's major changes in its sessions and in pg_rewind's messages about it. */
  private get serverProfile(): VersionProfile {
    return profileForServerVersion(this.serverVersionNum)
  }

  /** Session settings and checks of init_libpq_conn, on the first connection. */
  async setUp(): Promise<void> {
    const conn = this.conns[0]!
    const version = await this.simpleValue(conn, 'SHOW server_version_num')
    this.serverVersionNum = Number(version)
    await this.configure(conn)
    const fpw = await this.simpleValue(conn, 'SHOW full_page_writes')
    if (fpw !== 'on') {
      // We can get torn pages if a page is modified while pg_read_binary_file() reads it; full
      // page images in WAL are what repairs them.
      const name = this.serverProfile.quotesSettingNames ? '"full_page_writes"' : 'full_page_writes'
      throw new RewindError('SOURCE_FULL_PAGE_WRITES_OFF', `${name} must be enabled in the source server`)
    }
  }

  private async configure(conn: SourceConnection): Promise<void> {
    const commands = [
      'SET statement_timeout = 0',
      'SET lock_timeout = 0',
      'SET idle_in_transaction_session_timeout = 0',
      ...(this.serverProfile.hasTransactionTimeout ? ['SET transaction_timeout = 0'] : []),
      // We don't intend to do any updates: keep us honest.
      'SET default_transaction_read_only = on',
      // The planner costs the file listing's recursive query at millions of rows (a function scan
      // is 1,000 rows to it), so a server with JIT compiled it: 207 of its 233 ms on a cluster of
      // 1,021 files. Nothing walrewind asks gains from JIT.
      'SET jit = off',
      ...(binaryRowsSupported ? [] : ["SET bytea_output = 'hex'"]),
    ]
    for (const sql of commands) {
      try {
        await conn.query(sql)
      } catch (err) {
        throw this.fail(sourceError(`error running query (${sql}) in source server`, err, conn, this.timeoutMs))
      }
    }
    try {
      await conn.query("SELECT pg_catalog.set_config('search_path', '', false)")
    } catch (err) {
      throw this.fail(sourceError('could not clear search_path', err, conn, this.timeoutMs))
    }
  }

  private async simpleValue(conn: SourceConnection, sql: string): Promise<unknown> {
    let res
    try {
      res = await conn.query(sql)
    } catch (err) {
      throw this.fail(sourceError(`error running query (${sql}) on source server`, err, conn, this.timeoutMs))
    }
    if (res.fields.length !== 1 || res.rows.length !== 1 || res.rows[0]![0] === null) {
      throw this.fail(new RewindError('SOURCE_QUERY', 'unexpected result set from query'))
    }
    return res.rows[0]![0]
  }

  private check(): void {
    if (this.failure !== null) throw this.failure
    if (this.closed) throw new RewindError('INTERNAL', `source server ${this.description} was already closed`)
  }

  /** Records the first failure and drops every connection: nothing more is asked of this server. */
  private fail(err: RewindError): RewindError {
    if (this.failure === null) {
      this.failure = err
      for (const conn of this.conns) conn.destroy()
      clearInterval(this.watchdog)
    }
    return err
  }

  async listFiles(): Promise<FileEntry[]> {
    this.check()
    const conn = this.conns[0]!
    let res
    try {
      res = await conn.query(LIST_FILES_SQL)
    } catch (err) {
      throw this.fail(sourceError('could not fetch file list', err, conn, this.timeoutMs))
    }
    if (res.fields.length !== 4) throw this.fail(new RewindError('SOURCE_FILE_LIST', 'unexpected result set while fetching file list'))
    const entries: FileEntry[] = []
    for (const row of res.rows) {
      const [name, size, isdir, linkTarget] = row as [string, string | null, boolean | null, string | null]
      // Removed while the query ran: as pg_rewind, not an error.
      if (size === null) continue
      const bytes = Number(size)
      if (!Number.isSafeInteger(bytes) || bytes < 0) {
        throw this.fail(
          new RewindError('SOURCE_FILE_LIST', `unexpected size ${size} for file "${name}" in source file list`, { path: name }),
        )
      }
      if (linkTarget !== null && linkTarget !== '') {
        // A tablespace: an absolute location is a symlink in pg_tblspc; a relative one is an
        // in-place tablespace, a plain directory inside the data directory.
        if (path.isAbsolute(linkTarget)) entries.push({ path: name, type: 'symlink', size: 0, linkTarget })
        else entries.push({ path: name, type: 'directory', size: 0 })
      } else if (isdir === true) {
        entries.push({ path: name, type: 'directory', size: 0 })
      } else {
        entries.push({ path: name, type: 'file', size: bytes })
      }
    }
    // The recursive query yields a level at a time; sorted, a parent still precedes its children.
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    return entries
  }

  async listWalFiles(): Promise<FileEntry[]> {
    this.check()
    const conn = this.conns[0]!
    let res
    try {
      res = await conn.query(LIST_WAL_SQL)
    } catch (err) {
      throw this.fail(sourceError('could not fetch the WAL file list', err, conn, this.timeoutMs))
    }
    const entries: FileEntry[] = []
    for (const row of res.rows) {
      const [name, size, isdir] = row as [string, string | null, boolean | null]
      if (size === null || isdir !== false) continue
      const bytes = Number(size)
      if (!Number.isSafeInteger(bytes) || bytes < 0 || name.includes('/') || !isSafeRelativePath(`pg_wal/${name}`)) {
        throw this.fail(
          new RewindError('SOURCE_FILE_LIST', `unexpected entry "${name}" (size ${size}) in source WAL file list`, { path: name }),
        )
      }
      entries.push({ path: `pg_wal/${name}`, type: 'file', size: bytes })
    }
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  async readFile(file: string): Promise<Buffer> {
    const data = await this.fetchWhole(file, false)
    return data!
  }

  async readFileIfExists(file: string): Promise<Buffer | null> {
    return this.fetchWhole(file, true)
  }

  /** pg_read_binary_file($1), binary result; the one-argument form is one of the four GRANTs. */
  private async fetchWhole(file: string, missingOk: boolean): Promise<Buffer | null> {
    this.check()
    const conn = this.conns[0]!
    const rows: RawField[][] = []
    const q = new StreamingQuery({
      text: 'SELECT pg_read_binary_file($1)',
      values: [file],
      binary: binaryRowsSupported,
      onRow: (fields) => {
        rows.push(fields)
      },
    })
    try {
      await conn.stream(q)
    } catch (err) {
      if ((err as { code?: string }).code === UNDEFINED_FILE && !conn.timedOut) {
        if (missingOk) return null
        throw new RewindError('FILE_IO', `could not fetch remote file "${file}": ${(err as Error).message}`, { path: file }, { cause: err })
      }
      throw this.fail(sourceError(`could not fetch remote file "${file}"`, err, conn, this.timeoutMs))
    }
    const value = rows.length === 1 && rows[0]!.length === 1 ? rows[0]![0] : null
    if (value === null || value === undefined) {
      throw this.fail(new RewindError('SOURCE_QUERY', `unexpected result set while fetching remote file "${file}"`, { path: file }))
    }
    const data = typeof value === 'string' ? hexBytea(value, file) : value
    this.emit({ type: 'debug', message: `fetched file "${file}", length ${data.length}` })
    return data
  }

  queueRange(file: string, offset: number, length: number): void {
    this.queue.addRange(file, offset, length)
  }

  queueFile(file: string, expectedSize: number): void {
    this.queue.addFile(file, expectedSize)
  }

  get overNetwork(): boolean {
    return this.conns[0]?.overNetwork ?? false
  }

  queueBlockPatch(file: string, block: number, blockSize: number, pieceDigests: Buffer): void {
    // Patches are decoded from binary rows only; without them the block comes whole.
    if (!binaryRowsSupported) this.queue.addRange(file, block * blockSize, blockSize)
    else this.patches.push({ path: file, block, blockSize, digests: pieceDigests })
  }

  async flush(sink: ChunkSink): Promise<void> {
    this.check()
    if (this.queue.isEmpty && this.patches.length === 0) return
    // What fits in one query (a chunk of WAL the reader asks for, a small file) goes over the
    // first connection at once; the others open meanwhile, for the copy: waiting for them held the
    // first read of the source's WAL up 100-150 ms over the loopback.
    this.extraConnections ??= this.openExtraConnections()
    this.extraConnections.catch(() => {}) // awaited below or by a later flush
    if (!(this.patches.length === 0 && this.queue.fitsOneBatch)) await this.extraConnections
    const batches = this.takeBatches()
    const missing = new Set<string>()
    const worker = async (conn: SourceConnection) => {
      for (;;) {
        if (this.failure !== null) return
        const next = batches.next()
        if (next.done === true) return
        if (next.value.kind === 'chunks') await this.fetchBatch(conn, next.value.batch, sink, missing)
        else await this.fetchPatches(conn, next.value.batch, sink, missing)
      }
    }
    const results = await Promise.allSettled(this.conns.map(worker))
    if (this.failure !== null) throw this.failure
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (rejected !== undefined)
      throw this.fail(rejected.reason instanceof RewindError ? rejected.reason : new RewindError('INTERNAL', String(rejected.reason)))
  }

  /** What is queued, as batches for the fetch workers: chunks first, then block patches. */
  private *takeBatches(): Generator<{ kind: 'chunks'; batch: ChunkRequest[] } | { kind: 'patches'; batch: PatchRequest[] }> {
    for (const batch of this.queue.takeBatches()) yield { kind: 'chunks', batch }
    const patches = this.patches
    this.patches = []
    for (let at = 0; at < patches.length; at += PATCH_BLOCKS_PER_QUERY) {
      yield { kind: 'patches', batch: patches.slice(at, at + PATCH_BLOCKS_PER_QUERY) }
    }
  }

  /** Up to `jobs` connections, same server and settings; a server short of slots gives fewer. */
  private async openExtraConnections(): Promise<void> {
    if (this.extraOpened) return
    this.extraOpened = true
    const first = this.conns[0]!
    const wanted = this.jobs - this.conns.length
    const opened = await Promise.allSettled(
      Array.from({ length: wanted }, async () => {
        const conn = await connectAnother(first)
        try {
          await this.configure(conn)
        } catch (err) {
          conn.destroy()
          throw err
        }
        return conn
      }),
    )
    for (const r of opened) {
      if (r.status === 'fulfilled') {
        if (this.failure !== null || this.closed) r.value.destroy()
        else this.conns.push(r.value)
      }
    }
    const refused = opened.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (refused.length === 0) return
    const hard = refused.find((r) => !isTooManyConnections(r.reason))
    if (hard !== undefined) {
      throw this.fail(hard.reason instanceof RewindError ? hard.reason : new RewindError('SOURCE_CONNECTION', String(hard.reason)))
    }
    this.emit({
      type: 'warning',
      code: 'SOURCE_CONNECTION',
      message: `source server ${this.description} refused ${refused.length} of ${wanted} extra connections (too many clients); fetching over ${this.conns.length}`,
    })
  }

  private async fetchBatch(conn: SourceConnection, batch: ChunkRequest[], sink: ChunkSink, missing: Set<string>): Promise<void> {
    this.emit({ type: 'debug', message: `getting ${batch.length} file chunks` })
    let received = 0
    const binary = binaryRowsSupported
    const q = new StreamingQuery({
      name: FETCH_STATEMENT,
      text: FETCH_CHUNKS_SQL,
      values: fetchParameters(batch),
      binary,
      lendsRows: true, // a sink copies what it keeps of a chunk before its promise settles
      onFields: (fields: readonly FieldDef[]) => checkChunkColumns(fields.map((f) => f.dataTypeID)),
      onRow: async (fields) => {
        const want = batch[received]
        if (want === undefined) throw new RewindError('SOURCE_QUERY', 'received more data chunks than requested')
        received++
        const got = decodeChunkRow(fields, binary)
        checkChunk(got, want)
        if (got.data === null) {
          // Deleted on the source since the listing: the sink removes it (once), and WAL replay
          // recreates it if it matters.
          await reportMissing(got.path, missing, sink)
          return
        }
        await sink.chunk(got.path, got.offset, got.data)
      },
    })
    try {
      await conn.stream(q)
    } catch (err) {
      throw this.fail(sourceError('unexpected result while fetching remote files', err, conn, this.timeoutMs))
    }
    if (received !== batch.length) throw this.fail(new RewindError('SOURCE_QUERY', 'unexpected number of data chunks received'))
  }

  private async fetchPatches(conn: SourceConnection, batch: PatchRequest[], sink: ChunkSink, missing: Set<string>): Promise<void> {
    this.emit({ type: 'debug', message: `getting patches of ${batch.length} blocks` })
    let received = 0
    const q = new StreamingQuery({
      name: 'block_patches',
      text: BLOCK_PATCH_SQL,
      values: blockPatchParameters(batch),
      binary: true,
      onRow: async (fields) => {
        const want = batch[received]
        if (want === undefined) throw new RewindError('SOURCE_QUERY', 'received more block patches than requested')
        received++
        const got = decodePatchRow(fields, want)
        const offset = want.block * want.blockSize
        if (got.kind === 'missing') {
          await reportMissing(want.path, missing, sink)
        } else if (got.kind === 'short') {
          await sink.chunk(want.path, offset, got.data)
        } else if (sink.patch) {
          await sink.patch(want.path, offset, want.blockSize, got.pieces)
        } else {
          for (const [at, bytes] of got.pieces) await sink.chunk(want.path, at, bytes)
        }
      },
    })
    try {
      await conn.stream(q)
    } catch (err) {
      throw this.fail(sourceError('unexpected result while fetching block patches', err, conn, this.timeoutMs))
    }
    if (received !== batch.length) throw this.fail(new RewindError('SOURCE_QUERY', 'unexpected number of block patches received'))
  }

  /**
   * Digests of block ranges, one query per call on a connection of its own: calls made at once
   * run on up to `jobs` connections (opened as for a flush), the others wait for one.
   */
  async blockDigests(ranges: readonly BlockDigestRange[], blockSize: number): Promise<BlockDigests> {
    this.check()
    if (ranges.length === 0) return { algorithm: DIGEST_ALGORITHM, ranges: [] }
    const values = blockDigestParameters(ranges, blockSize)
    this.extraConnections ??= this.openExtraConnections()
    this.digestPool ??= this.extraConnections.then(() => {
      this.idle.push(...this.conns)
    })
    await this.digestPool
    const conn = await this.lease()
    try {
      this.check()
      return { algorithm: DIGEST_ALGORITHM, ranges: await this.queryDigests(conn, ranges, values) }
    } catch (err) {
      throw this.fail(sourceError('could not compute block digests on the source server', err, conn, this.timeoutMs))
    } finally {
      this.release(conn)
    }
  }

  private async queryDigests(
    conn: SourceConnection,
    ranges: readonly BlockDigestRange[],
    values: string[],
  ): Promise<Array<Buffer[] | null>> {
    const out: Array<Buffer[] | null> = []
    const q = new StreamingQuery({
      name: 'block_digests',
      text: blockDigestsSql(),
      values,
      binary: binaryRowsSupported,
      onRow: (fields) => {
        const want = ranges[out.length]
        if (want === undefined) throw new RewindError('SOURCE_QUERY', 'received more block digests than requested')
        out.push(decodeDigestRow(fields, want))
      },
    })
    await conn.stream(q)
    if (out.length !== ranges.length) throw new RewindError('SOURCE_QUERY', 'unexpected number of block digest rows received')
    return out
  }

  private lease(): Promise<SourceConnection> {
    const conn = this.idle.pop()
    return conn !== undefined ? Promise.resolve(conn) : new Promise((resolve) => this.waiting.push(resolve))
  }

  private release(conn: SourceConnection): void {
    const next = this.waiting.shift()
    if (next !== undefined) next(conn)
    else this.idle.push(conn)
  }

  /**
   * A primary's WAL ends at its insert location now (on the newest of its checkpoint's and its
   * minRecoveryPoint's timelines: a just-promoted server has its new TLI only there); a
   * standby's at its minRecoveryPoint, which covers everything it has replayed and so written.
   */
  async walEnd(sourceControl: ControlFile): Promise<SourceWalEnd> {
    this.check()
    const conn = this.conns[0]!
    const inRecovery = await this.simpleValue(conn, 'SELECT pg_is_in_recovery()')
    if (inRecovery === true) {
      return { lsn: sourceControl.minRecoveryPoint, tli: sourceControl.minRecoveryPointTLI }
    }
    const text = String(await this.simpleValue(conn, 'SELECT pg_current_wal_insert_lsn()'))
    let lsn
    try {
      lsn = parseLsn(text, 'SOURCE_QUERY')
    } catch {
      throw new RewindError('SOURCE_QUERY', `unrecognized result "${text}" for current WAL insert location`)
    }
    const tli = Math.max(sourceControl.checkPointCopy.ThisTimeLineID, sourceControl.minRecoveryPointTLI)
    this.emit({ type: 'debug', message: `source WAL insert location is ${formatLsn(lsn)} on timeline ${tli}` })
    return { lsn, tli }
  }

  /** pg_rewind -R's primary_conninfo; a given dbname only as pg_rewind 18 writes it, for an 18+ source. */
  recoveryConninfo(): string {
    return formatPrimaryConninfo(this.resolved, { includeDbname: this.serverProfile.recoveryConninfoHasDbname })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.watchdog)
    await this.extraConnections?.catch(() => {}) // those opened since are destroyed as they come
    await Promise.all(this.conns.map((c) => c.close()))
  }
}

/** libpq's default user name: the effective user's login name. */
function currentOsUser(env: NodeJS.ProcessEnv): string {
  try {
    return os.userInfo().username
  } catch {
    return env['USER'] ?? env['LOGNAME'] ?? ''
  }
}

function hexBytea(text: string, file: string): Buffer {
  if (!text.startsWith('\\x'))
    throw new RewindError('SOURCE_QUERY', `unexpected result set while fetching remote file "${file}"`, { path: file })
  return Buffer.from(text.slice(2), 'hex')
}

/** A file gone from the source, told to the sink once per flush however many of its chunks or blocks come back empty. */
async function reportMissing(path: string, missing: Set<string>, sink: ChunkSink): Promise<void> {
  if (missing.has(path)) return
  missing.add(path)
  await sink.missing(path)
}
