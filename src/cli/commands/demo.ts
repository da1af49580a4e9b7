// `walrewind demo`: the story walrewind exists for, on real embedded PostgreSQL clusters. A primary
// (node1), two standbys (node2, node3) and a cascading standby (node4, of node2) are promoted one
// after the other onto timelines 2, 3 and 4, each writes its own history, then one becomes the
// primary again and the other three are rewound against it and follow it. It runs from a checkout
// of walrewind after `npm install` (it uses the test kit and the PostgreSQL binaries of the
// development dependencies), as an unprivileged OS user when started as root.

import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import fs from 'node:fs'
import type { CliIo } from '../io.js'

const USAGE = `Usage: walrewind demo [--major=13..18] [--primary=node1..node4] [--keep]

Builds a 4-node PostgreSQL family with forked timelines (promotions of a standby, of another
standby and of a cascading standby), writes on every node, shows the timeline graph, makes one node
the primary again and rewinds the three others against it (over a normal connection, with -R), then
checks that all of them follow it with the same data. Needs a checkout of walrewind with its
development dependencies installed (npm install).

Options:
  --major=N        PostgreSQL major version (default: 18)
  --primary=NODE   the node that becomes the primary (default: node3)
  --keep           keep the clusters (stopped) and print where they are
`

type KitModule = typeof import('../../../test/kit/index.js')
type KitNode = InstanceType<KitModule['Node']>

async function loadKit(): Promise<KitModule> {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const kitIndex = path.resolve(here, '..', '..', '..', 'test', 'kit', 'index.js')
  if (!fs.existsSync(kitIndex)) {
    throw new Error('the demo needs a checkout of walrewind built with its development dependencies (npm install)')
  }
  return import(pathToFileURL(kitIndex).href) as Promise<KitModule>
}

export async function demo(args: string[], io: CliIo): Promise<number> {
  let major = 18
  let primaryName = 'node3'
  let keep = false
  for (const a of args) {
    if (a === '--help' || a === '-?') { io.stdout.write(USAGE); return 0 }
    if (a === '--keep') keep = true
    else if (a.startsWith('--major=')) major = Number(a.slice(8))
    else if (a.startsWith('--primary=')) primaryName = a.slice(10)
    else { io.stderr.write(`walrewind demo: unknown argument "${a}"\n${USAGE}`); return 2 }
  }
  if (![13, 14, 15, 16, 17, 18].includes(major)) { io.stderr.write(`walrewind demo: --major must be 13 to 18\n`); return 2 }
  if (!/^node[1-4]$/.test(primaryName)) { io.stderr.write(`walrewind demo: --primary must be node1 to node4\n`); return 2 }

  const started = Date.now()
  const tty = io.stdout.isTTY === true
  const bold = (s: string) => tty ? `\x1b[1m${s}\x1b[0m` : s
  const say = (text: string) => io.stdout.write(`${bold(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s]`)} ${text}\n`)

  const kitModule = await loadKit()
  const kit = await kitModule.Kit.create('walrewind-demo')
  let ok = false
  try {
    say(`PostgreSQL ${major}: creating node1 (primary)`)
    const node1 = await kit.initNode('node1', major as 13, { walLogHints: true })
    await node1.start()
    await node1.query('CREATE ROLE rewind_user LOGIN REPLICATION')
    for (const fn of ['pg_ls_dir(text, boolean, boolean)', 'pg_stat_file(text, boolean)', 'pg_read_binary_file(text)', 'pg_read_binary_file(text, bigint, bigint, boolean)']) {
      await node1.query(`GRANT EXECUTE ON function pg_catalog.${fn} TO rewind_user`)
    }
    await node1.query("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, owner text)")
    await node1.query("INSERT INTO accounts SELECT g, 1000, 'node1' FROM generate_series(1, 100000) g")
    await node1.query('CREATE TABLE events (id bigserial PRIMARY KEY, node text, at timestamptz DEFAULT now(), payload text)')
    await node1.query('CHECKPOINT')

    say('creating node2 and node3 (standbys of node1) and node4 (cascading standby of node2)')
    const node2 = await kit.createStandby(node1, 'node2')
    const node3 = await kit.createStandby(node1, 'node3')
    const node4 = await kit.createStandby(node2, 'node4')
    await writeOn(node1, 'node1: before any promotion', 2000)
    for (const n of [node2, node3]) await n.waitForReplay(await node1.currentLsn())
    await node4.waitForReplay(await node2.currentLsn())

    say('promoting node2: timeline 2 (node4 follows it)')
    await node2.promote()
    await writeOn(node2, 'node2 on timeline 2', 1000)
    await node4.waitForReplay(await node2.currentLsn())
    await writeOn(node1, 'node1 keeps writing on timeline 1', 3000)
    await node3.waitForReplay(await node1.currentLsn())

    // A shared WAL archive would tell each new primary which timeline numbers are taken; here
    // the history files are handed over directly.
    say('promoting node3: timeline 3')
    await copyHistory(kit, node2, node3, 2)
    await node3.promote()
    say('promoting node4: timeline 4')
    await copyHistory(kit, node3, node4, 3)
    await node4.promote()

    say('every node writes its own history')
    await writeOn(node1, 'node1 after the split', 5000)
    await writeOn(node2, 'node2 after the split', 5000)
    await writeOn(node3, 'node3 after the split', 5000)
    await writeOn(node4, 'node4 after the split', 5000)
    await node1.query("UPDATE accounts SET balance = balance - 1, owner = 'node1' WHERE id % 10 = 1")
    await node2.query("UPDATE accounts SET balance = balance + 2, owner = 'node2' WHERE id % 10 = 2")
    await node3.query("UPDATE accounts SET balance = balance + 3, owner = 'node3' WHERE id % 10 = 3")
    await node4.query("UPDATE accounts SET balance = balance + 4, owner = 'node4' WHERE id % 10 = 4")
    await node1.query('CREATE TABLE only_on_node1 (x int)')
    await node4.query('CREATE TABLE only_on_node4 (x int)')

    const nodes = { node1, node2, node3, node4 } as Record<string, KitNode>
    const primary = nodes[primaryName]!
    const others = Object.values(nodes).filter((n) => n !== primary)
    for (const n of others) await n.stop()

    say('the timeline graph:')
    const graph = await kit.runWalrewind(['timelines', ...Object.values(nodes).map((n) => `${n.name}=${n === primary ? primary.connectionString({ user: 'rewind_user' }) : n.dataDir}`)])
    if (graph.code !== 0) throw new Error(`walrewind timelines failed:\n${graph.stderr}`)
    io.stdout.write(graph.stdout.replace(/^/gm, '    '))

    const clusterBytes = Number(await primary.queryValue<string>('SELECT sum(pg_database_size(oid))::bigint FROM pg_database'))
    say(`${primaryName} is the new primary; rewinding ${others.map((n) => n.name).join(', ')} against it`)
    let copiedTotal = 0
    for (const target of others) {
      const conf = path.join(target.dataDir, 'postgresql.conf')
      const ownConf = fs.readFileSync(conf)
      const t0 = Date.now()
      const run = await kit.runWalrewind(['--target-pgdata', target.dataDir, '--source-server', primary.connectionString({ user: 'rewind_user' }),
        '--write-recovery-conf', '--json', `--postgres-bindir=${target.binDir}`])
      if (run.code !== 0) throw new Error(`rewinding ${target.name} failed (exit ${run.code}):\n${run.stderr}`)
      fs.writeFileSync(conf, ownConf) // its own port and paths, not the primary's
      const result = JSON.parse(run.stdout) as { outcome: string; divergence?: { lsn: string; tli: number }; fetchedBytes?: number }
      copiedTotal += result.fetchedBytes ?? 0
      const what = result.outcome === 'rewound'
        ? `diverged at ${result.divergence!.lsn} on timeline ${result.divergence!.tli}; copied ${mb(result.fetchedBytes ?? 0)} of ${mb(clusterBytes)}`
        : 'no rewind required'
      say(`  ${target.name}: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
    }

    say('starting the rewound nodes as standbys of the new primary')
    await primary.query("INSERT INTO events (node, payload) VALUES ('after the rewind', 'on the new primary')")
    const lsn = await primary.currentLsn()
    const expected = await primary.fingerprint()
    for (const target of others) {
      await target.start()
      await target.waitForReplay(lsn)
      const got = await target.fingerprint()
      if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`${target.name} does not hold the new primary's data after the rewind`)
      say(`  ${target.name}: streaming from ${primaryName}, data identical (${Object.keys(got.tables).length} tables)`)
    }
    say(`done: ${others.length} nodes rewound, ${mb(copiedTotal)} copied in all (cluster: ${mb(clusterBytes)}), ${((Date.now() - started) / 1000).toFixed(1)} s`)
    ok = true
    if (keep) {
      for (const n of Object.values(nodes)) await n.stop()
      say(`kept: ${kit.baseDir} (data directories under it; start them with ${path.join(node1.binDir, 'pg_ctl')} -D DIR start)`)
    }
    return 0
  } catch (err) {
    io.stderr.write(`walrewind demo: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    if (!(keep && ok)) await kit.cleanup()
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`
}

async function writeOn(node: KitNode, note: string, rows: number): Promise<void> {
  await node.query(`INSERT INTO events (node, payload) SELECT $1, md5(g::text) FROM generate_series(1, ${rows}) g`, [note])
}

async function copyHistory(kit: { run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> }, from: KitNode, to: KitNode, tli: number): Promise<void> {
  const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`
  const r = await kit.run('cp', [path.join(from.dataDir, 'pg_wal', name), path.join(to.dataDir, 'pg_wal', name)])
  if (r.code !== 0) throw new Error(`could not copy ${name}: ${r.stderr}`)
}
