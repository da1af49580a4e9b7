// A test file's clusters: one Kit per file owns a fresh base directory, the ports and sockets of
// its nodes, and the servers it started, and stops all of them in cleanup (or, if the process dies
// first, in the reaper's exit handler). Everything runs as the PG OS user.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BASE_HBA, BASE_SETTINGS, formatSettings, type Settings } from './conf.js'
import { binDir, PROJECT_ROOT, type Major } from './majors.js'
import { Node, type NodeDirs } from './node.js'
import { makeUserDir, pgOsUser, writeUserFile, type OsUser } from './os-user.js'
import { releasePort, reservePort } from './ports.js'
import { register, unregister } from './reaper.js'
import { Runner, type RunOptions, type RunResult } from './runner.js'
import { copyRunning, copyStopped } from './standby.js'
import { restoreState, saveState, type SavedState } from './state.js'

export interface InitOptions {
  /** initdb --data-checksums (default false, also on 18 where initdb's default is on). */
  checksums?: boolean
  /** wal_log_hints (default true). */
  walLogHints?: boolean
  /** initdb --wal-segsize. */
  walSegmentSizeMb?: number
  /** initdb --allow-group-access. */
  groupAccess?: boolean
  /** archive_mode=on, archive_command copying into node.archiveDir. */
  archive?: boolean
  /** Extra postgresql.conf settings. */
  conf?: Settings
  /** Lines put before the kit's own pg_hba.conf lines. */
  hba?: string[]
}

export interface StandbyOptions {
  /** Copy a stopped upstream instead of an online base copy. */
  fromStopped?: boolean
  conf?: Settings
}

// Socket paths must fit sun_path (108 bytes) with "/.s.PGSQL.NNNNN.lock" appended.
const MAX_SOCKET_DIR = 80

export class Kit {
  /** This kit's own fresh directory; every node, saved state and made directory lives below it. */
  readonly baseDir: string
  /** The unprivileged OS user servers and walrewind run as; null = current user. */
  readonly osUser: OsUser | null
  /** HOME of every child the kit runs (owned by the PG OS user): put a .pgpass here. */
  readonly homeDir: string
  /** Parent of the nodes' unix socket directories (short, for sun_path). */
  readonly socketRoot: string
  private readonly runner: Runner
  private readonly nodes = new Map<string, Node>()
  private readonly ports: number[] = []
  private readonly states = new Map<string, SavedState>()
  private cleanedUp = false

  private constructor(baseDir: string, osUser: OsUser | null, socketRoot: string) {
    this.baseDir = baseDir
    this.osUser = osUser
    this.homeDir = path.join(baseDir, 'home')
    this.socketRoot = socketRoot
    this.runner = new Runner(osUser, childEnv(this.homeDir, osUser), baseDir)
  }

  /**
   * One per test file: a fresh base directory under the test root (env WALREWIND_TEST_ROOT, which
   * test/run.js sets, else os.tmpdir()), owned by the PG OS user.
   */
  static async create(name: string): Promise<Kit> {
    const osUser = pgOsUser()
    const root = testRoot()
    const baseDir = fs.mkdtempSync(path.join(root, `${safeName(name)}-`))
    fs.chmodSync(baseDir, 0o700)
    if (osUser) fs.chownSync(baseDir, osUser.uid, osUser.gid)
    const socketParent = [root, os.tmpdir(), '/tmp'].find((dir) => dir.length + 20 < MAX_SOCKET_DIR) ?? '/tmp'
    const socketRoot = fs.mkdtempSync(path.join(socketParent, 'wrs-'))
    fs.chmodSync(socketRoot, 0o700)
    if (osUser) fs.chownSync(socketRoot, osUser.uid, osUser.gid)
    const kit = new Kit(baseDir, osUser, socketRoot)
    makeUserDir(kit.homeDir, osUser)
    register(kit)
    return kit
  }

  /** initdb + kit settings; the node is not started. */
  async initNode(name: string, major: Major, opts: InitOptions = {}): Promise<Node> {
    const bin = binDir(major)
    const node = await this.newNode(name, major)
    const args = ['-D', node.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']
    if (opts.checksums) args.push('--data-checksums')
    else if (major >= 18) args.push('--no-data-checksums')
    if (opts.walSegmentSizeMb !== undefined) args.push(`--wal-segsize=${opts.walSegmentSizeMb}`)
    if (opts.groupAccess) args.push('--allow-group-access')
    const result = await this.runner.run(path.join(bin, 'initdb'), args, { timeoutMs: 180_000 })
    if (result.code !== 0) {
      throw new Error(`node ${name}: initdb (PostgreSQL ${major}) failed with exit ${result.code}\n${result.stdout}${result.stderr}`)
    }
    const settings: Settings = {
      ...BASE_SETTINGS,
      wal_log_hints: opts.walLogHints ?? true,
      ...(opts.archive ? { archive_mode: true } : {}),
      ...this.nodeSettings(node),
      ...opts.conf,
    }
    fs.appendFileSync(path.join(node.dataDir, 'postgresql.conf'), formatSettings(settings, 'walrewind test kit'))
    fs.writeFileSync(path.join(node.dataDir, 'pg_hba.conf'), [...(opts.hba ?? []), ...BASE_HBA, ''].join('\n'))
    return node
  }

  /**
   * A streaming standby of `upstream` (primary or standby = cascading), by an online base copy, or
   * with {fromStopped: true} a copy of the stopped upstream. Started. Tablespaces get their own
   * locations under the new node's directory.
   */
  async createStandby(upstream: Node, name: string, opts: StandbyOptions = {}): Promise<Node> {
    const node = await this.newNode(name, upstream.major)
    const target = { dataDir: node.dataDir, tablespaceDir: path.join(path.dirname(node.dataDir), 'tablespaces'), user: this.osUser }
    if (opts.fromStopped) {
      await copyStopped(upstream, target)
    } else {
      if (!(await upstream.isRunning())) throw new Error(`createStandby(${upstream.name}, ${name}): ${upstream.name} is not running`)
      await copyRunning(upstream, target, `walrewind test kit: ${name}`)
    }
    const settings = { ...this.nodeSettings(node), ...opts.conf }
    fs.appendFileSync(path.join(node.dataDir, 'postgresql.conf'), formatSettings(settings, `walrewind test kit: standby ${name}`))
    await node.followAs(upstream)
    await node.start()
    return node
  }

  /** An empty directory owned by the PG OS user, for CREATE TABLESPACE or a moved pg_wal. */
  async makeDir(name: string): Promise<string> {
    const parent = path.join(this.baseDir, 'dirs')
    if (!fs.existsSync(parent)) makeUserDir(parent, this.osUser)
    const dir = path.join(parent, safeName(name))
    makeUserDir(dir, this.osUser)
    return dir
  }

  /** Copies the stopped state of these nodes (data dirs and the outside dirs they use). */
  async saveState(label: string, nodes: Node[]): Promise<void> {
    this.states.set(label, await saveState(safeName(label), nodes, path.join(this.baseDir, 'states')))
  }

  /** Puts a saved state back in place (same paths and ports); the nodes must be stopped. */
  async restoreState(label: string): Promise<void> {
    const state = this.states.get(label)
    if (!state) throw new Error(`restoreState: no state saved as "${label}"`)
    await restoreState(state)
  }

  /** Runs bin/walrewind.js with this node binary as the PG OS user; never throws on a non-zero exit. */
  runWalrewind(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.runner.run(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'walrewind.js'), ...args], opts)
  }

  /** Runs any program as the PG OS user (cwd: baseDir unless told). */
  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.runner.run(cmd, args, opts)
  }

  /** The nodes made so far, by name. */
  node(name: string): Node {
    const node = this.nodes.get(name)
    if (!node) throw new Error(`no node named ${name}`)
    return node
  }

  allNodes(): Node[] {
    return [...this.nodes.values()]
  }

  /**
   * Stops every server of the kit (immediate shutdown: their data no longer matters), removes
   * baseDir unless WALREWIND_KEEP_TMP=1, and fails if a server could not be stopped. Safe to call twice.
   */
  async cleanup(): Promise<void> {
    if (this.cleanedUp) return
    const failures: string[] = []
    for (const node of this.nodes.values()) {
      try {
        await node.stop('immediate')
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    if (failures.length > 0) {
      throw new Error(`test kit cleanup: ${failures.length} server(s) could not be stopped; kept ${this.baseDir}\n` + failures.join('\n'))
    }
    this.releaseSync()
    unregister(this)
    fs.rmSync(this.socketRoot, { recursive: true, force: true })
    if (process.env['WALREWIND_KEEP_TMP'] === '1') {
      process.stderr.write(`walrewind test kit: kept ${this.baseDir} (WALREWIND_KEEP_TMP=1)\n`)
    } else {
      fs.rmSync(this.baseDir, { recursive: true, force: true })
    }
    this.cleanedUp = true
  }

  /** @internal For the reaper. */
  dataDirs(): string[] {
    return [...this.nodes.values()].map((node) => node.dataDir)
  }

  /** @internal For the reaper and cleanup: gives back the reserved ports. */
  releaseSync(): void {
    for (const port of this.ports.splice(0)) releasePort(port)
  }

  /** Reserves a port and the directories of a new node; initdb or the copy makes the data dir. */
  private async newNode(name: string, major: Major): Promise<Node> {
    if (this.cleanedUp) throw new Error(`test kit: ${name}: the kit was cleaned up already`)
    if (this.nodes.has(name)) throw new Error(`test kit: there is already a node named ${name}`)
    const nodeDir = path.join(this.baseDir, safeName(name))
    makeUserDir(nodeDir, this.osUser)
    const port = await reservePort()
    this.ports.push(port)
    const socketDir = path.join(this.socketRoot, String(this.nodes.size))
    makeUserDir(socketDir, this.osUser)
    const dirs: NodeDirs = {
      name,
      major,
      dataDir: path.join(nodeDir, 'data'),
      port,
      socketDir,
      archiveDir: path.join(nodeDir, 'archive'),
      logFile: path.join(nodeDir, 'postgres.log'),
    }
    makeUserDir(dirs.archiveDir, this.osUser)
    writeUserFile(dirs.logFile, '', this.osUser, 0o600)
    const node = new Node(dirs, this.runner, this.osUser)
    this.nodes.set(name, node)
    return node
  }

  /** What differs per node: where it listens and archives, and its name in ps and in logs. */
  private nodeSettings(node: Node): Settings {
    return {
      port: node.port,
      unix_socket_directories: node.socketDir,
      cluster_name: node.name,
      archive_command: `test ! -f "${node.archiveDir}/%f" && cp "%p" "${node.archiveDir}/%f"`,
    }
  }
}

/** The directory kits are made in: WALREWIND_TEST_ROOT (set by test/run.js) or os.tmpdir(). */
export function testRoot(): string {
  const root = process.env['WALREWIND_TEST_ROOT'] || os.tmpdir()
  fs.mkdirSync(root, { recursive: true })
  return root
}

function safeName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
    throw new Error(`test kit: "${name}" is not a usable name (letters, digits, _ . -; at most 63 characters)`)
  }
  return name
}

/** The environment of every child: no PG* variables of the caller, HOME of the PG OS user, C locale. */
function childEnv(home: string, user: OsUser | null): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith('PG') || key === 'NODE_TEST_CONTEXT') continue
    env[key] = value
  }
  env['HOME'] = home
  env['LC_ALL'] = 'C'
  // initdb probes every zone file to guess the time zone unless TZ says it.
  env['TZ'] = 'UTC'
  if (user) {
    env['USER'] = user.name
    env['LOGNAME'] = user.name
  }
  return env
}
