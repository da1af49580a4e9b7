// One PostgreSQL server of a test: its directories, port and lifecycle. Servers are started and
// stopped with pg_ctl, which finds the postmaster through its own postmaster.pid, and a node is
// running exactly when that pid file names a live process whose working directory is the data
// directory; processes are never looked up by name.

import fs from 'node:fs'
import path from 'node:path'
import { Client } from 'pg'
import { formatSetting, formatSettings, type Settings } from './conf.js'
import { checkIndexes, fingerprint, installAmcheck, type Fingerprint } from './fingerprint.js'
import { parseLsn } from './lsn.js'
import { binDir, type Major } from './majors.js'
import { pollUntil } from '../../src/demo/poll.js'
import { writeUserFile, type OsUser } from './os-user.js'
import { tail, type RunResult, type Runner } from './runner.js'

export interface NodeDirs {
  name: string
  major: Major
  dataDir: string
  port: number
  socketDir: string
  archiveDir: string
  logFile: string
}

export interface QueryOptions {
  dbname?: string
  user?: string
  password?: string
}

const POLL_MS = 50
const PG_CTL_WAIT_S = 90

export class Node {
  readonly name: string
  readonly major: Major
  readonly dataDir: string
  readonly port: number
  readonly host = '127.0.0.1' as const
  readonly socketDir: string
  readonly archiveDir: string
  readonly logFile: string
  /** Where initdb, pg_ctl and postgres of this major are. */
  readonly binDir: string

  /** @internal Created by Kit, which owns the runner and the OS user. */
  constructor(
    dirs: NodeDirs,
    private readonly runner: Runner,
    private readonly user: OsUser | null,
  ) {
    this.name = dirs.name
    this.major = dirs.major
    this.dataDir = dirs.dataDir
    this.port = dirs.port
    this.socketDir = dirs.socketDir
    this.archiveDir = dirs.archiveDir
    this.logFile = dirs.logFile
    this.binDir = binDir(dirs.major)
  }

  /** libpq keyword=value string, e.g. "host=127.0.0.1 port=5433 user=postgres dbname=postgres". */
  connectionString(opts: { user?: string; dbname?: string; password?: string } = {}): string {
    const parts = [
      `host=${this.host}`,
      `port=${this.port}`,
      `user=${quoteConnValue(opts.user ?? 'postgres')}`,
      `dbname=${quoteConnValue(opts.dbname ?? 'postgres')}`,
    ]
    if (opts.password !== undefined) parts.push(`password=${quoteConnValue(opts.password)}`)
    return parts.join(' ')
  }

  /** Starts the server and waits until it accepts connections; throws with the log tail if it fails. */
  async start(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (await this.isRunning()) throw new Error(`node ${this.name}: start: already running (pid ${this.postmasterPid()})`)
    const seconds = Math.ceil((opts.timeoutMs ?? PG_CTL_WAIT_S * 1000) / 1000)
    const result = await this.pgCtl(['start', '-w', '-t', String(seconds), '-l', this.logFile], seconds * 1000 + 30_000)
    if (result.code !== 0) throw this.failure('start', result)
  }

  /** Stops the server (fast shutdown, or immediate = a crash); no-op if it is not running. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!(await this.isRunning())) return
    const result = await this.pgCtl(['stop', '-m', mode, '-w', '-t', String(PG_CTL_WAIT_S)], PG_CTL_WAIT_S * 1000 + 30_000)
    if (result.code !== 0 || (await this.isRunning())) throw this.failure(`stop -m ${mode}`, result)
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /** Promotes a standby and waits until it is out of recovery. */
  async promote(): Promise<void> {
    const result = await this.pgCtl(['promote', '-w', '-t', String(PG_CTL_WAIT_S)], PG_CTL_WAIT_S * 1000 + 30_000)
    if (result.code !== 0) throw this.failure('promote', result)
    await this.waitUntil(
      async () => (await this.queryValue<boolean>('select pg_is_in_recovery()')) === false,
      60_000,
      'the end of recovery after promote',
    )
  }

  /** True if postmaster.pid names a live process working in this data directory. */
  async isRunning(): Promise<boolean> {
    return runningPostmaster(this.dataDir) !== null
  }

  /** The postmaster's pid from postmaster.pid, or null if there is no pid file. */
  postmasterPid(): number | null {
    return readPostmasterPid(this.dataDir)
  }

  /** An open session (the caller ends it), for what needs one: backups, open transactions, locks. */
  async connect(opts: QueryOptions = {}): Promise<Client> {
    const client = new Client({
      host: this.host,
      port: this.port,
      user: opts.user ?? 'postgres',
      database: opts.dbname ?? 'postgres',
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      connectionTimeoutMillis: 20_000,
      application_name: 'walrewind-test-kit',
    })
    client.on('error', () => {
      /* a server going away mid-query surfaces as the query's error */
    })
    try {
      await client.connect()
    } catch (err) {
      await client.end().catch(() => {})
      throw new Error(`node ${this.name}: cannot connect to port ${this.port}: ${(err as Error).message}`, { cause: err })
    }
    return client
  }

  /** Runs `sql` in a new session; several statements (no params) give the last one's rows. */
  async query<T = Record<string, unknown>>(sql: string, params?: unknown[], opts: QueryOptions = {}): Promise<T[]> {
    const client = await this.connect(opts)
    try {
      const result = await client.query(sql, params)
      const last = Array.isArray(result) ? result[result.length - 1] : result
      return (last?.rows ?? []) as T[]
    } catch (err) {
      throw new Error(`node ${this.name}: ${(err as Error).message}\n  in: ${sql.trim()}`, { cause: err })
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** The first column of the first row; throws if there is no row. */
  async queryValue<T = unknown>(sql: string, params?: unknown[], opts: QueryOptions = {}): Promise<T> {
    const rows = await this.query<Record<string, unknown>>(sql, params, opts)
    const row = rows[0]
    if (!row) throw new Error(`node ${this.name}: no row returned by: ${sql}`)
    return Object.values(row)[0] as T
  }

  /** Current WAL position: insert LSN on a primary, last replayed on a standby, as "X/X". */
  async currentLsn(): Promise<string> {
    return this.queryValue<string>(`select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
      else pg_current_wal_insert_lsn() end)::text`)
  }

  /** Waits until this node has replayed `lsn` (on a primary: written past it). */
  async waitForReplay(lsn: string, timeoutMs = 60_000): Promise<void> {
    const target = parseLsn(lsn)
    let last = 'unknown'
    await this.waitUntil(
      async () => {
        const now = await this.currentLsn().catch(() => null)
        if (now === null) return false
        last = now
        return reached(parseLsn(now), target)
      },
      timeoutMs,
      `replay of ${lsn}`,
      () => `last seen ${last}`,
    )
  }

  /** Appends settings to postgresql.conf; if the server runs, reloads and waits until they apply. */
  async setConf(settings: Settings): Promise<void> {
    const file = path.join(this.dataDir, 'postgresql.conf')
    const before = fs.readFileSync(file, 'utf8')
    const block = formatSettings(settings, 'set by the test')
    fs.appendFileSync(file, block)
    if (!(await this.isRunning())) return
    // Line numbers of the appended settings: they are what pg_settings.sourceline shows once the
    // reload reached the postmaster.
    const firstLine = before.split('\n').length + 2
    const expected = new Map(Object.keys(settings).map((name, i) => [name.toLowerCase(), firstLine + i]))
    await this.query('select pg_reload_conf()')
    await this.waitUntil(
      async () => {
        const rows = await this.query<{ name: string; sourcefile: string | null; sourceline: number | null; pending_restart: boolean }>(
          'select name, sourcefile, sourceline, pending_restart from pg_settings where name = any($1)',
          [[...expected.keys()]],
        )
        return rows.every(
          (row) => row.pending_restart || !row.sourcefile?.endsWith('/postgresql.conf') || row.sourceline === expected.get(row.name),
        )
      },
      10_000,
      `the reload of ${Object.keys(settings).join(', ')}`,
    )
  }

  /** For a stopped node: standby.signal + primary_conninfo pointing at `upstream`. */
  async followAs(upstream: Node): Promise<void> {
    if (await this.isRunning()) throw new Error(`node ${this.name}: followAs needs a stopped node`)
    writeUserFile(path.join(this.dataDir, 'standby.signal'), '', this.user)
    // In postgresql.auto.conf, like pg_basebackup -R and pg_rewind -R, so it wins over an older
    // primary_conninfo written there by a rewind.
    const conninfo = `host=${upstream.host} port=${upstream.port} user=postgres application_name=${this.name}`
    const autoConf = path.join(this.dataDir, 'postgresql.auto.conf')
    const line = `${formatSetting('primary_conninfo', conninfo)}\n`
    if (fs.existsSync(autoConf)) fs.appendFileSync(autoConf, line)
    else writeUserFile(autoConf, line, this.user)
  }

  fingerprint(): Promise<Fingerprint> {
    return fingerprint(this)
  }

  /**
   * bt_index_check on every btree index of every database; throws on corruption. On a standby
   * amcheck must exist in every database already (installAmcheck on the primary).
   */
  checkIndexes(): Promise<void> {
    return checkIndexes(this)
  }

  /** On a primary: amcheck in every database, so that its standbys can run checkIndexes. */
  installAmcheck(): Promise<void> {
    return installAmcheck(this)
  }

  /** The last lines of the server log. */
  logTail(lines = 40): string {
    try {
      return tail(fs.readFileSync(this.logFile, 'utf8'), lines)
    } catch {
      return '(no log file)'
    }
  }

  /** Runs pg_ctl of this node's major with -D set, as the PG OS user. */
  pgCtl(args: string[], timeoutMs?: number): Promise<RunResult> {
    return this.runner.run(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, ...args], timeoutMs === undefined ? {} : { timeoutMs })
  }

  /** Polls `condition` every 50 ms until true; throws naming `what` and the log tail on timeout. */
  async waitUntil(condition: () => Promise<boolean>, timeoutMs: number, what: string, detail?: () => string): Promise<void> {
    const lastError = await pollUntil(condition, timeoutMs, POLL_MS)
    if (lastError === null) return
    const why = lastError ? `; last error: ${(lastError as Error).message}` : ''
    throw new Error(
      `node ${this.name}: timed out after ${timeoutMs} ms waiting for ${what}` +
        `${detail ? ` (${detail()})` : ''}${why}\n--- ${this.logFile}\n${this.logTail()}`,
    )
  }

  private failure(action: string, result: RunResult): Error {
    return new Error(
      `node ${this.name} (PostgreSQL ${this.major}, ${this.dataDir}): pg_ctl ${action} failed ` +
        `with exit ${result.code}\n${result.stdout}${result.stderr}--- ${this.logFile}\n${this.logTail()}`,
    )
  }
}

/**
 * The pid of the postmaster running in `dataDir`, or null. The pid file may be stale and its pid
 * reused by another process after a crash: the postmaster's cwd is its data directory, which tells
 * them apart (readable for our own processes, and for anything when root).
 */
export function runningPostmaster(dataDir: string): number | null {
  const pid = readPostmasterPid(dataDir)
  if (pid === null) return null
  try {
    return fs.realpathSync(`/proc/${pid}/cwd`) === fs.realpathSync(dataDir) ? pid : null
  } catch {
    return null
  }
}

/** The first line of postmaster.pid, or null. */
export function readPostmasterPid(dataDir: string): number | null {
  let text: string
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8')
  } catch {
    return null
  }
  const pid = Number(text.split('\n', 1)[0])
  return Number.isInteger(pid) && pid > 0 ? pid : null
}

/**
 * Replay ends at the end of a record; an insert position at the start of a page points past the
 * page header instead. So a replay position on a page boundary counts as reaching a target that
 * lies within the header that follows (long header: 40 bytes, XLogLongPageHeaderData).
 */
function reached(replayed: bigint, target: bigint): boolean {
  if (replayed >= target) return true
  return replayed % 8192n === 0n && target - replayed <= 40n
}

function quoteConnValue(value: string): string {
  if (/^[^\s'\\]+$/.test(value)) return value
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}
