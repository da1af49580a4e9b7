// Saved states: stopped nodes' directories copied with cp -a (modes, owners, symlinks kept),
// including what a node uses outside its data directory (archive, tablespace locations, a moved
// pg_wal), and put back at the same paths, so a scenario can rerun from one setup.

import fs from 'node:fs'
import path from 'node:path'
import type { Node } from './node.js'
import { Runner } from './runner.js'

export interface SavedState {
  label: string
  nodes: Node[]
  /** Absolute path of each saved directory -> where its copy is. */
  copies: Map<string, string>
}

/** The directories a node's state lives in: data dir, archive dir, and what its symlinks point to. */
export function stateDirs(node: Node): string[] {
  const dirs = [node.dataDir, node.archiveDir]
  const links = [path.join(node.dataDir, 'pg_wal')]
  const tblspc = path.join(node.dataDir, 'pg_tblspc')
  if (fs.existsSync(tblspc)) for (const name of fs.readdirSync(tblspc)) links.push(path.join(tblspc, name))
  for (const link of links) {
    if (fs.lstatSync(link).isSymbolicLink()) dirs.push(fs.realpathSync(link))
  }
  return dirs.filter((dir) => fs.existsSync(dir))
}

export async function saveState(label: string, nodes: Node[], statesDir: string): Promise<SavedState> {
  for (const node of nodes) {
    if (await node.isRunning()) throw new Error(`saveState(${label}): node ${node.name} is running; stop it first`)
  }
  const dir = path.join(statesDir, label)
  await fs.promises.rm(dir, { recursive: true, force: true })
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 })
  const copies = new Map<string, string>()
  for (const source of new Set(nodes.flatMap(stateDirs))) {
    const copy = path.join(dir, String(copies.size))
    await copyTree(source, copy)
    copies.set(source, copy)
  }
  return { label, nodes, copies }
}

export async function restoreState(state: SavedState): Promise<void> {
  for (const node of state.nodes) {
    if (await node.isRunning()) throw new Error(`restoreState(${state.label}): node ${node.name} is running; stop it first`)
  }
  // What the nodes use now but did not when saved (a tablespace created since) goes away too, so
  // nothing of the later history survives.
  for (const dir of new Set(state.nodes.flatMap(stateDirs))) {
    if (!state.copies.has(dir)) await emptyDir(dir)
  }
  for (const [target, copy] of state.copies) {
    await fs.promises.rm(target, { recursive: true, force: true })
    await copyTree(copy, target)
  }
}

/**
 * cp -a as a child the event loop does not wait on (as the caller's user, not the PG OS user):
 * tests run side by side in one process (the lanes of interrupt-kill), and a blocking copy of a
 * data directory stalled the other lane's sessions for seconds.
 */
const caller = new Runner(null, { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, '/')

async function copyTree(from: string, to: string): Promise<void> {
  const result = await caller.run('cp', ['-a', from, to], { timeoutMs: 30 * 60_000 })
  if (result.code !== 0) throw new Error(`cp -a ${from} ${to} failed (exit ${result.code}): ${result.stderr.trim()}`)
}

/** Empties a directory but keeps it (and its owner and mode), as a fresh tablespace location. */
async function emptyDir(dir: string): Promise<void> {
  for (const name of await fs.promises.readdir(dir)) await fs.promises.rm(path.join(dir, name), { recursive: true, force: true })
}
