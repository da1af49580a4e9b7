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
    const family = await kitModule.buildFamily(kit, major as 13, { onStep: say })
    const { node1 } = family
    const nodes = family as Record<string, KitNode>
    const primary = nodes[primaryName]!
    const others = Object.values(nodes).filter((n) => n !== primary)
    for (const n of others) await n.stop()

    say('the timeline graph:')
    const graph = await kit.runWalrewind(['timelines', ...Object.values(nodes).map((n) => `${n.name}=${n === primary ? primary.connectionString({ user: 'rewind_user' }) : n.dataDir}`)])
    if (graph.code !== 0) throw new Error(`walrewind timelines failed:\n${graph.stderr}`)
    io.stdout.write(graph.stdout.trimEnd().replace(/^/gm, '    ') + '\n')

    const clusterBytes = Number(await primary.queryValue<string>('SELECT sum(pg_database_size(oid))::bigint FROM pg_database'))
    say(`${primaryName} is the new primary; rewinding ${others.map((n) => n.name).join(', ')} against it`)
    let copiedTotal = 0
    let fullCopyTotal = 0
    for (const target of others) {
      const conf = path.join(target.dataDir, 'postgresql.conf')
      const ownConf = fs.readFileSync(conf)
      const t0 = Date.now()
      const run = await kit.runWalrewind(['--target-pgdata', target.dataDir, '--source-server', primary.connectionString({ user: 'rewind_user' }),
        '--write-recovery-conf', '--json', `--postgres-bindir=${target.binDir}`])
      if (run.code !== 0) throw new Error(`rewinding ${target.name} failed (exit ${run.code}):\n${run.stderr}`)
      fs.writeFileSync(conf, ownConf) // its own port and paths, not the primary's
      const result = JSON.parse(run.stdout) as {
        outcome: string; divergence?: { lsn: string; tli: number }; fetchedBytes?: number
        plan?: { totals: { sourceBytes: number; blockCount: number } }
      }
      copiedTotal += result.fetchedBytes ?? 0
      fullCopyTotal += result.plan?.totals.sourceBytes ?? 0
      const what = result.outcome === 'rewound'
        ? `diverged at ${result.divergence!.lsn} on timeline ${result.divergence!.tli}; copied ${mb(result.fetchedBytes ?? 0)} ` +
          `(${result.plan?.totals.blockCount ?? 0} changed blocks, the rest WAL and small files) instead of ${mb(result.plan?.totals.sourceBytes ?? 0)}`
        : 'no rewind required'
      say(`  ${target.name}: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
    }

    say('starting the rewound nodes as standbys of the new primary')
    await primary.query("INSERT INTO events (node, payload) VALUES ('new primary', 'after the rewind')")
    const lsn = await primary.currentLsn()
    const expected = await primary.fingerprint()
    for (const target of others) {
      await target.start()
      await target.waitForReplay(lsn)
      const got = await target.fingerprint()
      if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`${target.name} does not hold the new primary's data after the rewind`)
      say(`  ${target.name}: streaming from ${primaryName}, data identical (${Object.keys(got.tables).length} tables)`)
    }
    say(`done: ${others.length} nodes rewound in ${((Date.now() - started) / 1000).toFixed(1)} s; ${mb(copiedTotal)} copied in all, ` +
      `where full copies of the data directory would have been ${mb(fullCopyTotal)} (databases: ${mb(clusterBytes)})`)
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

