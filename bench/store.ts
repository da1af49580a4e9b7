// Prepared states that outlive one invocation: the stopped target (old primary) and source (new
// primary) data directories of a shape, copied with cp -a under --state-dir/KEY, with meta.json
// written last (its presence = a complete state). The test kit's saveState keeps copies inside the
// kit's own directory, which goes away with the kit, and puts them back at the paths they were
// saved from; a state reused by a later invocation goes into that invocation's nodes instead (new
// paths and ports), so after each copy the node's own settings are appended to postgresql.conf
// (the last occurrence wins).

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { formatSettings, type Settings } from '../test/kit/conf.js'
import type { Node } from '../test/kit/index.js'

export interface StateMeta {
  key: string
  shape: string
  params: Record<string, number>
  created: string
  /** What the preparation measured (sizes, WAL amounts, LSNs), shown with the results. */
  info: Record<string, string | number>
}

export type Role = 'target' | 'source'

export class StateStore {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  }

  private keyDir(key: string): string {
    return path.join(this.dir, key)
  }

  /** The saved state's description, or null when there is none (or it was not completed). */
  meta(key: string): StateMeta | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.keyDir(key), 'meta.json'), 'utf8')) as StateMeta
    } catch {
      return null
    }
  }

  /** Copies the stopped nodes' data directories; meta.json last. */
  async save(meta: StateMeta, nodes: Record<Role, Node>): Promise<void> {
    const dir = this.keyDir(meta.key)
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    for (const [role, node] of Object.entries(nodes) as Array<[Role, Node]>) {
      if (await node.isRunning()) throw new Error(`state ${meta.key}: node ${node.name} is running; stop it first`)
      copyTree(node.dataDir, path.join(dir, role))
    }
    fs.writeFileSync(path.join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`)
  }

  /** Puts the saved data directory of `role` in place of `node`'s (stopped) and appends its own settings. */
  async restore(key: string, role: Role, node: Node, extra: Settings = {}): Promise<void> {
    if (await node.isRunning()) throw new Error(`restore ${key}: node ${node.name} is running; stop it first`)
    const saved = path.join(this.keyDir(key), role)
    if (!fs.existsSync(saved)) throw new Error(`restore ${key}: no saved ${role} in ${saved}`)
    fs.rmSync(node.dataDir, { recursive: true, force: true })
    copyTree(saved, node.dataDir)
    appendNodeSettings(node, extra)
  }

  /** Bytes the saved state takes (du). */
  size(key: string): number {
    const du = spawnSync('du', ['-sb', this.keyDir(key)], { encoding: 'utf8' })
    return Number(du.stdout.split('\t')[0]) || 0
  }

  remove(key: string): void {
    fs.rmSync(this.keyDir(key), { recursive: true, force: true })
  }
}

/**
 * What differs per node (as the kit writes it at initdb), plus `extra`, appended to postgresql.conf.
 * Also needed after pg_rewind, which copies the source's postgresql.conf (its port) over the target's.
 */
export function appendNodeSettings(node: Node, extra: Settings = {}): void {
  const settings: Settings = {
    port: node.port,
    unix_socket_directories: node.socketDir,
    cluster_name: node.name,
    archive_command: `test ! -f "${node.archiveDir}/%f" && cp "%p" "${node.archiveDir}/%f"`,
    ...extra,
  }
  fs.appendFileSync(path.join(node.dataDir, 'postgresql.conf'), formatSettings(settings, `rewind benchmark: node ${node.name}`))
}

function copyTree(from: string, to: string): void {
  const result = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`cp -a ${from} ${to} failed: ${result.stderr || result.error?.message}`)
}
