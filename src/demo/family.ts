// The 4-node family walrewind exists for: node1 primary; node2 and node3 standbys of node1; node4 a
// cascading standby of node2. node2 is promoted (timeline 2, node4 follows it), node1 keeps writing,
// then node3 (timeline 3) and node4 (timeline 4) are promoted, and every node writes its own
// history. The story of `walrewind demo`, and of the test kit's family (test/kit/family.ts).

import fs from 'node:fs'
import path from 'node:path'
import type { Major } from '../pg/versions.js'

export type { Major }

/** What the story needs of a node. */
export interface FamilyNode {
  readonly name: string
  readonly dataDir: string
  start(): Promise<void>
  promote(): Promise<void>
  query(sql: string, params?: unknown[]): Promise<unknown[]>
  currentLsn(): Promise<string>
  waitForReplay(lsn: string): Promise<void>
}

/** What makes the nodes: the demo's clusters, or a test kit. */
export interface FamilyMaker<N extends FamilyNode> {
  initNode(name: string, major: Major, opts: { walLogHints: boolean }): Promise<N>
  createStandby(upstream: N, name: string): Promise<N>
}

export const FAMILY_NAMES = ['node1', 'node2', 'node3', 'node4'] as const
export type FamilyName = (typeof FAMILY_NAMES)[number]
export type Family<N extends FamilyNode> = Record<FamilyName, N>

export const REWIND_ROLE = 'rewind_user'

/** The four grants pg_rewind documents for a non-superuser source role. */
export const REWIND_GRANTS = [
  'pg_ls_dir(text, boolean, boolean)',
  'pg_stat_file(text, boolean)',
  'pg_read_binary_file(text)',
  'pg_read_binary_file(text, bigint, bigint, boolean)',
].map((fn) => `GRANT EXECUTE ON function pg_catalog.${fn} TO ${REWIND_ROLE}`)

export interface FamilyOptions {
  /** Rows of the accounts table (default 100000). */
  rows?: number
  onStep?: (message: string) => void
}

/** Builds the family; every node is left running. */
export async function buildFamily<N extends FamilyNode>(maker: FamilyMaker<N>, major: Major, opts: FamilyOptions = {}): Promise<Family<N>> {
  const step = opts.onStep ?? (() => {})
  const rows = opts.rows ?? 100000
  step(`PostgreSQL ${major}: creating node1 (primary)`)
  const node1 = await maker.initNode('node1', major, { walLogHints: true })
  await node1.start()
  await node1.query(`CREATE ROLE ${REWIND_ROLE} LOGIN REPLICATION`)
  for (const grant of REWIND_GRANTS) await node1.query(grant)
  await node1.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, owner text)')
  await node1.query(`INSERT INTO accounts SELECT g, 1000, 'node1' FROM generate_series(1, ${rows}) g`)
  await node1.query('CREATE TABLE events (id bigserial PRIMARY KEY, node text, payload text)')
  await node1.query('CHECKPOINT')

  step('creating node2 and node3 (standbys of node1) and node4 (cascading standby of node2)')
  const node2 = await maker.createStandby(node1, 'node2')
  const node3 = await maker.createStandby(node1, 'node3')
  const node4 = await maker.createStandby(node2, 'node4')
  await writeEvents(node1, 'node1 before any promotion', 2000)
  for (const n of [node2, node3]) await n.waitForReplay(await node1.currentLsn())
  await node4.waitForReplay(await node2.currentLsn())

  step('promoting node2: timeline 2 (node4 follows it)')
  await node2.promote()
  await writeEvents(node2, 'node2 on timeline 2', 1000)
  await node4.waitForReplay(await node2.currentLsn())
  await writeEvents(node1, 'node1 still on timeline 1', 3000)
  await node3.waitForReplay(await node1.currentLsn())

  // A shared WAL archive would tell each new primary which timeline numbers are taken; here the
  // history files are handed over directly.
  step('promoting node3: timeline 3')
  copyHistoryFile(node2, node3, 2)
  await node3.promote()
  step('promoting node4: timeline 4')
  copyHistoryFile(node3, node4, 3)
  await node4.promote()

  step('every node writes its own history')
  const family: Family<N> = { node1, node2, node3, node4 }
  for (const [i, name] of FAMILY_NAMES.entries()) {
    const node = family[name]
    await writeEvents(node, `${name} after the split`, 4000)
    await node.query(`UPDATE accounts SET balance = balance + ${i + 1}, owner = '${name}' WHERE id % 10 = ${i + 1}`)
    await node.query(`CREATE TABLE only_on_${name} (x int); INSERT INTO only_on_${name} VALUES (${i + 1})`)
  }
  return family
}

async function writeEvents(node: FamilyNode, note: string, rows: number): Promise<void> {
  await node.query(`INSERT INTO events (node, payload) SELECT $1, md5(g::text) FROM generate_series(1, ${rows}) g`, [note])
}

/** Copies a timeline history file into another node's pg_wal, owned like that directory. */
function copyHistoryFile(from: FamilyNode, to: FamilyNode, tli: number): void {
  const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`
  const dest = path.join(to.dataDir, 'pg_wal', name)
  try {
    fs.copyFileSync(path.join(from.dataDir, 'pg_wal', name), dest)
    const owner = fs.statSync(path.dirname(dest))
    if (process.getuid?.() === 0) fs.chownSync(dest, owner.uid, owner.gid)
  } catch (err) {
    throw new Error(`could not copy ${name} from ${from.name} to ${to.name}: ${(err as Error).message}`, { cause: err })
  }
}
