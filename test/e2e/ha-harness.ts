// HA managers running walrewind as their pg_rewind: Patroni (with etcd), pg_auto_failover and
// repmgr from Debian's packages, on Debian's PostgreSQL 15, the way each is installed for real.
//
// The manager sees a bin directory of symlinks to /usr/lib/postgresql/15/bin/* whose pg_rewind is
// a wrapper placed by the test: it records each invocation (arguments, stderr, exit status) in a
// log the test asserts on, then runs the implementation under the name pg_rewind from a second
// directory of the same symlinks, whose pg_rewind is a symlink either to walrewind's
// bin/walrewind.js or to the real pg_rewind 15 (the same scenario with both proves the scenario).
// So walrewind must find its `postgres` next to the path it was invoked by: every daemon runs with
// a PATH that has node but no postgres, as on a Debian or RHEL host.
//
// Everything listens on 127.0.0.1 only and runs as the kit's OS user; daemons are started here,
// never as system services, and stopped by pid (the postmasters by their postmaster.pid), also
// when a test fails or the process dies.

import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { fingerprint, Kit, PROJECT_ROOT, type Fingerprint, type Node } from '../kit/index.js'
import { runningPostmaster } from '../kit/node.js'
import { giveToUser } from '../kit/os-user.js'
import { releasePort, reservePort } from '../kit/ports.js'
import { pollUntil } from '../../src/demo/poll.js'

export const PG15_BIN = '/usr/lib/postgresql/15/bin'
export type Impl = 'walrewind' | 'pg_rewind'
/** Both implementations, the real one first: it proves the scenario. */
export const IMPLS: readonly Impl[] = ['pg_rewind', 'walrewind']

const APT =
  'apt-get install -y --no-install-recommends patroni etcd-server postgresql-15-auto-failover postgresql-15-repmgr (as .ci/run does, as root)'

/** Fails (never skips) when a program the test needs is not installed. */
export function requirePrograms(programs: ReadonlyArray<string>): void {
  const missing = [PG15_BIN + '/postgres', PG15_BIN + '/pg_rewind', ...programs].filter((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return false
    } catch {
      return true
    }
  })
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: install the Debian packages with ${APT}`)
}

export interface Invocation {
  readonly args: string[]
  readonly stderr: string
  readonly exit: number | null
}

interface Daemon {
  readonly name: string
  readonly child: ChildProcess
  readonly logFile: string
}

// Module state on purpose: one exit handler per process kills whatever a failed test left running.
const liveHarnesses = new Set<Ha>()
let exitHandlerInstalled = false

export class Ha {
  /** The bin directory the manager is told about (postgresql.bin_dir, --pgctl, pg_bindir). */
  readonly bin: string
  /** Where the wrapper runs the implementation from: symlinks to PG15_BIN, pg_rewind switched. */
  readonly implDir: string
  /** The wrapper's record of every pg_rewind invocation. */
  readonly invocationLog: string
  /** Environment of every daemon and tool: a PATH without postgres. */
  readonly env: Record<string, string>
  private readonly daemons: Daemon[] = []
  private readonly dataDirs = new Set<string>()
  private readonly ports: number[] = []

  private constructor(readonly kit: Kit) {
    this.bin = path.join(kit.baseDir, 'pgbin')
    this.implDir = path.join(kit.baseDir, 'rewind-impl')
    this.invocationLog = path.join(kit.baseDir, 'pg_rewind-invocations.log')
    const pathDirs = [...new Set([path.dirname(process.execPath), '/usr/bin', '/bin'])]
    for (const dir of pathDirs) {
      assert.ok(!fs.existsSync(path.join(dir, 'postgres')), `${dir} on the daemons' PATH has a postgres: the test needs a PATH without one`)
    }
    this.env = {
      PATH: pathDirs.join(':'),
      HOME: kit.homeDir,
      LC_ALL: 'C.UTF-8',
      LANG: 'C.UTF-8',
      TZ: 'UTC',
      ...(kit.osUser ? { USER: kit.osUser.name, LOGNAME: kit.osUser.name } : {}),
    }
  }

  static async create(name: string): Promise<Ha> {
    const ha = new Ha(await Kit.create(name))
    liveHarnesses.add(ha)
    if (!exitHandlerInstalled) {
      exitHandlerInstalled = true
      process.on('exit', () => {
        for (const h of liveHarnesses) h.killAllSync()
      })
    }
    ha.makeBinDirs()
    return ha
  }

  get user(): string {
    return this.kit.osUser?.name ?? process.env['USER'] ?? 'postgres'
  }

  /** The two directories of symlinks and the recording wrapper. */
  private makeBinDirs(): void {
    for (const dir of [this.bin, this.implDir]) {
      fs.mkdirSync(dir, { mode: 0o755 })
      for (const name of fs.readdirSync(PG15_BIN)) {
        if (name !== 'pg_rewind') fs.symlinkSync(path.join(PG15_BIN, name), path.join(dir, name))
      }
    }
    const wrapper = path.join(this.bin, 'pg_rewind')
    fs.writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        "# Placed by walrewind's HA tests: records this invocation, then runs the implementation",
        '# under the name pg_rewind, next to the same postgres.',
        `log='${this.invocationLog}'`,
        'err=$(mktemp)',
        '{ echo "=== invocation"; for a in "$@"; do printf "arg: %s\\n" "$a"; done; } >> "$log"',
        `'${this.implDir}/pg_rewind' "$@" 2>"$err"`,
        'status=$?',
        'cat "$err" >&2',
        '{ sed "s/^/stderr: /" "$err"; echo "exit: $status"; } >> "$log"',
        'rm -f "$err"',
        'exit $status',
        '',
      ].join('\n'),
      { mode: 0o755 },
    )
    fs.writeFileSync(this.invocationLog, '', { mode: 0o666 })
    fs.chmodSync(this.invocationLog, 0o666)
    giveToUser(this.invocationLog, this.kit.osUser)
    this.useImpl('walrewind')
  }

  /** Points the wrapper at walrewind (bin/walrewind.js, linked as pg_rewind) or the real pg_rewind 15. */
  useImpl(impl: Impl): void {
    const link = path.join(this.implDir, 'pg_rewind')
    fs.rmSync(link, { force: true })
    fs.symlinkSync(impl === 'walrewind' ? path.join(PROJECT_ROOT, 'bin', 'walrewind.js') : path.join(PG15_BIN, 'pg_rewind'), link)
  }

  /** Every pg_rewind invocation so far, in order. */
  invocations(): Invocation[] {
    const text = fs.readFileSync(this.invocationLog, 'utf8')
    return text
      .split('=== invocation\n')
      .slice(1)
      .map((block) => {
        const lines = block.split('\n')
        const exitLine = lines.find((l) => l.startsWith('exit: '))
        return {
          args: lines.filter((l) => l.startsWith('arg: ')).map((l) => l.slice(5)),
          stderr: lines
            .filter((l) => l.startsWith('stderr: '))
            .map((l) => l.slice(8))
            .join('\n'),
          exit: exitLine === undefined ? null : Number(exitLine.slice(6)),
        }
      })
  }

  /** The invocations that rewound `dataDir` (not `--help` or `--version` probes). */
  rewindsOf(dataDir: string): Invocation[] {
    return this.invocations().filter((inv) =>
      inv.args.some(
        (a, i) => a === `--target-pgdata=${dataDir}` || ((a === '-D' || a === '--target-pgdata') && inv.args[i + 1] === dataDir),
      ),
    )
  }

  async port(): Promise<number> {
    const port = await reservePort()
    this.ports.push(port)
    return port
  }

  /** A directory owned by the OS user, below the kit's base directory. */
  dir(name: string): string {
    const dir = path.join(this.kit.baseDir, name)
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    giveToUser(dir, this.kit.osUser)
    return dir
  }

  /** A file owned by the OS user. */
  writeFile(file: string, text: string, mode = 0o600): void {
    fs.writeFileSync(file, text, { mode })
    fs.chmodSync(file, mode)
    giveToUser(file, this.kit.osUser)
  }

  /** A data directory whose postmaster cleanup must stop (by its postmaster.pid). */
  watchDataDir(dataDir: string): void {
    this.dataDirs.add(dataDir)
  }

  /** Runs a program to its end as the OS user with the harness's environment. */
  run(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}) {
    return this.kit.run(cmd, args, { ...opts, env: { ...this.env, ...opts.env } })
  }

  /** Runs it and fails the test with its output if it fails. */
  async must(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(cmd, args, opts)
    assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`)
    return r.stdout
  }

  /** Starts a daemon as the OS user, its output in `<name>.log`; stopped by pid in cleanup. */
  spawnDaemon(name: string, cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Daemon {
    const logFile = path.join(this.kit.baseDir, `${name}.log`)
    const fd = fs.openSync(logFile, 'a')
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? this.kit.baseDir,
      env: { ...this.env, ...opts.env },
      stdio: ['ignore', fd, fd],
      ...(this.kit.osUser ? { uid: this.kit.osUser.uid, gid: this.kit.osUser.gid } : {}),
    })
    fs.closeSync(fd)
    child.on('error', () => {})
    const daemon = { name, child, logFile }
    this.daemons.push(daemon)
    return daemon
  }

  /** The last lines of a daemon's log, for failure messages. */
  logTail(daemon: Daemon | string, lines = 60): string {
    const file = typeof daemon === 'string' ? daemon : daemon.logFile
    try {
      return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
    } catch {
      return '(no log)'
    }
  }

  /**
   * A crash of a node: SIGKILL, all at once, to the manager daemon and every process below it
   * (pg_autoctl's services, the postmaster Patroni started), to the postmaster of `db` and to the
   * walsenders `frozen` stopped; all by pid. Waits until no process works in the data directory.
   */
  async crash(daemon: Daemon, db: Db, frozen: readonly number[]): Promise<void> {
    const pids = new Set<number>([...descendants(daemon.child.pid!), ...frozen])
    if (daemon.child.pid !== undefined) pids.add(daemon.child.pid)
    const postmaster = db.postmasterPid()
    assert.ok(postmaster !== null, `${db.name}: no postmaster running in ${db.dataDir}`)
    pids.add(postmaster)
    for (const pid of pids)
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    await stopChild(daemon.child, 'SIGKILL', 10_000)
    await waitCrashed(db, [...pids])
  }

  /** SIGTERM (then SIGKILL after `ms`) to a daemon, by its pid. */
  async stop(daemon: Daemon, ms = 30_000): Promise<void> {
    await stopChild(daemon.child, 'SIGTERM', ms)
  }

  /**
   * Stops every daemon (SIGTERM, then SIGKILL), then any postmaster still running in a watched
   * data directory (SIGQUIT: immediate shutdown), all by pid; then the kit's own cleanup.
   */
  async cleanup(): Promise<void> {
    for (const daemon of [...this.daemons].reverse()) {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) continue
      // What it started (pg_autoctl's services...) must not outlive it: those still there after
      // it stopped, and still the same programs, are killed too.
      const tree = descendants(daemon.child.pid!).map((pid) => ({ pid, cmdline: cmdlineOf(pid) }))
      await stopChild(daemon.child, 'SIGTERM', 15_000)
      for (const { pid, cmdline } of tree)
        if (cmdline !== null && cmdlineOf(pid) === cmdline)
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            /* gone */
          }
    }
    for (const dataDir of this.dataDirs) {
      const pid = runningPostmaster(dataDir)
      if (pid === null) continue
      try {
        process.kill(pid, 'SIGQUIT')
      } catch {
        /* gone */
      }
      const deadline = Date.now() + 15_000
      while (runningPostmaster(dataDir) !== null && Date.now() < deadline) await sleep(100)
      if (runningPostmaster(dataDir) !== null)
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* gone */
        }
    }
    for (const port of this.ports.splice(0)) releasePort(port)
    liveHarnesses.delete(this)
    await this.kit.cleanup()
  }

  /** For the exit handler: no waiting possible. */
  private killAllSync(): void {
    for (const daemon of this.daemons)
      if (daemon.child.exitCode === null && daemon.child.signalCode === null)
        try {
          daemon.child.kill('SIGKILL')
        } catch {
          /* gone */
        }
    for (const dataDir of this.dataDirs) {
      const pid = runningPostmaster(dataDir)
      if (pid !== null)
        try {
          process.kill(pid, 'SIGQUIT')
        } catch {
          /* gone */
        }
    }
    for (const port of this.ports) releasePort(port)
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    child.kill(signal)
  } catch {
    return
  }
  const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), ms).unref())
  if ((await Promise.race([exited, timer])) === 'late') {
    try {
      child.kill('SIGKILL')
    } catch {
      /* gone */
    }
    await exited
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `condition` until it is true; fails naming `what` (and `detail()`) after `ms`. */
export async function waitFor(what: string, condition: () => Promise<boolean> | boolean, ms: number, detail?: () => string): Promise<void> {
  const lastError = await pollUntil(condition, ms, 250)
  if (lastError === null) return
  throw new Error(
    `timed out after ${ms} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}` +
      `${detail ? `\n${detail()}` : ''}`,
  )
}

/** A PostgreSQL server the manager runs, reached over 127.0.0.1 as the superuser postgres. */
export class Db {
  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly password?: string,
  ) {}

  async query<T = Record<string, unknown>>(sql: string, params: unknown[] = [], opts: { dbname?: string } = {}): Promise<T[]> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: this.port,
      user: 'postgres',
      database: opts.dbname ?? 'postgres',
      connectionTimeoutMillis: 5000,
      ...(this.password !== undefined ? { password: this.password } : {}),
    })
    client.on('error', () => {})
    await client.connect()
    try {
      const result = await client.query(sql, params)
      const last = Array.isArray(result) ? result[result.length - 1] : result
      return (last?.rows ?? []) as T[]
    } finally {
      await client.end().catch(() => {})
    }
  }

  async value<T = unknown>(sql: string, params: unknown[] = []): Promise<T> {
    const [row] = await this.query<Record<string, unknown>>(sql, params)
    if (row === undefined) throw new Error(`${this.name}: no row for ${sql}`)
    return Object.values(row)[0] as T
  }

  async isUp(): Promise<boolean> {
    return this.value('select 1').then(
      () => true,
      () => false,
    )
  }

  async inRecovery(): Promise<boolean> {
    return this.value<boolean>('select pg_is_in_recovery()')
  }

  /** The postmaster's pid from its postmaster.pid, if it runs. */
  postmasterPid(): number | null {
    return runningPostmaster(this.dataDir)
  }

  fingerprint(): Promise<Fingerprint> {
    return fingerprint(this as unknown as Node)
  }
}

/** Application names of the standbys streaming from `primary`. */
export async function streamingStandbys(primary: Db): Promise<string[]> {
  const rows = await primary.query<{ application_name: string }>(
    "select application_name from pg_stat_replication where state = 'streaming' order by 1",
  )
  return rows.map((r) => r.application_name)
}

/**
 * Makes the standbys miss what the primary writes from now on: its walsender processes are stopped
 * (SIGSTOP, by the pids pg_stat_replication names), and its archive_command fails (ALTER SYSTEM,
 * which the rewind's copy of the source's postgresql.auto.conf undoes). Returns the pids, to be
 * SIGKILLed with the node.
 */
export async function freezeWalSenders(primary: Db): Promise<number[]> {
  // Nor the archive: a standby being promoted replays what it finds there first.
  await primary.query("alter system set archive_command = '/bin/false'")
  await primary.query('select pg_reload_conf()')
  await primary.query('select pg_sleep(0.2)')
  const pids = (await primary.query<{ pid: number }>('select pid from pg_stat_replication')).map((r) => r.pid)
  assert.ok(pids.length > 0, `${primary.name}: no walsender to stop`)
  for (const pid of pids) process.kill(pid, 'SIGSTOP')
  return pids
}

/**
 * Writes on the primary that no standby receives: new rows, updated and deleted old ones, over a
 * WAL segment switch. `round` keeps the ids of several rounds on one cluster apart.
 */
export async function writeUnreceived(primary: Db, round: number): Promise<void> {
  const base = round * 10_000_000
  // One session; committed locally even where the manager made the standbys synchronous.
  await primary.query(
    [
      'set synchronous_commit = local',
      `insert into ${TABLE} (id, who, payload) select g, 'lost', md5(g::text) from generate_series(${base + 1}, ${base + 20000}) g`,
      `update ${TABLE} set who = 'lost update' where id % 7 = ${round % 7} and id < 1000000`,
      `delete from ${TABLE} where id % 11 = ${round % 11} and id < 1000000`,
      'select pg_switch_wal()',
      `insert into ${TABLE} (id, who, payload) select g, 'lost', md5(g::text) from generate_series(${base + 20001}, ${base + 21000}) g`,
    ].join(';\n'),
  )
}

function cmdlineOf(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return null
  }
}

/** Every process below `root` (children, their children...), from /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(name))
      children.set(ppid, list)
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

/**
 * After a SIGKILL: the other backends notice the postmaster's death and exit, and the killed
 * processes are reaped. A postmaster that is still a zombie looks alive to the next server's
 * lock-file check ("Is another postmaster running?"), so that waits for /proc to forget them.
 */
export async function waitCrashed(db: Db, killed: readonly number[]): Promise<void> {
  await waitFor(
    `${db.name}'s processes to exit`,
    () => processesIn(db.dataDir).length === 0 && killed.every((pid) => !fs.existsSync(`/proc/${pid}`)),
    30_000,
    () => `still there: ${[...processesIn(db.dataDir), ...killed.filter((pid) => fs.existsSync(`/proc/${pid}`))].join(', ')}`,
  )
}

/** Pids of processes whose working directory is `dataDir` (every postgres process's is). */
export function processesIn(dataDir: string): number[] {
  const real = fs.realpathSync(dataDir)
  const pids: number[] = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat[stat.lastIndexOf(')') + 2] === 'Z') continue
      if (fs.readlinkSync(`/proc/${name}/cwd`) === real) pids.push(Number(name))
    } catch {
      // gone, or not ours to read
    }
  }
  return pids
}

/**
 * The proof on the rewound node: it streams from `primary`, has replayed all it wrote, holds the
 * same data, and none of what it wrote alone.
 */
export async function assertFollowsWithSameData(
  rewound: Db,
  primary: Db,
  appName: string,
  round: number,
  detail: () => string,
): Promise<void> {
  let streaming: string[] = []
  await waitFor(
    `${rewound.name} streaming from ${primary.name}`,
    async () => (streaming = await streamingStandbys(primary)).includes(appName),
    180_000,
    () => `streaming from ${primary.name}: ${JSON.stringify(streaming)}\n${detail()}`,
  )
  assert.equal(await rewound.inRecovery(), true, `${rewound.name} is not a standby`)
  await primary.query(`insert into ${TABLE} (id, who, payload) values (${round * 10_000_000 + 9_999_999}, 'after the rejoin', 'x')`)
  const lsn = await primary.value<string>('select pg_current_wal_insert_lsn()::text')
  await waitFor(
    `${rewound.name} to replay ${lsn}`,
    async () => (await rewound.value<boolean>(`select pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) === true,
    60_000,
  )
  assert.deepEqual(await rewound.fingerprint(), await primary.fingerprint(), `${rewound.name} and ${primary.name} hold different data`)
  assert.equal(await rewound.value<string>(`select count(*)::text from ${TABLE} where who like 'lost%'`), '0')
}

/** The assertions on the recorded invocations of one rejoin. */
export function assertRewoundBy(ha: Ha, impl: Impl, dataDir: string, before: number, expectArgs: RegExp[] = []): Invocation {
  const rewinds = ha.rewindsOf(dataDir).slice(before)
  assert.ok(
    rewinds.length > 0,
    `the manager did not run pg_rewind on ${dataDir}; invocations:\n${fs.readFileSync(ha.invocationLog, 'utf8')}`,
  )
  const last = rewinds[rewinds.length - 1]!
  assert.equal(last.exit, 0, `pg_rewind (${impl}) ${last.args.join(' ')} exited ${last.exit}:\n${last.stderr}`)
  for (const re of expectArgs)
    assert.ok(
      last.args.some((a) => re.test(a)),
      `no argument matches ${re}: ${last.args.join(' ')}`,
    )
  if (impl === 'walrewind') assert.doesNotMatch(last.stderr, /the source no longer has WAL/)
  return last
}

/** Table every scenario writes. */
export const TABLE = 'ha_data'

export async function createData(primary: Db): Promise<void> {
  await primary.query(`create table if not exists ${TABLE} (id int primary key, who text, payload text)`)
  const base = Number(await primary.value<string>(`select coalesce(max(id), 0)::text from ${TABLE} where id < 1000000`))
  await primary.query(
    `insert into ${TABLE} (id, who, payload) select g, 'common', md5(g::text) from generate_series(${base + 1}, ${base + 5000}) g`,
  )
}
