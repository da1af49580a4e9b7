// The demo's PostgreSQL servers: one fresh base directory holds every node (data directory, log,
// unix socket directory), every server runs as one OS user (the current one, or the one the demo
// picked when started as root), and cleanup stops all of them. Servers are started and stopped
// with pg_ctl, which finds the postmaster through its own postmaster.pid; a node is running
// exactly when that pid file names a live process whose working directory is the data directory.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { copyRunning } from './base-copy.js'
import { BASE_HBA, BASE_SETTINGS, formatSetting, formatSettings, type Settings } from './conf.js'
import type { FamilyMaker, Major } from './family.js'
import { makeUserDir, writeUserFile, type OsUser } from './files.js'
import { fingerprint, type Fingerprint } from './fingerprint.js'
import { pollUntil } from './poll.js'
import { Runner, tail, type RunOptions, type RunResult } from './runner.js'

const POLL_MS = 50
const PG_CTL_WAIT_S = 90

/** One server of the demo. */
export class DemoNode {
  readonly host = '127.0.0.1' as const

  constructor(
    readonly name: string,
    readonly major: Major,
    readonly binDir: string,
    readonly dataDir: string,
    readonly port: number,
    readonly socketDir: string,
    readonly logFile: string,
    private readonly runner: Runner,
    private readonly user: OsUser | null,
  ) {}

  /** libpq keyword=value string for this node. */
  connectionString(opts: { user?: string } = {}): string {
    return `host=${this.host} port=${this.port} user=${opts.user ?? 'postgres'} dbname=postgres`
  }

  async start(): Promise<void> {
    const result = await this.pgCtl(['start', '-w', '-t', String(PG_CTL_WAIT_S), '-l', this.logFile])
    if (result.code !== 0) throw this.failure('start', result)
  }

  /** Fast shutdown, or immediate (a crash); nothing if it is not running. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.isRunning()) return
    const result = await this.pgCtl(['stop', '-m', mode, '-w', '-t', String(PG_CTL_WAIT_S)])
    if (result.code !== 0 || this.isRunning()) throw this.failure(`stop -m ${mode}`, result)
  }

  /** Promotes a standby and waits until it is out of recovery. */
  async promote(): Promise<void> {
    const result = await this.pgCtl(['promote', '-w', '-t', String(PG_CTL_WAIT_S)])
    if (result.code !== 0) throw this.failure('promote', result)
    await this.waitUntil(
      async () => (await this.queryValue<boolean>('select pg_is_in_recovery()')) === false,
      60_000,
      'the end of recovery after promote',
    )
  }

  isRunning(): boolean {
    return runningPostmaster(this.dataDir) !== null
  }

  async connect(dbname = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.host,
      port: this.port,
      user: 'postgres',
      database: dbname,
      connectionTimeoutMillis: 20_000,
      application_name: 'walrewind-demo',
    })
    client.on('error', () => {
      /* a server going away mid-query surfaces as the query's error */
    })
    try {
      await client.connect()
    } catch (err) {
      await client.end().catch(() => {})
      throw new Error(`${this.name}: cannot connect to port ${this.port}: ${(err as Error).message}`, { cause: err })
    }
    return client
  }

  /** Runs `sql` in a new session; several statements (no params) give the last one's rows. */
  async query<T = Record<string, unknown>>(sql: string, params?: unknown[], opts: { dbname?: string } = {}): Promise<T[]> {
    const client = await this.connect(opts.dbname)
    try {
      const result = await client.query(sql, params)
      const last = Array.isArray(result) ? result[result.length - 1] : result
      return (last?.rows ?? []) as T[]
    } catch (err) {
      throw new Error(`${this.name}: ${(err as Error).message}\n  in: ${sql.trim()}`, { cause: err })
    } finally {
      await client.end().catch(() => {})
    }
  }

  async queryValue<T = unknown>(sql: string, params?: unknown[]): Promise<T> {
    const rows = await this.query<Record<string, unknown>>(sql, params)
    const row = rows[0]
    if (!row) throw new Error(`${this.name}: no row returned by: ${sql}`)
    return Object.values(row)[0] as T
  }

  /** Insert position on a primary, last replayed on a standby, as "X/X". */
  currentLsn(): Promise<string> {
    return this.queryValue<string>(`select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
      else pg_current_wal_insert_lsn() end)::text`)
  }

  /** Waits until this node has replayed `lsn` (on a primary: written past it). */
  async waitForReplay(lsn: string, timeoutMs = 60_000): Promise<void> {
    const target = parseLsn(lsn)
    await this.waitUntil(
      async () => {
        const now = await this.currentLsn().catch(() => null)
        return now !== null && reached(parseLsn(now), target)
      },
      timeoutMs,
      `replay of ${lsn}`,
    )
  }

  /** For a stopped node: standby.signal and primary_conninfo pointing at `upstream`. */
  followAs(upstream: DemoNode): void {
    writeUserFile(path.join(this.dataDir, 'standby.signal'), '', this.user)
    const conninfo = `host=${upstream.host} port=${upstream.port} user=postgres application_name=${this.name}`
    const autoConf = path.join(this.dataDir, 'postgresql.auto.conf')
    const line = `${formatSetting('primary_conninfo', conninfo)}\n`
    if (fs.existsSync(autoConf)) fs.appendFileSync(autoConf, line)
    else writeUserFile(autoConf, line, this.user)
  }

  fingerprint(): Promise<Fingerprint> {
    return fingerprint(this)
  }

  private pgCtl(args: string[]): Promise<RunResult> {
    return this.runner.run(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, ...args], { timeoutMs: PG_CTL_WAIT_S * 1000 + 30_000 })
  }

  private async waitUntil(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const lastError = await pollUntil(condition, timeoutMs, POLL_MS)
    if (lastError === null) return
    const why = lastError ? `; last error: ${(lastError as Error).message}` : ''
    throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}${why}\n--- ${this.logFile}\n${this.logTail()}`)
  }

  private logTail(): string {
    try {
      return tail(fs.readFileSync(this.logFile, 'utf8'), 30)
    } catch {
      return '(no log file)'
    }
  }

  private failure(action: string, result: RunResult): Error {
    return new Error(
      `${this.name} (PostgreSQL ${this.major}, ${this.dataDir}): pg_ctl ${action} failed with exit ${result.code}\n` +
        `${result.stdout}${result.stderr}--- ${this.logFile}\n${this.logTail()}`,
    )
  }
}

/** The demo's servers, all of one major, in one fresh directory. */
export class DemoClusters implements FamilyMaker<DemoNode> {
  private readonly nodes: DemoNode[] = []
  private readonly ports = new Set<number>()
  private readonly runner: Runner
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.crashAll()
    process.kill(process.pid, signal)
  }

  private constructor(
    readonly baseDir: string,
    private readonly socketRoot: string,
    readonly binDir: string,
    readonly user: OsUser | null,
  ) {
    this.runner = new Runner(user, childEnv(path.join(baseDir, 'home'), user), baseDir)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, this.onSignal)
  }

  /** A fresh directory under the system's temporary directory, owned by `user`. */
  static create(binDir: string, user: OsUser | null): DemoClusters {
    const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-demo-'))
    fs.chmodSync(baseDir, 0o700)
    if (user) fs.chownSync(baseDir, user.uid, user.gid)
    makeUserDir(path.join(baseDir, 'home'), user)
    // unix_socket_directories must fit sun_path (108 bytes) with "/.s.PGSQL.NNNNN.lock" appended.
    const socketRoot = baseDir.length < 60 ? path.join(baseDir, 's') : fs.mkdtempSync('/tmp/wrd-')
    if (socketRoot.startsWith(baseDir)) makeUserDir(socketRoot, user)
    else if (user) fs.chownSync(socketRoot, user.uid, user.gid)
    return new DemoClusters(baseDir, socketRoot, binDir, user)
  }

  /** initdb with the demo's settings (wal_log_hints on, checksums off); not started. */
  async initNode(name: string, major: Major, opts: { walLogHints: boolean }): Promise<DemoNode> {
    const node = await this.newNode(name, major)
    const args = ['-D', node.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']
    if (major >= 18) args.push('--no-data-checksums')
    const result = await this.runner.run(path.join(this.binDir, 'initdb'), args, { timeoutMs: 180_000 })
    if (result.code !== 0)
      throw new Error(`${name}: initdb (PostgreSQL ${major}) failed with exit ${result.code}\n${result.stdout}${result.stderr}`)
    const settings: Settings = { ...BASE_SETTINGS, wal_log_hints: opts.walLogHints, ...this.nodeSettings(node) }
    fs.appendFileSync(path.join(node.dataDir, 'postgresql.conf'), formatSettings(settings, 'walrewind demo'))
    fs.writeFileSync(path.join(node.dataDir, 'pg_hba.conf'), [...BASE_HBA, ''].join('\n'))
    return node
  }

  /** A streaming standby of `upstream` (a primary, or a standby for a cascading one), started. */
  async createStandby(upstream: DemoNode, name: string): Promise<DemoNode> {
    const node = await this.newNode(name, upstream.major)
    await copyRunning(
      upstream,
      { dataDir: node.dataDir, tablespaceDir: path.join(path.dirname(node.dataDir), 'tablespaces'), user: this.user },
      `walrewind demo: ${name}`,
    )
    fs.appendFileSync(
      path.join(node.dataDir, 'postgresql.conf'),
      formatSettings(this.nodeSettings(node), `walrewind demo: standby ${name}`),
    )
    node.followAs(upstream)
    await node.start()
    return node
  }

  /** Runs a program as the clusters' OS user, in the base directory. */
  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.runner.run(cmd, args, opts)
  }

  /** Stops every server (immediate: the data no longer matters) and removes the directory unless `keep`. */
  async cleanup(keep = false): Promise<void> {
    for (const node of this.nodes) await node.stop(keep ? 'fast' : 'immediate')
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(signal, this.onSignal)
    if (!keep) fs.rmSync(this.baseDir, { recursive: true, force: true })
    if (!keep && !this.socketRoot.startsWith(this.baseDir)) fs.rmSync(this.socketRoot, { recursive: true, force: true })
  }

  /** SIGQUIT (immediate shutdown) to every running postmaster: when the demo itself is interrupted. */
  private crashAll(): void {
    for (const node of this.nodes) {
      const pid = runningPostmaster(node.dataDir)
      if (pid !== null) {
        try {
          process.kill(pid, 'SIGQUIT')
        } catch {
          // already gone
        }
      }
    }
  }

  private async newNode(name: string, major: Major): Promise<DemoNode> {
    const nodeDir = path.join(this.baseDir, name)
    makeUserDir(nodeDir, this.user)
    const socketDir = path.join(this.socketRoot, String(this.nodes.length))
    makeUserDir(socketDir, this.user)
    const logFile = path.join(nodeDir, 'postgres.log')
    writeUserFile(logFile, '', this.user)
    const node = new DemoNode(
      name,
      major,
      this.binDir,
      path.join(nodeDir, 'data'),
      await this.freePort(),
      socketDir,
      logFile,
      this.runner,
      this.user,
    )
    this.nodes.push(node)
    return node
  }

  /** A port the system has free now on 127.0.0.1, not given to another node of the demo. */
  private async freePort(): Promise<number> {
    for (;;) {
      const port = await new Promise<number>((resolve, reject) => {
        const server = net.createServer()
        server.once('error', reject)
        server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
          const address = server.address()
          server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
        })
      })
      if (port > 0 && !this.ports.has(port)) {
        this.ports.add(port)
        return port
      }
    }
  }

  private nodeSettings(node: DemoNode): Settings {
    return { port: node.port, unix_socket_directories: node.socketDir, cluster_name: node.name }
  }
}

/** The environment of every child: none of the caller's PG* variables, the demo's HOME, C locale. */
function childEnv(home: string, user: OsUser | null): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith('PG')) continue
    env[key] = value
  }
  env['HOME'] = home
  env['LC_ALL'] = 'C'
  env['TZ'] = 'UTC' // initdb probes every zone file to guess the time zone unless TZ says it
  if (user) {
    env['USER'] = user.name
    env['LOGNAME'] = user.name
  }
  return env
}

/** The pid of the postmaster running in `dataDir`, or null (a stale pid file's pid works elsewhere). */
function runningPostmaster(dataDir: string): number | null {
  let pid: number
  try {
    pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0])
  } catch {
    return null
  }
  if (!Number.isInteger(pid) || pid <= 0) return null
  try {
    return fs.realpathSync(`/proc/${pid}/cwd`) === fs.realpathSync(dataDir) ? pid : null
  } catch {
    return null
  }
}

function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim())
  if (!match) throw new Error(`invalid LSN ${JSON.stringify(text)}`)
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

/**
 * Replay ends at the end of a record; an insert position at the start of a page points past the
 * page header instead, so a replay position on a page boundary reaches a target within that header.
 */
function reached(replayed: bigint, target: bigint): boolean {
  if (replayed >= target) return true
  return replayed % 8192n === 0n && target - replayed <= 40n
}
